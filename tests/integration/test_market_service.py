"""The real `cfd market` process on loopback, called through the generated gRPC stubs.

The exchange feeds run against local WebSocket servers speaking each exchange's format.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from cfd.v1 import market_admin_pb2, market_admin_pb2_grpc, market_pb2, market_pb2_grpc
from mesh.errors import reason_of
from support import ServiceProcess, mesh_env, wait_for
from unit.market_svc.feeds.fake_exchanges import FakeExchange
from unit.market_svc.feeds.fake_exchanges import running as serving_exchange

TOKEN = "test-internal-token-0123456789"
INTERNAL = (("x-cfd-internal-token", TOKEN),)
ONE_MINUTE = market_pb2.CANDLE_INTERVAL_1M
ONE_HOUR = market_pb2.CANDLE_INTERVAL_1H
ONE_DAY = market_pb2.CANDLE_INTERVAL_1D


@dataclass
class Market:
    """A running market service and stubs to call it."""

    process: ServiceProcess
    public: market_pb2_grpc.MarketDataServiceAsyncStub
    admin: market_admin_pb2_grpc.MarketDataAdminServiceAsyncStub


@asynccontextmanager
async def running(tmp_path: Path, **env: str) -> AsyncIterator[Market]:
    """Run `cfd market` with ``env`` over a fresh data dir; stop it cleanly at the end."""
    environment = mesh_env(tmp_path / "data", CFD_INTERNAL_TOKEN=TOKEN, **env)
    port = int(environment["CFD_MARKET_PORT"])
    log = tmp_path / f"market-{time.monotonic_ns()}.log"
    process = ServiceProcess(["market"], environment, log)
    try:
        process.wait_grpc_ready(port, timeout=90)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Market(
                process,
                market_pb2_grpc.MarketDataServiceStub(channel),
                market_admin_pb2_grpc.MarketDataAdminServiceStub(channel),
            )
    finally:
        code = process.stop()
    assert code == 0, process.output()


async def publish(market: Market, *ticks: tuple[str, str, str]) -> list[tuple[str, str, str]]:
    request = market_admin_pb2.PublishTicksRequest(
        ticks=[market_admin_pb2.TickInput(symbol=s, bid=b, ask=a) for s, b, a in ticks]
    )
    response = await market.admin.PublishTicks(request, metadata=INTERNAL)
    return [(q.symbol, q.bid, q.ask) for q in response.quotes]


async def failure(call: Callable[[], Awaitable[object]]) -> tuple[grpc.StatusCode, str | None]:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call()
    return raised.value.code(), reason_of(raised.value)


async def test_manual_feed_sets_exact_prices_the_tick_stream_delivers(
    tmp_path: Path, database_url: str
) -> None:
    async with running(
        tmp_path, CFD_FEED="manual", CFD_BACKFILL_DAYS="1", CFD_DATABASE_URL=database_url
    ) as market:
        stream = market.admin.StreamTicks(
            market_admin_pb2.StreamTicksRequest(symbols=["BTCUSD"]), metadata=INTERNAL
        )
        assert await publish(market, ("BTCUSD", "64250.15", "64250.16")) == [
            ("BTCUSD", "64250.15", "64250.16")
        ]
        first = await asyncio.wait_for(stream.read(), 20)
        assert isinstance(first, market_admin_pb2.StreamTicksResponse)
        assert (first.quote.bid, first.quote.ask) == ("64250.15", "64250.16")
        await publish(market, ("ETHUSD", "3000.00", "3000.50"), ("BTCUSD", "64000.00", "64001.00"))
        second = await asyncio.wait_for(stream.read(), 20)
        assert isinstance(second, market_admin_pb2.StreamTicksResponse)
        # Only BTCUSD was asked for; sequences increase.
        assert (second.quote.symbol, second.quote.bid) == ("BTCUSD", "64000.00")
        assert second.quote.sequence > first.quote.sequence
        stream.cancel()

        ticker = (
            await market.public.GetTicker(market_pb2.GetTickerRequest(symbol="BTCUSD"))
        ).ticker
        assert (ticker.bid, ticker.ask, ticker.last) == ("64000.00", "64001.00", "64000.50")
        assert Decimal(ticker.high) >= Decimal("64250.155")

        candles = (
            await market.public.GetCandles(
                market_pb2.GetCandlesRequest(symbol="BTCUSD", interval=ONE_MINUTE, limit=1000)
            )
        ).candles
        # A day of backfilled history, then the candle in progress with the published mids.
        assert len(candles) == 1000
        assert [c.open_time.seconds for c in candles] == sorted(
            c.open_time.seconds for c in candles
        )
        current = candles[-1]
        assert not current.closed and all(c.closed for c in candles[:-1])
        assert current.close == "64000.50"
        assert current.tick_count >= 2


async def test_public_reads_need_no_token_and_validate_input(tmp_path: Path) -> None:
    async with running(tmp_path, CFD_FEED="manual", CFD_BACKFILL_DAYS="0") as market:
        instruments = (
            await market.public.ListInstruments(market_pb2.ListInstrumentsRequest())
        ).instruments
        assert [
            (i.symbol, i.tick_size, i.lot_step, i.max_leverage, i.contract_size)
            for i in instruments
        ] == [
            ("BTCUSD", "0.01", "0.0001", 100, "1"),
            ("ETHUSD", "0.01", "0.001", 100, "1"),
            ("SOLUSD", "0.001", "0.01", 100, "1"),
        ]
        assert await failure(
            lambda: market.public.GetTicker(market_pb2.GetTickerRequest(symbol="SOLUSD"))
        ) == (grpc.StatusCode.FAILED_PRECONDITION, "PRICE_UNAVAILABLE")
        assert await failure(
            lambda: market.public.GetTicker(market_pb2.GetTickerRequest(symbol="DOGE"))
        ) == (grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_SYMBOL")
        bad_requests = [
            market_pb2.GetCandlesRequest(symbol="BTCUSD"),
            market_pb2.GetCandlesRequest(symbol="BTCUSD", interval=99),  # type: ignore[arg-type]
            market_pb2.GetCandlesRequest(symbol="BTCUSD", interval=ONE_MINUTE, limit=1001),
            market_pb2.GetCandlesRequest(symbol="BTCUSD", interval=ONE_MINUTE, limit=-1),
            market_pb2.GetCandlesRequest(
                symbol="BTCUSD",
                interval=ONE_MINUTE,
                start_time=Timestamp(seconds=2000),
                end_time=Timestamp(seconds=1000),
            ),
        ]
        for request in bad_requests:
            assert await failure(partial(market.public.GetCandles, request)) == (
                grpc.StatusCode.INVALID_ARGUMENT,
                "VALIDATION_FAILED",
            ), request
        empty = await market.public.GetCandles(
            market_pb2.GetCandlesRequest(symbol="SOLUSD", interval=market_pb2.CANDLE_INTERVAL_1W)
        )
        assert list(empty.candles) == []


async def test_publish_ticks_is_internal_and_validates_everything_first(tmp_path: Path) -> None:
    async with running(tmp_path, CFD_FEED="manual", CFD_BACKFILL_DAYS="0") as market:
        request = market_admin_pb2.PublishTicksRequest(
            ticks=[market_admin_pb2.TickInput(symbol="BTCUSD", bid="1.00", ask="2.00")]
        )
        assert await failure(lambda: market.admin.PublishTicks(request)) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "TOKEN_INVALID",
        )
        wrong = (("x-cfd-internal-token", "not-the-token-at-all"),)
        assert (await failure(lambda: market.admin.PublishTicks(request, metadata=wrong)))[0] == (
            grpc.StatusCode.UNAUTHENTICATED
        )
        invalid = [
            (("BTCUSD", "100.00", "100.00"), "VALIDATION_FAILED"),
            (("BTCUSD", "100.001", "100.01"), "VALIDATION_FAILED"),
            (("BTCUSD", "-1", "100.01"), "VALIDATION_FAILED"),
            (("BTCUSD", "1e3", "2000.00"), "VALIDATION_FAILED"),
            (("BTCUSD", "NaN", "2000.00"), "VALIDATION_FAILED"),
            (("BTCUSD", "", "2000.00"), "VALIDATION_FAILED"),
            (("DOGEUSD", "1.00", "2.00"), "UNKNOWN_SYMBOL"),
        ]
        for tick, reason in invalid:
            # A valid quote first: nothing of a rejected batch may be published.
            batch = market_admin_pb2.PublishTicksRequest(
                ticks=[
                    market_admin_pb2.TickInput(symbol="ETHUSD", bid="1.00", ask="1.01"),
                    market_admin_pb2.TickInput(symbol=tick[0], bid=tick[1], ask=tick[2]),
                ]
            )
            assert await failure(partial(market.admin.PublishTicks, batch, metadata=INTERNAL)) == (
                grpc.StatusCode.INVALID_ARGUMENT,
                reason,
            ), tick
        assert await failure(
            lambda: market.admin.PublishTicks(
                market_admin_pb2.PublishTicksRequest(), metadata=INTERNAL
            )
        ) == (grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_FAILED")
        assert await failure(
            lambda: market.public.GetTicker(market_pb2.GetTickerRequest(symbol="ETHUSD"))
        ) == (grpc.StatusCode.FAILED_PRECONDITION, "PRICE_UNAVAILABLE")
        assert await failure(
            lambda: market.admin.StreamTicks(
                market_admin_pb2.StreamTicksRequest(symbols=["NOPE"]), metadata=INTERNAL
            ).read()
        ) == (grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_SYMBOL")


async def test_stream_candles_pushes_the_current_candle(tmp_path: Path) -> None:
    async with running(tmp_path, CFD_FEED="manual", CFD_BACKFILL_DAYS="0") as market:
        await publish(market, ("SOLUSD", "180.000", "180.002"))
        stream = market.public.StreamCandles(
            market_pb2.StreamCandlesRequest(symbol="SOLUSD", interval=market_pb2.CANDLE_INTERVAL_5M)
        )
        first = await asyncio.wait_for(stream.read(), 20)
        assert isinstance(first, market_pb2.StreamCandlesResponse)
        assert (first.symbol, first.interval, first.candle.close) == (
            "SOLUSD",
            market_pb2.CANDLE_INTERVAL_5M,
            "180.001",
        )
        await publish(market, ("SOLUSD", "181.000", "181.004"))
        second = await asyncio.wait_for(stream.read(), 20)
        assert isinstance(second, market_pb2.StreamCandlesResponse)
        assert (second.candle.high, second.candle.close, second.candle.closed) == (
            "181.002",
            "181.002",
            False,
        )
        stream.cancel()


async def test_candles_survive_a_restart(tmp_path: Path) -> None:
    async with running(tmp_path, CFD_FEED="manual", CFD_BACKFILL_DAYS="0") as market:
        await publish(market, ("ETHUSD", "3000.00", "3000.02"), ("ETHUSD", "3100.00", "3100.02"))
    async with running(tmp_path, CFD_FEED="manual", CFD_BACKFILL_DAYS="0") as market:
        candles = (
            await market.public.GetCandles(
                market_pb2.GetCandlesRequest(
                    symbol="ETHUSD", interval=market_pb2.CANDLE_INTERVAL_1D
                )
            )
        ).candles
        assert [(c.open, c.high, c.close, c.tick_count) for c in candles] == [
            ("3000.01", "3100.01", "3100.01", 2)
        ]


async def test_default_feed_streams_plausible_prices_and_a_week_of_candles(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, CFD_SIM_INTERVAL_MS="20") as market:
        assert await failure(
            lambda: market.admin.PublishTicks(
                market_admin_pb2.PublishTicksRequest(
                    ticks=[market_admin_pb2.TickInput(symbol="BTCUSD", bid="1.00", ask="2.00")]
                ),
                metadata=INTERNAL,
            )
        ) == (grpc.StatusCode.FAILED_PRECONDITION, "FEED_NOT_MANUAL")
        stream = market.admin.StreamTicks(market_admin_pb2.StreamTicksRequest(), metadata=INTERNAL)
        seen: dict[str, list[tuple[Decimal, Decimal]]] = {}
        while min((len(v) for v in seen.values()), default=0) < 5 or len(seen) < 3:
            message = await asyncio.wait_for(stream.read(), 20)
            assert isinstance(message, market_admin_pb2.StreamTicksResponse)
            quote = message.quote
            seen.setdefault(quote.symbol, []).append((Decimal(quote.bid), Decimal(quote.ask)))
        stream.cancel()
        for symbol, quotes in seen.items():
            assert all(bid < ask for bid, ask in quotes), symbol
            # The 10 bps default spread, within rounding.
            assert all((ask - bid) / ask < Decimal("0.0012") for bid, ask in quotes), symbol
        hours = (
            await market.public.GetCandles(
                market_pb2.GetCandlesRequest(
                    symbol="BTCUSD", interval=market_pb2.CANDLE_INTERVAL_1H
                )
            )
        ).candles
        span_s = hours[-1].open_time.seconds - hours[0].open_time.seconds
        assert span_s >= 7 * 24 * 3600 - 3600
        closes = [Decimal(c.close) for c in hours]
        assert max(closes) / min(closes) < 2


async def test_a_standing_manual_quote_is_repeated_so_the_engine_keeps_it_fresh(
    tmp_path: Path,
) -> None:
    async with running(
        tmp_path, CFD_FEED="manual", CFD_BACKFILL_DAYS="0", CFD_QUOTE_KEEPALIVE_MS="200"
    ) as market:
        await publish(market, ("BTCUSD", "70000.00", "70000.10"))
        stream = market.admin.StreamTicks(market_admin_pb2.StreamTicksRequest(), metadata=INTERNAL)
        received = []
        for _ in range(3):
            message = await asyncio.wait_for(stream.read(), 20)
            assert isinstance(message, market_admin_pb2.StreamTicksResponse)
            received.append(message.quote)
        stream.cancel()
        assert len({(q.bid, q.ask, q.sequence) for q in received}) == 1


async def binance_trades(ws: ServerConnection) -> None:
    """Send a BTCUSDT trade every 50 ms until the client leaves."""
    price = Decimal("97000.00")
    try:
        while True:
            price += Decimal("0.37")
            data = {
                "e": "aggTrade",
                "E": 1,
                "s": "BTCUSDT",
                "a": 1,
                "p": str(price),
                "q": "0.002",
                "f": 1,
                "l": 1,
                "T": 1,
                "m": False,
                "M": True,
            }
            await ws.send(json.dumps({"stream": "btcusdt@aggTrade", "data": data}))
            await asyncio.sleep(0.05)
    except ConnectionClosed:
        return


async def backpack_tickers(ws: ServerConnection) -> None:
    """Acknowledge the subscription, then send a SOL_USDC ticker every 50 ms."""
    await ws.recv()
    price = Decimal("181.000")
    try:
        while True:
            price += Decimal("0.011")
            data = {
                "e": "ticker",
                "E": 1,
                "s": "SOL_USDC",
                "o": "180",
                "c": str(price),
                "h": "190",
                "l": "170",
                "v": "1",
                "V": "1",
                "n": 1,
            }
            await ws.send(json.dumps({"stream": "ticker.SOL_USDC", "data": data}))
            await asyncio.sleep(0.05)
    except ConnectionClosed:
        return


async def first_quote(
    admin: market_admin_pb2_grpc.MarketDataAdminServiceAsyncStub, symbol: str
) -> tuple[Decimal, Decimal]:
    stream = admin.StreamTicks(
        market_admin_pb2.StreamTicksRequest(symbols=[symbol]), metadata=INTERNAL
    )
    message = await asyncio.wait_for(stream.read(), 30)
    stream.cancel()
    assert isinstance(message, market_admin_pb2.StreamTicksResponse)
    return Decimal(message.quote.bid), Decimal(message.quote.ask)


async def test_binance_trades_become_quotes_and_candles_with_volume(tmp_path: Path) -> None:
    async with (
        serving_exchange(FakeExchange([binance_trades] * 5)) as exchange,
        running(
            tmp_path, CFD_FEED="binance", CFD_BACKFILL_DAYS="0", CFD_BINANCE_WS_URL=exchange.url
        ) as market,
    ):
        bid, ask = await first_quote(market.admin, "BTCUSD")
        assert Decimal(96900) < bid < ask < Decimal(98100)
        assert (ask - bid) / ask < Decimal("0.0011")
        candles = (
            await market.public.GetCandles(
                market_pb2.GetCandlesRequest(
                    symbol="BTCUSD", interval=market_pb2.CANDLE_INTERVAL_1H
                )
            )
        ).candles
        # Binance reports trade sizes: volume is their sum, not the tick count.
        assert Decimal(candles[-1].volume) == Decimal("0.002") * candles[-1].tick_count
    assert exchange.paths[0].startswith("/stream?streams=btcusdt@aggTrade/")


async def test_backpack_tickers_become_quotes(tmp_path: Path) -> None:
    async with (
        serving_exchange(FakeExchange([backpack_tickers] * 5)) as exchange,
        running(
            tmp_path, CFD_FEED="backpack", CFD_BACKFILL_DAYS="0", CFD_BACKPACK_WS_URL=exchange.url
        ) as market,
    ):
        bid, ask = await first_quote(market.admin, "SOLUSD")
        assert Decimal(180) < bid < ask < Decimal(200)


async def test_a_stalled_tick_stream_does_not_hold_up_another(tmp_path: Path) -> None:
    async with running(tmp_path, CFD_SIM_INTERVAL_MS="2", CFD_BACKFILL_DAYS="0") as market:
        request = market_admin_pb2.StreamTicksRequest()
        stalled = market.admin.StreamTicks(request, metadata=INTERNAL)
        await asyncio.wait_for(stalled.read(), 20)  # connected, then never read again
        reader = market.admin.StreamTicks(request, metadata=INTERNAL)
        sequences: list[int] = []
        loop = asyncio.get_running_loop()
        started = loop.time()
        while len(sequences) < 3000:
            message = await asyncio.wait_for(reader.read(), 20)
            assert isinstance(message, market_admin_pb2.StreamTicksResponse)
            sequences.append(message.quote.sequence)
        elapsed = loop.time() - started
        # Three symbols every ~2 ms: 3000 quotes in a few seconds, in order, while the other
        # stream's buffers are long full.
        assert sequences == sorted(sequences)
        assert elapsed < 30
        stalled.cancel()
        reader.cancel()
        # The stalled stream resumes with current quotes, not a backlog of old ones.
        late = market.admin.StreamTicks(request, metadata=INTERNAL)
        fresh = await asyncio.wait_for(late.read(), 20)
        assert isinstance(fresh, market_admin_pb2.StreamTicksResponse)
        assert fresh.quote.sequence >= sequences[-1] - 3
        late.cancel()


async def test_a_configured_instrument_is_listed_and_simulated(tmp_path: Path) -> None:
    path = tmp_path / "instruments.json"
    xrp = {
        "symbol": "XRPUSD", "tick_size": "0.0001", "lot_step": "1", "max_leverage": 50,
        "swap_long_bps": "-2.50", "swap_short_bps": "0.75", "commission_per_million": "30",
        "commission_per_lot": "0.5", "contract_size": "100",
    }  # fmt: skip
    path.write_text(
        json.dumps(
            [
                {
                    "symbol": "BTCUSD",
                    "tick_size": "0.01",
                    "lot_step": "0.0001",
                    "max_leverage": 100,
                },
                xrp,
            ]
        )
    )
    async with running(
        tmp_path, CFD_INSTRUMENTS_FILE=str(path), CFD_SIM_INTERVAL_MS="20", CFD_BACKFILL_DAYS="0"
    ) as market:
        listed = (
            await market.public.ListInstruments(market_pb2.ListInstrumentsRequest())
        ).instruments
        assert [(i.symbol, i.tick_size, i.lot_step, i.max_leverage) for i in listed] == [
            ("BTCUSD", "0.01", "0.0001", 100),
            ("XRPUSD", "0.0001", "1", 50),
        ]
        assert (listed[1].display_name, listed[1].base_currency, listed[1].quote_currency) == (
            "XRP vs US Dollar",
            "XRP",
            "USD",
        )
        assert (listed[1].min_quantity, listed[1].maintenance_margin_rate) == ("1", "0")
        assert (listed[1].swap_long_bps, listed[1].swap_short_bps) == ("-2.5", "0.75")
        assert (listed[1].commission_per_million, listed[1].commission_per_lot) == ("30", "0.5")
        assert listed[1].contract_size == "100"
        assert (listed[0].swap_long_bps, listed[0].contract_size) == ("0", "1")
        stream = market.admin.StreamTicks(market_admin_pb2.StreamTicksRequest(), metadata=INTERNAL)
        while True:
            message = await asyncio.wait_for(stream.read(), 20)
            assert isinstance(message, market_admin_pb2.StreamTicksResponse)
            if message.quote.symbol == "XRPUSD":
                break
        stream.cancel()
        bid, ask = Decimal(message.quote.bid), Decimal(message.quote.ask)
        assert bid < ask
        assert bid % Decimal("0.0001") == 0 and ask % Decimal("0.0001") == 0


def test_a_bad_instruments_file_stops_the_market_at_start(tmp_path: Path) -> None:
    path = tmp_path / "instruments.json"
    path.write_text(json.dumps([{"symbol": "XRPUSD", "tick_size": "0.00025"}]))
    environment = mesh_env(tmp_path / "data", CFD_INSTRUMENTS_FILE=str(path))
    process = ServiceProcess(["market"], environment, tmp_path / "market.log")
    try:
        wait_for(lambda: process.process.poll() is not None, timeout=60)
    finally:
        code = process.stop()
    assert code == 1
    assert "CFD_INSTRUMENTS_FILE" in process.output()
    assert "missing field(s) 'lot_step', 'max_leverage'" in process.output()
