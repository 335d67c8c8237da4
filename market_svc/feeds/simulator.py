"""The default feed: a seeded random walk per instrument, a tick every ~interval per symbol."""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Mapping
from decimal import Decimal

from market_svc.feeds.base import Feed, TickSink
from market_svc.feeds.model import RandomWalk
from market_svc.instruments import Instruments
from market_svc.ticks import RawTick


class SimulatorFeed(Feed):
    """Emit one tick per symbol every ``interval_ms`` on average (jittered by +-50 %).

    The sequence of prices and tick spacings of each symbol depends only on the seed, not on
    how late the event loop wakes up.
    """

    name = "simulator"

    def __init__(
        self,
        instruments: Instruments,
        *,
        seed: int,
        interval_ms: int = 100,
        start_prices: Mapping[str, Decimal] | None = None,
    ) -> None:
        super().__init__()
        if interval_ms <= 0:
            raise ValueError("interval_ms must be positive")
        starts = start_prices or {}
        self.interval_ms = interval_ms
        self.walks = {
            symbol: RandomWalk(instrument, seed, start_price=starts.get(symbol))
            for symbol, instrument in instruments.items()
        }

    def next_tick(self, symbol: str) -> tuple[int, Decimal]:
        """Draw the spacing (ms) to the next tick of ``symbol`` and its price after it."""
        walk = self.walks[symbol]
        dt_ms = walk.interval_jitter(self.interval_ms)
        return dt_ms, walk.step(dt_ms)

    async def run(self, emit: TickSink) -> None:
        """Emit ticks on schedule until cancelled."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        schedule: list[tuple[float, str, Decimal]] = []
        for symbol in self.walks:
            dt_ms, price = self.next_tick(symbol)
            heapq.heappush(schedule, (start + dt_ms / 1000, symbol, price))
        self.status.connected = True
        self.status.connects += 1
        try:
            while schedule:
                due, symbol, price = schedule[0]
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                heapq.heappop(schedule)
                now_ns = time.time_ns()
                self.status.last_tick_ns = now_ns
                emit(RawTick(symbol, time_ns=now_ns, price=price))
                dt_ms, next_price = self.next_tick(symbol)
                heapq.heappush(schedule, (due + dt_ms / 1000, symbol, next_price))
        finally:
            self.status.connected = False
