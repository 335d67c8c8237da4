"""Immutable read models the core hands out: positions, closes, orders, accounts, quotes.

Figures use the core's scales (ticks, lots, micro-dollars); times are epoch nanoseconds.
"""

from __future__ import annotations

from typing import NamedTuple

from .enums import CloseReason, MarginMode, OrderStatus, OrderType, PositionMode, Side
from .reasons import Reason
from .spot.enums import TransferDirection


class PositionView(NamedTuple):
    """An open position; `unrealized_pnl` is None while its symbol has no quote.

    `swap` is the signed swap its rollovers charged (negative) or credited (positive) so far
    and `commission` its opening commission, both less the shares partial closes took.
    """

    id: str
    account_id: str
    symbol: str
    side: Side
    quantity: int
    leverage: int
    entry_price: int
    margin: int
    maintenance_margin: int
    liquidation_price: int
    take_profit: int | None
    stop_loss: int | None
    trailing_distance: int | None
    trailing_stop_price: int | None
    unrealized_pnl: int | None
    open_seq: int
    open_time: int
    client_order_id: str | None
    order_id: str | None
    swap: int = 0
    commission: int = 0


class ClosedPosition(NamedTuple):
    """One full or partial close: a history entry.

    `realized_pnl` is the raw price PnL of the closed quantity; `house_absorbed` is the part of
    a loss that the house bore, so the balance was credited
    `credited = released_margin + realized_pnl + house_absorbed` (never negative) on an
    isolated account, `credited = realized_pnl + house_absorbed` on a cross account (whose
    margin never left the balance, and whose negative balance the house absorbs when its last
    position closes), each less the commission of this close.
    `remaining` is the position after a partial close, None after a full close.
    `swap` is the closed quantity's share of the swap the position's rollovers already settled
    (signed); `commission` is its share of the opening commission plus this close's
    commission. The shares are pro rata, rounded toward zero; a full close takes the rest, so
    a position's history entries add up to all it was charged.
    """

    position_id: str
    account_id: str
    symbol: str
    side: Side
    leverage: int
    entry_price: int
    closed_quantity: int
    close_price: int
    released_margin: int
    realized_pnl: int
    house_absorbed: int
    credited: int
    reason: CloseReason
    open_time: int
    close_time: int
    close_seq: int
    position_client_order_id: str | None
    remaining: PositionView | None
    swap: int = 0
    commission: int = 0


class OrderView(NamedTuple):
    """A pending order, or one that just left the book (with its final status)."""

    id: str
    account_id: str
    symbol: str
    side: Side
    order_type: OrderType
    trigger_price: int
    leverage: int
    quantity: int | None
    margin: int | None
    take_profit: int | None
    stop_loss: int | None
    trailing_distance: int | None
    expire_time: int | None
    status: OrderStatus
    position_id: str | None
    reject_reason: Reason | None
    create_seq: int
    create_time: int
    client_order_id: str | None


class AccountSummary(NamedTuple):
    """API.md account figures in micro-dollars.

    `margin_level` is equity / used margin x 100 in millionths of a percent, rounded toward
    -infinity, None without open positions (format it with `format_scaled(v, 6)`). A cross
    account also has its levels (whole percent), `stop_out_distance` (the equity it can lose
    before the stop-out, see `money.stop_out_distance`) and `margin_call` (a margin call is
    in effect); an isolated account has levels 0 and no distance. `position_mode` is how its
    trades on one symbol combine.
    """

    account_id: str
    balance: int
    used_margin: int
    unrealized_pnl: int
    equity: int
    free_margin: int
    margin_level: int | None
    open_positions: int
    pending_orders: int
    margin_mode: MarginMode = MarginMode.ISOLATED
    margin_call_level: int = 0
    stop_out_level: int = 0
    stop_out_distance: int | None = None
    margin_call: bool = False
    position_mode: PositionMode = PositionMode.HEDGING
    swap: int = 0
    commission: int = 0


class QuoteView(NamedTuple):
    """The last quote applied for a symbol."""

    symbol: str
    bid: int
    ask: int
    seq: int
    ts: int


class RolloverView(NamedTuple):
    """The outcome of a `ChargeSwaps`: the day and multiplier charged, how many positions had a
    nonzero swap and their signed total (negative: the house received it)."""

    rollover_day: int
    multiplier: int
    positions: int
    total: int


class CoreStats(NamedTuple):
    """Counts for the service's stats RPC.

    Money conserves per shard as accounts' funds + house + spot wallets + spot fees =
    total deposits + transfers received - transfers sent; `transfers_sent` includes the
    `transfers_in_flight` not settled yet.
    """

    last_seq: int
    accounts: int
    open_positions: int
    pending_orders: int
    house_balance: int
    total_deposits: int
    spot_wallets: int = 0
    spot_fees: int = 0
    transfers_sent: int = 0
    transfers_received: int = 0
    transfers_in_flight: int = 0


class TransferView(NamedTuple):
    """One side of a cross-shard transfer as the command that recorded it named it.

    `peer_shard` is the other side: the shard credited (sent) or debited (received).
    """

    transfer_id: str
    account_id: str
    amount: int
    direction: TransferDirection
    peer_shard: int
