"""Where money moves: accounts, deposits, margin and the settlement of every close.

Every change of an account's balance or used margin and of the house balance is in this
module. Conservation holds after every command: the sum over accounts of their funds (an
isolated account's balance plus used margin, a cross account's balance alone, since its used
margin is a reservation out of the balance), plus the house balance, equals the total
deposits. The house is the counterparty of every realised PnL in both modes.
"""

from __future__ import annotations

from .checks import RejectionError, check_account_id, check_int, type_error
from .commands import CreateAccount, Deposit
from .decimals import format_money
from .enums import BalanceKind, MarginMode, PositionMode
from .events import AccountCreated, BalanceChanged
from .ledger import Ledger
from .reasons import Reason
from .results import Result, accepted
from .state import Account, Position
from .units import MAX_MONEY_MICROS, MICROS_PER_USD, floor_div
from .views import AccountSummary

# Bound on balances and total deposits: far from any practical sum, far below int64 limits.
MAX_TOTAL_MICROS = MAX_MONEY_MICROS * 1000
# Highest margin call or stop-out level, in percent.
MAX_LEVEL_PERCENT = 10_000
# Margin level is reported in millionths of a percent: equity x 100 x 10^6 / used margin.
_LEVEL_SCALE = 100 * MICROS_PER_USD


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
    mode = command.margin_mode
    if not isinstance(mode, MarginMode):
        raise type_error("margin_mode", "MarginMode", mode)
    position_mode = command.position_mode
    if not isinstance(position_mode, PositionMode):
        raise type_error("position_mode", "PositionMode", position_mode)
    call = check_int(command.margin_call_level, "margin_call_level", 0, MAX_LEVEL_PERCENT)
    stop = check_int(command.stop_out_level, "stop_out_level", 0, MAX_LEVEL_PERCENT)
    if stop > call:
        raise RejectionError(
            Reason.VALIDATION_FAILED,
            "stop_out_level must not exceed margin_call_level",
            "stop_out_level",
        )
    if ledger.total_deposits + amount > MAX_TOTAL_MICROS:
        raise RejectionError(
            Reason.VALIDATION_FAILED, "total deposits would be too large", "initial_balance"
        )
    account = Account(account_id, amount)
    ledger.accounts[account_id] = account
    account.netting = position_mode is PositionMode.NETTING
    if mode is MarginMode.CROSS:
        account.cross = True
        account.margin_call_level = call
        account.stop_out_level = stop
        account.number = command.seq
        ledger.cross_accounts[command.seq] = account
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


def check_affordable(
    ledger: Ledger,
    account: Account,
    margin: int,
    field: str,
    free: int | None = None,
    commission: int = 0,
) -> None:
    """Reject a margin (plus the opening commission) that the free balance (isolated) or free
    margin (cross) cannot pay; `free` replaces the account's current figure
    (`free_after_close`)."""
    if free is None:
        free = (
            cross_equity(ledger, account) - account.used_margin
            if account.cross
            else account.balance
        )
    needed = margin + commission
    if needed > free:
        what = f"margin {format_money(margin)} USD"
        if commission:
            what += f" plus commission {format_money(commission)} USD"
        kind = "free margin" if account.cross else "free balance"
        raise RejectionError(
            Reason.INSUFFICIENT_BALANCE,
            f"{what} exceeds the {kind} {format_money(free)} USD",
            field,
        )


def free_after_close(ledger: Ledger, account: Account, position: Position, pnl: int) -> int:
    """Return the free balance (isolated) or free margin (cross) the account would have after
    a full close of `position` with price PnL `pnl`, without closing it (as `settle_close`
    and `protect_balance` would settle it)."""
    if not account.cross:
        return account.balance + max(0, position.margin + pnl)
    balance = account.balance + pnl
    if len(account.positions) == 1:
        return max(0, balance)
    equity = balance
    for other in account.positions.values():
        if other is not position:
            equity += unrealized(ledger, other) or 0
    return equity - (account.used_margin - position.margin)


def reserve_margin(account: Account, margin: int) -> None:
    """Move an affordable margin into used margin: out of the balance when isolated; a cross
    account's balance does not change."""
    if not account.cross:
        account.balance -= margin
    account.used_margin += margin


