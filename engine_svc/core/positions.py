"""Open positions: open at market, close (by the user or by a trigger), add margin, modify,
and net a trade into a netting account's position on its symbol (`net_trade`).

The money of every step moves in `money`; this module holds the position rules: fill prices,
sizing, stops, liquidation price and the trigger entries each position keeps in its book.
"""

from __future__ import annotations

from typing import Final

from .charges import share_toward_zero
from .checks import (
    BUY,
    MAX_SLIPPAGE_BPS,
    SELL,
    RejectionError,
    check_instrument,
    check_int,
    check_leverage,
    check_lots,
    check_optional_price,
    check_side,
    check_sizing,
    check_stops,
    parse_id,
    position_id,
)
from .commands import AddMargin, ClosePosition, ModifyPosition, OpenPosition
from .enums import BalanceKind, CloseReason
from .events import (
    BalanceChanged,
    Event,
    MarginAdded,
    PositionClosed,
    PositionModified,
    PositionOpened,
)
from .indexes import (
    ASK_ABOVE,
    ASK_BELOW,
    BID_ABOVE,
    BID_BELOW,
    KIND_LIQUIDATION,
    KIND_STOP_LOSS,
    KIND_TAKE_PROFIT,
    SymbolBook,
)
from .instruments import Instrument
from .ledger import Ledger
from .margin import stop_out_price
from .money import (
    charge_commission,
    check_affordable,
    free_after_close,
    move_to_margin,
    protect_balance,
    reserve_margin,
    settle_close,
)
from .reasons import Reason
from .results import Result
from .state import Account, Position
from .units import MAX_MONEY_MICROS, MAX_PRICE_TICKS, MAX_QUANTITY_LOTS, ceil_div, floor_div
from .views import ClosedPosition, PositionView, QuoteView

_USER: Final = CloseReason.USER
_MARGIN_RESERVED: Final = BalanceKind.MARGIN_RESERVED
_CLOSE_SETTLED: Final = BalanceKind.CLOSE_SETTLED
_COMMISSION: Final = BalanceKind.COMMISSION

# The records of an open and a close are built with tuple.__new__ in the class's field order
# (the wide ones with each field named; the tests pin the order): NamedTuple's Python-level
# constructor, with keywords, would cost a fifth of the command.
_new = tuple.__new__


def find_position(account: Account, text: object) -> Position:
    """Return one of the account's open positions by id; reject any other id."""
    position = account.positions.get(parse_id(text, "p-"))
    if position is None:
        raise RejectionError(
            Reason.POSITION_NOT_FOUND, f"position {text!r} not found", "position_id"
        )
    return position


