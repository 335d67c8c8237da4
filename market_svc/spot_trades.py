"""Follow the spot exchange's public trades into the spot markets' candles and tickers.

One StreamMarketTrades per market on the engine (ExchangeService). The stream carries only
trades made after it opened, so the trades made while it was closed (the market service or the
engine restarting) are read with ListMarketTrades: once the stream is open, and again with its
first trades, which closes the gap between the two. Trades are numbered by the engine in the
order they happen; `MarketData.on_trade` counts each number once, so overlaps change nothing.
The engine lists at most MAX_CATCH_UP recent trades: a gap beyond them is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal

import grpc

from cfd.v1 import exchange_pb2, exchange_pb2_grpc
from market_svc.market import MarketData
from mesh.auth import INTERNAL_TOKEN_HEADER

log = logging.getLogger(__name__)

MAX_CATCH_UP = 1000
BACKOFF_START_S = 0.2
BACKOFF_MAX_S = 5.0
_NUMBER = re.compile(r"(\d+)$")


def trade_number(trade_id: str) -> int | None:
    """Return the sequence number at the end of a trade id ("T42" -> 42), if it has one."""
    match = _NUMBER.search(trade_id)
    return None if match is None else int(match.group(1))


class SpotTradeFollower:
    """Feed every spot market's public trades into `market`, reconnecting with backoff."""

    def __init__(
        self, market: MarketData, engine_addr: str, internal_token: str, timeout_s: float = 10.0
    ) -> None:
        self._market = market
        self._engine_addr = engine_addr
        self._metadata = ((INTERNAL_TOKEN_HEADER, internal_token),)
        self._timeout_s = timeout_s
        self.connected: set[str] = set()

    async def run(self) -> None:
        """Follow every spot market until cancelled."""
        async with grpc.aio.insecure_channel(self._engine_addr) as channel:
            stub = exchange_pb2_grpc.ExchangeServiceStub(channel)
            async with asyncio.TaskGroup() as group:
                for name in sorted(self._market.spot_markets):
                    group.create_task(self._follow(stub, name), name=f"spot-trades-{name}")

    async def _follow(self, stub: exchange_pb2_grpc.ExchangeServiceAsyncStub, name: str) -> None:
        backoff = BACKOFF_START_S
        while True:
            try:
                await self._stream(stub, name)
            except grpc.aio.AioRpcError as exc:
                if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                    log.warning("market: the engine has no spot market %s: %s", name, exc.details())
                    return
                log.info("market: spot trades of %s unavailable (%s)", name, exc.code().name)
            except Exception:
                # The candles of one market must not stop following for good.
                log.exception("market: following the spot trades of %s failed", name)
            if name in self.connected:
                # It had been following: this is a fresh break, not one more failed attempt.
                self.connected.discard(name)
                backoff = BACKOFF_START_S
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _stream(self, stub: exchange_pb2_grpc.ExchangeServiceAsyncStub, name: str) -> None:
        call = stub.StreamMarketTrades(
            exchange_pb2.StreamMarketTradesRequest(market=name), metadata=self._metadata
        )
        try:
            await self._catch_up(stub, name)
            self.connected.add(name)
            first = True
            async for batch in call:
                if first:
                    await self._catch_up(stub, name)
                    first = False
                self._apply(name, batch.trades)
        finally:
            call.cancel()

    async def _catch_up(self, stub: exchange_pb2_grpc.ExchangeServiceAsyncStub, name: str) -> None:
        listed = await stub.ListMarketTrades(
            exchange_pb2.ListMarketTradesRequest(market=name, page_size=MAX_CATCH_UP),
            metadata=self._metadata,
            timeout=self._timeout_s,
        )
        trades = list(reversed(listed.trades))
        known = self._market.spot_cursors.get(name)
        oldest = trade_number(trades[0].id) if trades else None
        full = len(trades) == MAX_CATCH_UP
        if full and known is not None and oldest is not None and oldest > known + 1:
            # Numbers run across markets: some of those between may be another market's.
            log.warning(
                "market: %s candles may miss trades between %d and %d (older than the engine "
                "lists)",
                name,
                known,
                oldest,
            )
        self._apply(name, trades)

    def _apply(self, name: str, trades: Iterable[exchange_pb2.MarketTrade]) -> int:
        applied = 0
        for trade in _ascending(trades):
            number = trade_number(trade.id)
            if number is None:
                log.warning("market: %s trade id %r has no number; skipped", name, trade.id)
                continue
            time_ms = trade.time.seconds * 1000 + trade.time.nanos // 1_000_000
            # A malformed price or quantity is skipped like a malformed id.
            with contextlib.suppress(ArithmeticError):
                applied += self._market.on_trade(
                    name, number, time_ms, Decimal(trade.price), Decimal(trade.quantity)
                )
        return applied


def _ascending(trades: Iterable[exchange_pb2.MarketTrade]) -> Sequence[exchange_pb2.MarketTrade]:
    return sorted(trades, key=lambda t: trade_number(t.id) or 0)
