"""The outcome of `SpotExchange.apply`: a payload and events, or a rejection reason."""

from __future__ import annotations

from typing import NamedTuple

from ..reasons import Reason
from .events import SpotEvent
from .views import BalanceView, SpotOrderView, SpotPlacement

SpotPayload = SpotPlacement | SpotOrderView | BalanceView | None


class SpotResult(NamedTuple):
    """Success (`reason` None) or rejection (`reason`, `message`; nothing changed).

    A rejected placement carries the order with status REJECTED as its payload. `duplicate`
    is True when a repeated client_order_id returned the stored first result (no events).
    """

    reason: Reason | None
    message: str
    payload: SpotPayload
    events: tuple[SpotEvent, ...]
    duplicate: bool = False

    @property
    def ok(self) -> bool:
        """Return True when the command was accepted."""
        return self.reason is None
