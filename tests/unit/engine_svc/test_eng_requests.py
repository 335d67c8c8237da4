"""Boundary validation: each bad field is one API reason naming the field's JSON name."""

from __future__ import annotations

import pytest
from google.protobuf import timestamp_pb2

from cfd.v1 import common_pb2, engine_admin_pb2, trading_pb2
from engine_svc import requests
from engine_svc.config import MarginDefaults
from engine_svc.core import (
    CLEAR,
    CreateAccount,
    MarginMode,
    OrderType,
    PositionMode,
    Side,
    default_instruments,
    make_instrument,
)
from mesh.errors import ApiError

DEFAULTS = MarginDefaults()

INSTRUMENTS = default_instruments()
BTC = INSTRUMENTS["BTCUSD"]


def _open(**fields: object) -> trading_pb2.OpenPositionRequest:
    base: dict[str, object] = {
        "symbol": "BTCUSD",
        "side": common_pb2.SIDE_BUY,
        "leverage": 10,
        "quantity": "0.01",
    }
    base.update(fields)
    return trading_pb2.OpenPositionRequest(**base)  # type: ignore[arg-type]


def _error(call: object) -> tuple[str, list[str]]:
    assert callable(call)
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value.reason, [field for field, _ in caught.value.violations]


def test_a_valid_open_request_becomes_an_unnumbered_command() -> None:
    command = requests.open_position(
        _open(take_profit="70000", stop_loss="60000.5", client_order_id="c-1"), "u1", INSTRUMENTS
    )
    assert (command.seq, command.ts, command.account_id) == (0, 0, "u1")
    assert command.side is Side.BUY
    assert command.quantity == 100
    assert command.margin is None
    assert command.take_profit == 7_000_000
    assert command.stop_loss == 6_000_050
    assert command.client_order_id == "c-1"


def test_margin_sizing_and_slippage_fields() -> None:
    request = trading_pb2.OpenPositionRequest(
        symbol="BTCUSD",
        side=common_pb2.SIDE_SELL,
        leverage=5,
        margin="100.5",
        expected_price="64000",
        max_slippage_bps=25,
    )
    command = requests.open_position(request, "u1", INSTRUMENTS)
    assert (command.quantity, command.margin) == (None, 100_500_000)
    assert (command.expected_price, command.max_slippage_bps) == (6_400_000, 25)


@pytest.mark.parametrize(
    ("fields", "reason", "field"),
    [
        ({"symbol": ""}, "VALIDATION_FAILED", "symbol"),
        ({"symbol": "DOGEUSD"}, "UNKNOWN_SYMBOL", "symbol"),
        ({"side": common_pb2.SIDE_UNSPECIFIED}, "VALIDATION_FAILED", "side"),
        ({"side": 7}, "VALIDATION_FAILED", "side"),
        ({"leverage": 0}, "INVALID_LEVERAGE", "leverage"),
        ({"leverage": 101}, "INVALID_LEVERAGE", "leverage"),
        ({"quantity": "0.00001"}, "QUANTITY_TOO_SMALL", "quantity"),
        ({"quantity": "0"}, "VALIDATION_FAILED", "quantity"),
        ({"quantity": "-1"}, "VALIDATION_FAILED", "quantity"),
        ({"quantity": "1e3"}, "VALIDATION_FAILED", "quantity"),
        ({"quantity": "9" * 40}, "VALIDATION_FAILED", "quantity"),
        ({"margin": "1.0000001"}, "VALIDATION_FAILED", "margin"),
        ({"take_profit": "70000.001"}, "VALIDATION_FAILED", "takeProfit"),
        ({"stop_loss": "abc"}, "VALIDATION_FAILED", "stopLoss"),
        ({"trailing_distance": "-5"}, "VALIDATION_FAILED", "trailingDistance"),
        ({"expected_price": "NaN"}, "VALIDATION_FAILED", "expectedPrice"),
        ({"max_slippage_bps": 10}, "VALIDATION_FAILED", "expectedPrice"),
        ({"expected_price": "1", "max_slippage_bps": -1}, "VALIDATION_FAILED", "maxSlippageBps"),
        ({"client_order_id": "x" * 65}, "VALIDATION_FAILED", "clientOrderId"),
    ],
)
def test_each_bad_open_field_is_named(fields: dict[str, object], reason: str, field: str) -> None:
    request = _open(**fields)
    assert _error(lambda: requests.open_position(request, "u1", INSTRUMENTS)) == (reason, [field])


