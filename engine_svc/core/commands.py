"""Immutable commands: everything that can change the core's state.

Every command carries the `seq` and `ts` (Unix epoch nanoseconds) that the sequencer assigned.
Prices and distances are tick counts, quantities lot counts, money micro-dollars (see
`engine_svc.core`). For the optional price fields of `ModifyPosition`, None leaves the value
unchanged and `CLEAR` (0) removes it.
"""

from __future__ import annotations

from typing import NamedTuple

from .enums import MarginMode, OrderType, PositionMode, Side
from .spot.commands import CancelSpotOrder, PlaceSpotOrder
from .spot.enums import TransferDirection

CLEAR = 0


# Margin call and stop-out levels of a cross account when its CreateAccount names none, in
# percent of margin level (the levels of Exness' standard accounts).
DEFAULT_MARGIN_CALL_LEVEL = 60
DEFAULT_STOP_OUT_LEVEL = 0


class CreateAccount(NamedTuple):
    """Open a trading account with an initial deposit; repeating it changes nothing.

    `margin_mode` and `position_mode` are fixed for the account's life; the two levels (whole
    percent of margin level, margin call >= stop-out) matter to a cross account only.
    """

    seq: int
    ts: int
    account_id: str
    initial_balance: int
    margin_mode: MarginMode = MarginMode.ISOLATED
    margin_call_level: int = DEFAULT_MARGIN_CALL_LEVEL
    stop_out_level: int = DEFAULT_STOP_OUT_LEVEL
    position_mode: PositionMode = PositionMode.HEDGING


class Deposit(NamedTuple):
    """Credit an account's balance (the only source of money)."""

    seq: int
    ts: int
    account_id: str
    amount: int
    client_order_id: str | None = None


class ApplyQuote(NamedTuple):
    """Apply a price tick, expire due orders and fire every trigger it crosses."""

    seq: int
    ts: int
    symbol: str
    bid: int
    ask: int


class OpenPosition(NamedTuple):
    """Open a market position sized by exactly one of `quantity` (lots) or `margin`."""

    seq: int
    ts: int
    account_id: str
    symbol: str
    side: Side
    leverage: int
    quantity: int | None = None
    margin: int | None = None
    expected_price: int | None = None
    max_slippage_bps: int | None = None
    take_profit: int | None = None
    stop_loss: int | None = None
    trailing_distance: int | None = None
    client_order_id: str | None = None


class ClosePosition(NamedTuple):
    """Close all of a position (`quantity` None) or that many lots of it."""

    seq: int
    ts: int
    account_id: str
    position_id: str
    quantity: int | None = None
    client_order_id: str | None = None


class AddMargin(NamedTuple):
    """Move money from the balance into a position's margin."""

    seq: int
    ts: int
    account_id: str
    position_id: str
    amount: int
    client_order_id: str | None = None


class ModifyPosition(NamedTuple):
    """Set (a value), clear (`CLEAR`) or keep (None) take profit, stop loss, trailing distance."""

    seq: int
    ts: int
    account_id: str
    position_id: str
    take_profit: int | None = None
    stop_loss: int | None = None
    trailing_distance: int | None = None
    client_order_id: str | None = None


class PlaceOrder(NamedTuple):
    """Place a pending limit or stop order sized by exactly one of `quantity` or `margin`."""

    seq: int
    ts: int
    account_id: str
    symbol: str
    side: Side
    order_type: OrderType
    trigger_price: int
    leverage: int
    quantity: int | None = None
    margin: int | None = None
    take_profit: int | None = None
    stop_loss: int | None = None
    trailing_distance: int | None = None
    expire_time: int | None = None
    client_order_id: str | None = None


class CancelOrder(NamedTuple):
    """Cancel a pending order."""

    seq: int
    ts: int
    account_id: str
    order_id: str
    client_order_id: str | None = None


class ModifyOrder(NamedTuple):
    """Change a pending order: None keeps a value, `CLEAR` removes a stop or the expire time.

    At most one of `quantity` and `margin` is given; it replaces the order's size.
    """

    seq: int
    ts: int
    account_id: str
    order_id: str
    trigger_price: int | None = None
    quantity: int | None = None
    margin: int | None = None
    take_profit: int | None = None
    stop_loss: int | None = None
    trailing_distance: int | None = None
    expire_time: int | None = None
    client_order_id: str | None = None


class ExpireOrders(NamedTuple):
    """Expire every pending order whose expire time is at or before `ts`."""

    seq: int
    ts: int


class ChargeSwaps(NamedTuple):
    """Charge the swap of every position held over the rollover of one UTC day.

    `rollover_day` is the date in days since 1970-01-01 and must be later than the last one
    charged (so a rollover is never charged twice); `rollover_time` is the rollover's moment
    (epoch nanoseconds): only positions opened at or before it are charged. `multiplier` is
    the number of daily swaps (3 on the triple swap weekday). The engine's runtime issues it;
    the core has no clock.
    """

    seq: int
    ts: int
    rollover_day: int
    rollover_time: int
    multiplier: int


class TransferFunds(NamedTuple):
    """Move USD between an account's CFD free balance and its spot wallet, atomically."""

    seq: int
    ts: int
    account_id: str
    amount: int
    direction: TransferDirection
    client_order_id: str | None = None


class DepositAsset(NamedTuple):
    """Credit a spot wallet with a base asset (in its market's lots): an internal admin
    command, the only source of base assets, as `Deposit` is of USD."""

    seq: int
    ts: int
    account_id: str
    asset: str
    amount: int
    client_order_id: str | None = None


class SendTransfer(NamedTuple):
    """Debit one side of a cross-shard transfer and hold it in flight until it is settled.

    TO_SPOT debits the free CFD balance (the account's home shard), TO_CFD the spot wallet's
    available USD (shard 0); `peer_shard` is the shard to credit. A repeat of `transfer_id`
    answers the first result and changes nothing.
    """

    seq: int
    ts: int
    account_id: str
    transfer_id: str
    amount: int
    direction: TransferDirection
    peer_shard: int


class ReceiveTransfer(NamedTuple):
    """Credit the other side of a cross-shard transfer, once per `transfer_id`.

    TO_SPOT credits the spot wallet (shard 0), TO_CFD the CFD balance (the home shard);
    `peer_shard` is the shard that debited it.
    """

    seq: int
    ts: int
    account_id: str
    transfer_id: str
    amount: int
    direction: TransferDirection
    peer_shard: int


class SettleTransfer(NamedTuple):
    """Forget an in-flight transfer once its credit is confirmed; repeating it is harmless."""

    seq: int
    ts: int
    transfer_id: str


Command = (
    CreateAccount
    | Deposit
    | ApplyQuote
    | OpenPosition
    | ClosePosition
    | AddMargin
    | ModifyPosition
    | PlaceOrder
    | CancelOrder
    | ModifyOrder
    | ExpireOrders
    | ChargeSwaps
    | TransferFunds
    | DepositAsset
    | PlaceSpotOrder
    | CancelSpotOrder
    | SendTransfer
    | ReceiveTransfer
    | SettleTransfer
)
