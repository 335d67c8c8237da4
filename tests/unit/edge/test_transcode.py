"""HTTP requests to protobuf requests and protobuf responses to JSON."""

from __future__ import annotations

import pytest

from cfd.v1 import common_pb2, market_pb2, trading_pb2
from edge.descriptors import HttpBinding, load
from edge.pathtemplate import parse
from edge.transcode import build_request, parse_body, to_json
from mesh.errors import ApiError
from support import set_fields

CONTRACTS = load()


def rpc(name: str):  # type: ignore[no-untyped-def]
    return next(r for r in CONTRACTS.rpcs if r.name == name)


def test_only_public_services_with_bindings_are_loaded() -> None:
    services = {r.service for r in CONTRACTS.rpcs}
    assert services == {
        "cfd.v1.AccountService",
        "cfd.v1.TradingService",
        "cfd.v1.MarketDataService",
        "cfd.v1.ExchangeService",
    }
    assert len(CONTRACTS.rpcs) == 57


def test_path_query_and_body_fill_one_message() -> None:
    candles = rpc("GetCandles")
    request = build_request(
        candles.bindings[0],
        candles.input_class,
        {"symbol": "ETHUSD"},
        [("interval", "2"), ("limit", "9"), ("endTime", "2024-05-01T00:00:00+02:00")],
        b"",
    )
    parsed = market_pb2.GetCandlesRequest.FromString(request.SerializeToString())
    assert parsed.symbol == "ETHUSD"
    assert parsed.interval == market_pb2.CANDLE_INTERVAL_5M
    assert parsed.limit == 9
    assert parsed.end_time.seconds == 1714514400


def test_repeated_query_parameters_append() -> None:
    prices = rpc("StreamPrices")
    request = build_request(
        prices.bindings[0], prices.input_class, {}, [("symbols", "A"), ("symbols", "B")], b""
    )
    assert list(
        trading_pb2.StreamPricesRequest.FromString(request.SerializeToString()).symbols
    ) == ["A", "B"]


def test_a_custom_body_field_and_bool_queries() -> None:
    binding = HttpBinding("POST", parse("/x/{position_id}"), "take_profit", "")
    modify = rpc("ModifyPosition")
    request = build_request(binding, modify.input_class, {"position_id": "p1"}, [], b'"61000"')
    parsed = trading_pb2.ModifyPositionRequest.FromString(request.SerializeToString())
    assert (parsed.position_id, parsed.take_profit, parsed.HasField("stop_loss")) == (
        "p1",
        "61000",
        False,
    )
    candle = CONTRACTS.message_class("cfd.v1.Candle")
    get = HttpBinding("GET", parse("/c"), "", "")
    assert build_request(get, candle, {}, [("closed", "true")], b"").closed is True  # type: ignore[attr-defined]
    with pytest.raises(ApiError):
        build_request(get, candle, {}, [("closed", "yes")], b"")


def test_bad_bodies_are_validation_errors() -> None:
    open_position = rpc("OpenPosition")
    for body in (b"nul", b"1", b'{"leverage": {}}', b'{"quantity": "1", "margin": "2"}'):
        with pytest.raises(ApiError) as info:
            parse_body(body, open_position.input_class)
        assert info.value.reason == "VALIDATION_FAILED"


def test_volume_lots_is_a_known_field_in_and_out() -> None:
    for name in ("OpenPosition", "PlaceOrder", "ClosePosition"):
        request = parse_body(b'{"volumeLots": "0.25"}', rpc(name).input_class)
        assert request.volume_lots == "0.25"  # type: ignore[attr-defined]
    modify = parse_body(b'{"volumeLots": "0.5"}', rpc("ModifyOrder").input_class)
    assert modify.HasField("volume_lots")
    with pytest.raises(ApiError) as info:
        parse_body(b'{"volumeLots": 0.25}', rpc("OpenPosition").input_class)
    assert info.value.reason == "VALIDATION_FAILED"
    reply = trading_pb2.ClosePositionResponse(
        closed_quantity="250",
        closed_volume_lots="0.250",
        position=trading_pb2.Position(id="p", quantity="750", volume_lots="0.750"),
    )
    message = rpc("ClosePosition").output_class.FromString(reply.SerializeToString())
    assert set_fields(to_json(message)) == {
        "position": {"id": "p", "quantity": "750", "volumeLots": "0.750"},
        "closedQuantity": "250",
        "closedVolumeLots": "0.250",
    }
    instrument = market_pb2.Instrument(symbol="BTCUSD", contract_size="1")
    assert set_fields(to_json(instrument)) == {"symbol": "BTCUSD", "contractSize": "1"}


