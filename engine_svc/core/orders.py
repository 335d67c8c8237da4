"""Pending limit and stop orders: place, modify, cancel, expire, and fill or reject when triggered.

An order lives in the ledger while PENDING; every status change goes through `Order.move_to`,
which checks `enums.ORDER_TRANSITIONS`, and the order leaves the ledger with its final status.
Pending orders reserve no margin: the margin is checked and reserved when the order fills.
"""

from __future__ import annotations

from heapq import heappop, heappush
from typing import Final

from .checks import (
    BUY,
    MAX_TIME_NS,
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
    optional,
    order_id,
    parse_id,
    position_id,
    type_error,
)
from .commands import CLEAR, CancelOrder, ExpireOrders, ModifyOrder, PlaceOrder
from .enums import OrderStatus, OrderType
from .events import (
    Event,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderModified,
    OrderPlaced,
    OrderRejected,
)
from .indexes import ASK_ABOVE, ASK_BELOW, BID_ABOVE, BID_BELOW, KIND_ORDER, MAX_KEY
from .ledger import Ledger
from .money import check_affordable
from .positions import create_position, current_quote, held_position, net_trade
from .reasons import Reason
from .results import Result
from .state import Account, Order
from .units import MAX_PRICE_TICKS
from .views import OrderView, QuoteView

# An expiry heap entry is ``expire time << 48 | order key``.
EXPIRY_SHIFT: Final = 48


def place_order(ledger: Ledger, command: PlaceOrder, account: Account) -> Result:
    """Place a pending order: a limit better than the current price, a stop worse."""
    instrument = check_instrument(ledger.instruments, command.symbol)
    is_buy = check_side(command.side)
    if command.order_type is OrderType.LIMIT:
        is_limit = True
    elif command.order_type is OrderType.STOP:
        is_limit = False
    else:
        raise type_error("order_type", "an OrderType", command.order_type)
    leverage = check_leverage(command.leverage, instrument)
    lots, margin = check_sizing(command.quantity, command.margin)
    trigger = check_int(command.trigger_price, "trigger_price", 1, MAX_PRICE_TICKS)
    tp = check_optional_price(command.take_profit, "take_profit", False) or 0
    sl = check_optional_price(command.stop_loss, "stop_loss", False) or 0
    trail = check_optional_price(command.trailing_distance, "trailing_distance", False) or 0
    expire = 0
    if command.expire_time is not None:
        expire = _check_expire(command.expire_time, command.ts)
    _check_trigger(ledger, instrument.symbol, is_buy, is_limit, trigger)
    check_stops(is_buy, trigger, tp, sl)
    key = command.seq
    order = Order(
        key=key,
        account_id=account.account_id,
        symbol=instrument.symbol,
        is_buy=is_buy,
        is_limit=is_limit,
        trigger=trigger,
        leverage=leverage,
        quantity=lots,
        margin=margin,
        tp=tp,
        sl=sl,
        trail=trail,
        expire=expire,
        create_ts=command.ts,
        client_order_id=command.client_order_id,
    )
    ledger.orders[key] = order
    account.orders[key] = order
    index_order(ledger, order)
    view = order_view(order, 0)
    event = OrderPlaced(seq=command.seq, ts=command.ts, account_id=account.account_id, order=view)
    return Result(None, "", view, (event,), False)


def _check_expire(expire_time: int, ts: int) -> int:
    """Return an expire time that is after the command's time."""
    expire = check_int(expire_time, "expire_time", 1, MAX_TIME_NS)
    if expire <= ts:
        raise RejectionError(
            Reason.VALIDATION_FAILED, "expire_time is not in the future", "expire_time"
        )
    return expire


def _check_trigger(ledger: Ledger, symbol: str, is_buy: bool, is_limit: bool, trigger: int) -> None:
    """Require a limit trigger better than the current price and a stop trigger worse."""
    quote = current_quote(ledger, symbol)
    current = quote.ask if is_buy else quote.bid
    if not (trigger < current if is_buy == is_limit else trigger > current):
        kind = "limit" if is_limit else "stop"
        direction = "below" if is_buy == is_limit else "above"
        raise RejectionError(
            Reason.VALIDATION_FAILED,
            f"a {'buy' if is_buy else 'sell'} {kind} trigger must be {direction} "
            f"the current {'ask' if is_buy else 'bid'}",
            "trigger_price",
        )


