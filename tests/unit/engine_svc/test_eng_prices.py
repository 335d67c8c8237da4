"""Prices in: staleness, and the tick subscriber following a market that restarts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc

from cfd.v1 import common_pb2, market_admin_pb2, market_admin_pb2_grpc
from engine_svc.core import default_instruments
from engine_svc.prices import Freshness, TickSubscriber
from support import free_port


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_symbol_is_stale_after_the_configured_silence() -> None:
    clock = Clock()
    freshness = Freshness(stale_ms=2000, clock=clock)
    assert not freshness.is_fresh("BTCUSD")
    freshness.touch("BTCUSD")
    clock.now += 2.0
    assert freshness.is_fresh("BTCUSD")
    assert freshness.fresh_symbols() == ["BTCUSD"]
    clock.now += 0.001
    assert not freshness.is_fresh("BTCUSD")
    assert freshness.fresh_symbols() == []


class Market(market_admin_pb2_grpc.MarketDataAdminServiceServicer):
    """Streams the quotes put on its queue; checks the internal token."""

    def __init__(self) -> None:
        self.quotes: asyncio.Queue[common_pb2.Quote] = asyncio.Queue()
        self.tokens: list[str] = []

    async def StreamTicks(
        self,
        request: market_admin_pb2.StreamTicksRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[market_admin_pb2.StreamTicksResponse]:
        self.tokens.append(str(dict(context.invocation_metadata() or ())["x-cfd-internal-token"]))
        while True:
            yield market_admin_pb2.StreamTicksResponse(quote=await self.quotes.get())

    async def PublishTicks(
        self,
        request: market_admin_pb2.PublishTicksRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> market_admin_pb2.PublishTicksResponse:
        raise NotImplementedError


async def _serve(market: Market, port: int) -> grpc.aio.Server:
    server = grpc.aio.server()
    market_admin_pb2_grpc.add_MarketDataAdminServiceServicer_to_server(market, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server


async def test_the_subscriber_applies_valid_quotes_and_reconnects_after_a_restart() -> None:
    port = free_port()
    received: asyncio.Queue[tuple[str, int, int]] = asyncio.Queue()
    freshness = Freshness(stale_ms=10_000)
    subscriber = TickSubscriber(
        f"127.0.0.1:{port}",
        "internal-token-0123456789",
        default_instruments(),
        freshness,
        lambda symbol, bid, ask: received.put_nowait((symbol, bid, ask)),
        min_backoff_s=0.02,
        max_backoff_s=0.1,
    )
    first = Market()
    server = await _serve(first, port)
    task = asyncio.create_task(subscriber.run())
    try:
        for quote in (
            common_pb2.Quote(symbol="DOGEUSD", bid="1", ask="2"),
            common_pb2.Quote(symbol="BTCUSD", bid="100.001", ask="101"),
            common_pb2.Quote(symbol="BTCUSD", bid="101.00", ask="100.00"),
            common_pb2.Quote(symbol="BTCUSD", bid="100.00", ask="100.01"),
        ):
            first.quotes.put_nowait(quote)
        assert await asyncio.wait_for(received.get(), 10) == ("BTCUSD", 10_000, 10_001)
        assert freshness.is_fresh("BTCUSD")
        assert first.tokens == ["internal-token-0123456789"]
        await server.stop(0)
        second = Market()
        server = await _serve(second, port)
        second.quotes.put_nowait(common_pb2.Quote(symbol="ETHUSD", bid="3000", ask="3000.5"))
        assert await asyncio.wait_for(received.get(), 10) == ("ETHUSD", 300_000, 300_050)
        assert subscriber.connects == 2
        assert received.empty()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.stop(0)
