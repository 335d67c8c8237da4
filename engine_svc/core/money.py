"""Where money moves: accounts, deposits, margin and the settlement of every close.

Every change of an account's balance or used margin and of the house balance is in this
module. Conservation holds after every command: the sum over accounts of balance plus used
margin, plus the house balance, equals the total deposits.
"""

from __future__ import annotations

from .checks import RejectionError, check_account_id, check_int, type_error
from .commands import CreateAccount, Deposit
from .decimals import format_money
from .enums import BalanceKind
from .events import AccountCreated, BalanceChanged
from .ledger import Ledger
from .reasons import Reason
from .results import Result, accepted
from .state import Account, Position
from .units import MAX_MONEY_MICROS, floor_div
from .views import AccountSummary

# Bound on balances and total deposits: far from any practical sum, far below int64 limits.
MAX_TOTAL_MICROS = MAX_MONEY_MICROS * 1000


def find_account(ledger: Ledger, account_id: object) -> Account:
    """Return an existing account; reject an unknown id."""
    if not isinstance(account_id, str):
        raise type_error("account_id", "str", account_id)
    account = ledger.accounts.get(account_id)
    if account is None:
        raise RejectionError(
            Reason.ACCOUNT_NOT_FOUND, f"account {account_id!r} not found", "account_id"
        )
    return account


def create_account(ledger: Ledger, command: CreateAccount) -> Result:
    """Open an account with its initial deposit; a repeat returns its summary unchanged."""
    account_id = check_account_id(command.account_id)
    existing = ledger.accounts.get(account_id)
    if existing is not None:
        return Result(None, "", summary(ledger, existing), (), True)
    amount = check_int(command.initial_balance, "initial_balance", 0, MAX_MONEY_MICROS)
    if ledger.total_deposits + amount > MAX_TOTAL_MICROS:
        raise RejectionError(
            Reason.VALIDATION_FAILED, "total deposits would be too large", "initial_balance"
        )
    account = Account(account_id, amount)
    ledger.accounts[account_id] = account
    ledger.total_deposits += amount
    event = AccountCreated(
        seq=command.seq, ts=command.ts, account_id=account_id, initial_balance=amount
    )
    return accepted(summary(ledger, account), (event,))


def deposit(ledger: Ledger, command: Deposit, account: Account) -> Result:
    """Credit an account's balance: with the initial deposit, the only source of money."""
    amount = check_int(command.amount, "amount", 1, MAX_MONEY_MICROS)
    if account.balance + amount > MAX_TOTAL_MICROS:
        raise RejectionError(Reason.VALIDATION_FAILED, "balance would be too large", "amount")
    account.balance += amount
    ledger.total_deposits += amount
    event = BalanceChanged(
        seq=command.seq,
        ts=command.ts,
        account_id=account.account_id,
        kind=BalanceKind.DEPOSIT,
        amount=amount,
        balance=account.balance,
        ref_id="",
    )
    return accepted(summary(ledger, account), (event,))


def check_affordable(account: Account, margin: int, field: str) -> None:
    """Reject a margin the free balance cannot pay."""
    if margin > account.balance:
        raise RejectionError(
            Reason.INSUFFICIENT_BALANCE,
            f"margin {format_money(margin)} USD exceeds the free balance "
            f"{format_money(account.balance)} USD",
            field,
        )


def reserve_margin(account: Account, margin: int) -> None:
    """Move an affordable margin from the free balance into used margin."""
    account.balance -= margin
    account.used_margin += margin


def move_to_margin(account: Account, position: Position, amount: int) -> None:
    """Move an amount from the free balance into a position's margin, or reject it."""
    if amount > account.balance:
        raise RejectionError(
            Reason.INSUFFICIENT_BALANCE,
            f"amount {format_money(amount)} USD exceeds the free balance "
            f"{format_money(account.balance)} USD",
            "amount",
        )
    reserve_margin(account, amount)
    position.margin += amount


def settle_close(
    ledger: Ledger, account: Account, position: Position, lots: int, pnl: int
) -> tuple[int, int, int]:
    """Settle closing `lots` of a position with price PnL `pnl`.

    Release the closed part's margin (rounded down on a partial close; a full close releases
    all), credit released margin + PnL but never less than 0, and book the rest to the house.
    Return (released, credited, house_absorbed); the position's own figures are the caller's.
    """
    if lots == position.quantity:
        released = position.margin
    else:
        released = floor_div(position.margin * lots, position.quantity)
    credited = released + pnl
    absorbed = 0
    if credited < 0:
        absorbed = -credited
        credited = 0
    account.used_margin -= released
    account.balance += credited
    ledger.house_balance += released - credited
    return released, credited, absorbed


def unrealized(ledger: Ledger, position: Position) -> int | None:
    """Return a position's PnL at the last quote (None without a quote)."""
    quote = ledger.quotes.get(position.symbol)
    if quote is None:
        return None
    move = quote.bid - position.entry if position.is_buy else position.entry - quote.ask
    return ledger.instruments[position.symbol].pnl_floor_micros(move, position.quantity)


def summary(ledger: Ledger, account: Account) -> AccountSummary:
    """Return the API.md account figures at the last quotes."""
    total = 0
    for position in account.positions.values():
        pnl = unrealized(ledger, position)
        if pnl is not None:
            total += pnl
    used = account.used_margin
    equity = account.balance + used + total
    level = floor_div(equity * 100_000_000, used) if account.positions and used > 0 else None
    return AccountSummary(
        account_id=account.account_id,
        balance=account.balance,
        used_margin=used,
        unrealized_pnl=total,
        equity=equity,
        free_margin=account.balance,
        margin_level=level,
        open_positions=len(account.positions),
        pending_orders=len(account.orders),
    )