def open_position(ledger: Ledger, command: OpenPosition, account: Account) -> Result:
    """Open a market position: a buy fills at the ask, a sell at the bid."""
    instrument = ledger.instruments.get(command.symbol)
    if instrument is None:
        instrument = check_instrument(ledger.instruments, command.symbol)
    side = command.side
    is_buy = side is BUY
    if not is_buy and side is not SELL:
        is_buy = check_side(side)
    # The common case (a plain quantity within range) skips the general checks.
    leverage = command.leverage
    if type(leverage) is not int or not 1 <= leverage <= instrument.max_leverage:
        leverage = check_leverage(leverage, instrument)
    lots = command.quantity
    budget = 0
    if type(lots) is not int or command.margin is not None or not 0 < lots <= MAX_QUANTITY_LOTS:
        lots, budget = check_sizing(command.quantity, command.margin)
    tp = sl = trail = 0
    if command.take_profit is not None:
        tp = check_int(command.take_profit, "take_profit", 1, MAX_PRICE_TICKS)
    if command.stop_loss is not None:
        sl = check_int(command.stop_loss, "stop_loss", 1, MAX_PRICE_TICKS)
    if command.trailing_distance is not None:
        trail = check_int(command.trailing_distance, "trailing_distance", 1, MAX_PRICE_TICKS)
    quote = ledger.quotes.get(instrument.symbol)
    if quote is None:
        quote = current_quote(ledger, instrument.symbol)
    fill = quote.ask if is_buy else quote.bid
    if command.expected_price is not None or command.max_slippage_bps is not None:
        _check_slippage(command, instrument, fill)
    if budget:
        lots = check_lots(
            instrument.lots_floor_for_margin(budget, leverage, fill),
            "margin buys less than one lot step",
        )
    if tp or sl:
        check_stops(is_buy, quote.bid if is_buy else quote.ask, tp, sl)
    if account.netting:
        held = held_position(account, instrument.symbol)
        if held is not None:
            payload, netted, _ = net_trade(
                ledger, account, held, quote, command.seq, command.seq, command.ts, is_buy,
                lots, leverage, tp, sl, trail, command.client_order_id, 0,
                "quantity" if budget == 0 else "margin",
            )  # fmt: skip
            return _new(Result, (None, "", payload, tuple(netted), False, ""))
    margin = instrument.margin_ceil_micros(fill, lots, leverage)
    commission = instrument.commission_ceil_micros(fill, lots)
    if account.cross or margin + commission > account.balance:
        check_affordable(
            ledger, account, margin, "quantity" if budget == 0 else "margin",
            commission=commission,
        )  # fmt: skip
    changes, opened = create_position(
        ledger, account, instrument, quote, command.seq, command.seq, command.ts, is_buy, lots,
        leverage, margin, tp, sl, trail, command.client_order_id, 0, commission,
    )  # fmt: skip
    return _new(Result, (None, "", opened.position, (*changes, opened), False, ""))


def current_quote(ledger: Ledger, symbol: str) -> QuoteView:
    """Return the symbol's last quote; reject a command that needs a price before one."""
    quote = ledger.quotes.get(symbol)
    if quote is None:
        raise RejectionError(Reason.PRICE_UNAVAILABLE, f"no price for {symbol} yet", "symbol")
    return quote


def _check_slippage(command: OpenPosition, instrument: Instrument, fill: int) -> None:
    expected = check_optional_price(command.expected_price, "expected_price", False)
    bps = command.max_slippage_bps
    if bps is not None:
        bps = check_int(bps, "max_slippage_bps", 0, MAX_SLIPPAGE_BPS)
    if expected is not None and bps is not None and abs(fill - expected) * 10_000 > bps * expected:
        raise RejectionError(
            Reason.SLIPPAGE_EXCEEDED,
            f"fill price {instrument.format_price(fill)} is more than {bps} bps from "
            f"the expected {instrument.format_price(expected)}",
            "expected_price",
        )


def create_position(
    ledger: Ledger,
    account: Account,
    instrument: Instrument,
    quote: QuoteView,
    key: int,
    seq: int,
    ts: int,
    is_buy: bool,
    lots: int,
    leverage: int,
    margin: int,
    tp: int,
    sl: int,
    trail: int,
    client_order_id: str | None,
    order_key: int,
    commission: int = 0,
) -> tuple[tuple[BalanceChanged, ...], PositionOpened]:
    """Open a validated position whose margin and `commission` are affordable; return its
    balance changes (the margin reserved, except on a cross account, whose balance an open
    leaves alone; the commission, when there is one) and its opening, which holds the view."""
    book = ledger.books[instrument.symbol]
    if is_buy:
        level = book.long_trail.attach(quote.bid)
        entry = quote.ask
    else:
        level = book.short_trail.attach(-quote.ask)
        entry = quote.bid
    position = Position(
        key, account.account_id, instrument.symbol, is_buy, lots, leverage, entry, margin, seq,
        ts, client_order_id, order_key, level,
    )  # fmt: skip
    reserve_margin(account, margin)
    after_margin = account.balance
    if commission:
        charge_commission(ledger, account, commission)
        position.commission = commission
    ledger.positions[key] = position
    account.positions[key] = position
    # A cross position has no liquidation of its own: its account's stop-out guards it.
    if not account.cross:
        liq = liquidation_price(position, instrument)
        position.liq = liq
        book.push(BID_BELOW if is_buy else ASK_ABOVE, liq, key, KIND_LIQUIDATION)
    if tp or sl or trail:
        position.tp = tp
        position.sl = sl
        position.trail = trail
        _index_stops(position, book)
    view = position_view(ledger, position)
    owner = account.account_id
    opened = _new(PositionOpened, (seq, ts, owner, view))
    charged: tuple[BalanceChanged, ...] = ()
    if commission:
        charged = (
            _new(
                BalanceChanged, (seq, ts, owner, _COMMISSION, -commission, account.balance, view.id)
            ),
        )
    if account.cross:
        return charged, opened
    changed = _new(
        BalanceChanged, (seq, ts, owner, _MARGIN_RESERVED, -margin, after_margin, view.id)
    )
    return (changed, *charged), opened


