"""Cross accounts: the exact evaluation after each change: margin call, stop-out, index.

`review` runs after every accepted command on a cross account and, within an `ApplyQuote`,
for every cross account whose index price the quote reached or whose positions the quote
closed or opened (see `margin` for why that is as good as reviewing every cross account on
every quote).
"""

from __future__ import annotations

from typing import Final

from .enums import CloseReason
from .events import Event, MarginCallReached
from .ledger import Ledger
from .margin import reindex
from .money import cross_equity, margin_level, unrealized
from .positions import close
from .state import Account, Position

_STOP_OUT: Final = CloseReason.LIQUIDATION


def review(ledger: Ledger, account: Account, seq: int, ts: int, events: list[Event]) -> None:
    """Evaluate a cross account exactly and index it again.

    In this order: a margin call when the level is at or below the margin call level and no
    margin call is in effect; a stop-out while the level is at or below the stop-out level
    (positions close one by one, the largest loss first); the margin call ends when the
    level is above the margin call level or no position is left.
    """
    positions = account.positions
    if not positions:
        account.margin_call = False
        account.watch = {}
        return
    equity = cross_equity(ledger, account)
    used = account.used_margin
    if not account.margin_call and 100 * equity <= account.margin_call_level * used:
        account.margin_call = True
        events.append(
            MarginCallReached(
                seq, ts, account.account_id, margin_level(equity, used), equity, used
            )
        )
    while positions and 100 * equity <= account.stop_out_level * account.used_margin:
        events.extend(_close_largest_loss(ledger, account, seq, ts))
        equity = cross_equity(ledger, account)
    if not positions or 100 * equity > account.margin_call_level * account.used_margin:
        account.margin_call = False
    reindex(ledger, account, equity)


def largest_loss(ledger: Ledger, account: Account) -> Position:
    """Return the open position with the lowest unrealized PnL (the oldest among equals)."""
    worst: Position | None = None
    worst_pnl = 0
    for key in sorted(account.positions):
        position = account.positions[key]
        pnl = unrealized(ledger, position) or 0
        if worst is None or pnl < worst_pnl:
            worst = position
            worst_pnl = pnl
    assert worst is not None
    return worst


def _close_largest_loss(ledger: Ledger, account: Account, seq: int, ts: int) -> tuple[Event, ...]:
    position = largest_loss(ledger, account)
    quote = ledger.quotes[position.symbol]
    price = quote.bid if position.is_buy else quote.ask
    return close(ledger, position, position.quantity, price, _STOP_OUT, seq, ts)
