"""Validate requests at the boundary and build core commands from them.

Every problem is an `ApiError` whose BadRequest violation names the field by its JSON name
(lowerCamelCase), as REST clients see it. Nothing invalid reaches the sequencer or the journal.
Commands are built with seq and ts 0: the sequencer assigns both.
"""

from __future__ import annotations

from collections.abc import Mapping

from google.protobuf import timestamp_pb2

from cfd.v1 import common_pb2, engine_admin_pb2, trading_pb2
from engine_svc.config import MarginDefaults
from engine_svc.convert import timestamp_ns
from engine_svc.core import (
    CLEAR,
    AddMargin,
    CancelOrder,
    ClosePosition,
    CreateAccount,
    DecimalFormatError,
    Deposit,
    Instrument,
    MarginMode,
    ModifyOrder,
    ModifyPosition,
    OpenPosition,
    OrderType,
    PlaceOrder,
    PositionMode,
    Side,
    parse_money,
)
from mesh.errors import ApiError, validation_error

MAX_CLIENT_ORDER_ID = 64
MAX_ID = 128
MAX_SLIPPAGE_BPS = 10_000_000
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50
# The engine keeps times as int64 nanoseconds since the epoch, which end in 2262.
_LATEST_TIME_NS = 9_223_372_036 * 1_000_000_000  # 2262-04-11T23:47:16Z
_TIME_RANGE = "must be after 1970-01-01T00:00:00Z and not after 2262-04-11T23:47:16Z"

_SIDES: dict[int, Side] = {common_pb2.SIDE_BUY: Side.BUY, common_pb2.SIDE_SELL: Side.SELL}
_ORDER_TYPES: dict[int, OrderType] = {
    trading_pb2.ORDER_TYPE_LIMIT: OrderType.LIMIT,
    trading_pb2.ORDER_TYPE_STOP: OrderType.STOP,
}


def _decimal_error(field: str, exc: DecimalFormatError, quantity: bool = False) -> ApiError:
    if quantity and exc.below_step:
        return ApiError("QUANTITY_TOO_SMALL", f"{field}: {exc.problem}", [(field, exc.problem)])
    return validation_error(field, exc.problem)


def instrument_of(instruments: Mapping[str, Instrument], symbol: str) -> Instrument:
    """Return the instrument of `symbol`; VALIDATION_FAILED when empty, else UNKNOWN_SYMBOL."""
    if not symbol:
        raise validation_error("symbol", "is required")
    instrument = instruments.get(symbol)
    if instrument is None:
        shown = symbol if len(symbol) <= 32 else symbol[:32] + "…"
        raise ApiError("UNKNOWN_SYMBOL", f"unknown symbol {shown!r}", [("symbol", "unknown")])
    return instrument


def client_order_id(value: str) -> str | None:
    """Return the idempotency key, None when empty; at most 64 characters."""
    if not value:
        return None
    if len(value) > MAX_CLIENT_ORDER_ID or not value.isprintable():
        raise validation_error("clientOrderId", "must be at most 64 printable characters")
    return value


def object_id(value: str, field: str) -> str:
    """Return a required position or order id."""
    if not value:
        raise validation_error(field, "is required")
    if len(value) > MAX_ID:
        raise validation_error(field, "is too long")
    return value


def side(value: int) -> Side:
    """Return the side; UNSPECIFIED and unknown values are invalid."""
    chosen = _SIDES.get(value)
    if chosen is None:
        raise validation_error("side", "must be SIDE_BUY or SIDE_SELL")
    return chosen


def order_type(value: int) -> OrderType:
    """Return the order type; UNSPECIFIED and unknown values are invalid."""
    chosen = _ORDER_TYPES.get(value)
    if chosen is None:
        raise validation_error("type", "must be ORDER_TYPE_LIMIT or ORDER_TYPE_STOP")
    return chosen


def leverage(value: int, instrument: Instrument) -> int:
    """Return the leverage when it is within 1..the instrument's maximum."""
    if not 1 <= value <= instrument.max_leverage:
        message = f"must be within 1..{instrument.max_leverage}"
        raise ApiError("INVALID_LEVERAGE", f"leverage: {message}", [("leverage", message)])
    return value


