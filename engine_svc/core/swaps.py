"""Rollovers: `ChargeSwaps` charges or credits the daily swap of every position held over it.

Positions opened at or before the rollover's moment are charged, in ascending key. An isolated
position's swap moves its margin (a charge is capped at the margin: the house never takes
more than the position holds); its liquidation price is recomputed and, when the current
quote is at or past it, the position is liquidated at that quote at once. A cross account's
swap moves its balance (realised, with a `BalanceChanged` of kind SWAP); every cross account
charged is then reviewed (margin call, stop-out) in ascending account number. The house is
the counterparty of every swap.
"""

from __future__ import annotations

from typing import Final

from .charges import MAX_SWAP_MULTIPLIER
from .checks import MAX_TIME_NS, RejectionError, check_int, position_id
from .commands import ChargeSwaps
from .cross import review
from .enums import BalanceKind, CloseReason
from .events import BalanceChanged, Event, SwapCharged
from .indexes import ASK_ABOVE, BID_BELOW, KIND_LIQUIDATION
from .ledger import Ledger
from .positions import close, liquidation_price, position_view
from .reasons import Reason
from .results import Result
from .state import Position
from .views import RolloverView

# 9999-12-31 in days since 1970-01-01: the last rollover day a command may name.
MAX_ROLLOVER_DAY: Final = 2_932_896
_STOP: Final = CloseReason.LIQUIDATION


def charge_swaps(ledger: Ledger, command: ChargeSwaps) -> Result:
    """Charge the rollover of `command.rollover_day`; reject a day already charged.

    An isolated position whose new liquidation price the current quote is at or past is
    liquidated at that quote right after its swap.
    """
    day = check_int(command.rollover_day, "rollover_day", 1, MAX_ROLLOVER_DAY)
    cutoff = check_int(command.rollover_time, "rollover_time", 0, MAX_TIME_NS)
    multiplier = check_int(command.multiplier, "multiplier", 1, MAX_SWAP_MULTIPLIER)
    if day <= ledger.last_rollover:
        raise RejectionError(
            Reason.VALIDATION_FAILED,
            f"the rollover of day {day} is not after the last one charged ({ledger.last_rollover})",
            "rollover_day",
        )
    ledger.last_rollover = day
    seq = command.seq
    ts = command.ts
    events: list[Event] = []
    reached: set[int] = set()
    charged = 0
    total = 0
    for key in sorted(ledger.positions):
        position = ledger.positions.get(key)
        if position is None or position.open_ts > cutoff:
            continue
        instrument = ledger.instruments[position.symbol]
        amount = instrument.swap_floor_micros(
            position.is_buy, position.entry, position.quantity, multiplier
        )
        if amount == 0:
            continue
        account = ledger.accounts[position.account_id]
        if account.cross:
            account.balance += amount
            reached.add(account.number)
        else:
            amount = max(amount, -position.margin)
            position.margin += amount
            account.used_margin += amount
            _set_liquidation(ledger, position)
        ledger.house_balance -= amount
        position.swap += amount
        charged += 1
        total += amount
        events.append(
            SwapCharged(
                seq, ts, account.account_id, amount, multiplier, day,
                position_view(ledger, position),
            )
        )  # fmt: skip
        if account.cross:
            events.append(
                BalanceChanged(
                    seq, ts, account.account_id, BalanceKind.SWAP, amount, account.balance,
                    position_id(key),
                )
            )  # fmt: skip
        else:
            quote = ledger.quotes[position.symbol]
            if (quote.bid <= position.liq) if position.is_buy else (quote.ask >= position.liq):
                price = quote.bid if position.is_buy else quote.ask
                events.extend(close(ledger, position, position.quantity, price, _STOP, seq, ts))
    for number in sorted(reached):
        review(ledger, ledger.cross_accounts[number], seq, ts, events)
    return Result(None, "", RolloverView(day, multiplier, charged, total), tuple(events), False)


def _set_liquidation(ledger: Ledger, position: Position) -> None:
    """Recompute an isolated position's liquidation price and index it when it moved."""
    liq = liquidation_price(position, ledger.instruments[position.symbol])
    if liq != position.liq:
        position.liq = liq
        ledger.books[position.symbol].push(
            BID_BELOW if position.is_buy else ASK_ABOVE, liq, position.key, KIND_LIQUIDATION
        )
