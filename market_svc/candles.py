"""Candle aggregation for every interval as ticks arrive.

Candles are built from the **mid** of our quotes, (bid + ask) / 2, as the contract
(``cfd.v1.Candle``) says; with quotes on the tick the mid is exact to half a tick. Volume is
the traded quantity the source reports with its ticks, or the tick count when it reports none;
``tick_count`` is always kept. A spot market's candles are built from its public trades instead:
the trade price, the traded quantity as volume, one tick per trade.

Buckets are aligned on the UTC epoch; weekly candles open on Monday 00:00 UTC.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal

from market_svc.ticks import Quote

MS_PER_MINUTE = 60_000
# 1970-01-01 was a Thursday; weeks start four days later, on Monday 1970-01-05.
WEEK_OFFSET_MS = 4 * 24 * 60 * MS_PER_MINUTE


class CandleInterval(enum.Enum):
    """The candle intervals the service aggregates, by their short name."""

    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    H1 = "1h"
    H4 = "4h"
    D1 = "1d"
    W1 = "1w"

    @property
    def length_ms(self) -> int:
        """Return the interval's length in milliseconds."""
        return _LENGTH_MS[self]

    def open_time(self, time_ms: int) -> int:
        """Return the open time (epoch ms) of the bucket containing ``time_ms``."""
        offset = WEEK_OFFSET_MS if self is CandleInterval.W1 else 0
        return time_ms - (time_ms - offset) % self.length_ms


_LENGTH_MS = {
    CandleInterval.M1: MS_PER_MINUTE,
    CandleInterval.M5: 5 * MS_PER_MINUTE,
    CandleInterval.M15: 15 * MS_PER_MINUTE,
    CandleInterval.H1: 60 * MS_PER_MINUTE,
    CandleInterval.H4: 240 * MS_PER_MINUTE,
    CandleInterval.D1: 1440 * MS_PER_MINUTE,
    CandleInterval.W1: 7 * 1440 * MS_PER_MINUTE,
}

INTERVALS: tuple[CandleInterval, ...] = tuple(CandleInterval)


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLC bar of one symbol and interval."""

    symbol: str
    interval: CandleInterval
    open_time_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    tick_count: int

    @property
    def close_time_ms(self) -> int:
        """Return the exclusive end of the candle's bucket (epoch ms)."""
        return self.open_time_ms + self.interval.length_ms

    def merge(self, other: Candle) -> Candle:
        """Return this candle extended by ``other``, a later bar inside the same bucket."""
        return replace(
            self,
            high=max(self.high, other.high),
            low=min(self.low, other.low),
            close=other.close,
            volume=self.volume + other.volume,
            tick_count=self.tick_count + other.tick_count,
        )


class _Bar:
    """The mutable in-progress candle; copied into a Candle when anyone looks."""

    __slots__ = ("close", "high", "low", "open", "open_time_ms", "tick_count", "volume")

    def __init__(self, open_time_ms: int, price: Decimal) -> None:
        self.open_time_ms = open_time_ms
        self.open = price
        self.high = price
        self.low = price
        self.close = price
        self.volume = Decimal(0)
        self.tick_count = 0

    @classmethod
    def from_candle(cls, candle: Candle) -> _Bar:
        bar = cls(candle.open_time_ms, candle.open)
        bar.high, bar.low, bar.close = candle.high, candle.low, candle.close
        bar.volume, bar.tick_count = candle.volume, candle.tick_count
        return bar

    def add(self, price: Decimal, volume: Decimal) -> None:
        if price > self.high:
            self.high = price
        elif price < self.low:
            self.low = price
        self.close = price
        self.volume += volume
        self.tick_count += 1

    def freeze(self, symbol: str, interval: CandleInterval) -> Candle:
        return Candle(
            symbol,
            interval,
            self.open_time_ms,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            self.tick_count,
        )


class CandleAggregator:
    """Aggregate quotes into the current candle of every (symbol, interval)."""

    def __init__(self, intervals: Iterable[CandleInterval] = INTERVALS) -> None:
        self._intervals = tuple(intervals)
        self._position = {interval: index for index, interval in enumerate(self._intervals)}
        # Per tick this is the hot loop: plain ints beat enum lookups and hashing.
        self._buckets = [
            (index, interval.length_ms, WEEK_OFFSET_MS if interval is CandleInterval.W1 else 0)
            for index, interval in enumerate(self._intervals)
        ]
        self._bars: dict[str, list[_Bar | None]] = {}
        self._touched: set[tuple[str, int]] = set()
        self.late_ticks = 0

    @property
    def intervals(self) -> tuple[CandleInterval, ...]:
        """Return the aggregated intervals."""
        return self._intervals

    def _series(self, symbol: str) -> list[_Bar | None]:
        bars = self._bars.get(symbol)
        if bars is None:
            bars = self._bars[symbol] = [None] * len(self._intervals)
        return bars

    def restore(self, candle: Candle) -> None:
        """Resume ``candle`` as the current one of its series unless a newer one exists."""
        index = self._position.get(candle.interval)
        if index is None:
            return
        bars = self._series(candle.symbol)
        bar = bars[index]
        if bar is None or bar.open_time_ms < candle.open_time_ms:
            bars[index] = _Bar.from_candle(candle)

    def add(self, quote: Quote) -> list[Candle]:
        """Apply ``quote`` to every interval; return the candles it closed."""
        volume = quote.volume if quote.volume is not None else Decimal(1)
        price = (quote.bid + quote.ask) / 2
        return self.add_trade(quote.symbol, quote.time_ns // 1_000_000, price, volume)

    def add_trade(
        self, symbol: str, time_ms: int, price: Decimal, volume: Decimal
    ) -> list[Candle]:
        """Apply one trade (or quote mid) to every interval; return the candles it closed."""
        bars = self._series(symbol)
        closed: list[Candle] = []
        for index, length, offset in self._buckets:
            open_time = time_ms - (time_ms - offset) % length
            bar = bars[index]
            if bar is None or bar.open_time_ms < open_time:
                if bar is not None:
                    closed.append(bar.freeze(symbol, self._intervals[index]))
                bar = bars[index] = _Bar(open_time, price)
            elif bar.open_time_ms > open_time:
                # A tick older than the current bucket cannot change a closed candle.
                self.late_ticks += 1
                continue
            bar.add(price, volume)
            self._touched.add((symbol, index))
        return closed

    def take_touched(self) -> list[Candle]:
        """Return the in-progress candles changed since the last call, and forget them."""
        touched, self._touched = self._touched, set()
        candles: list[Candle] = []
        for symbol, index in touched:
            bar = self._bars[symbol][index]
            if bar is not None:
                candles.append(bar.freeze(symbol, self._intervals[index]))
        return candles

    def current(self, symbol: str, interval: CandleInterval) -> Candle | None:
        """Return the in-progress candle of ``symbol`` and ``interval``, if any."""
        index = self._position.get(interval)
        bars = self._bars.get(symbol)
        if index is None or bars is None:
            return None
        bar = bars[index]
        return None if bar is None else bar.freeze(symbol, interval)


def roll_up(candles: Iterable[Candle], interval: CandleInterval) -> list[Candle]:
    """Aggregate ascending candles of a finer interval into ``interval`` candles."""
    result: list[Candle] = []
    for candle in candles:
        open_time = interval.open_time(candle.open_time_ms)
        if result and result[-1].open_time_ms == open_time and result[-1].symbol == candle.symbol:
            result[-1] = result[-1].merge(candle)
        else:
            result.append(replace(candle, interval=interval, open_time_ms=open_time))
    return result
