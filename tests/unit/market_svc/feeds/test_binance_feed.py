import asyncio
import json
from decimal import Decimal

import pytest
from websockets.asyncio.server import ServerConnection

from market_svc.feeds.base import FeedConfigError
from market_svc.feeds.binance import BinanceFeed, default_symbol_map
from market_svc.feeds.websocket import ConnectionSettings
from market_svc.instruments import Instruments
from market_svc.market import MarketData
from support import until
from unit.market_svc.feeds.fake_exchanges import (
    FakeExchange,
    feeding,
    hold_open,
    running,
)

FAST = ConnectionSettings(stale_after=5.0, backoff_initial=0.01, backoff_max=0.05)
SYMBOLS = default_symbol_map(Instruments())


def agg_trade(pair: str, price: object, quantity: object = "0.01") -> str:
    payload = {
        "e": "aggTrade",
        "E": 1,
        "s": pair,
        "a": 7,
        "p": price,
        "q": quantity,
        "f": 1,
        "l": 2,
        "T": 1,
        "m": True,
        "M": True,
    }
    return json.dumps({"stream": f"{pair.lower()}@aggTrade", "data": payload})


def book_ticker(pair: str, bid: str, ask: str) -> str:
    payload = {"u": 400900217, "s": pair, "b": bid, "B": "1.5", "a": ask, "A": "2.5"}
    return json.dumps({"stream": f"{pair.lower()}@bookTicker", "data": payload})


def feed(
    exchange: FakeExchange,
    connection: ConnectionSettings = FAST,
    streams: tuple[str, ...] = ("aggTrade", "bookTicker"),
) -> BinanceFeed:
    return BinanceFeed(SYMBOLS, base_url=exchange.url, streams=streams, connection=connection)


async def test_trades_and_book_tickers_map_to_our_symbols() -> None:
    async def script(ws: ServerConnection) -> None:
        await ws.send(agg_trade("BTCUSDT", "97000.12", "0.005"))
        await ws.send(book_ticker("ETHUSDT", "3400.10", "3400.11"))
        await ws.send(json.dumps({"result": None, "id": 1}))
        await hold_open(ws)

    async with running(FakeExchange([script])) as exchange:
        binance = feed(exchange)
        async with feeding(binance) as ticks:
            await until(lambda: len(ticks) == 2)
        assert exchange.paths == [
            "/stream?streams=btcusdt@aggTrade/btcusdt@bookTicker/ethusdt@aggTrade/"
            "ethusdt@bookTicker/solusdt@aggTrade/solusdt@bookTicker"
        ]
    trade, book = ticks
    assert (trade.symbol, trade.price, trade.volume) == ("BTCUSD", "97000.12", "0.005")
    assert (book.symbol, book.bid, book.ask, book.volume) == ("ETHUSD", "3400.10", "3400.11", None)
    assert binance.status.malformed_frames == 0


async def test_malformed_frames_are_counted_and_garbage_prices_dropped() -> None:
    frames = [
        "not json at all",
        "[1, 2, 3]",
        json.dumps({"stream": "x", "data": "nope"}),
        json.dumps({"stream": "x", "data": {"e": "aggTrade", "s": "BTCUSDT"}}),
        agg_trade("DOGEUSDT", "1"),
        json.dumps({"stream": "x", "data": {"e": "kline", "s": "BTCUSDT"}}),
        json.dumps({"data": {"e": "aggTrade", "s": 5, "p": "1", "q": "1"}}),
        agg_trade("BTCUSDT", "garbage"),
        agg_trade("BTCUSDT", "-3"),
        agg_trade("BTCUSDT", 97000.5),
        agg_trade("BTCUSDT", "97000.50"),
    ]

    async def script(ws: ServerConnection) -> None:
        for frame in frames:
            await ws.send(frame)
        await hold_open(ws)

    market = MarketData(Instruments())
    async with running(FakeExchange([script])) as exchange:
        binance = feed(exchange)
        async with feeding(binance) as ticks:
            await until(lambda: len(ticks) == 4)
            for tick in ticks:
                market.on_tick(tick)
    assert binance.status.malformed_frames == 7
    # The JSON number arrives as an exact Decimal; only the string and the number survive.
    assert market.builder.drops == {"not_a_number": 1, "non_positive": 1}
    quote = market.quotes.latest("BTCUSD")
    assert quote is not None and quote.bid < Decimal("97000.50") < quote.ask