def liquidation_price(position: Position, instrument: Instrument) -> int:
    """Set the position's maintenance margin and return its liquidation price."""
    maintenance = 0
    if instrument.maintenance_num:
        maintenance = instrument.maintenance_ceil_micros(position.entry, position.quantity)
        position.maintenance = maintenance
    move = instrument.ticks_floor_for_money(position.margin - maintenance, position.quantity)
    # A buy's entry - x rounded up to the tick is entry - floor(x); a sell's rounds down.
    return position.entry - move if position.is_buy else position.entry + move


def _set_liquidation(position: Position, instrument: Instrument, book: SymbolBook) -> None:
    """Recompute maintenance margin and liquidation price and index a changed price."""
    liq = liquidation_price(position, instrument)
    if liq != position.liq:
        position.liq = liq
        book.push(BID_BELOW if position.is_buy else ASK_ABOVE, liq, position.key, KIND_LIQUIDATION)


def _index_stops(position: Position, book: SymbolBook) -> None:
    key = position.key
    if position.sl:
        book.push(BID_BELOW if position.is_buy else ASK_ABOVE, position.sl, key, KIND_STOP_LOSS)
    if position.tp:
        book.push(BID_ABOVE if position.is_buy else ASK_BELOW, position.tp, key, KIND_TAKE_PROFIT)
    if position.trail:
        (book.long_trail if position.is_buy else book.short_trail).add_trailing(position)


def close_position(ledger: Ledger, command: ClosePosition, account: Account) -> Result:
    """Close all of a position, or `quantity` lots of it, at the current quote."""
    position = account.positions.get(parse_id(command.position_id, "p-"))
    if position is None:
        position = find_position(account, command.position_id)
    lots = position.quantity
    if command.quantity is not None:
        lots = check_int(command.quantity, "quantity", -(2**63), 2**63)
        if lots < 1:
            raise RejectionError(
                Reason.QUANTITY_TOO_SMALL, "quantity is below the lot step", "quantity"
            )
        if lots > position.quantity:
            raise RejectionError(
                Reason.VALIDATION_FAILED, "quantity exceeds the position's quantity", "quantity"
            )
    quote = ledger.quotes.get(position.symbol)
    if quote is None:
        quote = current_quote(ledger, position.symbol)
    price = quote.bid if position.is_buy else quote.ask
    event, settled = close(ledger, position, lots, price, _USER, command.seq, command.ts)
    return _new(Result, (None, "", event.close, (event, settled), False, ""))


