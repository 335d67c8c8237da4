"""The daily swap rollover: when it happens and which `ChargeSwaps` command it issues.

The core has no clock, so the runtime issues the rollover: at the configured UTC time of day
(CFD_ROLLOVER_TIME, default 21:00) it submits ``ChargeSwaps(day, moment, multiplier)``
through the sequencer and journal like any command, so replay charges exactly the same. The
multiplier is 3 when the rollover's UTC date falls on CFD_TRIPLE_SWAP_WEEKDAY (default
Wednesday, covering the weekend as brokers do) and 1 otherwise; every day of the week has a
rollover. The core charges a day once: an engine that was down across one or more rollovers
charges the latest of them once when it starts (the days it missed are not charged), and a
restart after a rollover charges nothing again. A rollover that would charge no position (none
held over it has a swap rate) is not issued at all, so an engine without swap rates journals
no rollovers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from engine_svc.core import ChargeSwaps
from mesh.config import ConfigError

NS_PER_MINUTE: Final = 60 * 1_000_000_000
NS_PER_DAY: Final = 24 * 60 * NS_PER_MINUTE
WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# 1970-01-01, day 0, was a Thursday.
_EPOCH_WEEKDAY: Final = 3
_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


@dataclass(frozen=True, slots=True)
class RolloverSchedule:
    """A rollover every day at `minute_of_day` UTC, triple on `triple_weekday` (Monday 0)."""

    minute_of_day: int = 21 * 60
    triple_weekday: int = 2

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RolloverSchedule:
        """Read CFD_ROLLOVER_TIME (``HH:MM`` UTC) and CFD_TRIPLE_SWAP_WEEKDAY (a day name)."""
        raw_time = env.get("CFD_ROLLOVER_TIME", "").strip() or "21:00"
        match = _TIME.fullmatch(raw_time)
        if match is None:
            raise ConfigError(f"CFD_ROLLOVER_TIME={raw_time!r} must be HH:MM (UTC), e.g. 21:00")
        raw_day = env.get("CFD_TRIPLE_SWAP_WEEKDAY", "").strip().lower() or "wednesday"
        if raw_day not in WEEKDAYS:
            raise ConfigError(
                f"CFD_TRIPLE_SWAP_WEEKDAY={raw_day!r} must be a day name, e.g. wednesday"
            )
        return cls(int(match[1]) * 60 + int(match[2]), WEEKDAYS.index(raw_day))

    @property
    def offset_ns(self) -> int:
        """Return the rollover's time of day in nanoseconds after midnight UTC."""
        return self.minute_of_day * NS_PER_MINUTE

    def latest(self, now_ns: int) -> tuple[int, int]:
        """Return the day (since 1970-01-01) and moment (epoch ns) of the last rollover at or
        before `now_ns`."""
        day = (now_ns - self.offset_ns) // NS_PER_DAY
        return day, day * NS_PER_DAY + self.offset_ns

    def next_after(self, now_ns: int) -> int:
        """Return the moment (epoch ns) of the first rollover after `now_ns`."""
        return self.latest(now_ns)[1] + NS_PER_DAY

    def multiplier(self, day: int) -> int:
        """Return how many daily swaps the rollover of `day` charges."""
        return 3 if (day + _EPOCH_WEEKDAY) % 7 == self.triple_weekday else 1

    def command(self, now_ns: int) -> ChargeSwaps:
        """Return the (unsequenced) command that charges the last rollover at or before
        `now_ns`."""
        day, moment = self.latest(now_ns)
        return ChargeSwaps(0, 0, day, moment, self.multiplier(day))