def test_an_open_request_without_a_size_is_invalid() -> None:
    request = trading_pb2.OpenPositionRequest(symbol="BTCUSD", side=common_pb2.SIDE_BUY, leverage=1)
    assert _error(lambda: requests.open_position(request, "u1", INSTRUMENTS)) == (
        "VALIDATION_FAILED",
        ["quantity"],
    )


def test_place_order_needs_a_type_and_a_valid_trigger_and_expiry() -> None:
    request = trading_pb2.PlaceOrderRequest(
        symbol="ETHUSD",
        side=common_pb2.SIDE_BUY,
        type=trading_pb2.ORDER_TYPE_LIMIT,
        trigger_price="3000.5",
        leverage=20,
        quantity="0.5",
        expire_time=timestamp_pb2.Timestamp(seconds=1_900_000_000, nanos=5),
    )
    command = requests.place_order(request, "u1", INSTRUMENTS)
    assert command.order_type is OrderType.LIMIT
    assert (command.trigger_price, command.quantity) == (300_050, 500)
    assert command.expire_time == 1_900_000_000_000_000_005
    for change, field in (
        ({"type": trading_pb2.ORDER_TYPE_UNSPECIFIED}, "type"),
        ({"trigger_price": ""}, "triggerPrice"),
        ({"trigger_price": "3000.555"}, "triggerPrice"),
    ):
        bad = trading_pb2.PlaceOrderRequest()
        bad.CopyFrom(request)
        for name, value in change.items():
            setattr(bad, name, value)
        assert _error(lambda bad=bad: requests.place_order(bad, "u1", INSTRUMENTS)) == (
            "VALIDATION_FAILED",
            [field],
        )
    bad_time = trading_pb2.PlaceOrderRequest()
    bad_time.CopyFrom(request)
    bad_time.expire_time.nanos = -1
    assert _error(lambda: requests.place_order(bad_time, "u1", INSTRUMENTS)) == (
        "VALIDATION_FAILED",
        ["expireTime"],
    )


@pytest.mark.parametrize(
    ("seconds", "nanos"), [(0, 0), (-1, 0), (9_223_372_037, 0), (9_223_372_036, 1)]
)
def test_an_expiry_outside_the_engines_clock_is_refused_in_api_terms(
    seconds: int, nanos: int
) -> None:
    request = trading_pb2.PlaceOrderRequest(
        symbol="ETHUSD", side=common_pb2.SIDE_BUY, type=trading_pb2.ORDER_TYPE_LIMIT,
        trigger_price="3000.5", leverage=20, quantity="0.5",
        expire_time=timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos),
    )  # fmt: skip
    with pytest.raises(ApiError) as info:
        requests.place_order(request, "u1", INSTRUMENTS)
    assert info.value.violations == (
        ("expireTime", "must be after 1970-01-01T00:00:00Z and not after 2262-04-11T23:47:16Z"),
    )
    request.expire_time.CopyFrom(timestamp_pb2.Timestamp(seconds=9_223_372_036))
    assert requests.place_order(request, "u1", INSTRUMENTS).expire_time == 9_223_372_036 * 10**9


def test_modify_distinguishes_absent_cleared_and_set_fields() -> None:
    request = trading_pb2.ModifyPositionRequest(position_id="p-3", take_profit="", stop_loss="1")
    command = requests.modify_position(request, "u1", BTC)
    assert (command.take_profit, command.stop_loss, command.trailing_distance) == (
        CLEAR,
        100,
        None,
    )
    empty = trading_pb2.ModifyPositionRequest(position_id="p-3")
    assert _error(lambda: requests.modify_position(empty, "u1", BTC))[0] == "VALIDATION_FAILED"


def test_close_quantity_is_optional_and_checked_against_the_lot_step() -> None:
    whole = requests.close_position(trading_pb2.ClosePositionRequest(position_id="p-1"), "u", BTC)
    assert whole.quantity is None
    part = requests.close_position(
        trading_pb2.ClosePositionRequest(position_id="p-1", quantity="0.0002"), "u", BTC
    )
    assert part.quantity == 2
    tiny = trading_pb2.ClosePositionRequest(position_id="p-1", quantity="0.00001")
    assert _error(lambda: requests.close_position(tiny, "u", BTC)) == (
        "QUANTITY_TOO_SMALL",
        ["quantity"],
    )