def close(
    ledger: Ledger, position: Position, lots: int, price: int, reason: CloseReason, seq: int,
    ts: int,
) -> tuple[PositionClosed, BalanceChanged]:  # fmt: skip
    """Close `lots` of a position at `price`; return the close and settlement events."""
    instrument = ledger.instruments[position.symbol]
    account = ledger.accounts[position.account_id]
    book = ledger.books[position.symbol]
    move = price - position.entry if position.is_buy else position.entry - price
    pnl = instrument.pnl_floor_micros(move, lots)
    close_commission = instrument.commission_ceil_micros(price, lots)
    # The closed part's shares of the swap already settled and of the opening commission.
    swap = share_toward_zero(position.swap, lots, position.quantity)
    open_commission = share_toward_zero(position.commission, lots, position.quantity)
    released, credited, absorbed = settle_close(
        ledger, account, position, lots, pnl, close_commission
    )
    remaining: PositionView | None = None
    if lots == position.quantity:
        del ledger.positions[position.key]
        del account.positions[position.key]
        (book.long_trail if position.is_buy else book.short_trail).detach(position)
        if account.cross and not account.positions:
            protected = protect_balance(ledger, account)
            absorbed += protected
            credited += protected
    else:
        position.quantity -= lots
        position.margin -= released
        position.swap -= swap
        position.commission -= open_commission
        if not account.cross:
            _set_liquidation(position, instrument, book)
        remaining = position_view(ledger, position)
    pid = position_id(position.key)
    closed = _new(
        ClosedPosition,
        (
            pid,  # position_id
            account.account_id,  # account_id
            position.symbol,  # symbol
            BUY if position.is_buy else SELL,  # side
            position.leverage,  # leverage
            position.entry,  # entry_price
            lots,  # closed_quantity
            price,  # close_price
            released,  # released_margin
            pnl,  # realized_pnl
            absorbed,  # house_absorbed
            credited,  # credited
            reason,  # reason
            position.open_ts,  # open_time
            ts,  # close_time
            seq,  # close_seq
            position.client_order_id,  # position_client_order_id
            remaining,  # remaining
            swap,  # swap
            open_commission + close_commission,  # commission
        ),
    )
    owner = account.account_id
    settled = _new(
        BalanceChanged, (seq, ts, owner, _CLOSE_SETTLED, credited, account.balance, pid)
    )
    return _new(PositionClosed, (seq, ts, owner, closed)), settled


def add_margin(ledger: Ledger, command: AddMargin, account: Account) -> Result:
    """Add money from the balance to a position's margin; its liquidation price moves away."""
    position = find_position(account, command.position_id)
    amount = check_int(command.amount, "amount", 1, MAX_MONEY_MICROS)
    if account.cross:
        raise RejectionError(
            Reason.VALIDATION_FAILED,
            "a cross-margin position has no margin of its own to add to: its account's "
            "free margin backs it",
            "position_id",
        )
    move_to_margin(account, position, amount)
    _set_liquidation(position, ledger.instruments[position.symbol], ledger.books[position.symbol])
    view = position_view(ledger, position)
    changed = BalanceChanged(
        seq=command.seq,
        ts=command.ts,
        account_id=account.account_id,
        kind=BalanceKind.MARGIN_ADDED,
        amount=-amount,
        balance=account.balance,
        ref_id=view.id,
    )
    added = MarginAdded(
        seq=command.seq, ts=command.ts, account_id=account.account_id, amount=amount, position=view
    )
    return Result(None, "", view, (changed, added), False)


def modify_position(ledger: Ledger, command: ModifyPosition, account: Account) -> Result:
    """Set, clear or keep take profit, stop loss and trailing distance."""
    position = find_position(account, command.position_id)
    tp = check_optional_price(command.take_profit, "take_profit", True)
    sl = check_optional_price(command.stop_loss, "stop_loss", True)
    trail = check_optional_price(command.trailing_distance, "trailing_distance", True)
    if tp is None and sl is None and trail is None:
        raise RejectionError(Reason.VALIDATION_FAILED, "nothing to modify")
    quote = current_quote(ledger, position.symbol)
    reference = quote.bid if position.is_buy else quote.ask
    check_stops(position.is_buy, reference, tp or 0, sl or 0)
    set_stops(ledger.books[position.symbol], position, tp, sl, trail, reference)
    view = position_view(ledger, position)
    event = PositionModified(
        seq=command.seq, ts=command.ts, account_id=account.account_id, position=view
    )
    return Result(None, "", view, (event,), False)


