"""Core views and events to protobuf messages; decimal strings come from the core's formatters.

Protobuf stops here: nothing in `engine_svc.core` sees a message. Spot prices and quantities
use the market's instrument grid; a spot order's average price is its filled quote over its
filled quantity, rounded half-even to a tick.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import NamedTuple, TypeVar

from google.protobuf import timestamp_pb2

from cfd.v1 import common_pb2, exchange_pb2, trading_pb2
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
    MarginCallReached,
    MarginMode,
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
    PositionMode,
    PositionModified,
    PositionOpened,
    PositionView,
    QuoteView,
    Side,
    SwapCharged,
    format_money,
    format_scaled,
)
from engine_svc.core.spot import (
    BalanceView,
    BookLevel,
    Liquidity,
    Market,
    SpotFillExecuted,
    SpotFillView,
    SpotOrderCancelled,
    SpotOrderFilled,
    SpotOrderPlaced,
    SpotOrderStatus,
    SpotOrderType,
    SpotOrderUpdated,
    SpotOrderView,
    TimeInForce,
)
from engine_svc.core.spot.enums import TransferDirection

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
    BalanceKind.TRANSFER: trading_pb2.BALANCE_CHANGE_KIND_TRANSFER,
    BalanceKind.COMMISSION: trading_pb2.BALANCE_CHANGE_KIND_COMMISSION,
    BalanceKind.SWAP: trading_pb2.BALANCE_CHANGE_KIND_SWAP,
}
_ORDER_EVENTS: dict[type[Event], trading_pb2.EventType.ValueType] = {
    OrderPlaced: trading_pb2.EVENT_TYPE_ORDER_PLACED,
    OrderModified: trading_pb2.EVENT_TYPE_ORDER_MODIFIED,
    OrderFilled: trading_pb2.EVENT_TYPE_ORDER_FILLED,
    OrderCancelled: trading_pb2.EVENT_TYPE_ORDER_CANCELLED,
    OrderExpired: trading_pb2.EVENT_TYPE_ORDER_EXPIRED,
    OrderRejected: trading_pb2.EVENT_TYPE_ORDER_REJECTED,
}


SPOT_ORDER_TYPES = {
    SpotOrderType.LIMIT: exchange_pb2.SPOT_ORDER_TYPE_LIMIT,
    SpotOrderType.MARKET: exchange_pb2.SPOT_ORDER_TYPE_MARKET,
}
TIMES_IN_FORCE = {
    TimeInForce.GTC: exchange_pb2.TIME_IN_FORCE_GTC,
    TimeInForce.IOC: exchange_pb2.TIME_IN_FORCE_IOC,
    TimeInForce.FOK: exchange_pb2.TIME_IN_FORCE_FOK,
}
SPOT_STATUSES = {
    SpotOrderStatus.OPEN: exchange_pb2.SPOT_ORDER_STATUS_OPEN,
    SpotOrderStatus.PARTIALLY_FILLED: exchange_pb2.SPOT_ORDER_STATUS_PARTIALLY_FILLED,
    SpotOrderStatus.FILLED: exchange_pb2.SPOT_ORDER_STATUS_FILLED,
    SpotOrderStatus.CANCELLED: exchange_pb2.SPOT_ORDER_STATUS_CANCELLED,
    SpotOrderStatus.REJECTED: exchange_pb2.SPOT_ORDER_STATUS_REJECTED,
    SpotOrderStatus.EXPIRED: exchange_pb2.SPOT_ORDER_STATUS_EXPIRED,
}
LIQUIDITIES = {
    Liquidity.MAKER: exchange_pb2.LIQUIDITY_MAKER,
    Liquidity.TAKER: exchange_pb2.LIQUIDITY_TAKER,
}
DIRECTIONS = {
    exchange_pb2.TRANSFER_DIRECTION_TO_SPOT: TransferDirection.TO_SPOT,
    exchange_pb2.TRANSFER_DIRECTION_TO_CFD: TransferDirection.TO_CFD,
}
# A spot event addressed to one account (trades and book changes are public, wallet changes
# come with the transfer's balance change).
SpotAccountEvent = (
    SpotOrderPlaced | SpotOrderUpdated | SpotOrderFilled | SpotOrderCancelled | SpotFillExecuted
)
SPOT_ACCOUNT_EVENTS = (
    SpotOrderPlaced,
    SpotOrderUpdated,
    SpotOrderFilled,
    SpotOrderCancelled,
    SpotFillExecuted,
)
# The StreamEvents type of each spot order event; fills have their own.
SPOT_ORDER_EVENTS: dict[type, trading_pb2.EventType.ValueType] = {
    SpotOrderPlaced: trading_pb2.EVENT_TYPE_SPOT_ORDER_PLACED,
    SpotOrderUpdated: trading_pb2.EVENT_TYPE_SPOT_ORDER_UPDATED,
    SpotOrderFilled: trading_pb2.EVENT_TYPE_SPOT_ORDER_FILLED,
    SpotOrderCancelled: trading_pb2.EVENT_TYPE_SPOT_ORDER_CANCELLED,
}


class AccountEvent(NamedTuple):
    """A core event addressed to one account, numbered within its seq."""

    seq: int
    idx: int
    event: Event | SpotAccountEvent


EPOCH_DATE = datetime.date(1970, 1, 1)


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
        volume_lots=instrument.format_volume_lots(view.quantity),
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
        swap=format_money(view.swap),
        commission=format_money(view.commission),
    )


def closed_message(close: ClosedPosition, instrument: Instrument) -> trading_pb2.Position:
    """Return a closed history entry: the closed quantity and its settlement."""
    return trading_pb2.Position(
        id=close.position_id,
        symbol=close.symbol,
        side=SIDES[close.side],
        quantity=instrument.format_quantity(close.closed_quantity),
        volume_lots=instrument.format_volume_lots(close.closed_quantity),
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
        swap=format_money(close.swap),
        commission=format_money(close.commission),
    )


def with_volume_lots(
    position: trading_pb2.Position, instruments: Mapping[str, Instrument]
) -> trading_pb2.Position:
    """Return a recorded position, given its volume in lots when it was recorded without."""
    instrument = instruments.get(position.symbol)
    if not position.volume_lots and position.quantity and instrument is not None:
        lots = instrument.parse_quantity(position.quantity)
        position.volume_lots = instrument.format_volume_lots(lots)
    return position


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
        message.volume_lots = instrument.format_volume_lots(view.quantity)
    elif view.margin is not None:
        message.margin = format_money(view.margin)
    if view.expire_time is not None:
        message.expire_time.CopyFrom(timestamp(view.expire_time))
    return message


MARGIN_MODES = {
    MarginMode.ISOLATED: common_pb2.MARGIN_MODE_ISOLATED,
    MarginMode.CROSS: common_pb2.MARGIN_MODE_CROSS,
}
POSITION_MODES = {
    PositionMode.HEDGING: common_pb2.POSITION_MODE_HEDGING,
    PositionMode.NETTING: common_pb2.POSITION_MODE_NETTING,
}
SummaryMessage = TypeVar(
    "SummaryMessage", trading_pb2.GetAccountResponse, trading_pb2.AccountSummary
)


def summary_message(summary: AccountSummary, cls: type[SummaryMessage]) -> SummaryMessage:
    """Return a GetAccountResponse or an AccountSummary message of the account figures."""
    cross = summary.margin_mode is MarginMode.CROSS
    distance = summary.stop_out_distance
    return cls(
        balance=format_money(summary.balance),
        used_margin=format_money(summary.used_margin),
        unrealized_pnl=format_money(summary.unrealized_pnl),
        equity=format_money(summary.equity),
        free_margin=format_money(summary.free_margin),
        margin_level=(
            "" if summary.margin_level is None else format_scaled(summary.margin_level, 6)
        ),
        currency="USD",
        margin_mode=MARGIN_MODES[summary.margin_mode],
        margin_call_level=str(summary.margin_call_level) if cross else "",
        stop_out_level=str(summary.stop_out_level) if cross else "",
        stop_out_distance="" if distance is None else format_money(distance),
        margin_call=summary.margin_call,
        position_mode=POSITION_MODES[summary.position_mode],
        swap=format_money(summary.swap),
        commission=format_money(summary.commission),
    )


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


def rollover_date(day: int) -> str:
    """Return a rollover day (days since 1970-01-01) as its UTC date, "YYYY-MM-DD"."""
    return (EPOCH_DATE + datetime.timedelta(days=day)).isoformat()


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
    if isinstance(event, SPOT_ACCOUNT_EVENTS):
        fill_spot_event(message, event, instruments)
    elif isinstance(event, AccountCreated):
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
    elif isinstance(event, SwapCharged):
        message.type = trading_pb2.EVENT_TYPE_SWAP_CHARGED
        message.position.CopyFrom(
            position_message(event.position, instruments[event.position.symbol])
        )
        message.swap_charge.CopyFrom(
            trading_pb2.SwapCharge(
                amount=format_money(event.amount),
                multiplier=event.multiplier,
                rollover_date=rollover_date(event.rollover_day),
            )
        )
    elif isinstance(event, MarginCallReached):
        message.type = trading_pb2.EVENT_TYPE_MARGIN_CALL
        message.margin_call.CopyFrom(
            trading_pb2.MarginCall(
                margin_level=format_scaled(event.margin_level, 6),
                equity=format_money(event.equity),
                used_margin=format_money(event.used_margin),
            )
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


def average_ticks(view: SpotOrderView, market: Market) -> int:
    """Return filled quote / filled quantity in ticks, rounded half-even; 0 without fills."""
    if view.filled_quantity == 0:
        return 0
    numerator = view.filled_quote
    denominator = view.filled_quantity * market.quote_unit
    ticks, rest = divmod(numerator, denominator)
    if 2 * rest > denominator or (2 * rest == denominator and ticks % 2 == 1):
        ticks += 1
    return ticks


def spot_order_message(view: SpotOrderView, market: Market) -> exchange_pb2.SpotOrder:
    """Return the API SpotOrder of a core order view."""
    scale = market.scale
    filled = view.filled_quantity
    return exchange_pb2.SpotOrder(
        id=view.id,
        market=view.market,
        side=SIDES[view.side],
        type=SPOT_ORDER_TYPES[view.order_type],
        price="" if view.price is None else scale.format_price(view.price),
        quantity="" if view.quantity is None else scale.format_quantity(view.quantity),
        quote_quantity="" if view.quote_quantity is None else format_money(view.quote_quantity),
        filled_quantity=scale.format_quantity(filled),
        average_price=scale.format_price(average_ticks(view, market)) if filled else "",
        fee=format_money(view.fee),
        time_in_force=TIMES_IN_FORCE[view.time_in_force],
        post_only=view.post_only,
        status=SPOT_STATUSES[view.status],
        create_time=timestamp(view.create_time),
        update_time=timestamp(view.update_time),
        client_order_id=view.client_order_id or "",
    )


def spot_fill_message(view: SpotFillView, market: Market) -> exchange_pb2.SpotFill:
    """Return the API SpotFill of one side of a trade."""
    scale = market.scale
    return exchange_pb2.SpotFill(
        id=view.id,
        order_id=view.order_id,
        market=view.market,
        side=SIDES[view.side],
        price=scale.format_price(view.price),
        quantity=scale.format_quantity(view.quantity),
        fee=format_money(view.fee),
        liquidity=LIQUIDITIES[view.liquidity],
        time=timestamp(view.time),
    )


def level_messages(levels: tuple[BookLevel, ...], market: Market) -> list[exchange_pb2.BookLevel]:
    """Return aggregated levels as API BookLevels (quantity 0 = the level was removed)."""
    scale = market.scale
    return [
        exchange_pb2.BookLevel(
            price=scale.format_price(level.price), quantity=scale.format_quantity(level.quantity)
        )
        for level in levels
    ]


def balance_message(
    view: BalanceView, markets: Mapping[str, Market]
) -> exchange_pb2.WalletBalance:
    """Return one wallet asset: USD in dollars, a base asset on its market's lot grid."""
    for market in markets.values():
        if market.base_asset == view.asset:
            scale = market.scale
            return exchange_pb2.WalletBalance(
                asset=view.asset,
                available=scale.format_quantity(view.available),
                locked=scale.format_quantity(view.locked),
            )
    return exchange_pb2.WalletBalance(
        asset=view.asset, available=format_money(view.available), locked=format_money(view.locked)
    )


def spot_market(name: str, instruments: Mapping[str, Instrument]) -> Market:
    """Return a market by name; its scale is the instrument of the same coin (``BTCUSD``)."""
    base = name.partition("_")[0]
    return Market.create(name, base, instruments[base + "USD"])


def fill_spot_event(
    message: trading_pb2.StreamEventsResponse,
    event: SpotAccountEvent,
    instruments: Mapping[str, Instrument],
) -> None:
    """Fill a StreamEvents message with an own spot order or fill event."""
    if isinstance(event, SpotFillExecuted):
        fill = event.fill
        message.type = trading_pb2.EVENT_TYPE_SPOT_FILL
        message.spot_fill.CopyFrom(spot_fill_message(fill, spot_market(fill.market, instruments)))
        return
    order = event.order
    message.type = SPOT_ORDER_EVENTS[type(event)]
    message.spot_order.CopyFrom(spot_order_message(order, spot_market(order.market, instruments)))
