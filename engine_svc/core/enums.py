"""Sides, order types and statuses, close reasons, balance change kinds, margin and position
modes."""

from __future__ import annotations

from enum import StrEnum


class Side(StrEnum):
    """Direction of a position or order."""

    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    """Kind of pending order: a limit fires at a better price, a stop at a worse one."""

    LIMIT = "LIMIT"
    STOP = "STOP"


class OrderStatus(StrEnum):
    """Lifecycle state of a pending order."""

    PENDING = "PENDING"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"


# The only legal order status transitions; every terminal status is final. PENDING to
# PENDING is a modification, which only a pending order allows.
ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset(
        {
            OrderStatus.PENDING,
            OrderStatus.FILLED,
            OrderStatus.CANCELLED,
            OrderStatus.EXPIRED,
            OrderStatus.REJECTED,
        }
    ),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.EXPIRED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
}


class IllegalTransitionError(ValueError):
    """An order status change that the transition table does not allow."""


def check_order_transition(current: OrderStatus, target: OrderStatus) -> OrderStatus:
    """Return `target` if an order may move from `current` to it, else raise."""
    if target not in ORDER_TRANSITIONS[current]:
        raise IllegalTransitionError(f"order status {current.value} cannot become {target.value}")
    return target


class CloseReason(StrEnum):
    """Why a position (or part of it) was closed."""

    USER = "USER"
    TAKE_PROFIT = "TAKE_PROFIT"
    STOP_LOSS = "STOP_LOSS"
    TRAILING_STOP = "TRAILING_STOP"
    LIQUIDATION = "LIQUIDATION"


class BalanceKind(StrEnum):
    """What moved money into or out of an account's free balance."""

    DEPOSIT = "DEPOSIT"
    MARGIN_RESERVED = "MARGIN_RESERVED"
    MARGIN_ADDED = "MARGIN_ADDED"
    CLOSE_SETTLED = "CLOSE_SETTLED"
    # USD moved to or from the account's spot wallet (`TransferFunds`).
    TRANSFER = "TRANSFER"
    # A commission on an open (a close's is netted in its CLOSE_SETTLED).
    COMMISSION = "COMMISSION"
    # A cross account's swap at a rollover (an isolated position's moves its margin).
    SWAP = "SWAP"


class MarginMode(StrEnum):
    """How an account's positions are margined, chosen when the account is created.

    ISOLATED debits each position's margin from the balance and liquidates each position on
    its own; CROSS reserves margin out of the free margin, leaves the balance to realised PnL
    and stops the whole account out by its margin level.
    """

    ISOLATED = "ISOLATED"
    CROSS = "CROSS"


class PositionMode(StrEnum):
    """How an account's trades on one symbol combine, chosen when the account is created.

    HEDGING keeps every open as a position of its own (several per symbol, both directions);
    NETTING keeps at most one position per symbol: a trade in its direction increases it, a
    trade in the other direction reduces, closes or reverses it.
    """

    HEDGING = "HEDGING"
    NETTING = "NETTING"