def price(instrument: Instrument, text: str, field: str) -> int:
    """Return a required price on the tick grid, in ticks."""
    if not text:
        raise validation_error(field, "is required")
    try:
        return instrument.parse_price(text, field)
    except DecimalFormatError as exc:
        raise _decimal_error(field, exc) from None


def optional_price(instrument: Instrument, text: str, field: str) -> int | None:
    """Return a price in ticks, None when empty."""
    return None if not text else price(instrument, text, field)


def quantity(instrument: Instrument, text: str, field: str = "quantity") -> int:
    """Return a quantity in lots; a positive value below the lot step is QUANTITY_TOO_SMALL."""
    if not text:
        raise validation_error(field, "is required")
    try:
        return instrument.parse_quantity(text, field)
    except DecimalFormatError as exc:
        raise _decimal_error(field, exc, quantity=True) from None


def volume_lots(instrument: Instrument, text: str, field: str = "volumeLots") -> int:
    """Return a volume in lots as a quantity in lot steps; nothing is rounded: a volume whose
    quantity (volume x contract size) is off the lot-step grid is an error."""
    if not text:
        raise validation_error(field, "is required")
    try:
        return instrument.parse_volume_lots(text, field)
    except DecimalFormatError as exc:
        problem = exc.problem
        if problem.startswith(("more than", "not a multiple")):
            problem = (
                f"{problem}; a volume must be a multiple of {instrument.volume_step} lots (lot"
                f" step {instrument.lot_step} / contract size {instrument.contract_size})"
            )
        if exc.below_step:
            raise ApiError(
                "QUANTITY_TOO_SMALL", f"{field}: {problem}", [(field, problem)]
            ) from None
        raise validation_error(field, problem) from None


def money(text: str, field: str, allow_zero: bool = False) -> int:
    """Return a USD amount in the core's scale (1e-6 USD)."""
    if not text:
        raise validation_error(field, "is required")
    try:
        return parse_money(text, field=field, allow_zero=allow_zero)
    except DecimalFormatError as exc:
        raise _decimal_error(field, exc) from None


def _sizing(
    request: (
        trading_pb2.OpenPositionRequest
        | trading_pb2.PlaceOrderRequest
        | trading_pb2.ModifyOrderRequest
    ),
    instrument: Instrument,
    lots_given: bool,
) -> tuple[int | None, int | None]:
    which = request.WhichOneof("size")
    if lots_given:
        if which is not None:
            raise validation_error("volumeLots", f"give {which} or volumeLots, not both")
        return volume_lots(instrument, request.volume_lots), None
    if which == "quantity":
        return quantity(instrument, request.quantity), None
    if which == "margin":
        return None, money(request.margin, "margin")
    raise validation_error("quantity", "give a quantity, volumeLots or a margin")


def expire_time(value: timestamp_pb2.Timestamp) -> int:
    """Return a valid timestamp in Unix epoch nanoseconds."""
    if not 0 <= value.nanos < 1_000_000_000:
        raise validation_error("expireTime", "is not a valid time")
    ns = timestamp_ns(value)
    if not 0 < ns <= _LATEST_TIME_NS:
        raise validation_error("expireTime", _TIME_RANGE)
    return ns


def open_position(
    request: trading_pb2.OpenPositionRequest,
    account_id: str,
    instruments: Mapping[str, Instrument],
) -> OpenPosition:
    """Build the OpenPosition command of a request."""
    instrument = instrument_of(instruments, request.symbol)
    chosen_side = side(request.side)
    chosen_leverage = leverage(request.leverage, instrument)
    lots, margin = _sizing(request, instrument, bool(request.volume_lots))
    expected = optional_price(instrument, request.expected_price, "expectedPrice")
    bps: int | None = None
    if request.HasField("max_slippage_bps"):
        bps = request.max_slippage_bps
        if not 0 <= bps <= MAX_SLIPPAGE_BPS:
            raise validation_error("maxSlippageBps", f"must be within 0..{MAX_SLIPPAGE_BPS}")
        if expected is None:
            raise validation_error("expectedPrice", "is required with maxSlippageBps")
    return OpenPosition(
        0,
        0,
        account_id,
        instrument.symbol,
        chosen_side,
        chosen_leverage,
        quantity=lots,
        margin=margin,
        expected_price=expected,
        max_slippage_bps=bps,
        take_profit=optional_price(instrument, request.take_profit, "takeProfit"),
        stop_loss=optional_price(instrument, request.stop_loss, "stopLoss"),
        trailing_distance=optional_price(instrument, request.trailing_distance, "trailingDistance"),
        client_order_id=client_order_id(request.client_order_id),
    )


