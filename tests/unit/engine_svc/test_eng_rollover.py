"""The rollover schedule: the day, moment and multiplier each time maps to."""

from __future__ import annotations

import datetime

import pytest

from engine_svc.config import EngineConfig
from engine_svc.core import ChargeSwaps
from engine_svc.rollover import NS_PER_DAY, RolloverSchedule
from mesh.config import ConfigError

NS = 1_000_000_000


def _ns(text: str) -> int:
    moment = datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.UTC)
    return int(moment.timestamp()) * NS


def _day(text: str) -> int:
    return (datetime.date.fromisoformat(text) - datetime.date(1970, 1, 1)).days


def test_the_default_is_21_00_utc_with_a_triple_swap_on_wednesday() -> None:
    schedule = EngineConfig.from_env({}).rollover
    assert schedule == RolloverSchedule(21 * 60, 2)
    # 2024-01-03 was a Wednesday.
    assert schedule.command(_ns("2024-01-03T21:00:00")) == ChargeSwaps(
        0, 0, _day("2024-01-03"), _ns("2024-01-03T21:00:00"), 3
    )
    # One second before it, the last rollover is Tuesday's.
    assert schedule.command(_ns("2024-01-03T20:59:59")) == ChargeSwaps(
        0, 0, _day("2024-01-02"), _ns("2024-01-02T21:00:00"), 1
    )
    assert schedule.next_after(_ns("2024-01-03T20:59:59")) == _ns("2024-01-03T21:00:00")
    assert schedule.next_after(_ns("2024-01-03T21:00:00")) == _ns("2024-01-04T21:00:00")
    assert [schedule.multiplier(_day(f"2024-01-0{d}")) for d in range(1, 8)] == [
        1, 1, 3, 1, 1, 1, 1,
    ]  # fmt: skip


def test_the_time_and_weekday_are_configurable() -> None:
    schedule = RolloverSchedule.from_env(
        {"CFD_ROLLOVER_TIME": "00:30", "CFD_TRIPLE_SWAP_WEEKDAY": "Friday"}
    )
    assert schedule == RolloverSchedule(30, 4)
    day, moment = schedule.latest(_ns("2024-01-05T00:29:00"))
    assert (day, moment) == (_day("2024-01-04"), _ns("2024-01-04T00:30:00"))
    assert schedule.multiplier(_day("2024-01-05")) == 3
    assert schedule.next_after(moment) - moment == NS_PER_DAY


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("CFD_ROLLOVER_TIME", "24:00"),
        ("CFD_ROLLOVER_TIME", "9:00"),
        ("CFD_ROLLOVER_TIME", "21:00:00"),
        ("CFD_TRIPLE_SWAP_WEEKDAY", "wed"),
        ("CFD_TRIPLE_SWAP_WEEKDAY", "3"),
    ],
)
def test_a_bad_setting_is_refused_with_its_name(var: str, value: str) -> None:
    with pytest.raises(ConfigError, match=var):
        EngineConfig.from_env({var: value})