def withdrawable(ledger: Ledger, account: Account) -> int:
    """Return what may leave the account: the free balance (isolated), or the balance up to
    the free margin (cross), never below 0."""
    if not account.cross:
        return account.balance
    free = cross_equity(ledger, account) - account.used_margin
    return max(0, min(account.balance, free))


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
    ledger: Ledger, account: Account, position: Position, lots: int, pnl: int,
    commission: int = 0,
) -> tuple[int, int, int]:  # fmt: skip
    """Settle closing `lots` of a position with price PnL `pnl` and close `commission`.

    Release the closed part's margin (rounded down on a partial close; a full close releases
    all). Isolated: credit released margin + PnL - commission but never less than 0, and book
    the rest to the house. Cross: credit the PnL - commission, whatever its sign (the
    released margin never left the balance); `protect_balance` applies the account-level
    floor once the account is flat. Return (released, credited, house_absorbed); the
    position's own figures are the caller's.
    """
    if lots == position.quantity:
        released = position.margin
    else:
        released = floor_div(position.margin * lots, position.quantity)
    if account.cross:
        account.used_margin -= released
        account.balance += pnl - commission
        ledger.house_balance -= pnl - commission
        return released, pnl - commission, 0
    credited = released + pnl - commission
    absorbed = 0
    if credited < 0:
        absorbed = -credited
        credited = 0
    account.used_margin -= released
    account.balance += credited
    ledger.house_balance += released - credited
    return released, credited, absorbed


def charge_commission(ledger: Ledger, account: Account, commission: int) -> None:
    """Move an opening commission from the account's balance to the house."""
    account.balance -= commission
    ledger.house_balance += commission


def protect_balance(ledger: Ledger, account: Account) -> int:
    """Book a flat cross account's negative balance to the house; return the amount.

    Negative balance protection at account level: while positions are open their PnL may
    still cover a negative balance, so the floor applies once the last one closed.
    """
    if account.positions or account.balance >= 0:
        return 0
    absorbed = -account.balance
    account.balance = 0
    ledger.house_balance -= absorbed
    return absorbed


def cross_equity(ledger: Ledger, account: Account) -> int:
    """Return a cross account's equity: balance + unrealized PnL at the last quotes."""
    equity = account.balance
    for position in account.positions.values():
        pnl = unrealized(ledger, position)
        if pnl is not None:
            equity += pnl
    return equity


def margin_level(equity: int, used: int) -> int:
    """Return equity / used margin x 100 in millionths of a percent, rounded toward -inf."""
    return floor_div(equity * _LEVEL_SCALE, used)


def stop_out_distance(account: Account, equity: int) -> int:
    """Return how much equity a cross account can lose before it is stopped out.

    Stop-out fires when equity x 100 <= stop-out level x used margin, so the smallest loss
    that reaches it is equity - floor(level x used / 100); 0 or less means at stop-out.
    """
    return equity - floor_div(account.stop_out_level * account.used_margin, 100)


def unrealized(ledger: Ledger, position: Position) -> int | None:
    """Return a position's PnL at the last quote (None without a quote)."""
    quote = ledger.quotes.get(position.symbol)
    if quote is None:
        return None
    move = quote.bid - position.entry if position.is_buy else position.entry - quote.ask
    return ledger.instruments[position.symbol].pnl_floor_micros(move, position.quantity)


def summary(ledger: Ledger, account: Account) -> AccountSummary:
    """Return the API.md account figures at the last quotes."""
    total = swap = commission = 0
    for position in account.positions.values():
        pnl = unrealized(ledger, position)
        if pnl is not None:
            total += pnl
        swap += position.swap
        commission += position.commission
    used = account.used_margin
    level: int | None = None
    if account.cross:
        equity = account.balance + total
        level = margin_level(equity, used) if account.positions else None
        return AccountSummary(
            account_id=account.account_id,
            balance=account.balance,
            used_margin=used,
            unrealized_pnl=total,
            equity=equity,
            free_margin=equity - used,
            margin_level=level,
            open_positions=len(account.positions),
            pending_orders=len(account.orders),
            margin_mode=MarginMode.CROSS,
            margin_call_level=account.margin_call_level,
            stop_out_level=account.stop_out_level,
            stop_out_distance=stop_out_distance(account, equity),
            margin_call=account.margin_call,
            position_mode=_position_mode(account),
            swap=swap,
            commission=commission,
        )
    equity = account.balance + used + total
    if account.positions and used > 0:
        level = margin_level(equity, used)
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
        position_mode=_position_mode(account),
        swap=swap,
        commission=commission,
    )


def _position_mode(account: Account) -> PositionMode:
    return PositionMode.NETTING if account.netting else PositionMode.HEDGING
