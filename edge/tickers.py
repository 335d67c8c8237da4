"""Each symbol's 24 h ticker, kept by one edge worker while no newer quote has come.

A ticker (`GetTicker`) carries its instrument's latest quote and 24 h figures made from the
quotes. The market service counts a quote into its tickers before it passes the quote on, so
by the time the engine has applied it and the edge's price feed delivers it, the market
service's ticker already holds it. A reply asked for after the feed delivered a symbol's
latest quote is therefore never older than that quote, and stays so until the next one. A kept
reply is served only while, at the time of the request:

- the worker follows the symbol's quotes (the hub's `prices` feed, which it joins on the
  symbol's first read) and that feed is connected and has delivered within `recent_s`: a
  stream that stalls or goes quiet could be hiding a newer price;
- the feed has delivered no quote since the reply was asked for;
- the wall-clock minute is the one it was asked in: the 24 h window moves every minute.

Otherwise the request asks the market service, and concurrent requests for a reply that may be
kept share one call, asked for after the latest quote. Errors are never kept. A spot market's
ticker carries no quote (its figures come from public trades, which reach the market service and
the edge on separate streams, so the edge cannot tell which trades a reply counts): it is never
kept, and its symbol is not followed.

The engine passes on a quote only when the bid or the ask changes, so what the market service
changes without one (the volume of a tick at an unchanged quote, a high between two quotes the
engine applied in one batch) can lag in a served reply, by `recent_s` at most: a reply is served
only while the feed's latest quote, which came before it was asked for, is that recent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import message
from google.rpc import status_pb2

from edge.hub import FeedSpec, Frame, Hub, Subscription

log = logging.getLogger("edge.tickers")

# How long a quiet price feed is still trusted to be telling every quote.
QUOTE_RECENT_S = 2.0
MINUTE_S = 60

# Calls upstream; returns the reply and the JSON body answered for it (raises AioRpcError).
Fetch = Callable[[], Awaitable[tuple[message.Message, bytes]]]


@dataclass(eq=False)
class _Followed:
    """The worker's subscription to one symbol's quotes and how many it has delivered."""

    subscription: Subscription
    quotes: int = 0


@dataclass(frozen=True, slots=True)
class _Kept:
    """A reply and the point it was asked at: the quote count and the minute."""

    quotes: int
    minute: int
    body: bytes


@dataclass(frozen=True, slots=True)
class _Flight:
    """An upstream call shared by the requests made at the same point."""

    quotes: int
    minute: int
    task: asyncio.Future[bytes]


class TickerReplies:
    """The kept tickers of one worker; a `Subscriber` of the hub's price feeds."""

    def __init__(
        self,
        hub: Hub,
        prices: Callable[[str], FeedSpec],
        *,
        recent_s: float = QUOTE_RECENT_S,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._hub = hub
        self._prices = prices
        self._recent_s = recent_s
        self._wall_clock = wall_clock
        self._followed: dict[str, _Followed] = {}
        # Symbols whose price feed failed for good: always asked upstream.
        self._unfollowable: set[str] = set()
        self._kept: dict[str, _Kept] = {}
        self._flights: dict[str, _Flight] = {}

    async def read(self, symbol: str, fetch: Fetch) -> bytes:
        """Return the JSON of the symbol's ticker: the kept one while current, else fetched."""
        quotes = self._quotes_if_followed(symbol)
        minute = self._minute()
        if quotes is None:
            return await self._fetch(symbol, fetch, None, minute)
        kept = self._kept.get(symbol)
        if kept is not None and kept.quotes == quotes and kept.minute == minute:
            return kept.body
        flight = self._flights.get(symbol)
        if flight is None or flight.quotes != quotes or flight.minute != minute:
            task = asyncio.ensure_future(self._fetch(symbol, fetch, quotes, minute))
            flight = _Flight(quotes, minute, task)
            self._flights[symbol] = flight
            task.add_done_callback(lambda _: self._landed(symbol, flight))
        return await asyncio.shield(flight.task)

    def following(self, symbol: str) -> bool:
        """Tell whether the worker follows the quotes of `symbol`."""
        return symbol in self._followed

    def deliver(self, subscription: Subscription, frame: Frame) -> None:
        """Take a quote of a followed symbol: its kept reply is no longer current."""
        symbol = _symbol_of(subscription)
        followed = self._followed.get(symbol)
        if followed is not None and followed.subscription is subscription:
            followed.quotes += 1
            self._kept.pop(symbol, None)

    def fail(self, subscription: Subscription, status: status_pb2.Status) -> None:
        """Stop following a symbol whose feed the engine refused."""
        symbol = _symbol_of(subscription)
        followed = self._followed.get(symbol)
        if followed is None or followed.subscription is not subscription:
            return
        log.warning("the quotes of %s cannot be followed: %s", symbol, status.message)
        del self._followed[symbol]
        self._kept.pop(symbol, None)
        self._unfollowable.add(symbol)

    def _quotes_if_followed(self, symbol: str) -> int | None:
        """Return the quotes delivered for `symbol`, or None when its feed cannot be trusted."""
        followed = self._followed.get(symbol)
        if followed is None:
            return None
        feed = followed.subscription.feed
        if feed is None or not feed.live or time.monotonic() - feed.received_at > self._recent_s:
            return None
        return followed.quotes

    def _minute(self) -> int:
        return int(self._wall_clock() // MINUTE_S)

    async def _fetch(self, symbol: str, fetch: Fetch, quotes: int | None, minute: int) -> bytes:
        """Ask upstream; keep the reply if nothing moved while it was asked for."""
        reply, body = await fetch()
        ticker: Any = getattr(reply, "ticker", None)
        if ticker is None or not (ticker.bid and ticker.ask):
            return body  # no quote: a spot market's ticker
        if symbol not in self._followed and symbol not in self._unfollowable:
            self._follow(symbol)
        elif (
            quotes is not None
            and self._quotes_if_followed(symbol) == quotes
            and self._minute() == minute
        ):
            self._kept[symbol] = _Kept(quotes, minute, body)
        return body

    def _follow(self, symbol: str) -> None:
        subscription = self._hub.subscribe(self._prices(symbol), self)
        # A running feed hands over its latest quote at once, before this entry exists.
        self._followed[symbol] = _Followed(subscription)

    def _landed(self, symbol: str, flight: _Flight) -> None:
        if self._flights.get(symbol) is flight:
            del self._flights[symbol]
        if not flight.task.cancelled():
            flight.task.exception()  # retrieved here too: every waiter may have gone


def _symbol_of(subscription: Subscription) -> str:
    """Return the symbol of a `("prices", symbol)` feed's subscription."""
    return str(subscription.key[1])
