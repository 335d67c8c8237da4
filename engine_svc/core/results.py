"""The outcome of `Core.apply`: a payload and events, or a rejection reason."""

from __future__ import annotations

from typing import NamedTuple

from .events import Event
from .reasons import Reason
from .spot.events import SpotEvent
from .spot.views import BalanceView, SpotOrderView, SpotPlacement
from .views import (
    AccountSummary,
    ClosedPosition,
    OrderView,
    PositionView,
    QuoteView,
    RolloverView,
    TransferView,
)

Payload = (
    PositionView
    | ClosedPosition
    | OrderView
    | AccountSummary
    | QuoteView
    | RolloverView
    | SpotPlacement
    | SpotOrderView
    | BalanceView
    | TransferView
    | None
)
AnyEvent = Event | SpotEvent


class Result(NamedTuple):
    """Success (`reason` None: `payload` and `events`) or rejection (`reason`, `message`).

    `duplicate` is True when an idempotent retry returned the stored first result; its
    `events` are then empty because nothing happened. `field` names the command field a
    rejection is about ("" when it is about the command as a whole).
    """

    reason: Reason | None
    message: str
    payload: Payload
    events: tuple[AnyEvent, ...]
    duplicate: bool = False
    field: str = ""

    @property
    def ok(self) -> bool:
        """Return True when the command was accepted."""
        return self.reason is None


def accepted(payload: Payload, events: tuple[AnyEvent, ...]) -> Result:
    """Build a success result."""
    return Result(None, "", payload, events, False)


def rejected(reason: Reason, message: str, field: str = "") -> Result:
    """Build a rejection result; the command changed nothing."""
    return Result(reason, message, None, (), False, field)
