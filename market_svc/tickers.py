"""Rolling 24 h ticker statistics, kept from one-minute candles.

The window is the 1440 one-minute buckets ending with the current one, so the figures are
exact to the minute: ``open`` is the open of the oldest bucket in the window, ``high``/``low``
cover every tick in it, ``last`` is the latest bid, ``volume`` the window's candle volume.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal

from market_svc.candles import Candle, CandleInterval

WINDOW_MINUTES = 1440
M1 = CandleInterval.M1


@dataclass(frozen=True, slots=True)
class Ticker:
    """24 h statistics of one symbol."""

    symbol: str
    open: Decimal
    high: Decimal
    low: Decimal
    last: Decimal
    volume: Decimal
    open_time_ms: int
    time_ms: int

    @property
    def change(self) -> Decimal:
        """Return last minus open."""
        return self.last - self.open

    @property
    def change_percent(self) -> Decimal:
        """Return the change relative to the open, in percent, to two decimals."""
        return (self.change * 100 / self.open).quantize(Decimal("0.01"))


class TickerBook:
    """Keep each symbol's closed one-minute candles of the last 24 h plus its current one."""

    def __init__(self) -> None:
        self._closed: dict[str, deque[Candle]] = {}
        self._current: dict[str, Candle] = {}

    def add(self, candle: Candle, *, closed: bool) -> None:
        """Record a one-minute candle, closed or in progress."""
        if candle.interval is not M1:
            return
        if closed:
            history = self._closed.setdefault(candle.symbol, deque())
            if history and history[-1].open_time_ms >= candle.open_time_ms:
                return
            history.append(candle)
            current = self._current.get(candle.symbol)
            if current is not None and current.open_time_ms <= candle.open_time_ms:
                del self._current[candle.symbol]
        else:
            self._current[candle.symbol] = candle

    def ticker(self, symbol: str, now_ms: int) -> Ticker | None:
        """Return the 24 h ticker of ``symbol`` at ``now_ms``; None without data in the window."""
        window_start = M1.open_time(now_ms) - (WINDOW_MINUTES - 1) * M1.length_ms
        history = self._closed.get(symbol, deque())
        while history and history[0].open_time_ms < window_start:
            history.popleft()
        candles = list(history)
        current = self._current.get(symbol)
        if current is not None and current.open_time_ms >= window_start:
            candles.append(current)
        if not candles:
            return None
        return Ticker(
            symbol=symbol,
            open=candles[0].open,
            high=max(c.high for c in candles),
            low=min(c.low for c in candles),
            last=candles[-1].close,
            volume=sum((c.volume for c in candles), Decimal(0)),
            open_time_ms=window_start,
            time_ms=now_ms,
        )