async def test_reconnects_after_a_disconnect() -> None:
    async def drop_after_one(ws: ServerConnection) -> None:
        await ws.send(agg_trade("SOLUSDT", "180.001"))

    async def stay(ws: ServerConnection) -> None:
        await ws.send(agg_trade("SOLUSDT", "180.002"))
        await hold_open(ws)

    async with running(FakeExchange([drop_after_one, stay])) as exchange:
        binance = feed(exchange)
        async with feeding(binance) as ticks:
            await until(lambda: len(ticks) == 2)
            assert binance.status.connected
    assert [t.price for t in ticks] == ["180.001", "180.002"]
    assert binance.status.connects == 2 and binance.status.disconnects >= 1


async def test_silence_is_detected_and_the_connection_renewed() -> None:
    async def silent(ws: ServerConnection) -> None:
        await ws.send(agg_trade("BTCUSDT", "1.00"))
        await hold_open(ws)

    async with running(FakeExchange([silent, silent])) as exchange:
        quiet = ConnectionSettings(stale_after=0.2, backoff_initial=0.01, backoff_max=0.05)
        binance = feed(exchange, quiet)
        assert not binance.live
        async with feeding(binance) as ticks:
            await until(lambda: len(ticks) == 1 and binance.live)
            # Quiet for longer than stale_after: its prices no longer stand.
            await until(lambda: not binance.live)
            await until(lambda: len(ticks) == 2)
    assert binance.status.stale_events >= 1
    assert len(exchange.paths) >= 2


async def test_server_shutdown_notice_triggers_a_reconnect() -> None:
    async def shutting_down(ws: ServerConnection) -> None:
        await ws.send(agg_trade("BTCUSDT", "1.00"))
        await ws.send(json.dumps({"stream": "x", "data": {"e": "serverShutdown", "E": 1}}))
        await hold_open(ws)

    async def stay(ws: ServerConnection) -> None:
        await ws.send(agg_trade("BTCUSDT", "2.00"))
        await hold_open(ws)

    async with running(FakeExchange([shutting_down, stay])) as exchange:
        binance = feed(exchange)
        async with feeding(binance) as ticks:
            await until(lambda: len(ticks) == 2)
    assert binance.status.stale_events == 0 and binance.status.connects == 2


async def test_server_pings_are_answered() -> None:
    answered = asyncio.Event()

    async def pinging(ws: ServerConnection) -> None:
        pong = await ws.ping(b"binance")
        await asyncio.wait_for(pong, timeout=5)
        answered.set()
        await hold_open(ws)

    async with running(FakeExchange([pinging])) as exchange, feeding(feed(exchange)):
        await asyncio.wait_for(answered.wait(), timeout=10)


async def test_backoff_grows_to_its_bound_while_the_exchange_is_down() -> None:
    exchange = FakeExchange([])
    async with running(exchange):
        pass  # closed again: nothing listens on the port any more
    binance = feed(exchange)
    async with feeding(binance):
        await until(lambda: len(binance.reconnect_delays) >= 6)
    delays = binance.reconnect_delays
    assert delays[0] <= 0.01
    assert max(delays) <= 0.05
    assert delays[5] > delays[0]
    assert binance.status.connects == 0


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(FeedConfigError, match="streams"):
        BinanceFeed(SYMBOLS, streams=("depth",))
    with pytest.raises(FeedConfigError, match="symbol"):
        BinanceFeed({})


async def test_backoff_starts_afresh_after_a_connection_that_delivered() -> None:
    async def deliver_and_stay(ws: ServerConnection) -> None:
        await ws.send(agg_trade("ETHUSDT", "3000.00"))
        await hold_open(ws)

    async def fail_after_tick(ws: ServerConnection) -> None:
        await ws.send(agg_trade("ETHUSDT", "3000.00"))
        raise RuntimeError("exchange-side failure: the connection closes with 1011")

    scripts = [fail_after_tick] * 5 + [deliver_and_stay]
    async with running(FakeExchange(scripts)) as exchange:
        binance = feed(exchange)
        async with feeding(binance) as ticks:
            await until(lambda: len(ticks) == 6)
    # Every connection delivered before it broke: no wait grew beyond the initial backoff.
    assert len(binance.reconnect_delays) >= 5
    assert max(binance.reconnect_delays) <= FAST.backoff_initial
