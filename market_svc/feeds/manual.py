"""The operator feed: prices move only when someone publishes exact quotes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from decimal import Decimal

from market_svc.feeds.base import Feed, TickSink
from market_svc.ticks import RawTick


class ManualFeedNotRunningError(RuntimeError):
    """Quotes were published before the feed was started."""


class ManualFeed(Feed):
    """Publish operator-given bid/ask pairs, exactly, through the same pipeline as any feed."""

    name = "manual"

    def __init__(self) -> None:
        super().__init__()
        self._emit: TickSink | None = None

    async def run(self, emit: TickSink) -> None:
        """Accept published quotes until cancelled."""
        self._emit = emit
        self.status.connected = True
        self.status.connects += 1
        try:
            await asyncio.Event().wait()
        finally:
            self._emit = None
            self.status.connected = False

    @property
    def running(self) -> bool:
        """Tell whether published quotes are accepted now."""
        return self._emit is not None

    def publish(self, quotes: Sequence[tuple[str, Decimal, Decimal]]) -> list[object]:
        """Publish (symbol, bid, ask) quotes in order, synchronously; return what the sink said.

        The caller validates them first; the pipeline still drops (and counts) anything
        invalid rather than trusting it.
        """
        emit = self._emit
        if emit is None:
            raise ManualFeedNotRunningError("the manual feed is not running")
        now_ns = time.time_ns()
        self.status.last_tick_ns = now_ns
        return [
            emit(RawTick(symbol, time_ns=now_ns, bid=bid, ask=ask, exact=True))
            for symbol, bid, ask in quotes
        ]
