"""Fan-out of committed batches to stream subscribers, and the recent events kept in memory.

Every committed batch arrives here after its fsync. Account events are numbered within their
seq (per account), kept in a bounded per-account ring for resuming streams, and pushed to event
subscribers; applied quotes go to price subscribers (conflated per symbol) and mark the
position subscribers holding that symbol as changed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from engine_svc.convert import AccountEvent
from engine_svc.core import QuoteView
from engine_svc.pipeline import CommittedBatch
from engine_svc.sequencer import Applied
from mesh.fanout import Fanout, Mailbox, Sink

T = TypeVar("T")
S = TypeVar("S", bound=Sink[Any])

DEFAULT_RING = 4096
DEFAULT_SUBSCRIBER_LIMIT = 10_000


def _symbol(quote: QuoteView) -> str:
    return quote.symbol


class EventSubscription(Mailbox[str, AccountEvent]):
    """Live account events for one stream; `overflowed` once it fell too far behind."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit=limit)

    def push(self, item: AccountEvent) -> None:
        """Queue one event (called by the hub)."""
        self.put(item)

    async def next_batch(self) -> list[AccountEvent]:
        """Wait for and return the queued events."""
        while not self.pending() and not self.overflowed:
            await self.wait()
        return self.take_queued()


class PriceSubscription(Mailbox[str, QuoteView]):
    """Latest quote per subscribed symbol, conflated for slow readers.

    Quotes arrive in seq order, so the least recently updated comes first: oldest seq first.
    """

    def __init__(self, symbols: frozenset[str] | None) -> None:
        super().__init__(
            _symbol, accept=None if symbols is None else (lambda quote: quote.symbol in symbols)
        )
        self.symbols = symbols


# What a position stream hears: its account changed, or the quote of a symbol moved.
ACCOUNT_CHANGED = ""


def _change_slot(_change: str) -> str:
    return "changed"


class PositionSubscription(Mailbox[str, str]):
    """A change flag for one account's position stream: one conflated slot.

    It hears every change of its account and the quote moves of the symbols it holds.
    """

    def __init__(self, account_id: str) -> None:
        super().__init__(_change_slot, accept=self._concerns)
        self.account_id = account_id
        self.symbols: frozenset[str] = frozenset()

    def _concerns(self, change: str) -> bool:
        return change == ACCOUNT_CHANGED or change in self.symbols

    async def wait_change(self) -> None:
        """Wait until something changed since the last call."""
        while not self.pending():
            await self.wait()
        self.take_latest()


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
        self._events: dict[str, Fanout[str, AccountEvent, EventSubscription]] = {}
        self._prices: Fanout[str, QuoteView, PriceSubscription] = Fanout()
        self._positions: dict[str, Fanout[str, str, PositionSubscription]] = {}
        self.last_seq = floor

    def publish(self, applied: Sequence[Applied]) -> None:
        """Distribute the batch `applied` (see `consume`)."""
        if applied:
            self.consume(CommittedBatch.of(applied))

    def consume(self, batch: CommittedBatch) -> None:
        """Distribute one committed batch (a consumer of the engine's pipeline)."""
        for account, item in batch.events:
            recent = self._recent.get(account)
            if recent is None:
                recent = self._recent[account] = deque()
            if len(recent) >= self._ring:
                self._evicted[account] = recent.popleft().seq
            recent.append(item)
            events = self._events.get(account)
            if events is not None:
                events.publish(item)
            positions = self._positions.get(account)
            if positions is not None:
                positions.publish(ACCOUNT_CHANGED)
        for _, result in batch.applied:
            payload = result.payload
            if isinstance(payload, QuoteView) and result.ok:
                self._prices.publish(payload)
                self._mark_symbol(payload.symbol)
        self.last_seq = batch.last_seq

    def _mark_symbol(self, symbol: str) -> None:
        for positions in self._positions.values():
            positions.publish(symbol)

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
        with member(self._events, account_id, subscription):
            yield subscription

    @contextmanager
    def prices(self, symbols: frozenset[str] | None) -> Iterator[PriceSubscription]:
        """Subscribe to applied quotes for the duration of the block."""
        subscription = PriceSubscription(symbols)
        with self._prices.subscribed(subscription):
            yield subscription

    @contextmanager
    def positions(self, account_id: str) -> Iterator[PositionSubscription]:
        """Subscribe to changes of an account's positions for the duration of the block."""
        subscription = PositionSubscription(account_id)
        with member(self._positions, account_id, subscription):
            yield subscription


@contextmanager
def member(topics: dict[str, Fanout[str, T, S]], topic: str, subscriber: S) -> Iterator[None]:
    """Subscribe to one topic's fan-out for the block; the last to leave removes the topic."""
    fanout = topics.get(topic)
    if fanout is None:
        fanout = topics[topic] = Fanout()
    fanout.subscribe(subscriber)
    try:
        yield
    finally:
        fanout.unsubscribe(subscriber)
        if not fanout.subscriber_count and topics.get(topic) is fanout:
            del topics[topic]