def modify_order(ledger: Ledger, command: ModifyOrder, account: Account) -> Result:
    """Change a pending order's trigger, size, stops or expiry under the placement rules.

    Every new value is checked before any is set, so a rejection changes nothing. The order
    is indexed again at its new trigger and expire time; the old entries no longer match the
    order and are dropped when they surface.
    """
    order = _own_order(account, command.order_id)
    trigger = check_optional_price(command.trigger_price, "trigger_price", False)
    if command.quantity is not None and command.margin is not None:
        raise RejectionError(
            Reason.VALIDATION_FAILED, "give at most one of quantity and margin", "quantity"
        )
    lots, margin = order.quantity, order.margin
    if command.quantity is not None or command.margin is not None:
        lots, margin = check_sizing(command.quantity, command.margin)
    tp = check_optional_price(command.take_profit, "take_profit", True)
    sl = check_optional_price(command.stop_loss, "stop_loss", True)
    trail = check_optional_price(command.trailing_distance, "trailing_distance", True)
    expire = command.expire_time
    if expire is not None and expire != CLEAR:
        expire = _check_expire(expire, command.ts)
    if (
        trigger is None
        and command.quantity is None
        and command.margin is None
        and tp is None
        and sl is None
        and trail is None
        and expire is None
    ):
        raise RejectionError(Reason.VALIDATION_FAILED, "nothing to modify")
    new_trigger = order.trigger if trigger is None else trigger
    new_tp = order.tp if tp is None else tp
    new_sl = order.sl if sl is None else sl
    _check_trigger(ledger, order.symbol, order.is_buy, order.is_limit, new_trigger)
    check_stops(order.is_buy, new_trigger, new_tp, new_sl)
    order.move_to(OrderStatus.PENDING)
    old_trigger, old_expire = order.trigger, order.expire
    order.trigger = new_trigger
    order.quantity, order.margin = lots, margin
    order.tp, order.sl = new_tp, new_sl
    if trail is not None:
        order.trail = trail
    if expire is not None:
        order.expire = expire
    if order.trigger != old_trigger:
        _index_trigger(ledger, order)
    if order.expire and order.expire != old_expire:
        heappush(ledger.expiry, (order.expire << EXPIRY_SHIFT) | order.key)
    view = order_view(order, 0)
    event = OrderModified(seq=command.seq, ts=command.ts, account_id=account.account_id, order=view)
    return Result(None, "", view, (event,), False)


def index_order(ledger: Ledger, order: Order) -> None:
    """Index a pending order's trigger and expire time."""
    _index_trigger(ledger, order)
    if order.expire:
        heappush(ledger.expiry, (order.expire << EXPIRY_SHIFT) | order.key)


def _index_trigger(ledger: Ledger, order: Order) -> None:
    """Index a pending order's trigger in the heap its side and type fire from."""
    book = ledger.books[order.symbol]
    if order.is_buy:
        which = ASK_BELOW if order.is_limit else ASK_ABOVE
    else:
        which = BID_ABOVE if order.is_limit else BID_BELOW
    book.push(which, order.trigger, order.key, KIND_ORDER)


def _finish(ledger: Ledger, order: Order, status: OrderStatus) -> None:
    """Move an order to a final status and out of the ledger (its index entries go stale)."""
    order.move_to(status)
    del ledger.orders[order.key]
    del ledger.accounts[order.account_id].orders[order.key]


def _own_order(account: Account, text: str) -> Order:
    """Return one of the account's pending orders; ORDER_NOT_FOUND for any other id."""
    order = account.orders.get(parse_id(text, "o-"))
    if order is None:
        raise RejectionError(Reason.ORDER_NOT_FOUND, f"order {text!r} not found", "order_id")
    return order


def cancel_order(ledger: Ledger, command: CancelOrder, account: Account) -> Result:
    """Cancel one of the account's pending orders."""
    order = _own_order(account, command.order_id)
    _finish(ledger, order, OrderStatus.CANCELLED)
    view = order_view(order, 0)
    event = OrderCancelled(
        seq=command.seq, ts=command.ts, account_id=account.account_id, order=view
    )
    return Result(None, "", view, (event,), False)


