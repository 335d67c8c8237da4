"""Fan-out of committed batches to stream subscribers, and the recent events kept in memory.

Every committed batch arrives here after its fsync. Account events are numbered within their
seq (per account), kept in a bounded per-account ring for resuming streams, and pushed to event
subscribers; applied quotes go to price subscribers (conflated per symbol) and mark the
position subscribers holding that symbol as changed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from engine_svc.convert import AccountEvent
from engine_svc.core import QuoteView
from engine_svc.sequencer import Applied

EventsListener = Callable[[int, Sequence[tuple[str, AccountEvent]]], None]
DEFAULT_RING = 4096
DEFAULT_SUBSCRIBER_LIMIT = 10_000


def account_events(applied: Sequence[Applied]) -> list[tuple[str, AccountEvent]]:
    """Return (account, event) of a batch, each event numbered within its seq and account."""
    items: list[tuple[str, AccountEvent]] = []
    for command, result in applied:
        if not result.events:
            continue
        counters: dict[str, int] = {}
        for event in result.events:
            account = event.account_id
            index = counters.get(account, 0)
            counters[account] = index + 1
            items.append((account, AccountEvent(command.seq, index, event)))
    return items


class EventSubscription:
    """Live account events for one stream; `overflowed` once it fell too far behind."""

    def __init__(self, limit: int) -> None:
        self._items: deque[AccountEvent] = deque()
        self._ready = asyncio.Event()
        self._limit = limit
        self.overflowed = False

    def push(self, item: AccountEvent) -> None:
        """Queue one event (called by the hub)."""
        if len(self._items) >= self._limit:
            self.overflowed = True
        else:
            self._items.append(item)
        self._ready.set()

    async def next_batch(self) -> list[AccountEvent]:
        """Wait for and return the queued events."""
        while not self._items and not self.overflowed:
            self._ready.clear()
            await self._ready.wait()
        items = list(self._items)
        self._items.clear()
        return items


class PriceSubscription:
    """Latest quote per subscribed symbol, conflated for slow readers."""

    def __init__(self, symbols: frozenset[str] | None) -> None:
        self.symbols = symbols
        self._latest: dict[str, QuoteView] = {}
        self._ready = asyncio.Event()

    def push(self, quote: QuoteView) -> None:
        """Offer a quote (called by the hub)."""
        if self.symbols is None or quote.symbol in self.symbols:
            self._latest[quote.symbol] = quote
            self._ready.set()

    async def next_batch(self) -> list[QuoteView]:
        """Wait for and return the latest quotes, oldest seq first."""
        while not self._latest:
            self._ready.clear()
            await self._ready.wait()
        quotes = sorted(self._latest.values(), key=lambda quote: quote.seq)
        self._latest.clear()
        return quotes


class PositionSubscription:
    """A change flag for one account's position stream."""

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self.symbols: frozenset[str] = frozenset()
        self._ready = asyncio.Event()
        self._dirty = False

    def mark(self) -> None:
        """Note a change (called by the hub)."""
        self._dirty = True
        self._ready.set()

    async def wait_change(self) -> None:
        """Wait until something changed since the last call."""
        while not self._dirty:
            self._ready.clear()
            await self._ready.wait()
        self._dirty = False


class EventHub:
    """Receives committed batches; serves stream subscriptions and recent events."""

    def __init__(
        self,
        floor: int = 0,
        ring: int = DEFAULT_RING,
        subscriber_limit: int = DEFAULT_SUBSCRIBER_LIMIT,
    ) -> None:
        self._floor = floor
        self._ring = ring
        self._subscriber_limit = subscriber_limit
        self._recent: dict[str, deque[AccountEvent]] = {}
        self._evicted: dict[str, int] = {}
        self._events: dict[str, set[EventSubscription]] = {}
        self._prices: set[PriceSubscription] = set()
        self._positions: dict[str, set[PositionSubscription]] = {}
        self.listeners: list[EventsListener] = []
        self.last_seq = floor

    def publish(self, applied: Sequence[Applied]) -> None:
        """Distribute one committed batch (a sequencer listener)."""
        if not applied:
            return
        items = account_events(applied)
        for account, item in items:
            recent = self._recent.get(account)
            if recent is None:
                recent = self._recent[account] = deque()
            if len(recent) >= self._ring:
                self._evicted[account] = recent.popleft().seq
            recent.append(item)
            for subscription in self._events.get(account, ()):
                subscription.push(item)
            for position_subscription in self._positions.get(account, ()):
                position_subscription.mark()
        for _, result in applied:
            payload = result.payload
            if isinstance(payload, QuoteView) and result.ok:
                for price_subscription in self._prices:
                    price_subscription.push(payload)
                self._mark_symbol(payload.symbol)
        self.last_seq = applied[-1][0].seq
        for listener in self.listeners:
            listener(self.last_seq, items)

    def _mark_symbol(self, symbol: str) -> None:
        for subscriptions in self._positions.values():
            for subscription in subscriptions:
                if symbol in subscription.symbols:
                    subscription.mark()

    def floor(self, account_id: str) -> int:
        """Return the seq after which memory holds every event of the account."""
        return max(self._floor, self._evicted.get(account_id, 0))

    def recent(self, account_id: str, after: tuple[int, int]) -> list[AccountEvent]:
        """Return the account's events in memory that come after (seq, index) `after`."""
        return [item for item in self._recent.get(account_id, ()) if (item.seq, item.idx) > after]

    @contextmanager
    def events(self, account_id: str) -> Iterator[EventSubscription]:
        """Subscribe to an account's live events for the duration of the block."""
        subscription = EventSubscription(self._subscriber_limit)
        self._events.setdefault(account_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            subscriptions = self._events.get(account_id)
            if subscriptions is not None:
                subscriptions.discard(subscription)
                if not subscriptions:
                    del self._events[account_id]

    @contextmanager
    def prices(self, symbols: frozenset[str] | None) -> Iterator[PriceSubscription]:
        """Subscribe to applied quotes for the duration of the block."""
        subscription = PriceSubscription(symbols)
        self._prices.add(subscription)
        try:
            yield subscription
        finally:
            self._prices.discard(subscription)

    @contextmanager
    def positions(self, account_id: str) -> Iterator[PositionSubscription]:
        """Subscribe to changes of an account's positions for the duration of the block."""
        subscription = PositionSubscription(account_id)
        self._positions.setdefault(account_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            subscriptions = self._positions.get(account_id)
            if subscriptions is not None:
                subscriptions.discard(subscription)
                if not subscriptions:
                    del self._positions[account_id]
