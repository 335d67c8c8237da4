import asyncio
import json

import pytest
from websockets.asyncio.server import ServerConnection

from market_svc.feeds.backpack import BackpackFeed, default_symbol_map
from market_svc.feeds.base import FeedConfigError
from market_svc.feeds.websocket import ConnectionSettings
from market_svc.instruments import Instruments
from support import until
from unit.market_svc.feeds.fake_exchanges import (
    FakeExchange,
    feeding,
    hold_open,
    running,
)

FAST = ConnectionSettings(stale_after=5.0, backoff_initial=0.01, backoff_max=0.05)
SYMBOLS = default_symbol_map(Instruments())


def ticker(pair: str, last: object) -> str:
    data = {
        "e": "ticker",
        "E": 1694687692980000,
        "s": pair,
        "o": "18.75",
        "c": last,
        "h": "19.80",
        "l": "18.50",
        "v": "32123",
        "V": "928190",
        "n": 93828,
    }
    return json.dumps({"stream": f"ticker.{pair}", "data": data})


def feed(exchange: FakeExchange, connection: ConnectionSettings = FAST) -> BackpackFeed:
    return BackpackFeed(SYMBOLS, base_url=exchange.url, connection=connection)


async def subscribed(exchange: FakeExchange, ws: ServerConnection) -> None:
    message = await exchange.receive_json(ws)
    assert message == {
        "method": "SUBSCRIBE",
        "params": ["ticker.BTC_USDC", "ticker.ETH_USDC", "ticker.SOL_USDC"],
    }


async def test_subscribes_and_maps_tickers() -> None:
    exchange: FakeExchange

    async def script(ws: ServerConnection) -> None:
        await subscribed(exchange, ws)
        await ws.send(json.dumps({"id": None, "result": None}))
        await ws.send(ticker("SOL_USDC", "181.234"))
        await ws.send(ticker("BTC_USDC", "96999.9"))
        await hold_open(ws)

    exchange = FakeExchange([script])
    async with running(exchange):
        backpack = feed(exchange)
        async with feeding(backpack) as ticks:
            await until(lambda: len(ticks) == 2)
    assert [(t.symbol, t.price, t.volume) for t in ticks] == [
        ("SOLUSD", "181.234", None),
        ("BTCUSD", "96999.9", None),
    ]
    assert backpack.status.malformed_frames == 0


async def test_malformed_frames_and_error_replies_are_counted() -> None:
    exchange: FakeExchange
    frames = [
        "{{{",
        json.dumps("just a string"),
        json.dumps({"id": 1, "error": {"code": 4005, "message": "Invalid stream"}}),
        json.dumps({"stream": "ticker.BTC_USDC"}),
        json.dumps({"stream": "ticker.BTC_USDC", "data": []}),
        json.dumps({"stream": "depth.BTC_USDC", "data": {"e": "depth", "s": "BTC_USDC"}}),
        ticker("DOGE_USDC", "0.1"),
        json.dumps({"stream": "ticker.BTC_USDC", "data": {"e": "ticker", "s": "BTC_USDC"}}),
        ticker("ETH_USDC", "3400.5"),
    ]

    async def script(ws: ServerConnection) -> None:
        await subscribed(exchange, ws)
        for frame in frames:
            await ws.send(frame)
        await hold_open(ws)

    exchange = FakeExchange([script])
    async with running(exchange):
        backpack = feed(exchange)
        async with feeding(backpack) as ticks:
            await until(lambda: len(ticks) == 1)
            await until(lambda: backpack.status.malformed_frames == 8)
    assert ticks[0].price == "3400.5"


async def test_resubscribes_after_a_disconnect_and_after_silence() -> None:
    exchange: FakeExchange

    async def drop(ws: ServerConnection) -> None:
        await subscribed(exchange, ws)
        await ws.send(ticker("ETH_USDC", "3400.1"))
        await ws.close()

    async def silent(ws: ServerConnection) -> None:
        await subscribed(exchange, ws)
        await ws.send(ticker("ETH_USDC", "3400.2"))
        await hold_open(ws)

    async def stay(ws: ServerConnection) -> None:
        await subscribed(exchange, ws)
        await ws.send(ticker("ETH_USDC", "3400.3"))
        await hold_open(ws)

    exchange = FakeExchange([drop, silent, stay])
    quiet = ConnectionSettings(stale_after=0.3, backoff_initial=0.01, backoff_max=0.05)
    async with running(exchange):
        backpack = feed(exchange, quiet)
        async with feeding(backpack) as ticks:
            await until(lambda: len(ticks) == 3)
    assert [t.price for t in ticks] == ["3400.1", "3400.2", "3400.3"]
    # Every connection subscribed again; the silent one was given up as stale.
    assert backpack.status.connects >= 3
    assert backpack.status.stale_events >= 1
    assert len(exchange.received) >= 3


async def test_server_pings_are_answered() -> None:
    answered = asyncio.Event()

    async def pinging(ws: ServerConnection) -> None:
        await asyncio.wait_for(await ws.ping(), timeout=5)
        answered.set()
        await hold_open(ws)

    async with running(FakeExchange([pinging])) as exchange, feeding(feed(exchange)):
        await asyncio.wait_for(answered.wait(), timeout=10)


def test_needs_symbols() -> None:
    with pytest.raises(FeedConfigError):
        BackpackFeed({})
