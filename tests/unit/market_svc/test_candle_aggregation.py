from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from market_svc.candles import INTERVALS, Candle, CandleAggregator, CandleInterval, roll_up
from market_svc.ticks import Quote

MINUTE = 60_000


def D(*values: str) -> tuple[Decimal, ...]:
    return tuple(Decimal(v) for v in values)


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def tick(time_ms: int, mid: str, volume: str | None = None, symbol: str = "BTCUSD") -> Quote:
    value = Decimal(mid)
    return Quote(
        symbol,
        value - Decimal("0.5"),
        value + Decimal("0.5"),
        time_ms * 1_000_000,
        time_ms,
        None if volume is None else Decimal(volume),
    )


@pytest.mark.parametrize(
    ("interval", "at", "opens"),
    [
        (CandleInterval.M1, "2026-11-22T10:17:42", "2026-11-22T10:17:00"),
        (CandleInterval.M5, "2026-11-22T10:17:42", "2026-11-22T10:15:00"),
        (CandleInterval.M15, "2026-11-22T10:17:42", "2026-11-22T10:15:00"),
        (CandleInterval.H1, "2026-11-22T10:17:42", "2026-11-22T10:00:00"),
        (CandleInterval.H4, "2026-11-22T10:17:42", "2026-11-22T08:00:00"),
        (CandleInterval.D1, "2026-11-22T10:17:42", "2026-11-22T00:00:00"),
        # 2026-11-22 is a Sunday: its week began on Monday the 16th.
        (CandleInterval.W1, "2026-11-22T10:17:42", "2026-11-16T00:00:00"),
        (CandleInterval.W1, "2026-11-23T00:00:00", "2026-11-23T00:00:00"),
    ],
)
def test_buckets_are_aligned_on_utc(interval: CandleInterval, at: str, opens: str) -> None:
    assert interval.open_time(ms(at)) == ms(opens)


def test_exact_ohlc_of_a_known_sequence_across_boundaries_for_every_interval() -> None:
    aggregator = CandleAggregator()
    # Sunday 23:59 -> Monday 00:00 crosses every boundary at once, including the week.
    sequence = [
        ("2026-11-22T23:58:10", "100"),
        ("2026-11-22T23:59:05", "103"),
        ("2026-11-22T23:59:30", "99"),
        ("2026-11-22T23:59:59", "101"),
        ("2026-11-23T00:00:00", "102"),
        ("2026-11-23T00:00:30", "98"),
        ("2026-11-23T00:01:00", "104"),
    ]
    closed: list[Candle] = []
    for at, mid in sequence:
        closed.extend(aggregator.add(tick(ms(at), mid)))

    def ohlc(candle: Candle | None) -> tuple[Decimal, ...]:
        assert candle is not None
        count = Decimal(candle.tick_count)
        return (candle.open, candle.high, candle.low, candle.close, candle.volume, count)

    closed_by = {(c.interval, c.open_time_ms): c for c in closed}
    # One-minute candles: 23:58, 23:59 and 00:00 closed, 00:01 in progress.
    assert ohlc(closed_by[CandleInterval.M1, ms("2026-11-22T23:58:00")]) == D(
        "100",
        "100",
        "100",
        "100",
        "1",
        "1",
    )
    assert ohlc(closed_by[CandleInterval.M1, ms("2026-11-22T23:59:00")]) == D(
        "103",
        "103",
        "99",
        "101",
        "3",
        "3",
    )
    assert ohlc(closed_by[CandleInterval.M1, ms("2026-11-23T00:00:00")]) == D(
        "102",
        "102",
        "98",
        "98",
        "2",
        "2",
    )
    assert ohlc(aggregator.current("BTCUSD", CandleInterval.M1)) == D(
        "104",
        "104",
        "104",
        "104",
        "1",
        "1",
    )
    # Every longer interval: the old bucket holds the first four ticks, the new one the rest.
    for interval in INTERVALS[1:]:
        old = closed_by[interval, interval.open_time(ms("2026-11-22T23:59:59"))]
        assert ohlc(old) == D("100", "103", "99", "101", "4", "4"), interval
        assert ohlc(aggregator.current("BTCUSD", interval)) == D(
            "102",
            "104",
            "98",
            "104",
            "3",
            "3",
        ), interval
    assert len(closed) == 3 + len(INTERVALS) - 1


def test_reported_volume_replaces_the_tick_count() -> None:
    aggregator = CandleAggregator([CandleInterval.M1])
    aggregator.add(tick(0, "100", "0.25"))
    aggregator.add(tick(1_000, "101", "1.5"))
    current = aggregator.current("BTCUSD", CandleInterval.M1)
    assert current is not None
    assert (current.volume, current.tick_count) == (Decimal("1.75"), 2)


def test_mid_prices_keep_half_ticks() -> None:
    aggregator = CandleAggregator([CandleInterval.M1])
    aggregator.add(Quote("BTCUSD", Decimal("100.01"), Decimal("100.02"), 0, 1))
    current = aggregator.current("BTCUSD", CandleInterval.M1)
    assert current is not None and current.close == Decimal("100.015")


def test_late_ticks_do_not_touch_closed_candles() -> None:
    aggregator = CandleAggregator([CandleInterval.M1])
    aggregator.add(tick(2 * MINUTE, "100"))
    assert aggregator.add(tick(MINUTE, "50")) == []
    assert aggregator.late_ticks == 1
    current = aggregator.current("BTCUSD", CandleInterval.M1)
    assert current is not None and current.low == Decimal(100)


def test_restore_resumes_the_stored_candle() -> None:
    aggregator = CandleAggregator([CandleInterval.M1])
    stored = Candle(
        "BTCUSD",
        CandleInterval.M1,
        0,
        Decimal(1),
        Decimal(5),
        Decimal(1),
        Decimal(2),
        Decimal(7),
        7,
    )
    aggregator.restore(stored)
    aggregator.add(tick(30_000, "9"))
    current = aggregator.current("BTCUSD", CandleInterval.M1)
    assert current == Candle(
        "BTCUSD",
        CandleInterval.M1,
        0,
        Decimal(1),
        Decimal(9),
        Decimal(1),
        Decimal(9),
        Decimal(8),
        8,
    )


def test_touched_candles_are_reported_once() -> None:
    aggregator = CandleAggregator([CandleInterval.M1, CandleInterval.H1])
    aggregator.add(tick(0, "100"))
    assert {c.interval for c in aggregator.take_touched()} == {CandleInterval.M1, CandleInterval.H1}
    assert aggregator.take_touched() == []


@given(
    st.lists(st.tuples(st.integers(0, 20_000), st.integers(1, 10_000)), min_size=1, max_size=200)
)
def test_rolling_up_minutes_equals_aggregating_directly(steps: list[tuple[int, int]]) -> None:
    direct = CandleAggregator(INTERVALS)
    minutes: list[Candle] = []
    hours: list[Candle] = []
    time_ms = ms("2026-11-20T22:00:00")
    for gap_s, price in steps:
        time_ms += gap_s * 1000
        for candle in direct.add(tick(time_ms, str(price))):
            (minutes if candle.interval is CandleInterval.M1 else hours).append(candle)
    minutes.append(direct.current("BTCUSD", CandleInterval.M1))  # type: ignore[arg-type]
    for interval in INTERVALS[1:]:
        expected = [c for c in hours if c.interval is interval]
        expected.append(direct.current("BTCUSD", interval))  # type: ignore[arg-type]
        assert roll_up(minutes, interval) == expected
