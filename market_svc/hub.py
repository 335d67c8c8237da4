"""Fan quotes out to any number of subscribers without letting one hold up the others.

Each subscriber owns a mailbox bounded by the number of symbols: publishing replaces the
pending quote of that symbol (conflation) and never waits. A slow subscriber therefore sees
fewer, always current quotes; a fast one sees every quote.
"""

from __future__ import annotations

from collections.abc import Iterable

from market_svc.ticks import Quote
from mesh.fanout import Fanout, Mailbox


def _symbol(quote: Quote) -> str:
    return quote.symbol


class QuoteSubscription(Mailbox[str, Quote]):
    """One subscriber's view of the hub: an async iterator of quotes."""

    def __init__(self, hub: QuoteHub, symbols: frozenset[str] | None) -> None:
        super().__init__(
            _symbol, accept=None if symbols is None else (lambda quote: quote.symbol in symbols)
        )
        self._hub = hub
        self.symbols = symbols

    def close(self) -> None:
        """Stop the subscription; a waiting consumer wakes up and ends."""
        super().close()
        self._hub.unsubscribe(self)


class QuoteHub:
    """Keep the latest quote per symbol and fan every new quote out to subscribers."""

    def __init__(self) -> None:
        self._fanout: Fanout[str, Quote, QuoteSubscription] = Fanout(_symbol)

    @property
    def published(self) -> int:
        """Return the number of quotes published."""
        return self._fanout.published

    def publish(self, quote: Quote) -> None:
        """Record ``quote`` as the latest of its symbol and offer it to every subscriber."""
        self._fanout.publish(quote)

    def latest(self, symbol: str) -> Quote | None:
        """Return the last published quote of ``symbol``."""
        return self._fanout.latest(symbol)

    def latest_all(self) -> dict[str, Quote]:
        """Return the last published quote of every symbol that has one."""
        return {quote.symbol: quote for quote in self._fanout.latest_values()}

    def subscribe(self, symbols: Iterable[str] | None = None) -> QuoteSubscription:
        """Subscribe to ``symbols`` (all when None); current quotes are delivered first."""
        wanted = None if symbols is None else frozenset(symbols)
        subscription = QuoteSubscription(self, wanted)
        self._fanout.subscribe(subscription)
        return subscription

    def unsubscribe(self, subscription: QuoteSubscription) -> None:
        """Remove ``subscription``; unknown subscriptions are ignored."""
        self._fanout.unsubscribe(subscription)

    @property
    def subscriber_count(self) -> int:
        """Return the number of live subscriptions."""
        return self._fanout.subscriber_count