def test_create_account_takes_the_requested_or_the_configured_margin_mode() -> None:
    cross_default = MarginDefaults(MarginMode.CROSS, 80, 30)
    request = engine_admin_pb2.CreateAccountRequest(user_id="u")
    assert requests.create_account(request, "5000", cross_default) == CreateAccount(
        0, 0, "u", 5_000_000_000, MarginMode.CROSS, 80, 30
    )
    isolated = engine_admin_pb2.CreateAccountRequest(
        user_id="u", margin_mode=common_pb2.MARGIN_MODE_ISOLATED
    )
    assert requests.create_account(isolated, "5000", cross_default) == CreateAccount(
        0, 0, "u", 5_000_000_000
    )
    cross = engine_admin_pb2.CreateAccountRequest(
        user_id="u", margin_mode=common_pb2.MARGIN_MODE_CROSS
    )
    assert requests.create_account(cross, "5000", DEFAULTS) == CreateAccount(
        0, 0, "u", 5_000_000_000, MarginMode.CROSS, 60, 0
    )


def test_create_account_takes_the_requested_or_the_configured_position_mode() -> None:
    netting_default = MarginDefaults(position_mode=PositionMode.NETTING)
    request = engine_admin_pb2.CreateAccountRequest(user_id="u")
    assert requests.create_account(request, "5000", netting_default) == CreateAccount(
        0, 0, "u", 5_000_000_000, position_mode=PositionMode.NETTING
    )
    assert requests.create_account(request, "5000", DEFAULTS).position_mode is (
        PositionMode.HEDGING
    )
    hedging = engine_admin_pb2.CreateAccountRequest(
        user_id="u", position_mode=common_pb2.POSITION_MODE_HEDGING
    )
    assert requests.create_account(hedging, "5000", netting_default) == CreateAccount(
        0, 0, "u", 5_000_000_000
    )
    cross_netting = engine_admin_pb2.CreateAccountRequest(
        user_id="u",
        margin_mode=common_pb2.MARGIN_MODE_CROSS,
        position_mode=common_pb2.POSITION_MODE_NETTING,
    )
    assert requests.create_account(cross_netting, "5000", DEFAULTS) == CreateAccount(
        0, 0, "u", 5_000_000_000, MarginMode.CROSS, 60, 0, PositionMode.NETTING
    )


def test_admin_requests() -> None:
    created = requests.create_account(
        engine_admin_pb2.CreateAccountRequest(user_id="u-1", initial_balance=""), "5000", DEFAULTS
    )
    assert (created.account_id, created.initial_balance) == ("u-1", 5_000_000_000)
    assert created.margin_mode is MarginMode.ISOLATED
    zero = requests.create_account(
        engine_admin_pb2.CreateAccountRequest(user_id="u-1", initial_balance="0"), "5000", DEFAULTS
    )
    assert zero.initial_balance == 0
    for bad, field in (
        (engine_admin_pb2.CreateAccountRequest(user_id=""), "userId"),
        (engine_admin_pb2.CreateAccountRequest(user_id="a b"), "userId"),
        (
            engine_admin_pb2.CreateAccountRequest(user_id="u", initial_balance="-1"),
            "initialBalance",
        ),
        (
            engine_admin_pb2.CreateAccountRequest(
                user_id="u",
                margin_mode=7,  # type: ignore[arg-type]
            ),
            "marginMode",
        ),
        (
            engine_admin_pb2.CreateAccountRequest(
                user_id="u",
                position_mode=9,  # type: ignore[arg-type]
            ),
            "positionMode",
        ),
    ):
        assert _error(lambda bad=bad: requests.create_account(bad, "5000", DEFAULTS)) == (
            "VALIDATION_FAILED",
            [field],
        )
    deposit = requests.deposit(engine_admin_pb2.DepositRequest(user_id="u", amount="0.000001"))
    assert deposit.amount == 1
    assert _error(
        lambda: requests.deposit(engine_admin_pb2.DepositRequest(user_id="u", amount="0"))
    ) == ("VALIDATION_FAILED", ["amount"])


def test_page_size_bounds() -> None:
    assert requests.page_size(0) == 50
    assert requests.page_size(500) == 500
    for bad in (-1, 501):
        assert _error(lambda bad=bad: requests.page_size(bad)) == (
            "VALIDATION_FAILED",
            ["pageSize"],
        )


