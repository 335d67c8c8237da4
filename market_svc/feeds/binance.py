"""Binance spot market streams: ``<symbol>@aggTrade`` and/or ``<symbol>@bookTicker``.

One combined-stream connection (``/stream?streams=a/b/c``); frames arrive wrapped as
``{"stream": name, "data": payload}``. aggTrade payloads carry a trade price ``p`` and quantity
``q``; bookTicker payloads the best bid ``b`` and ask ``a``. A ``serverShutdown`` event means
the server is about to close: we reconnect at once. Binance pings every 20 s and drops a client
that does not pong; ``websockets`` pongs automatically.

Ticks are stamped with our receive time, not Binance's event time, so every source shares one
clock for candles and staleness.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping, Sequence

from market_svc.feeds.base import FeedConfigError
from market_svc.feeds.websocket import (
    ConnectionSettings,
    MalformedFrameError,
    WebSocketFeed,
    load_json,
)
from market_svc.instruments import Instruments
from market_svc.ticks import RawTick

DEFAULT_URL = "wss://stream.binance.com:9443"
STREAM_KINDS = ("aggTrade", "bookTicker")


def default_symbol_map(instruments: Instruments) -> dict[str, str]:
    """Map each of our symbols to Binance's USDT pair (BTCUSD -> BTCUSDT)."""
    return {symbol: f"{inst.base_asset}USDT" for symbol, inst in instruments.items()}


class BinanceFeed(WebSocketFeed):
    """A Binance market-data client for the configured instruments."""

    name = "binance"

    def __init__(
        self,
        symbol_map: Mapping[str, str],
        *,
        base_url: str = DEFAULT_URL,
        streams: Sequence[str] = ("aggTrade",),
        connection: ConnectionSettings | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(connection or ConnectionSettings(), rng=rng)
        unknown = [kind for kind in streams if kind not in STREAM_KINDS]
        if not streams or unknown:
            raise FeedConfigError(f"binance streams must be among {STREAM_KINDS}, got {streams}")
        if not symbol_map:
            raise FeedConfigError("binance feed needs at least one symbol")
        self.base_url = base_url.rstrip("/")
        self.streams = tuple(streams)
        self._ours = {exchange.upper(): ours for ours, exchange in symbol_map.items()}
        self._shutdown = False

    def stream_names(self) -> list[str]:
        """Return the stream names to subscribe, e.g. ``btcusdt@aggTrade``."""
        return [f"{pair.lower()}@{kind}" for pair in self._ours for kind in self.streams]

    def url(self) -> str:
        """Return the combined-stream URL."""
        return f"{self.base_url}/stream?streams={'/'.join(self.stream_names())}"

    def wants_reconnect(self) -> bool:
        """Tell whether Binance announced a shutdown of this connection."""
        shutdown, self._shutdown = self._shutdown, False
        return shutdown

    def parse(self, frame: str | bytes) -> list[RawTick]:
        """Return the tick in a combined-stream frame; [] for acknowledgements."""
        message = load_json(frame)
        if not isinstance(message, dict):
            raise MalformedFrameError("frame is not an object")
        if "result" in message and "id" in message:
            return []
        payload = message.get("data", message)
        if not isinstance(payload, dict):
            raise MalformedFrameError("data is not an object")
        event = payload.get("e")
        if event == "serverShutdown":
            self._shutdown = True
            return []
        symbol = self._symbol(payload)
        now_ns = time.time_ns()
        if event == "aggTrade":
            _require(payload, ("p", "q"))
            return [RawTick(symbol, time_ns=now_ns, price=payload["p"], volume=payload["q"])]
        if event is None and "b" in payload and "a" in payload:
            return [RawTick(symbol, time_ns=now_ns, bid=payload["b"], ask=payload["a"])]
        raise MalformedFrameError(f"unexpected event {event!r}")

    def _symbol(self, payload: dict[str, object]) -> str:
        pair = payload.get("s")
        if not isinstance(pair, str):
            raise MalformedFrameError("missing symbol")
        ours = self._ours.get(pair.upper())
        if ours is None:
            raise MalformedFrameError(f"unsubscribed symbol {pair!r}")
        return ours


def _require(payload: dict[str, object], keys: Iterable[str]) -> None:
    missing = [key for key in keys if key not in payload]
    if missing:
        raise MalformedFrameError(f"missing fields {missing}")
