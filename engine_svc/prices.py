"""Prices in: the `StreamTicks` subscriber and per-symbol staleness.

The market service re-sends each symbol's latest quote as a keepalive, so a symbol whose
quotes stop arriving for `stale_ms` is stale: orders on it fail with PRICE_UNAVAILABLE and,
since no quote is applied for it, nothing is liquidated on its old price.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

import grpc

from cfd.v1 import market_admin_pb2, market_admin_pb2_grpc
from engine_svc.core import DecimalFormatError, Instrument
from mesh.auth import INTERNAL_TOKEN_HEADER

log = logging.getLogger("engine.prices")

QuoteSink = Callable[[str, int, int], None]


class Freshness:
    """When each symbol last had a quote from the market service."""

    def __init__(self, stale_ms: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.stale_s = stale_ms / 1000
        self._clock = clock
        self._seen: dict[str, float] = {}

    def touch(self, symbol: str) -> None:
        """Record that a quote of `symbol` arrived now."""
        self._seen[symbol] = self._clock()

    def is_fresh(self, symbol: str) -> bool:
        """Return whether `symbol` had a quote within the staleness window."""
        seen = self._seen.get(symbol)
        return seen is not None and self._clock() - seen <= self.stale_s

    def ages(self) -> dict[str, float]:
        """Return the seconds since each symbol's last quote."""
        now = self._clock()
        return {symbol: now - seen for symbol, seen in self._seen.items()}

    def fresh_symbols(self) -> list[str]:
        """Return the symbols that are fresh now."""
        return sorted(symbol for symbol in self._seen if self.is_fresh(symbol))


class TickSubscriber:
    """Follow `MarketDataAdminService.StreamTicks`, reconnecting with backoff."""

    def __init__(
        self,
        address: str,
        internal_token: str,
        instruments: Mapping[str, Instrument],
        freshness: Freshness,
        sink: QuoteSink,
        *,
        min_backoff_s: float = 0.1,
        max_backoff_s: float = 5.0,
    ) -> None:
        self.address = address
        self._metadata = ((INTERNAL_TOKEN_HEADER, internal_token),)
        self._instruments = instruments
        self._freshness = freshness
        self._sink = sink
        self._min_backoff_s = min_backoff_s
        self._max_backoff_s = max_backoff_s
        self.connected = False
        self.received = 0
        self.connects = 0

    async def run(self) -> None:
        """Stream ticks forever; return only when cancelled."""
        backoff = self._min_backoff_s
        while True:
            try:
                async with grpc.aio.insecure_channel(self.address) as channel:
                    stub = market_admin_pb2_grpc.MarketDataAdminServiceStub(channel)
                    call = stub.StreamTicks(
                        market_admin_pb2.StreamTicksRequest(), metadata=self._metadata
                    )
                    async for response in call:
                        if not self.connected:
                            self.connected = True
                            self.connects += 1
                            log.info("receiving ticks from %s", self.address)
                        backoff = self._min_backoff_s
                        self._accept(response.quote.symbol, response.quote.bid, response.quote.ask)
                log.warning("tick stream from %s ended; reconnecting", self.address)
            except grpc.aio.AioRpcError as exc:
                log.warning(
                    "tick stream from %s failed: %s; retrying in %.1fs",
                    self.address,
                    exc.code().name,
                    backoff,
                )
            except Exception:
                # Whatever went wrong, prices must keep flowing once it is over.
                log.exception("tick stream from %s broke; retrying in %.1fs", self.address, backoff)
            self.connected = False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff_s)

    def _accept(self, symbol: str, bid_text: str, ask_text: str) -> None:
        instrument = self._instruments.get(symbol)
        if instrument is None:
            return
        try:
            bid = instrument.parse_price(bid_text, "bid")
            ask = instrument.parse_price(ask_text, "ask")
        except DecimalFormatError as exc:
            log.warning("ignoring a malformed %s quote: %s", symbol, exc)
            return
        if bid >= ask:
            log.warning("ignoring a crossed %s quote: bid %s ask %s", symbol, bid_text, ask_text)
            return
        self.received += 1
        self._freshness.touch(symbol)
        self._sink(symbol, bid, ask)