def place_order(
    request: trading_pb2.PlaceOrderRequest,
    account_id: str,
    instruments: Mapping[str, Instrument],
) -> PlaceOrder:
    """Build the PlaceOrder command of a request."""
    instrument = instrument_of(instruments, request.symbol)
    chosen_side = side(request.side)
    chosen_type = order_type(request.type)
    trigger = price(instrument, request.trigger_price, "triggerPrice")
    chosen_leverage = leverage(request.leverage, instrument)
    lots, margin = _sizing(request, instrument, bool(request.volume_lots))
    expire = expire_time(request.expire_time) if request.HasField("expire_time") else None
    return PlaceOrder(
        0,
        0,
        account_id,
        instrument.symbol,
        chosen_side,
        chosen_type,
        trigger,
        chosen_leverage,
        quantity=lots,
        margin=margin,
        take_profit=optional_price(instrument, request.take_profit, "takeProfit"),
        stop_loss=optional_price(instrument, request.stop_loss, "stopLoss"),
        trailing_distance=optional_price(instrument, request.trailing_distance, "trailingDistance"),
        expire_time=expire,
        client_order_id=client_order_id(request.client_order_id),
    )


def _modify_price(
    request: trading_pb2.ModifyPositionRequest | trading_pb2.ModifyOrderRequest,
    name: str,
    instrument: Instrument,
    field: str,
) -> int | None:
    if not request.HasField(name):  # type: ignore[arg-type]
        return None
    text: str = getattr(request, name)
    return CLEAR if text == "" else price(instrument, text, field)


def modify_position(
    request: trading_pb2.ModifyPositionRequest, account_id: str, instrument: Instrument
) -> ModifyPosition:
    """Build the ModifyPosition command; `instrument` is the position's."""
    take_profit = _modify_price(request, "take_profit", instrument, "takeProfit")
    stop_loss = _modify_price(request, "stop_loss", instrument, "stopLoss")
    trailing = _modify_price(request, "trailing_distance", instrument, "trailingDistance")
    if take_profit is None and stop_loss is None and trailing is None:
        raise validation_error("takeProfit", "give takeProfit, stopLoss or trailingDistance")
    return ModifyPosition(
        0,
        0,
        account_id,
        request.position_id,
        take_profit=take_profit,
        stop_loss=stop_loss,
        trailing_distance=trailing,
        client_order_id=client_order_id(request.client_order_id),
    )


def modify_order(
    request: trading_pb2.ModifyOrderRequest, account_id: str, instrument: Instrument
) -> ModifyOrder:
    """Build the ModifyOrder command; `instrument` is the order's."""
    trigger: int | None = None
    if request.HasField("trigger_price"):
        trigger = price(instrument, request.trigger_price, "triggerPrice")
    lots: int | None = None
    margin: int | None = None
    lots_given = request.HasField("volume_lots")
    if request.HasField("quantity") or request.HasField("margin") or lots_given:
        lots, margin = _sizing(request, instrument, lots_given)
    expire: int | None = None
    if request.HasField("expire_time"):
        if request.clear_expire_time:
            raise validation_error("expireTime", "give expireTime or clearExpireTime, not both")
        expire = expire_time(request.expire_time)
    elif request.clear_expire_time:
        expire = CLEAR
    command = ModifyOrder(
        0,
        0,
        account_id,
        object_id(request.order_id, "orderId"),
        trigger_price=trigger,
        quantity=lots,
        margin=margin,
        take_profit=_modify_price(request, "take_profit", instrument, "takeProfit"),
        stop_loss=_modify_price(request, "stop_loss", instrument, "stopLoss"),
        trailing_distance=_modify_price(
            request, "trailing_distance", instrument, "trailingDistance"
        ),
        expire_time=expire,
        client_order_id=client_order_id(request.client_order_id),
    )
    if all(value is None for value in command[4:11]):
        raise validation_error("triggerPrice", "give at least one field to change")
    return command