def expire_command(ledger: Ledger, command: ExpireOrders) -> Result:
    """Expire every pending order due at the command's time."""
    events: list[Event] = []
    expire_orders(ledger, command.seq, command.ts, events)
    return Result(None, "", None, tuple(events), False)


def expire_orders(ledger: Ledger, seq: int, ts: int, events: list[Event]) -> None:
    """Expire the orders whose expire time is at or before `ts`, by (expire time, key)."""
    heap = ledger.expiry
    limit = ts << EXPIRY_SHIFT | MAX_KEY
    while heap and heap[0] <= limit:
        entry = heappop(heap)
        order = ledger.orders.get(entry & MAX_KEY)
        if order is None or order.expire != entry >> EXPIRY_SHIFT:
            continue
        _finish(ledger, order, OrderStatus.EXPIRED)
        events.append(
            OrderExpired(seq=seq, ts=ts, account_id=order.account_id, order=order_view(order, 0))
        )


def fill_order(ledger: Ledger, order: Order, quote: QuoteView, events: list[Event]) -> None:
    """Open the position of a triggered order at the quote, or reject the order.

    On a netting account that holds a position on the symbol the fill trades into it
    (`positions.net_trade`); the order then names the position it left open or closed.
    """
    instrument = ledger.instruments[order.symbol]
    account = ledger.accounts[order.account_id]
    fill = quote.ask if order.is_buy else quote.bid
    lots = order.quantity
    held = held_position(account, order.symbol) if account.netting else None
    netted: list[Event] = []
    filled_key = order.key
    margin = 0
    commission = 0
    try:
        if lots == 0:
            lots = check_lots(
                instrument.lots_floor_for_margin(order.margin, order.leverage, fill),
                "margin buys less than one lot",
            )
        check_stops(order.is_buy, quote.bid if order.is_buy else quote.ask, order.tp, order.sl)
        if held is None:
            margin = instrument.margin_ceil_micros(fill, lots, order.leverage)
            commission = instrument.commission_ceil_micros(fill, lots)
            check_affordable(ledger, account, margin, "margin", commission=commission)
        else:
            # Every check comes before the first change, so a rejection changes nothing.
            _, netted, filled_key = net_trade(
                ledger, account, held, quote, order.key, quote.seq, quote.ts, order.is_buy,
                lots, order.leverage, order.tp, order.sl, order.trail, order.client_order_id,
                order.key, "margin",
            )  # fmt: skip
    except RejectionError as rejection:
        _finish(ledger, order, OrderStatus.REJECTED)
        view = order_view(order, 0, rejection.reason)
        events.append(
            OrderRejected(
                seq=quote.seq,
                ts=quote.ts,
                account_id=account.account_id,
                order=view,
                reason=rejection.reason,
                message=rejection.message,
            )
        )
        return
    _finish(ledger, order, OrderStatus.FILLED)
    view = order_view(order, filled_key)
    events.append(
        OrderFilled(seq=quote.seq, ts=quote.ts, account_id=account.account_id, order=view)
    )
    if held is not None:
        events.extend(netted)
        return
    changes, opened = create_position(
        ledger, account, instrument, quote, order.key, quote.seq, quote.ts, order.is_buy, lots,
        order.leverage, margin, order.tp, order.sl, order.trail, order.client_order_id, order.key,
        commission,
    )  # fmt: skip
    events.extend(changes)
    events.append(opened)


def order_view(order: Order, filled_key: int, reason: Reason | None = None) -> OrderView:
    """Return the read model of an order in its current status."""
    return OrderView(
        id=order_id(order.key),
        account_id=order.account_id,
        symbol=order.symbol,
        side=BUY if order.is_buy else SELL,
        order_type=OrderType.LIMIT if order.is_limit else OrderType.STOP,
        trigger_price=order.trigger,
        leverage=order.leverage,
        quantity=optional(order.quantity),
        margin=optional(order.margin),
        take_profit=optional(order.tp),
        stop_loss=optional(order.sl),
        trailing_distance=optional(order.trail),
        expire_time=optional(order.expire),
        status=order.status,
        position_id=position_id(filled_key) if filled_key else None,
        reject_reason=reason,
        create_seq=order.key,
        create_time=order.create_ts,
        client_order_id=order.client_order_id,
    )
