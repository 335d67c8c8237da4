"""Public spot market data from committed batches: book changes and the trade tape.

The hub is a committed-batch consumer. Each `SpotBookChanged` carries its book's next
`sequence` (one per change), so a book subscriber that took the book's depth at sequence S
in the same event-loop step as it subscribed receives exactly the changes S+1, S+2, ...:
the stream has no gap. Trades go to trade subscribers and to a bounded per-market tape (own
fills are history: the recorder writes them to SQL).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from engine_svc.core.spot import SpotBookChanged, SpotTradeExecuted
from engine_svc.pipeline import CommittedBatch
from engine_svc.streams import member
from mesh.fanout import Fanout, Mailbox

DEFAULT_TAPE = 1000
DEFAULT_SUBSCRIBER_LIMIT = 10_000


V = TypeVar("V")


class OrderedSubscription(Mailbox[str, V]):
    """One market's changes or trades, in order; `overflowed` once it fell too far behind."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit=limit)

    async def next_batch(self) -> list[V]:
        """Wait for and return the queued items."""
        while not self.pending() and not self.overflowed:
            await self.wait()
        return self.take_queued()


BookSubscription = OrderedSubscription[SpotBookChanged]
TradeSubscription = OrderedSubscription[SpotTradeExecuted]


class MarketHub:
    """Receives committed batches; serves book and trade streams and the trade tape."""

    def __init__(
        self, tape: int = DEFAULT_TAPE, subscriber_limit: int = DEFAULT_SUBSCRIBER_LIMIT
    ) -> None:
        self._tape_size = tape
        self._subscriber_limit = subscriber_limit
        self._tapes: dict[str, deque[SpotTradeExecuted]] = {}
        self._books: dict[str, Fanout[str, SpotBookChanged, BookSubscription]] = {}
        self._trades: dict[str, Fanout[str, SpotTradeExecuted, TradeSubscription]] = {}

    def consume(self, batch: CommittedBatch) -> None:
        """Distribute one committed batch (a consumer of the engine's pipeline)."""
        for _, result in batch.applied:
            for event in result.events:
                if isinstance(event, SpotBookChanged):
                    books = self._books.get(event.market)
                    if books is not None:
                        books.publish(event)
                elif isinstance(event, SpotTradeExecuted):
                    tape = self._tapes.get(event.market)
                    if tape is None:
                        tape = self._tapes[event.market] = deque(maxlen=self._tape_size)
                    tape.append(event)
                    trades = self._trades.get(event.market)
                    if trades is not None:
                        trades.publish(event)

    def tape(self, market: str, limit: int) -> list[SpotTradeExecuted]:
        """Return up to `limit` of the market's latest trades, newest first."""
        tape = self._tapes.get(market, ())
        return list(reversed(tape))[:limit]

    @contextmanager
    def book(self, market: str) -> Iterator[BookSubscription]:
        """Subscribe to a market's book changes for the duration of the block."""
        subscription: BookSubscription = OrderedSubscription(self._subscriber_limit)
        with member(self._books, market, subscription):
            yield subscription

    @contextmanager
    def trades(self, market: str) -> Iterator[TradeSubscription]:
        """Subscribe to a market's public trades for the duration of the block."""
        subscription: TradeSubscription = OrderedSubscription(self._subscriber_limit)
        with member(self._trades, market, subscription):
            yield subscription