def test_modify_order_distinguishes_absent_cleared_and_set_fields() -> None:
    request = trading_pb2.ModifyOrderRequest(
        order_id="o-3", trigger_price="2", stop_loss="", quantity="0.01", clear_expire_time=True
    )
    command = requests.modify_order(request, "u1", BTC)
    assert (command.trigger_price, command.stop_loss, command.take_profit) == (200, CLEAR, None)
    assert (command.quantity, command.margin, command.expire_time) == (100, None, CLEAR)
    empty = trading_pb2.ModifyOrderRequest(order_id="o-3")
    assert _error(lambda: requests.modify_order(empty, "u1", BTC))[0] == "VALIDATION_FAILED"
    both = trading_pb2.ModifyOrderRequest(order_id="o-3", clear_expire_time=True)
    both.expire_time.seconds = 2_000_000_000
    assert _error(lambda: requests.modify_order(both, "u1", BTC))[0] == "VALIDATION_FAILED"


XRP = make_instrument("XRPUSD", "0.0001", "1", 50, contract_size="1000")


def test_volume_lots_sizes_each_request_by_the_contract_size() -> None:
    opened = requests.open_position(
        trading_pb2.OpenPositionRequest(
            symbol="XRPUSD", side=common_pb2.SIDE_BUY, leverage=10, volume_lots="0.25"
        ),
        "u1",
        {"XRPUSD": XRP},
    )
    assert (opened.quantity, opened.margin) == (250, None)
    placed = requests.place_order(
        trading_pb2.PlaceOrderRequest(
            symbol="XRPUSD",
            side=common_pb2.SIDE_SELL,
            type=trading_pb2.ORDER_TYPE_LIMIT,
            trigger_price="0.6",
            leverage=5,
            volume_lots="1.5",
        ),
        "u1",
        {"XRPUSD": XRP},
    )
    assert (placed.quantity, placed.margin) == (1500, None)
    modified = requests.modify_order(
        trading_pb2.ModifyOrderRequest(order_id="o-1", volume_lots="0.002"), "u1", XRP
    )
    assert (modified.quantity, modified.margin) == (2, None)
    closed = requests.close_position(
        trading_pb2.ClosePositionRequest(position_id="p-1", volume_lots="0.003"), "u1", XRP
    )
    assert closed.quantity == 3


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"quantity": "1", "volume_lots": "0.001"}, "VALIDATION_FAILED"),
        ({"margin": "10", "volume_lots": "0.001"}, "VALIDATION_FAILED"),
        ({"volume_lots": "0.0015"}, "VALIDATION_FAILED"),
        ({"volume_lots": "0.0005"}, "QUANTITY_TOO_SMALL"),
        ({"volume_lots": "-1"}, "VALIDATION_FAILED"),
        ({"volume_lots": "1e3"}, "VALIDATION_FAILED"),
    ],
)
def test_volume_lots_with_another_size_or_off_the_grid_is_refused(
    fields: dict[str, object], reason: str
) -> None:
    request = trading_pb2.OpenPositionRequest(
        symbol="XRPUSD",
        side=common_pb2.SIDE_BUY,
        leverage=10,
        **fields,  # type: ignore[arg-type]
    )
    with pytest.raises(ApiError) as caught:
        requests.open_position(request, "u1", {"XRPUSD": XRP})
    assert caught.value.reason == reason
    assert [field for field, _ in caught.value.violations] == ["volumeLots"]


def test_an_off_grid_volume_names_the_volume_step() -> None:
    request = trading_pb2.OpenPositionRequest(
        symbol="XRPUSD", side=common_pb2.SIDE_BUY, leverage=10, volume_lots="0.0015"
    )
    with pytest.raises(ApiError) as caught:
        requests.open_position(request, "u1", {"XRPUSD": XRP})
    assert "multiple of 0.001 lots (lot step 1 / contract size 1000)" in str(caught.value)


def test_close_and_modify_order_refuse_two_sizes() -> None:
    close = trading_pb2.ClosePositionRequest(position_id="p-1", quantity="1", volume_lots="0.001")
    assert _error(lambda: requests.close_position(close, "u1", XRP)) == (
        "VALIDATION_FAILED",
        ["volumeLots"],
    )
    modify = trading_pb2.ModifyOrderRequest(order_id="o-1", quantity="1", volume_lots="0.001")
    assert _error(lambda: requests.modify_order(modify, "u1", XRP)) == (
        "VALIDATION_FAILED",
        ["volumeLots"],
    )
    empty = trading_pb2.ModifyOrderRequest(order_id="o-1", volume_lots="")
    assert _error(lambda: requests.modify_order(empty, "u1", XRP)) == (
        "VALIDATION_FAILED",
        ["volumeLots"],
    )