def set_stops(
    book: SymbolBook,
    position: Position,
    tp: int | None,
    sl: int | None,
    trail: int | None,
    reference: int,
) -> None:
    """Set (a value), clear (0) or keep (None) a position's checked stops and index them.

    A trailing distance set now trails from `reference` (the current closing price), not from
    the best price since open.
    """
    key = position.key
    if tp is not None and tp != position.tp:
        position.tp = tp
        if tp:
            book.push(BID_ABOVE if position.is_buy else ASK_BELOW, tp, key, KIND_TAKE_PROFIT)
    if sl is not None and sl != position.sl:
        position.sl = sl
        if sl:
            book.push(BID_BELOW if position.is_buy else ASK_ABOVE, sl, key, KIND_STOP_LOSS)
    if trail:
        trail_book = book.long_trail if position.is_buy else book.short_trail
        trail_book.detach(position)
        position.level = trail_book.attach(reference if position.is_buy else -reference)
        position.trail = trail
        trail_book.add_trailing(position)
    elif trail is not None:
        position.trail = 0


def held_position(account: Account, symbol: str) -> Position | None:
    """Return the position a netting account holds on `symbol`, None when it holds none."""
    for position in account.positions.values():
        if position.symbol == symbol:
            return position
    return None


def average_entry(is_buy: bool, entry: int, lots: int, fill: int, added: int) -> int:
    """Return the volume-weighted entry of `lots` at `entry` and `added` lots at `fill`, in
    ticks, rounded against the holder: up for a buy, down for a sell."""
    total = entry * lots + fill * added
    if is_buy:
        return ceil_div(total, lots + added)
    return floor_div(total, lots + added)


def net_trade(
    ledger: Ledger, account: Account, held: Position, quote: QuoteView, key: int, seq: int,
    ts: int, is_buy: bool, lots: int, leverage: int, tp: int, sl: int, trail: int,
    client_order_id: str | None, order_key: int, field: str,
) -> tuple[PositionView | ClosedPosition, list[Event], int]:  # fmt: skip
    """Trade `lots` (checked, stops checked) into a netting account's position `held` at the
    quote, or raise a rejection before changing anything.

    The same direction increases it (`_increase`). The other direction closes `lots` of it
    at the fill price as `ClosePosition` would (reason USER, with the close commission and
    the closed part's share of the swap and opening commission): a smaller trade leaves the
    rest open with its own stops, an equal one closes it, a larger one closes it and opens a
    position of the remainder in the trade's direction with the trade's leverage, stops and
    `key`, which pays the remainder's opening commission. Return the position left open (the
    close when none is), the events and the key of the position the trade left open or
    closed.
    """
    instrument = ledger.instruments[held.symbol]
    fill = quote.ask if is_buy else quote.bid
    if held.is_buy == is_buy:
        view, increased = _increase(
            ledger, account, instrument, held, quote, seq, ts, fill, lots, leverage, tp, sl,
            trail, field,
        )  # fmt: skip
        return view, increased, held.key
    remainder = lots - held.quantity
    if remainder <= 0:
        closed, settled = close(ledger, held, lots, fill, _USER, seq, ts)
        done = closed.close
        return done if done.remaining is None else done.remaining, [closed, settled], held.key
    margin = instrument.margin_ceil_micros(fill, remainder, leverage)
    commission = instrument.commission_ceil_micros(fill, remainder)
    move = fill - held.entry if held.is_buy else held.entry - fill
    # The close settles the price PnL less the close commission, as `close` will.
    pnl = instrument.pnl_floor_micros(move, held.quantity)
    pnl -= instrument.commission_ceil_micros(fill, held.quantity)
    free = free_after_close(ledger, account, held, pnl)
    check_affordable(ledger, account, margin, field, free, commission)
    closed, settled = close(ledger, held, held.quantity, fill, _USER, seq, ts)
    changes, opened = create_position(
        ledger, account, instrument, quote, key, seq, ts, is_buy, remainder, leverage, margin,
        tp, sl, trail, client_order_id, order_key, commission,
    )  # fmt: skip
    events: list[Event] = [closed, settled, *changes, opened]
    return opened.position, events, key


