"""Quotes: apply a tick, then expire, close and fill everything it triggers, in a fixed order.

The order within one `ApplyQuote` is the package docstring's "Trigger order"; the price
indexes that find the triggered entries without scanning are in `indexes`.
"""

from __future__ import annotations

from typing import Final

from .checks import RejectionError, check_instrument, check_int
from .commands import ApplyQuote
from .cross import review
from .enums import CloseReason
from .events import Event
from .indexes import (
    KIND_ACCOUNT,
    KIND_LIQUIDATION,
    KIND_ORDER,
    KIND_STOP_LOSS,
    entry_key,
    entry_kind,
)
from .ledger import Ledger
from .orders import expire_orders, fill_order
from .positions import close
from .reasons import Reason
from .results import Result
from .units import MAX_PRICE_TICKS
from .views import QuoteView

# Close reason priority when several triggers of one position fire in the same tick.
_PRIORITY_LIQUIDATION: Final = 0
_PRIORITY_STOP_LOSS: Final = 1
_PRIORITY_TRAILING: Final = 2
_PRIORITY_TAKE_PROFIT: Final = 3
_PRIORITY_REASONS = (
    CloseReason.LIQUIDATION,
    CloseReason.STOP_LOSS,
    CloseReason.TRAILING_STOP,
    CloseReason.TAKE_PROFIT,
)


def apply_quote(ledger: Ledger, command: ApplyQuote) -> Result:
    """Make the quote the symbol's last one and act on every trigger it crosses."""
    instrument = check_instrument(ledger.instruments, command.symbol)
    bid = check_int(command.bid, "bid", 1, MAX_PRICE_TICKS)
    ask = check_int(command.ask, "ask", 1, MAX_PRICE_TICKS)
    if bid >= ask:
        raise RejectionError(Reason.VALIDATION_FAILED, "bid must be below ask", "bid")
    seq = command.seq
    ts = command.ts
    events: list[Event] = []
    if ledger.expiry:
        expire_orders(ledger, seq, ts, events)
    quote = QuoteView(instrument.symbol, bid, ask, seq, ts)
    ledger.quotes[instrument.symbol] = quote
    book = ledger.books[instrument.symbol]
    book.long_trail.on_quote(bid)
    book.short_trail.on_quote(-ask)
    crossed: list[int] = []
    book.pop_crossed(bid, ask, crossed)
    fired: list[int] = []
    book.long_trail.pop_fired(bid, fired)
    book.short_trail.pop_fired(-ask, fired)
    if crossed or fired:
        _fire(ledger, quote, crossed, fired, events)
    return Result(None, "", quote, tuple(events), False)


def _fire(
    ledger: Ledger, quote: QuoteView, crossed: list[int], fired: list[int], events: list[Event]
) -> None:
    """Close triggered positions (by key, with the highest-priority reason), review the cross
    accounts the quote reached or closed positions of (by number), then fill triggered
    orders (by key) and review the cross accounts they filled for."""
    priority: dict[int, int] = {}
    order_keys: list[int] = []
    reached: set[int] = set()
    for entry in crossed:
        kind = entry_kind(entry)
        key = entry_key(entry)
        if kind == KIND_ORDER:
            order_keys.append(key)
            continue
        if kind == KIND_ACCOUNT:
            reached.add(key)
            continue
        rank = (
            _PRIORITY_LIQUIDATION
            if kind == KIND_LIQUIDATION
            else _PRIORITY_STOP_LOSS
            if kind == KIND_STOP_LOSS
            else _PRIORITY_TAKE_PROFIT
        )
        if priority.get(key, 9) > rank:
            priority[key] = rank
    for key in fired:
        if priority.get(key, 9) > _PRIORITY_TRAILING:
            priority[key] = _PRIORITY_TRAILING
    for key in sorted(priority):
        position = ledger.positions[key]
        price = quote.bid if position.is_buy else quote.ask
        reason = _PRIORITY_REASONS[priority[key]]
        owner = ledger.accounts[position.account_id]
        if owner.cross:
            reached.add(owner.number)
        events.extend(
            close(ledger, position, position.quantity, price, reason, quote.seq, quote.ts)
        )
    _review(ledger, reached, quote, events)
    filled: set[int] = set()
    for key in sorted(set(order_keys)):
        order = ledger.orders.get(key)
        if order is not None:
            owner = ledger.accounts[order.account_id]
            if owner.cross:
                filled.add(owner.number)
            fill_order(ledger, order, quote, events)
    _review(ledger, filled, quote, events)


def _review(ledger: Ledger, numbers: set[int], quote: QuoteView, events: list[Event]) -> None:
    """Review the cross accounts with these numbers, in ascending number."""
    for number in sorted(numbers):
        review(ledger, ledger.cross_accounts[number], quote.seq, quote.ts, events)
