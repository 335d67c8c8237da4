"""The one interface every price source implements."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass

from market_svc.ticks import RawTick

# Called once per observation; must not block (the service validates and fans out inline).
TickSink = Callable[[RawTick], object]


@dataclass(slots=True)
class FeedStatus:
    """Connection health and error counters of a feed, for logs, health and tests."""

    connected: bool = False
    connects: int = 0
    disconnects: int = 0
    malformed_frames: int = 0
    stale_events: int = 0
    last_tick_ns: int | None = None


class Feed(abc.ABC):
    """A price source: ``run`` pushes raw ticks into a sink until it is cancelled."""

    name: str = ""

    def __init__(self) -> None:
        self.status = FeedStatus()

    @property
    def live(self) -> bool:
        """Tell whether the source is delivering now, so its last prices still stand."""
        return self.status.connected

    @abc.abstractmethod
    async def run(self, emit: TickSink) -> None:
        """Deliver ticks to ``emit`` until cancelled; recover from source failures inside."""


class FeedConfigError(ValueError):
    """A feed cannot start with the configuration it was given."""
