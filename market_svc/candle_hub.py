"""Push candle updates to StreamCandles subscribers without unbounded buffering.

Updates of the current candle are conflated (a subscriber gets the latest state, not every
tick); closed candles are each delivered, from a small bounded backlog that only a
subscriber stalled for many intervals could overflow, in which case the oldest are dropped.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from market_svc.candles import Candle, CandleInterval

CLOSED_BACKLOG = 64


@dataclass(frozen=True, slots=True)
class CandleEvent:
    """A candle as a subscriber sees it: ``closed`` is True once its bucket is over."""

    candle: Candle
    closed: bool


class CandleSubscription:
    """One subscriber's stream of a single symbol and interval."""

    def __init__(self, hub: CandleHub, symbol: str, interval: CandleInterval) -> None:
        self._hub = hub
        self.key = (symbol, interval)
        self._closed_backlog: deque[Candle] = deque(maxlen=CLOSED_BACKLOG)
        self._current: Candle | None = None
        self._wakeup = asyncio.Event()
        self._ended = False

    def offer(self, candle: Candle, *, closed: bool) -> None:
        """Queue a candle update; an unsent current candle is replaced by a newer one."""
        if closed:
            self._closed_backlog.append(candle)
            if self._current is not None and self._current.open_time_ms <= candle.open_time_ms:
                self._current = None
        else:
            self._current = candle
        self._wakeup.set()

    async def next_batch(self) -> list[CandleEvent]:
        """Wait for updates; return closed candles first, then the current one; [] at the end."""
        while not self._closed_backlog and self._current is None:
            if self._ended:
                return []
            self._wakeup.clear()
            await self._wakeup.wait()
        events = [CandleEvent(candle, True) for candle in self._closed_backlog]
        self._closed_backlog.clear()
        if self._current is not None:
            events.append(CandleEvent(self._current, False))
            self._current = None
        return events

    def close(self) -> None:
        """End the subscription."""
        self._ended = True
        self._hub.unsubscribe(self)
        self._wakeup.set()

    async def __aiter__(self) -> AsyncIterator[CandleEvent]:
        while True:
            batch = await self.next_batch()
            if not batch:
                return
            for event in batch:
                yield event

    def __enter__(self) -> CandleSubscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class CandleHub:
    """Route candle updates to the subscribers of their symbol and interval."""

    def __init__(self) -> None:
        self._subscribers: dict[tuple[str, CandleInterval], set[CandleSubscription]] = {}

    def wants(self, symbol: str, interval: CandleInterval) -> bool:
        """Tell whether anyone listens to this series (so the caller can skip work)."""
        return bool(self._subscribers.get((symbol, interval)))

    def intervals_of(self, symbol: str) -> list[CandleInterval]:
        """Return the intervals of ``symbol`` that have subscribers."""
        return [interval for (s, interval) in self._subscribers if s == symbol]

    def publish(self, candle: Candle, *, closed: bool) -> None:
        """Offer ``candle`` to every subscriber of its series."""
        for subscriber in self._subscribers.get((candle.symbol, candle.interval), ()):
            subscriber.offer(candle, closed=closed)

    def subscribe(
        self, symbol: str, interval: CandleInterval, current: Candle | None = None
    ) -> CandleSubscription:
        """Subscribe to one series; ``current`` (the candle in progress) is delivered first."""
        subscription = CandleSubscription(self, symbol, interval)
        if current is not None:
            subscription.offer(current, closed=False)
        self._subscribers.setdefault((symbol, interval), set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: CandleSubscription) -> None:
        """Remove ``subscription``."""
        subscribers = self._subscribers.get(subscription.key)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[subscription.key]
