"""Core views and events to protobuf messages; decimal strings come from the core's formatters.

Protobuf stops here: nothing in `engine_svc.core` sees a message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from google.protobuf import timestamp_pb2

from cfd.v1 import common_pb2, trading_pb2
from engine_svc.core import (
    AccountCreated,
    AccountSummary,
    BalanceChanged,
    BalanceKind,
    ClosedPosition,
    CloseReason,
    Event,
    Instrument,
    MarginAdded,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderModified,
    OrderPlaced,
    OrderRejected,
    OrderStatus,
    OrderType,
    OrderView,
    PositionClosed,
    PositionModified,
    PositionOpened,
    PositionView,
    QuoteView,
    Side,
    format_money,
    format_scaled,
)

NS_PER_S = 1_000_000_000

SIDES = {Side.BUY: common_pb2.SIDE_BUY, Side.SELL: common_pb2.SIDE_SELL}
ORDER_TYPES = {
    OrderType.LIMIT: trading_pb2.ORDER_TYPE_LIMIT,
    OrderType.STOP: trading_pb2.ORDER_TYPE_STOP,
}
ORDER_STATUSES = {
    OrderStatus.PENDING: trading_pb2.ORDER_STATUS_PENDING,
    OrderStatus.FILLED: trading_pb2.ORDER_STATUS_FILLED,
    OrderStatus.CANCELLED: trading_pb2.ORDER_STATUS_CANCELLED,
    OrderStatus.EXPIRED: trading_pb2.ORDER_STATUS_EXPIRED,
    OrderStatus.REJECTED: trading_pb2.ORDER_STATUS_REJECTED,
}
CLOSE_REASONS = {
    CloseReason.USER: trading_pb2.CLOSE_REASON_USER,
    CloseReason.TAKE_PROFIT: trading_pb2.CLOSE_REASON_TAKE_PROFIT,
    CloseReason.STOP_LOSS: trading_pb2.CLOSE_REASON_STOP_LOSS,
    CloseReason.TRAILING_STOP: trading_pb2.CLOSE_REASON_TRAILING_STOP,
    CloseReason.LIQUIDATION: trading_pb2.CLOSE_REASON_LIQUIDATION,
}
# Added margin is reported as margin reserved: API.md has one kind for both.
BALANCE_KINDS = {
    BalanceKind.DEPOSIT: trading_pb2.BALANCE_CHANGE_KIND_DEPOSIT,
    BalanceKind.MARGIN_RESERVED: trading_pb2.BALANCE_CHANGE_KIND_MARGIN_RESERVED,
    BalanceKind.MARGIN_ADDED: trading_pb2.BALANCE_CHANGE_KIND_MARGIN_RESERVED,
    BalanceKind.CLOSE_SETTLED: trading_pb2.BALANCE_CHANGE_KIND_POSITION_SETTLED,
}
_ORDER_EVENTS: dict[type[Event], trading_pb2.EventType.ValueType] = {
    OrderPlaced: trading_pb2.EVENT_TYPE_ORDER_PLACED,
    OrderModified: trading_pb2.EVENT_TYPE_ORDER_MODIFIED,
    OrderFilled: trading_pb2.EVENT_TYPE_ORDER_FILLED,
    OrderCancelled: trading_pb2.EVENT_TYPE_ORDER_CANCELLED,
    OrderExpired: trading_pb2.EVENT_TYPE_ORDER_EXPIRED,
    OrderRejected: trading_pb2.EVENT_TYPE_ORDER_REJECTED,
}


class AccountEvent(NamedTuple):
    """A core event addressed to one account, numbered within its seq."""

    seq: int
    idx: int
    event: Event


def timestamp(ns: int) -> timestamp_pb2.Timestamp:
    """Return the Timestamp of Unix epoch nanoseconds."""
    seconds, nanos = divmod(ns, NS_PER_S)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def timestamp_ns(value: timestamp_pb2.Timestamp) -> int:
    """Return the Unix epoch nanoseconds of a Timestamp."""
    return int(value.seconds) * NS_PER_S + int(value.nanos)


def _price(instrument: Instrument, ticks: int | None) -> str:
    return "" if ticks is None else instrument.format_price(ticks)


def position_message(view: PositionView, instrument: Instrument) -> trading_pb2.Position:
    """Return an open position."""
    return trading_pb2.Position(
        id=view.id,
        symbol=view.symbol,
        side=SIDES[view.side],
        quantity=instrument.format_quantity(view.quantity),
        leverage=view.leverage,
        entry_price=instrument.format_price(view.entry_price),
        margin=format_money(view.margin),
        liquidation_price=instrument.format_price(view.liquidation_price),
        take_profit=_price(instrument, view.take_profit),
        stop_loss=_price(instrument, view.stop_loss),
        trailing_distance=_price(instrument, view.trailing_distance),
        trailing_stop_price=_price(instrument, view.trailing_stop_price),
        unrealized_pnl="" if view.unrealized_pnl is None else format_money(view.unrealized_pnl),
        open_time=timestamp(view.open_time),
        client_order_id=view.client_order_id or "",
        status=trading_pb2.POSITION_STATUS_OPEN,
    )


def closed_message(close: ClosedPosition, instrument: Instrument) -> trading_pb2.Position:
    """Return a closed history entry: the closed quantity and its settlement."""
    return trading_pb2.Position(
        id=close.position_id,
        symbol=close.symbol,
        side=SIDES[close.side],
        quantity=instrument.format_quantity(close.closed_quantity),
        leverage=close.leverage,
        entry_price=instrument.format_price(close.entry_price),
        margin=format_money(close.released_margin),
        open_time=timestamp(close.open_time),
        client_order_id=close.position_client_order_id or "",
        status=trading_pb2.POSITION_STATUS_CLOSED,
        close_price=instrument.format_price(close.close_price),
        close_time=timestamp(close.close_time),
        realized_pnl=format_money(close.realized_pnl),
        close_reason=CLOSE_REASONS[close.reason],
        house_covered_loss=format_money(close.house_absorbed),
    )


def order_message(
    view: OrderView, instrument: Instrument, update_ns: int | None = None
) -> trading_pb2.Order:
    """Return an order; `update_ns` is when its status last changed (placement by default)."""
    message = trading_pb2.Order(
        id=view.id,
        symbol=view.symbol,
        side=SIDES[view.side],
        type=ORDER_TYPES[view.order_type],
        trigger_price=instrument.format_price(view.trigger_price),
        leverage=view.leverage,
        take_profit=_price(instrument, view.take_profit),
        stop_loss=_price(instrument, view.stop_loss),
        trailing_distance=_price(instrument, view.trailing_distance),
        status=ORDER_STATUSES[view.status],
        position_id=view.position_id or "",
        reject_reason="" if view.reject_reason is None else view.reject_reason.value,
        create_time=timestamp(view.create_time),
        client_order_id=view.client_order_id or "",
        update_time=timestamp(view.create_time if update_ns is None else update_ns),
    )
    if view.quantity is not None:
        message.quantity = instrument.format_quantity(view.quantity)
    elif view.margin is not None:
        message.margin = format_money(view.margin)
    if view.expire_time is not None:
        message.expire_time.CopyFrom(timestamp(view.expire_time))
    return message


def summary_fields(summary: AccountSummary) -> dict[str, str]:
    """Return the fields shared by GetAccountResponse and AccountSummary."""
    return {
        "balance": format_money(summary.balance),
        "used_margin": format_money(summary.used_margin),
        "unrealized_pnl": format_money(summary.unrealized_pnl),
        "equity": format_money(summary.equity),
        "free_margin": format_money(summary.free_margin),
        "margin_level": (
            "" if summary.margin_level is None else format_scaled(summary.margin_level, 6)
        ),
        "currency": "USD",
    }


def quote_message(view: QuoteView, instrument: Instrument) -> common_pb2.Quote:
    """Return an engine quote."""
    return common_pb2.Quote(
        symbol=view.symbol,
        bid=instrument.format_price(view.bid),
        ask=instrument.format_price(view.ask),
        time=timestamp(view.ts),
        sequence=view.seq,
    )


def price_message(view: QuoteView, instrument: Instrument) -> trading_pb2.StreamPricesResponse:
    """Return a quote as a StreamPrices item."""
    return trading_pb2.StreamPricesResponse(
        symbol=view.symbol,
        bid=instrument.format_price(view.bid),
        ask=instrument.format_price(view.ask),
        time=timestamp(view.ts),
        sequence=view.seq,
    )


def event_account(event: Event) -> str:
    """Return the account an event belongs to."""
    return event.account_id


def event_message(
    item: AccountEvent, instruments: Mapping[str, Instrument]
) -> trading_pb2.StreamEventsResponse:
    """Return the StreamEvents item of an account event."""
    event = item.event
    message = trading_pb2.StreamEventsResponse(
        sequence=item.seq, time=timestamp(event.ts), index=item.idx
    )
    if isinstance(event, AccountCreated):
        message.type = trading_pb2.EVENT_TYPE_BALANCE_CHANGED
        amount = format_money(event.initial_balance)
        message.balance_change.CopyFrom(
            trading_pb2.BalanceChange(
                kind=trading_pb2.BALANCE_CHANGE_KIND_DEPOSIT, amount=amount, balance=amount
            )
        )
    elif isinstance(event, BalanceChanged):
        message.type = trading_pb2.EVENT_TYPE_BALANCE_CHANGED
        message.balance_change.CopyFrom(
            trading_pb2.BalanceChange(
                kind=BALANCE_KINDS[event.kind],
                amount=format_money(event.amount),
                balance=format_money(event.balance),
                position_id=event.ref_id,
            )
        )
    elif isinstance(event, PositionOpened):
        message.type = trading_pb2.EVENT_TYPE_POSITION_OPENED
        message.position.CopyFrom(
            position_message(event.position, instruments[event.position.symbol])
        )
    elif isinstance(event, (PositionModified, MarginAdded)):
        message.type = trading_pb2.EVENT_TYPE_POSITION_MODIFIED
        message.position.CopyFrom(
            position_message(event.position, instruments[event.position.symbol])
        )
    elif isinstance(event, PositionClosed):
        close = event.close
        liquidated = close.reason is CloseReason.LIQUIDATION
        message.type = (
            trading_pb2.EVENT_TYPE_POSITION_LIQUIDATED
            if liquidated
            else trading_pb2.EVENT_TYPE_POSITION_CLOSED
        )
        message.position.CopyFrom(closed_message(close, instruments[close.symbol]))
    else:
        message.type = _ORDER_EVENTS[type(event)]
        order = order_message(event.order, instruments[event.order.symbol], event.ts)
        message.order.CopyFrom(order)
    return message
