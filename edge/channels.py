"""The WebSocket channels as upstream streams: what each one opens and how it is rendered."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import grpc

from edge.descriptors import Contracts
from edge.hub import FeedSpec, Frame, Hub
from edge.protojson import message_to_dict
from edge.upstream import Metadata, Upstreams
from mesh.auth import AUTHORIZATION, INTERNAL_TOKEN_HEADER
from mesh.tracing import outgoing

log = logging.getLogger("edge.channels")

MARKET = "cfd.v1.MarketDataService"
TRADING = "cfd.v1.TradingService"
EXCHANGE = "cfd.v1.ExchangeService"
# Levels per side the edge mirrors of each book (the most StreamOrderBook gives).
BOOK_DEPTH = 1000
# The message whose protobuf JSON is the `data` of each channel's frames (the API reference
# documents the channels from this table).
CHANNEL_DATA = {
    "prices": "cfd.v1.Quote",
    "candles": "cfd.v1.StreamCandlesResponse",
    "positions": "cfd.v1.StreamPositionsResponse",
    "events": "cfd.v1.StreamEventsResponse",
    "book": "cfd.v1.StreamOrderBookResponse",
    "trades": "cfd.v1.StreamMarketTradesResponse",
}


def data_frame(channel: str, data: Any) -> str:
    """Return the text of a `{"channel": ..., "data": ...}` frame."""
    return json.dumps({"channel": channel, "data": data}, separators=(",", ":"), ensure_ascii=False)


class BookMirror:
    """The edge's copy of one market's book, kept from the snapshot and changes of its stream."""

    def __init__(self, market: str) -> None:
        self.market = market
        self.sequence: int | None = None
        self._sides: dict[str, dict[Decimal, str]] = {"bids": {}, "asks": {}}

    def breaks(self, item: Any) -> bool:
        """Tell whether a change does not follow the last message (a gap in the sequence)."""
        return not item.snapshot and (
            self.sequence is None or int(item.sequence) != self.sequence + 1
        )

    def apply(self, item: Any) -> None:
        """Take a snapshot or a change; a level of quantity 0 is removed."""
        if item.snapshot:
            for levels in self._sides.values():
                levels.clear()
        for name, levels in self._sides.items():
            for level in getattr(item, name):
                price = Decimal(level.price)
                if Decimal(level.quantity) == 0:
                    levels.pop(price, None)
                else:
                    levels[price] = level.quantity
        self.sequence = int(item.sequence)

    def snapshot(self) -> dict[str, Any]:
        """Return the whole book as the protobuf JSON of a snapshot message."""
        data: dict[str, Any] = {"market": self.market, "snapshot": True}
        if self.sequence:
            data["sequence"] = str(self.sequence)
        for name, levels in self._sides.items():
            prices = sorted(levels, reverse=name == "bids")
            if prices:
                data[name] = [{"price": str(p), "quantity": levels[p]} for p in prices]
        return data


def _once(compute: Callable[[], str]) -> Callable[[], str]:
    """Return `compute`, evaluated at most once."""
    cache: list[str] = []

    def value() -> str:
        if not cache:
            cache.append(compute())
        return cache[0]

    return value


async def _until_gap(call: Any, mirror: BookMirror) -> AsyncIterator[Any]:
    """Yield a book stream's messages; end it at a gap, so that the feed reopens it."""
    try:
        async for item in call:
            if mirror.breaks(item):
                log.info("book stream of %s skipped a sequence; resubscribing", mirror.market)
                return
            yield item
    finally:
        call.cancel()


