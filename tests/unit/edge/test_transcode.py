"""HTTP requests to protobuf requests and protobuf responses to JSON."""

from __future__ import annotations

import pytest

from cfd.v1 import market_pb2, trading_pb2
from edge.descriptors import HttpBinding, load
from edge.pathtemplate import parse
from edge.transcode import build_request, parse_body, to_json
from mesh.errors import ApiError

CONTRACTS = load()


def rpc(name: str):  # type: ignore[no-untyped-def]
    return next(r for r in CONTRACTS.rpcs if r.name == name)


def test_only_public_services_with_bindings_are_loaded() -> None:
    services = {r.service for r in CONTRACTS.rpcs}
    assert services == {
        "cfd.v1.AccountService",
        "cfd.v1.TradingService",
        "cfd.v1.MarketDataService",
    }
    assert len(CONTRACTS.rpcs) == 24


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


def test_responses_omit_defaults_and_use_camel_case() -> None:
    reply = trading_pb2.ClosePositionResponse(
        closed_quantity="1", position=trading_pb2.Position(id="p")
    )
    message = rpc("ClosePosition").output_class.FromString(reply.SerializeToString())
    assert to_json(message) == {"position": {"id": "p"}, "closedQuantity": "1"}
    assert to_json(message, "position") == {"id": "p"}
