"""Spot order types, time in force, statuses, liquidity and the status transition table."""

from __future__ import annotations

from enum import StrEnum


class SpotOrderType(StrEnum):
    """A limit order trades at its price or better; a market order at any price."""

    LIMIT = "LIMIT"
    MARKET = "MARKET"


class TimeInForce(StrEnum):
    """How long the unfilled part of an order lives."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class SpotOrderStatus(StrEnum):
    """Lifecycle state of a spot order."""

    OPEN = "OPEN"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


class TransferDirection(StrEnum):
    """Which way `TransferFunds` moves USD between the CFD balance and the spot wallet."""

    TO_SPOT = "TO_SPOT"
    TO_CFD = "TO_CFD"


class Liquidity(StrEnum):
    """Whether a fill's order rested in the book (maker) or arrived and took (taker)."""

    MAKER = "MAKER"
    TAKER = "TAKER"


# The only legal spot order status changes. An order is born OPEN; REJECTED is reachable only
# before any fill, and every terminal status is final.
SPOT_TRANSITIONS: dict[SpotOrderStatus, frozenset[SpotOrderStatus]] = {
    SpotOrderStatus.OPEN: frozenset(
        {
            SpotOrderStatus.PARTIALLY_FILLED,
            SpotOrderStatus.FILLED,
            SpotOrderStatus.CANCELLED,
            SpotOrderStatus.EXPIRED,
            SpotOrderStatus.REJECTED,
        }
    ),
    SpotOrderStatus.PARTIALLY_FILLED: frozenset(
        {
            SpotOrderStatus.PARTIALLY_FILLED,
            SpotOrderStatus.FILLED,
            SpotOrderStatus.CANCELLED,
            SpotOrderStatus.EXPIRED,
        }
    ),
    SpotOrderStatus.FILLED: frozenset(),
    SpotOrderStatus.CANCELLED: frozenset(),
    SpotOrderStatus.REJECTED: frozenset(),
    SpotOrderStatus.EXPIRED: frozenset(),
}


class IllegalSpotTransitionError(ValueError):
    """A spot order status change that the transition table does not allow."""


def check_spot_transition(current: SpotOrderStatus, target: SpotOrderStatus) -> SpotOrderStatus:
    """Return `target` if a spot order may move from `current` to it, else raise."""
    if target not in SPOT_TRANSITIONS[current]:
        raise IllegalSpotTransitionError(
            f"spot order status {current.value} cannot become {target.value}"
        )
    return target
