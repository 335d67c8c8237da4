"""Backpack Exchange public ticker stream (``ticker.<SYMBOL>``).

After connecting we send ``{"method": "SUBSCRIBE", "params": ["ticker.BTC_USDC", ...]}``;
frames arrive as ``{"stream": "ticker.BTC_USDC", "data": {"e": "ticker", "s": ..., "c": last
price, "o", "h", "l", "v", "V", "n", "E": event time in microseconds}}``. The ticker's volume is
a 24 h total, not per trade, so candles count ticks. Backpack pings every 60 s and closes a
client that has not answered within 120 s; ``websockets`` answers automatically. Error replies
(``{"id": .., "error": {..}}``) are logged and counted as malformed.

Ticks are stamped with our receive time so every source shares one clock.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping, Sequence

from market_svc.feeds.base import FeedConfigError
from market_svc.feeds.websocket import (
    ConnectionSettings,
    MalformedFrameError,
    WebSocketFeed,
    load_json,
)
from market_svc.instruments import Instruments
from market_svc.ticks import RawTick

log = logging.getLogger(__name__)

DEFAULT_URL = "wss://ws.backpack.exchange"


def default_symbol_map(instruments: Instruments) -> dict[str, str]:
    """Map each of our symbols to Backpack's USDC market (BTCUSD -> BTC_USDC)."""
    return {symbol: f"{inst.base_asset}_USDC" for symbol, inst in instruments.items()}


class BackpackFeed(WebSocketFeed):
    """A Backpack market-data client for the configured instruments."""

    name = "backpack"

    def __init__(
        self,
        symbol_map: Mapping[str, str],
        *,
        base_url: str = DEFAULT_URL,
        connection: ConnectionSettings | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(connection or ConnectionSettings(), rng=rng)
        if not symbol_map:
            raise FeedConfigError("backpack feed needs at least one symbol")
        self.base_url = base_url
        self._ours = {exchange: ours for ours, exchange in symbol_map.items()}

    def url(self) -> str:
        """Return the WebSocket endpoint."""
        return self.base_url

    def subscribe_messages(self) -> Sequence[object]:
        """Return the one SUBSCRIBE request for every ticker stream."""
        return [{"method": "SUBSCRIBE", "params": [f"ticker.{pair}" for pair in self._ours]}]

    def parse(self, frame: str | bytes) -> list[RawTick]:
        """Return the tick in a ticker frame; [] for subscription acknowledgements."""
        message = load_json(frame)
        if not isinstance(message, dict):
            raise MalformedFrameError("frame is not an object")
        if "error" in message:
            log.warning("backpack replied with an error: %s", message["error"])
            raise MalformedFrameError("error reply")
        if "data" not in message:
            if "id" in message or "result" in message:
                return []
            raise MalformedFrameError("frame without data")
        payload = message["data"]
        if not isinstance(payload, dict):
            raise MalformedFrameError("data is not an object")
        if payload.get("e") != "ticker":
            raise MalformedFrameError(f"unexpected event {payload.get('e')!r}")
        pair = payload.get("s")
        if not isinstance(pair, str) or pair not in self._ours:
            raise MalformedFrameError(f"unsubscribed symbol {pair!r}")
        if "c" not in payload:
            raise MalformedFrameError("ticker without last price")
        return [RawTick(self._ours[pair], time_ns=time.time_ns(), price=payload["c"])]
