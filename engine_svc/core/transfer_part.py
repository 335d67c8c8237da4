"""Cross-shard transfers: USD between a CFD balance on one shard and a spot wallet on shard 0.

A transfer has two sides, each one command on its own shard. `SendTransfer` debits the
account on the debit side and holds the transfer in flight; `ReceiveTransfer` credits the
other side once per transfer id however often it is delivered; `SettleTransfer` forgets the
in-flight transfer once the credit is confirmed. So each shard conserves
Σ account funds + house + Σ spot USD + spot USD fees = deposits + received - sent, and over
all shards Σ holdings + Σ sent - Σ received = Σ deposits: what is sent and not yet received
is the money in flight.
"""

from __future__ import annotations

from .checks import MAX_CLIENT_ORDER_ID, RejectionError, check_int, type_error
from .commands import ReceiveTransfer, SendTransfer, SettleTransfer
from .cross import review
from .enums import BalanceKind
from .events import BalanceChanged, Event
from .ledger import Ledger
from .money import MAX_TOTAL_MICROS, find_account, withdrawable
from .reasons import Reason
from .results import AnyEvent, Result
from .spot.commands import CreditWallet, DebitWallet
from .spot.enums import TransferDirection
from .spot.markets import QUOTE_ASSET
from .state import Account
from .units import MAX_MONEY_MICROS
from .views import TransferView

# Shard indexes a transfer may name.
MAX_SHARD = 1023


def _view(command: SendTransfer | ReceiveTransfer) -> TransferView:
    """Return the checked transfer a send or receive command names."""
    transfer_id = command.transfer_id
    if not isinstance(transfer_id, str):
        raise type_error("transfer_id", "str", transfer_id)
    if not 0 < len(transfer_id) <= MAX_CLIENT_ORDER_ID:
        raise RejectionError(
            Reason.VALIDATION_FAILED, "transfer_id must be 1-64 characters", "transfer_id"
        )
    if not isinstance(command.account_id, str):
        raise type_error("account_id", "str", command.account_id)
    amount = check_int(command.amount, "amount", 1, MAX_MONEY_MICROS)
    peer = check_int(command.peer_shard, "peer_shard", 0, MAX_SHARD)
    direction = command.direction
    if not isinstance(direction, TransferDirection):
        raise type_error("direction", "TransferDirection", direction)
    return TransferView(transfer_id, command.account_id, amount, direction, peer)


def _repeat(known: TransferView | None, view: TransferView) -> Result | None:
    """Return the first result of a repeated transfer id, or None for a new one."""
    if known is None:
        return None
    if known != view:
        raise RejectionError(
            Reason.IDEMPOTENCY_KEY_REUSED,
            f"transfer_id {view.transfer_id!r} was already used for another transfer",
            "transfer_id",
        )
    return Result(None, "", known, (), True)


def _move(
    ledger: Ledger, command: SendTransfer | ReceiveTransfer, account: Account, moved: int
) -> tuple[AnyEvent, ...]:
    """Move signed `moved` micro-USD on this shard's side of a transfer; return the events.

    The CFD side is the balance (debited TO_SPOT, credited TO_CFD), the spot side the wallet.
    """
    if (moved < 0) == (command.direction is TransferDirection.TO_SPOT):
        available = withdrawable(ledger, account)
        if -moved > available:
            raise RejectionError(
                Reason.INSUFFICIENT_BALANCE,
                f"amount {-moved} micro-USD exceeds the free balance {available}",
                "amount",
            )
        if account.balance + moved > MAX_TOTAL_MICROS:
            raise RejectionError(Reason.VALIDATION_FAILED, "balance would be too large", "amount")
        account.balance += moved
        events: list[Event] = [
            BalanceChanged(
                command.seq, command.ts, account.account_id, BalanceKind.TRANSFER, moved,
                account.balance, command.transfer_id,
            )
        ]  # fmt: skip
        if account.cross:
            review(ledger, account, command.seq, command.ts, events)
        return tuple(events)
    seq, ts, account_id = command.seq, command.ts, account.account_id
    leg = ledger.spot.apply(
        DebitWallet(seq, ts, account_id, QUOTE_ASSET, -moved)
        if moved < 0
        else CreditWallet(seq, ts, account_id, QUOTE_ASSET, moved)
    )
    if leg.reason is not None:
        raise RejectionError(leg.reason, leg.message, "amount")
    return leg.events


def send_transfer(ledger: Ledger, command: SendTransfer) -> Result:
    """Debit the sending side of a transfer and hold it in flight; return the transfer."""
    view = _view(command)
    duplicate = _repeat(ledger.transfers_out.get(view.transfer_id), view)
    if duplicate is not None:
        return duplicate
    events = _move(ledger, command, find_account(ledger, view.account_id), -view.amount)
    ledger.transfers_out[view.transfer_id] = view
    ledger.in_flight[view.transfer_id] = view
    ledger.transfers_sent += view.amount
    return Result(None, "", view, events, False)


def receive_transfer(ledger: Ledger, command: ReceiveTransfer) -> Result:
    """Credit the receiving side of a transfer once per transfer id; return the transfer."""
    view = _view(command)
    duplicate = _repeat(ledger.transfers_in.get(view.transfer_id), view)
    if duplicate is not None:
        return duplicate
    events = _move(ledger, command, find_account(ledger, view.account_id), view.amount)
    ledger.transfers_in[view.transfer_id] = view
    ledger.transfers_received += view.amount
    return Result(None, "", view, events, False)


def settle_transfer(ledger: Ledger, command: SettleTransfer) -> Result:
    """Forget an in-flight transfer whose credit is confirmed; return it.

    Settling a settled transfer is a duplicate; a transfer id this shard never sent is
    VALIDATION_FAILED.
    """
    transfer_id = command.transfer_id
    if not isinstance(transfer_id, str):
        raise type_error("transfer_id", "str", transfer_id)
    sent = ledger.transfers_out.get(transfer_id)
    if sent is None:
        raise RejectionError(
            Reason.VALIDATION_FAILED, f"no transfer {transfer_id[:64]!r} was sent", "transfer_id"
        )
    if ledger.in_flight.pop(transfer_id, None) is None:
        return Result(None, "", sent, (), True)
    return Result(None, "", sent, (), False)