def traced(metadata: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """Return `metadata` with the current trace added, for the service to continue it."""
    return (*metadata, *outgoing())


class Channels:
    """Build the feed of each channel key from the contracts."""

    def __init__(
        self, contracts: Contracts, upstreams: Upstreams, hub: Hub, internal_token: str
    ) -> None:
        self._contracts = contracts
        self._upstreams = upstreams
        self._hub = hub
        self._internal_token = internal_token
        self._tokens: dict[tuple[str, str], list[str]] = {}

    def _user_stream(
        self, method: str, reply_class: type[Any], metadata: Metadata
    ) -> grpc.aio.UnaryStreamMultiCallable[Any, Any]:
        """Return a trading stream of the engine shard holding the caller's account."""
        shard = self._upstreams.shard_for(metadata)
        return self._upstreams.stream_method(TRADING, method, reply_class, shard)

    def candle_intervals(self) -> list[str]:
        """Return the names of the candle intervals a subscription may ask for."""
        enum = self._contracts.pool.FindEnumTypeByName("cfd.v1.CandleInterval")
        return [v.name for v in enum.values if v.number != 0]

    def prices(self, symbol: str) -> FeedSpec:
        """The engine's quotes of one symbol, shared by every connection (no user token needed).

        The edge reads the public `StreamPrices` as an internal caller, once for all its clients.
        """
        request_class = self._contracts.message_class("cfd.v1.StreamPricesRequest")
        reply_class = self._contracts.message_class("cfd.v1.StreamPricesResponse")
        call = self._upstreams.stream_method(TRADING, "StreamPrices", reply_class)
        metadata = ((INTERNAL_TOKEN_HEADER, self._internal_token),)

        def open_stream(_resume: int) -> AsyncIterable[Any]:
            return call(request_class(symbols=[symbol]), metadata=traced(metadata))

        def frames(item: Any) -> list[Frame]:
            text = data_frame("prices", message_to_dict(item))
            return [Frame(text, slot=f"prices:{symbol}")]

        return FeedSpec(("prices", symbol), TRADING, open_stream, frames)

    def candles(self, symbol: str, interval: str) -> FeedSpec:
        """Candle updates of one symbol and interval, shared by every connection."""
        request_class = self._contracts.message_class("cfd.v1.StreamCandlesRequest")
        reply_class = self._contracts.message_class("cfd.v1.StreamCandlesResponse")
        call = self._upstreams.stream_method(MARKET, "StreamCandles", reply_class)

        def open_stream(_resume: int) -> AsyncIterable[Any]:
            request = request_class(symbol=symbol, interval=interval)
            return call(request, metadata=traced(()))

        def frames(item: Any) -> list[Frame]:
            data = message_to_dict(item)
            open_time = data.get("candle", {}).get("openTime", "")
            slot = f"candles:{symbol}:{interval}:{open_time}"
            return [Frame(data_frame("candles", data), slot=slot)]

        return FeedSpec(("candles", symbol, interval), MARKET, open_stream, frames)

    def book(self, market: str) -> FeedSpec:
        """The book of one market: a snapshot, then its changes, shared by every connection.

        The edge mirrors the book, so a subscriber joining a running stream, or one still
        holding an unsent change when the next arrives, gets the whole book instead. A gap in
        the upstream sequence ends the stream; the feed reopens it and starts with a snapshot.
        """
        request_class = self._contracts.message_class("cfd.v1.StreamOrderBookRequest")
        reply_class = self._contracts.message_class("cfd.v1.StreamOrderBookResponse")
        call = self._upstreams.stream_method(EXCHANGE, "StreamOrderBook", reply_class)
        metadata = ((INTERNAL_TOKEN_HEADER, self._internal_token),)
        mirror = BookMirror(market)
        slot = f"book:{market}"

        def open_stream(_resume: int) -> AsyncIterable[Any]:
            request = request_class(market=market, depth=BOOK_DEPTH)
            return _until_gap(call(request, metadata=traced(metadata)), mirror)

        def frames(item: Any) -> list[Frame]:
            mirror.apply(item)
            whole = _once(lambda: data_frame("book", mirror.snapshot()))
            text = whole() if item.snapshot else data_frame("book", message_to_dict(item))
            return [Frame(text, slot=slot, whole=whole)]

        return FeedSpec(("book", market), EXCHANGE, open_stream, frames)

    def trades(self, market: str) -> FeedSpec:
        """The public trades of one market as they happen, shared by every connection."""
        request_class = self._contracts.message_class("cfd.v1.StreamMarketTradesRequest")
        reply_class = self._contracts.message_class("cfd.v1.StreamMarketTradesResponse")
        call = self._upstreams.stream_method(EXCHANGE, "StreamMarketTrades", reply_class)
        metadata = ((INTERNAL_TOKEN_HEADER, self._internal_token),)

        def open_stream(_resume: int) -> AsyncIterable[Any]:
            return call(request_class(market=market), metadata=traced(metadata))

        def frames(item: Any) -> list[Frame]:
            # One slot per message: trades are never conflated away.
            first = item.trades[0].id if item.trades else ""
            text = data_frame("trades", message_to_dict(item))
            return [Frame(text, slot=f"trades:{market}:{first}")]

        return FeedSpec(("trades", market), EXCHANGE, open_stream, frames)

    def positions(self, user: str, token: str) -> FeedSpec:
        """One user's positions and account summary, shared by that user's connections."""
        reply_class = self._contracts.message_class("cfd.v1.StreamPositionsResponse")
        request_class = self._contracts.message_class("cfd.v1.StreamPositionsRequest")
        key = ("positions", user)
        box = self._token_box(key, token)

        def open_stream(_resume: int) -> AsyncIterable[Any]:
            metadata = ((AUTHORIZATION, f"Bearer {box[0]}"),)
            call = self._user_stream("StreamPositions", reply_class, metadata)
            return call(request_class(), metadata=traced(metadata))

        def frames(item: Any) -> list[Frame]:
            return [Frame(data_frame("positions", message_to_dict(item)), slot="positions")]

        return FeedSpec(key, TRADING, open_stream, frames)

    def events(self, user: str, token: str) -> FeedSpec:
        """One user's account events in sequence order, resumable after a sequence."""
        reply_class = self._contracts.message_class("cfd.v1.StreamEventsResponse")
        request_class = self._contracts.message_class("cfd.v1.StreamEventsRequest")
        key = ("events", user)
        box = self._token_box(key, token)

        def open_stream(resume: int) -> AsyncIterable[Any]:
            metadata = ((AUTHORIZATION, f"Bearer {box[0]}"),)
            call = self._user_stream("StreamEvents", reply_class, metadata)
            request = request_class(from_sequence=resume)
            return call(request, metadata=traced(metadata))

        def frames(item: Any) -> list[Frame]:
            text = data_frame("events", message_to_dict(item))
            return [Frame(text, sequence=int(item.sequence), index=int(item.index))]

        return FeedSpec(key, TRADING, open_stream, frames, sequenced=True)

    def renew_token(self, user: str, token: str) -> None:
        """Let the private feeds of `user` reopen with `token`, the newest a connection of theirs
        authenticated with: a feed whose stream breaks after the first token expired must not
        retry with that one."""
        for key in (("positions", user), ("events", user)):
            box = self._tokens.get(key)
            if box is not None:
                box[0] = token

    def _token_box(self, key: tuple[str, str], token: str) -> list[str]:
        """Return the holder of the newest token of a private feed, for its reconnections."""
        for stale in [k for k in self._tokens if self._hub.feed(k) is None]:
            del self._tokens[stale]
        box = self._tokens.get(key)
        if box is None:
            box = [token]
            self._tokens[key] = box
        else:
            box[0] = token
        return box