def _increase(
    ledger: Ledger, account: Account, instrument: Instrument, held: Position, quote: QuoteView,
    seq: int, ts: int, fill: int, lots: int, leverage: int, tp: int, sl: int, trail: int,
    field: str,
) -> tuple[PositionView, list[Event]]:  # fmt: skip
    """Add `lots` at `fill` to a netting position of the same direction.

    The trade must use the position's leverage; its margin (rounded up, as an open's) is
    reserved and its commission (the added quantity's opening commission) charged as an
    open's, the commission joining the position's accumulated one; the accumulated swap is
    kept. The entry becomes the volume-weighted average (`average_entry`),
    the liquidation price is recomputed, and the trade's stops, where given, replace the
    position's (a trailing distance trails from the current quote); the others are kept.
    """
    if leverage != held.leverage:
        raise RejectionError(
            Reason.INVALID_LEVERAGE,
            f"the {held.symbol} position is at leverage {held.leverage}: a trade that "
            "increases it must use that leverage",
            "leverage",
        )
    total = held.quantity + lots
    if total > MAX_QUANTITY_LOTS:
        raise RejectionError(
            Reason.VALIDATION_FAILED, "the position's quantity would be too large", field
        )
    margin = instrument.margin_ceil_micros(fill, lots, leverage)
    commission = instrument.commission_ceil_micros(fill, lots)
    check_affordable(ledger, account, margin, field, commission=commission)
    held.entry = average_entry(held.is_buy, held.entry, held.quantity, fill, lots)
    held.quantity = total
    reserve_margin(account, margin)
    held.margin += margin
    after_margin = account.balance
    # The added quantity pays an open's commission; the accumulated swap is kept as is.
    if commission:
        charge_commission(ledger, account, commission)
        held.commission += commission
    book = ledger.books[held.symbol]
    if not account.cross:
        _set_liquidation(held, instrument, book)
    reference = quote.bid if held.is_buy else quote.ask
    set_stops(book, held, tp or None, sl or None, trail or None, reference)
    view = position_view(ledger, held)
    owner = account.account_id
    events: list[Event] = []
    if not account.cross:
        events.append(
            _new(
                BalanceChanged,
                (seq, ts, owner, _MARGIN_RESERVED, -margin, after_margin, view.id),
            )
        )
    if commission:
        events.append(
            _new(
                BalanceChanged,
                (seq, ts, owner, _COMMISSION, -commission, account.balance, view.id),
            )
        )
    events.append(_new(PositionModified, (seq, ts, owner, view)))
    return view, events


def position_view(ledger: Ledger, position: Position) -> PositionView:
    """Return the read model of an open position with its PnL at the last quote."""
    is_buy = position.is_buy
    quantity = position.quantity
    entry = position.entry
    trail = position.trail
    unrealized: int | None = None
    quote = ledger.quotes.get(position.symbol)
    if quote is not None:
        move = quote.bid - entry if is_buy else entry - quote.ask
        unrealized = ledger.instruments[position.symbol].pnl_floor_micros(move, quantity)
    order_key = position.order_key
    liq = position.liq
    if liq == 0:
        account = ledger.accounts[position.account_id]
        if account.cross:
            liq = stop_out_price(ledger, account, position.symbol)
    return _new(
        PositionView,
        (
            f"p-{position.key}",  # id
            position.account_id,  # account_id
            position.symbol,  # symbol
            BUY if is_buy else SELL,  # side
            quantity,  # quantity
            position.leverage,  # leverage
            entry,  # entry_price
            position.margin,  # margin
            position.maintenance,  # maintenance_margin
            liq,  # liquidation_price
            position.tp or None,  # take_profit
            position.sl or None,  # stop_loss
            trail or None,  # trailing_distance
            position.trailing_stop() if trail else None,  # trailing_stop_price
            unrealized,  # unrealized_pnl
            position.open_seq,  # open_seq
            position.open_ts,  # open_time
            position.client_order_id,  # client_order_id
            f"o-{order_key}" if order_key else None,  # order_id
            position.swap,  # swap
            position.commission,  # commission
        ),
    )
