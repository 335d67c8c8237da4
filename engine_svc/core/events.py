"""Immutable past-tense events; each carries the producing command's `seq`, `ts`, account."""

from __future__ import annotations

from typing import NamedTuple

from .enums import BalanceKind
from .reasons import Reason
from .views import ClosedPosition, OrderView, PositionView


class AccountCreated(NamedTuple):
    """A trading account was opened with `initial_balance` micro-dollars."""

    seq: int
    ts: int
    account_id: str
    initial_balance: int


class BalanceChanged(NamedTuple):
    """The free balance moved by signed `amount` to `balance`; `ref_id` names the cause."""

    seq: int
    ts: int
    account_id: str
    kind: BalanceKind
    amount: int
    balance: int
    ref_id: str


class PositionOpened(NamedTuple):
    """A position was opened (by a market command, or by a pending order `order_id`)."""

    seq: int
    ts: int
    account_id: str
    position: PositionView


class PositionModified(NamedTuple):
    """Take profit, stop loss or trailing distance of a position changed."""

    seq: int
    ts: int
    account_id: str
    position: PositionView


class MarginAdded(NamedTuple):
    """`amount` was added to a position's margin; its liquidation price moved."""

    seq: int
    ts: int
    account_id: str
    amount: int
    position: PositionView


class PositionClosed(NamedTuple):
    """A position was closed fully or partially; `close.remaining` is what is left."""

    seq: int
    ts: int
    account_id: str
    close: ClosedPosition


class SwapCharged(NamedTuple):
    """A rollover charged (negative `amount`) or credited a position's swap.

    `rollover_day` is the UTC date of the rollover in days since 1970-01-01 and `multiplier`
    the number of daily swaps it charged. An isolated position's margin moved by `amount`; a
    cross account's balance did (with a `BalanceChanged` of kind SWAP).
    """

    seq: int
    ts: int
    account_id: str
    amount: int
    multiplier: int
    rollover_day: int
    position: PositionView


class OrderPlaced(NamedTuple):
    """A pending order was accepted."""

    seq: int
    ts: int
    account_id: str
    order: OrderView


class OrderModified(NamedTuple):
    """A pending order's trigger, size, stops or expire time changed; it is still pending."""

    seq: int
    ts: int
    account_id: str
    order: OrderView


class OrderFilled(NamedTuple):
    """A pending order triggered and opened `order.position_id`."""

    seq: int
    ts: int
    account_id: str
    order: OrderView


class OrderCancelled(NamedTuple):
    """A pending order was cancelled by its owner."""

    seq: int
    ts: int
    account_id: str
    order: OrderView


class OrderExpired(NamedTuple):
    """A pending order reached its expire time unfilled."""

    seq: int
    ts: int
    account_id: str
    order: OrderView


class OrderRejected(NamedTuple):
    """A pending order triggered but could not open a position (`reason`)."""

    seq: int
    ts: int
    account_id: str
    order: OrderView
    reason: Reason
    message: str


class MarginCallReached(NamedTuple):
    """A cross account's margin level fell to or below its margin call level.

    It is emitted once per crossing: again only after the level rose above the margin call
    level (or the account held no position) in between. `margin_level` is in millionths of
    a percent, rounded toward -infinity.
    """

    seq: int
    ts: int
    account_id: str
    margin_level: int
    equity: int
    used_margin: int


Event = (
    AccountCreated
    | BalanceChanged
    | PositionOpened
    | PositionModified
    | MarginAdded
    | PositionClosed
    | SwapCharged
    | OrderPlaced
    | OrderModified
    | OrderFilled
    | OrderCancelled
    | OrderExpired
    | OrderRejected
    | MarginCallReached
)