def close_position(
    request: trading_pb2.ClosePositionRequest, account_id: str, instrument: Instrument
) -> ClosePosition:
    """Build the ClosePosition command; `instrument` is the position's."""
    lots: int | None = None
    if request.volume_lots:
        if request.quantity:
            raise validation_error("volumeLots", "give quantity or volumeLots, not both")
        lots = volume_lots(instrument, request.volume_lots)
    elif request.quantity:
        lots = quantity(instrument, request.quantity)
    return ClosePosition(
        0,
        0,
        account_id,
        request.position_id,
        quantity=lots,
        client_order_id=client_order_id(request.client_order_id),
    )


def add_margin(request: trading_pb2.AddMarginRequest, account_id: str) -> AddMargin:
    """Build the AddMargin command of a request."""
    return AddMargin(
        0,
        0,
        account_id,
        request.position_id,
        money(request.amount, "amount"),
        client_order_id=client_order_id(request.client_order_id),
    )


def cancel_order(request: trading_pb2.CancelOrderRequest, account_id: str) -> CancelOrder:
    """Build the CancelOrder command of a request."""
    return CancelOrder(
        0,
        0,
        account_id,
        object_id(request.order_id, "orderId"),
        client_order_id=client_order_id(request.client_order_id),
    )


def user_id(value: str) -> str:
    """Return a valid account id: 1-128 printable characters without spaces."""
    if not value:
        raise validation_error("userId", "is required")
    if len(value) > MAX_ID or not value.isprintable() or " " in value:
        raise validation_error("userId", "must be 1-128 printable characters without spaces")
    return value


_MARGIN_MODES: dict[int, MarginMode] = {
    common_pb2.MARGIN_MODE_ISOLATED: MarginMode.ISOLATED,
    common_pb2.MARGIN_MODE_CROSS: MarginMode.CROSS,
}
_POSITION_MODES: dict[int, PositionMode] = {
    common_pb2.POSITION_MODE_HEDGING: PositionMode.HEDGING,
    common_pb2.POSITION_MODE_NETTING: PositionMode.NETTING,
}


def create_account(
    request: engine_admin_pb2.CreateAccountRequest,
    default_balance: str,
    defaults: MarginDefaults,
) -> CreateAccount:
    """Build the CreateAccount command; an empty initial balance means the demo balance and
    an unspecified margin or position mode the configured one (a cross account gets the
    configured levels)."""
    balance_text = request.initial_balance or default_balance
    account_id = user_id(request.user_id)
    balance = money(balance_text, "initialBalance", allow_zero=True)
    mode = defaults.mode
    if request.margin_mode != common_pb2.MARGIN_MODE_UNSPECIFIED:
        chosen = _MARGIN_MODES.get(request.margin_mode)
        if chosen is None:
            raise validation_error("marginMode", "must be MARGIN_MODE_ISOLATED or _CROSS")
        mode = chosen
    positions = defaults.position_mode
    if request.position_mode != common_pb2.POSITION_MODE_UNSPECIFIED:
        named = _POSITION_MODES.get(request.position_mode)
        if named is None:
            raise validation_error(
                "positionMode", "must be POSITION_MODE_HEDGING or POSITION_MODE_NETTING"
            )
        positions = named
    if mode is MarginMode.ISOLATED:
        return CreateAccount(0, 0, account_id, balance, position_mode=positions)
    return CreateAccount(
        0, 0, account_id, balance, mode, defaults.margin_call_level, defaults.stop_out_level,
        positions,
    )  # fmt: skip


def deposit(request: engine_admin_pb2.DepositRequest) -> Deposit:
    """Build the Deposit command of a request."""
    return Deposit(
        0,
        0,
        user_id(request.user_id),
        money(request.amount, "amount"),
        client_order_id=client_order_id(request.client_order_id),
    )


def page_size(value: int) -> int:
    """Return the history page size: 1..500, 0 meaning 50."""
    if value == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise validation_error("pageSize", f"must be within 0..{MAX_PAGE_SIZE}")
    return value
