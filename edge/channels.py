"""The WebSocket channels as upstream streams: what each one opens and how it is rendered."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable
from typing import Any

from edge.descriptors import Contracts
from edge.hub import FeedSpec, Frame, Hub
from edge.protojson import message_to_dict
from edge.upstream import Upstreams
from mesh.auth import AUTHORIZATION, INTERNAL_TOKEN_HEADER

MARKET = "cfd.v1.MarketDataService"
TRADING = "cfd.v1.TradingService"
# The message whose protobuf JSON is the `data` of each channel's frames (the API reference
# documents the channels from this table).
CHANNEL_DATA = {
    "prices": "cfd.v1.Quote",
    "candles": "cfd.v1.StreamCandlesResponse",
    "positions": "cfd.v1.StreamPositionsResponse",
    "events": "cfd.v1.StreamEventsResponse",
}


def data_frame(channel: str, data: Any) -> str:
    """Return the text of a `{"channel": ..., "data": ...}` frame."""
    return json.dumps({"channel": channel, "data": data}, separators=(",", ":"), ensure_ascii=False)


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
            return call(request_class(symbols=[symbol]), metadata=metadata)

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
            return call(request)

        def frames(item: Any) -> list[Frame]:
            data = message_to_dict(item)
            open_time = data.get("candle", {}).get("openTime", "")
            slot = f"candles:{symbol}:{interval}:{open_time}"
            return [Frame(data_frame("candles", data), slot=slot)]

        return FeedSpec(("candles", symbol, interval), MARKET, open_stream, frames)

    def positions(self, user: str, token: str) -> FeedSpec:
        """One user's positions and account summary, shared by that user's connections."""
        reply_class = self._contracts.message_class("cfd.v1.StreamPositionsResponse")
        request_class = self._contracts.message_class("cfd.v1.StreamPositionsRequest")
        call = self._upstreams.stream_method(TRADING, "StreamPositions", reply_class)
        key = ("positions", user)
        box = self._token_box(key, token)

        def open_stream(_resume: int) -> AsyncIterable[Any]:
            metadata = ((AUTHORIZATION, f"Bearer {box[0]}"),)
            return call(request_class(), metadata=metadata)

        def frames(item: Any) -> list[Frame]:
            return [Frame(data_frame("positions", message_to_dict(item)), slot="positions")]

        return FeedSpec(key, TRADING, open_stream, frames)

    def events(self, user: str, token: str) -> FeedSpec:
        """One user's account events in sequence order, resumable after a sequence."""
        reply_class = self._contracts.message_class("cfd.v1.StreamEventsResponse")
        request_class = self._contracts.message_class("cfd.v1.StreamEventsRequest")
        call = self._upstreams.stream_method(TRADING, "StreamEvents", reply_class)
        key = ("events", user)
        box = self._token_box(key, token)

        def open_stream(resume: int) -> AsyncIterable[Any]:
            metadata = ((AUTHORIZATION, f"Bearer {box[0]}"),)
            request = request_class(from_sequence=resume)
            return call(request, metadata=metadata)

        def frames(item: Any) -> list[Frame]:
            text = data_frame("events", message_to_dict(item))
            return [Frame(text, sequence=int(item.sequence), index=int(item.index))]

        return FeedSpec(key, TRADING, open_stream, frames, sequenced=True)

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
