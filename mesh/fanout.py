"""Fan values out to any number of subscribers without letting a slow one hold up the others.

A `Fanout` offers each published value to every subscriber at once and keeps the latest value
per key, so that a subscriber joining late starts from the current state. A `Mailbox` is what
one subscriber has not taken yet, bounded however slow it is:

- state (a quote, the candle in progress, "positions changed") is conflated by key: a newer
  value replaces an untaken one of the same key, so a slow subscriber gets the latest state,
  not a backlog;
- ordered items (events, closed candles) queue up to a limit, past which the mailbox either
  refuses the item (the owner decides what the loss means: drop the client, ask it to resume)
  or drops the oldest.

Offering never blocks and never waits for a subscriber.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, Protocol, Self, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
V_contra = TypeVar("V_contra", contravariant=True)


class Sink(Protocol[V_contra]):
    """A subscriber: takes a published value without blocking."""

    def offer(self, value: V_contra) -> None:
        """Take `value` (called by the fan-out)."""
        ...


class Mailbox(Generic[K, V]):
    """One subscriber's pending values: the latest per key, and ordered items up to a bound.

    `key` names what a value replaces (None: the value is an ordered item); `accept` filters
    what this subscriber wants. Ordered items beyond `limit` are refused, or with `drop_oldest`
    push out the oldest; `overflowed` records that something was lost. States are taken least
    recently updated first, or with `keep_first_place` in the order their keys first arrived.
    """

    def __init__(
        self,
        key: Callable[[V], K | None] | None = None,
        *,
        limit: int | None = None,
        drop_oldest: bool = False,
        accept: Callable[[V], bool] | None = None,
        keep_first_place: bool = False,
    ) -> None:
        self._key = key
        self._limit = limit
        self._drop_oldest = drop_oldest
        self._keep_first_place = keep_first_place
        self.accept = accept
        self._latest: dict[K, V] = {}
        self._queue: deque[V] = deque()
        self._wake = asyncio.Event()
        self.closed = False
        self.overflowed = False
        self.conflated = 0
        self.delivered = 0

    def offer(self, value: V) -> None:
        """Take `value` as the fan-out publishes it; never blocks."""
        if self.accept is not None and not self.accept(value):
            return
        key = None if self._key is None else self._key(value)
        if key is None:
            self.put(value)
        else:
            self.put_latest(key, value)

    def put_latest(self, key: K, value: V) -> None:
        """Hold `value` as the state of `key`, replacing an untaken one."""
        if key in self._latest:
            self.conflated += 1
            if not self._keep_first_place:
                # Re-insert so that taking follows the order of the most recent updates.
                del self._latest[key]
        self._latest[key] = value
        self._wake.set()

    def put(self, item: V) -> bool:
        """Queue an ordered item; return False when the bound refused it."""
        if self._limit is not None and len(self._queue) >= self._limit:
            self.overflowed = True
            self._wake.set()
            if not self._drop_oldest:
                return False
            self._queue.popleft()
        self._queue.append(item)
        self._wake.set()
        return True

    def pending_latest(self, key: K) -> V | None:
        """Return the untaken state of `key`."""
        return self._latest.get(key)

    def discard_latest(self, keep: Callable[[K], bool]) -> None:
        """Drop the untaken state of every key that `keep` rejects."""
        for key in [k for k in self._latest if not keep(k)]:
            del self._latest[key]

    def pending(self) -> int:
        """Return the number of untaken values."""
        return len(self._latest) + len(self._queue)

    def take_queued(self) -> list[V]:
        """Return and forget the ordered items, oldest first."""
        items = list(self._queue)
        self._queue.clear()
        self.delivered += len(items)
        return items

    def take_first_queued(self) -> V | None:
        """Return and forget the oldest ordered item."""
        if not self._queue:
            return None
        self.delivered += 1
        return self._queue.popleft()

    def first_queued(self) -> V | None:
        """Return the oldest ordered item, leaving it queued."""
        return self._queue[0] if self._queue else None

    def clear_queued(self) -> None:
        """Drop every ordered item."""
        self._queue.clear()

    def take_latest(self) -> list[V]:
        """Return and forget the states, least recently updated first."""
        values = list(self._latest.values())
        self._latest.clear()
        self.delivered += len(values)
        return values

    def take_first_latest(self) -> V | None:
        """Return and forget the least recently updated state."""
        if not self._latest:
            return None
        self.delivered += 1
        return self._latest.pop(next(iter(self._latest)))

    def take(self) -> list[V]:
        """Return and forget everything: ordered items first, then the states."""
        return self.take_queued() + self.take_latest()

    def wake(self) -> None:
        """Wake a waiting owner without a value (it has something of its own to look at)."""
        self._wake.set()

    async def wait(self) -> None:
        """Wait until something is pending, the mailbox is closed, or `wake` was called."""
        if self.pending() or self.closed:
            return
        self._wake.clear()
        await self._wake.wait()

    async def next_batch(self) -> list[V]:
        """Wait for values and take them all; [] once closed and empty."""
        while not self.pending():
            if self.closed:
                return []
            await self.wait()
        return self.take()

    def close(self) -> None:
        """Stop the mailbox; a waiting owner wakes up."""
        self.closed = True
        self._wake.set()

    async def __aiter__(self) -> AsyncIterator[V]:
        while True:
            batch = await self.next_batch()
            if not batch:
                return
            for value in batch:
                yield value

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


S = TypeVar("S", bound=Sink[Any])


class Fanout(Generic[K, V, S]):
    """Offer each published value to every subscriber; keep the latest value per key.

    A subscriber that joins gets the latest value of every key first, in publishing order,
    so it starts from the current state instead of waiting for the next change.
    """

    def __init__(self, key: Callable[[V], K] | None = None) -> None:
        self._key = key
        self._latest: dict[K, V] = {}
        # A dict keeps joining order and removes in O(1).
        self._subscribers: dict[S, None] = {}
        self.published = 0

    def publish(self, value: V) -> None:
        """Record `value` as the latest of its key and offer it to every subscriber."""
        if self._key is not None:
            key = self._key(value)
            # Re-insert so that the latest values keep publishing order.
            self._latest.pop(key, None)
            self._latest[key] = value
        self.published += 1
        for subscriber in list(self._subscribers):
            subscriber.offer(value)

    def latest(self, key: K) -> V | None:
        """Return the last published value of `key`."""
        return self._latest.get(key)

    def latest_values(self) -> list[V]:
        """Return the last published value of every key, in publishing order."""
        return list(self._latest.values())

    def subscribe(self, subscriber: S, *, replay: Iterable[V] | None = None) -> None:
        """Add `subscriber`, first offering it the latest values (or `replay` instead)."""
        for value in self.latest_values() if replay is None else replay:
            subscriber.offer(value)
        self._subscribers[subscriber] = None

    def unsubscribe(self, subscriber: S) -> None:
        """Remove `subscriber`; an unknown one is ignored."""
        self._subscribers.pop(subscriber, None)

    @contextmanager
    def subscribed(self, subscriber: S, *, replay: Iterable[V] | None = None) -> Iterator[S]:
        """Subscribe for the duration of the block."""
        self.subscribe(subscriber, replay=replay)
        try:
            yield subscriber
        finally:
            self.unsubscribe(subscriber)

    @property
    def subscribers(self) -> list[S]:
        """Return the current subscribers."""
        return list(self._subscribers)

    @property
    def subscriber_count(self) -> int:
        """Return the number of subscribers."""
        return len(self._subscribers)
