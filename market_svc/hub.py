"""Fan quotes out to any number of subscribers without letting one hold up the others.

Each subscriber owns a buffer bounded by the number of symbols: publishing overwrites the
pending quote of that symbol (conflation) and never waits. A slow subscriber therefore sees
fewer, always current quotes; a fast one sees every quote.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

from market_svc.ticks import Quote


class QuoteSubscription:
    """One subscriber's view of the hub: an async iterator of quotes."""

    def __init__(self, hub: QuoteHub, symbols: frozenset[str] | None) -> None:
        self._hub = hub
        self.symbols = symbols
        self._pending: dict[str, Quote] = {}
        self._wakeup = asyncio.Event()
        self._closed = False
        self.delivered = 0
        self.conflated = 0

    def offer(self, quote: Quote) -> None:
        """Queue ``quote``, replacing any undelivered quote of the same symbol."""
        if self.symbols is not None and quote.symbol not in self.symbols:
            return
        if quote.symbol in self._pending:
            self.conflated += 1
            # Re-insert so delivery order follows the most recent update.
            del self._pending[quote.symbol]
        self._pending[quote.symbol] = quote
        self._wakeup.set()

    async def next_batch(self) -> list[Quote]:
        """Wait for and return the pending quotes, oldest update first; [] once closed."""
        while not self._pending:
            if self._closed:
                return []
            self._wakeup.clear()
            await self._wakeup.wait()
        batch = list(self._pending.values())
        self._pending.clear()
        self.delivered += len(batch)
        return batch

    def close(self) -> None:
        """Stop the subscription; a waiting consumer wakes up and ends."""
        self._closed = True
        self._hub.unsubscribe(self)
        self._wakeup.set()

    async def __aiter__(self) -> AsyncIterator[Quote]:
        while True:
            batch = await self.next_batch()
            if not batch:
                return
            for quote in batch:
                yield quote

    def __enter__(self) -> QuoteSubscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class QuoteHub:
    """Keep the latest quote per symbol and fan every new quote out to subscribers."""

    def __init__(self) -> None:
        self._subscribers: set[QuoteSubscription] = set()
        self._latest: dict[str, Quote] = {}
        self.published = 0

    def publish(self, quote: Quote) -> None:
        """Record ``quote`` as the latest of its symbol and offer it to every subscriber."""
        self._latest[quote.symbol] = quote
        self.published += 1
        for subscriber in self._subscribers:
            subscriber.offer(quote)

    def latest(self, symbol: str) -> Quote | None:
        """Return the last published quote of ``symbol``."""
        return self._latest.get(symbol)

    def latest_all(self) -> dict[str, Quote]:
        """Return the last published quote of every symbol that has one."""
        return dict(self._latest)

    def subscribe(self, symbols: Iterable[str] | None = None) -> QuoteSubscription:
        """Subscribe to ``symbols`` (all when None); current quotes are delivered first."""
        wanted = None if symbols is None else frozenset(symbols)
        subscription = QuoteSubscription(self, wanted)
        for quote in sorted(self._latest.values(), key=lambda q: q.sequence):
            subscription.offer(quote)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: QuoteSubscription) -> None:
        """Remove ``subscription``; unknown subscriptions are ignored."""
        self._subscribers.discard(subscription)

    @property
    def subscriber_count(self) -> int:
        """Return the number of live subscriptions."""
        return len(self._subscribers)
