"""The spot part of the core: spot orders and the transfers between CFD balance and wallet.

`Core.apply` routes `PlaceSpotOrder` and `CancelSpotOrder` here after its one
client_order_id check, so a key is unique per account across CFD and spot commands; the
`SpotExchange` then stores no results of its own. `TransferFunds` moves USD between the
account's free CFD balance and its spot wallet in one command: the spot exchange counts it
as credited or debited, so conservation over both parts reads
Σ account funds + house balance + Σ spot USD + spot USD fees = total deposits (funds: see
`money`). A cross account can move out its balance up to its free margin.
"""

from __future__ import annotations

from .checks import RejectionError, check_int
from .commands import DepositAsset, TransferFunds
from .enums import BalanceKind
from .events import BalanceChanged
from .ledger import Ledger
from .money import MAX_TOTAL_MICROS, summary, withdrawable
from .reasons import Reason
from .results import Result
from .spot.commands import CancelSpotOrder, CreditWallet, DebitWallet, PlaceSpotOrder
from .spot.enums import TransferDirection
from .spot.markets import QUOTE_ASSET
from .spot.results import SpotResult
from .state import Account
from .units import MAX_MONEY_MICROS


def _core_result(result: SpotResult) -> Result:
    """Return a spot result as a core result; raise a rejection so nothing is stored."""
    if result.reason is not None:
        raise RejectionError(result.reason, result.message)
    return Result(None, "", result.payload, result.events, result.duplicate)


def place_spot_order(ledger: Ledger, command: PlaceSpotOrder, account: Account) -> Result:
    """Place a spot order for an existing account."""
    return _core_result(ledger.spot.apply(command))


def cancel_spot_order(ledger: Ledger, command: CancelSpotOrder, account: Account) -> Result:
    """Cancel an own open spot order; another account's order is ORDER_NOT_FOUND."""
    return _core_result(ledger.spot.apply(command))


def deposit_asset(ledger: Ledger, command: DepositAsset, account: Account) -> Result:
    """Credit a base asset to an existing account's spot wallet; return the new balance."""
    if command.asset == QUOTE_ASSET:
        raise RejectionError(
            Reason.VALIDATION_FAILED, "USD enters the spot wallet by TransferFunds", "asset"
        )
    credit = CreditWallet(
        command.seq, command.ts, account.account_id, command.asset, command.amount
    )
    return _core_result(ledger.spot.apply(credit))


def transfer_funds(ledger: Ledger, command: TransferFunds, account: Account) -> Result:
    """Move USD between the free CFD balance and the spot wallet; return the CFD summary."""
    amount = check_int(command.amount, "amount", 1, MAX_MONEY_MICROS)
    direction = command.direction
    spot = ledger.spot
    if direction is TransferDirection.TO_SPOT:
        available = withdrawable(ledger, account)
        if amount > available:
            raise RejectionError(
                Reason.INSUFFICIENT_BALANCE,
                f"amount {amount} micro-USD exceeds the free balance {available}",
                "amount",
            )
        moved = -amount
        leg = spot.apply(
            CreditWallet(command.seq, command.ts, account.account_id, QUOTE_ASSET, amount)
        )
    elif direction is TransferDirection.TO_CFD:
        if account.balance + amount > MAX_TOTAL_MICROS:
            raise RejectionError(Reason.VALIDATION_FAILED, "balance would be too large", "amount")
        moved = amount
        leg = spot.apply(
            DebitWallet(command.seq, command.ts, account.account_id, QUOTE_ASSET, amount)
        )
    else:
        raise TypeError(f"direction must be a TransferDirection, not {type(direction).__name__}")
    if leg.reason is not None:
        # The spot leg changed nothing, and the CFD leg has not run yet.
        raise RejectionError(leg.reason, leg.message, "amount")
    account.balance += moved
    event = BalanceChanged(
        seq=command.seq,
        ts=command.ts,
        account_id=account.account_id,
        kind=BalanceKind.TRANSFER,
        amount=moved,
        balance=account.balance,
        ref_id="",
    )
    return Result(None, "", summary(ledger, account), (event, *leg.events), False)