def test_responses_print_defaults_and_use_camel_case() -> None:
    reply = trading_pb2.ClosePositionResponse(
        closed_quantity="1", position=trading_pb2.Position(id="p")
    )
    message = rpc("ClosePosition").output_class.FromString(reply.SerializeToString())
    whole = to_json(message)
    assert (whole["closedQuantity"], whole["realizedPnl"]) == ("1", "")
    assert whole["position"] == to_json(message, "position")
    position = whole["position"]
    assert (position["id"], position["side"], position["leverage"]) == ("p", "SIDE_UNSPECIFIED", 0)
    # An unset message is left out; an empty list is printed.
    assert "openTime" not in position
    listed = rpc("ListPositions").output_class()
    assert to_json(listed) == {"positions": []}


def _violation(body: bytes, request_class: type = trading_pb2.OpenPositionRequest) -> str:
    """Return the field of the one violation that parsing `body` raises."""
    with pytest.raises(ApiError) as info:
        parse_body(body, request_class)
    assert info.value.reason == "VALIDATION_FAILED"
    (field, _description), *rest = info.value.violations
    assert rest == []
    return field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"symbol":"BTCUSD","stopLoss":"60000","stopLoss":""}', "stopLoss"),
        (b'{"quantity":"0.0010","symbol":"BTCUSD","quantity":"0.0020"}', "quantity"),
        # Equal once unescaped: "\u004c" is "L".
        (b'{"stop\\u004coss":"60000","stopLoss":""}', "stopLoss"),
        # One field under its JSON name and its proto name.
        (b'{"stopLoss":"60000","stop_loss":""}', "stop_loss"),
        # Duplicates deeper down, even where the field itself is unknown.
        (b'{"symbol":"BTCUSD","extra":{"k":1,"k":2}}', "k"),
        (b'{"symbol":"BTCUSD","extra":[{"k":1},{"k":1,"k":1}]}', "k"),
    ],
)
def test_a_key_given_twice_is_refused(body: bytes, field: str) -> None:
    assert _violation(body) == field


def test_a_key_given_twice_is_refused_in_a_custom_body_field() -> None:
    binding = HttpBinding("POST", parse("/x"), "expire_time", "")
    place = rpc("PlaceOrder")
    with pytest.raises(ApiError) as info:
        build_request(binding, place.input_class, {}, [], b'{"a":1,"a":2}')
    assert info.value.violations[0][0] == "a"


def test_json_constants_that_are_not_json_are_refused() -> None:
    for constant in (b"NaN", b"Infinity", b"-Infinity"):
        assert _violation(b'{"leverage":' + constant + b"}") == "body"


@pytest.mark.parametrize(
    "value", [b"1.5", b"2.9", b"1.0", b"true", b'"1"', b"7", b"-1", b"99999999999999999999",
              b'"SIDE_SIDEWAYS"', b'"side_buy"', b"{}", b"[1]"],
)  # fmt: skip
def test_an_enum_is_a_name_or_the_exact_number_of_a_value(value: bytes) -> None:
    assert _violation(b'{"symbol":"BTCUSD","side":' + value + b"}") == "side"


def test_enum_names_and_numbers_of_known_values_are_accepted() -> None:
    for value, side in ((b'"SIDE_SELL"', common_pb2.SIDE_SELL), (b"1", common_pb2.SIDE_BUY)):
        parsed = parse_body(b'{"side":' + value + b"}", trading_pb2.OpenPositionRequest)
        assert parsed.side == side  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "value", [b"10.5", b"true", b"1e400", b"99999999999999999999", b'"ten"', b'" 10"', b"null1"]
)
def test_an_integer_field_takes_integers_only(value: bytes) -> None:
    field = _violation(b'{"leverage":' + value + b"}")
    assert field in ("leverage", "body")


def test_integral_numbers_in_any_json_notation_are_integers() -> None:
    # The protobuf JSON mapping reads 1e3, 10.0 and "10" as integers; the service judges them.
    for value, expected in ((b"1e3", 1000), (b"10.0", 10), (b'"10"', 10)):
        parsed = parse_body(b'{"leverage":' + value + b"}", trading_pb2.OpenPositionRequest)
        assert parsed.leverage == expected  # type: ignore[attr-defined]
