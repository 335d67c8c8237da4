"""The OpenAPI document generated from the descriptors."""

from __future__ import annotations

from typing import Any

from edge.descriptors import load
from edge.openapi import build_openapi
from edge.rest import routes_of

CONTRACTS = load()
DOC: dict[str, Any] = build_openapi(CONTRACTS, routes_of(CONTRACTS.rpcs))


def test_every_binding_is_a_documented_operation() -> None:
    operations = {
        (method.upper(), path)
        for path, methods in DOC["paths"].items()
        for method in methods
        if path.startswith("/v1/")
    }
    expected = {(b.method, b.template.openapi_path()) for r in CONTRACTS.rpcs for b in r.bindings}
    assert operations == expected
    assert ("POST", "/v1/positions/{position_id}:close") in operations
    ids = [op["operationId"] for methods in DOC["paths"].values() for op in methods.values()]
    assert len(ids) == len(set(ids))


def test_parameters_follow_the_transcoding_rules() -> None:
    candles = DOC["paths"]["/v1/instruments/{symbol}/candles"]["get"]
    params = {(p["name"], p["in"]) for p in candles["parameters"]}
    assert params == {
        ("symbol", "path"),
        ("interval", "query"),
        ("startTime", "query"),
        ("endTime", "query"),
        ("limit", "query"),
    }
    interval = next(p for p in candles["parameters"] if p["name"] == "interval")
    assert "CANDLE_INTERVAL_1M" in interval["schema"]["enum"]
    stream = DOC["paths"]["/v1/prices:stream"]["get"]
    symbols = next(p for p in stream["parameters"] if p["name"] == "symbols")
    assert symbols["schema"]["type"] == "array"
    assert "application/x-ndjson" in stream["responses"]["200"]["content"]


def test_bodies_leave_out_path_fields_and_schemas_use_json_names() -> None:
    close = DOC["paths"]["/v1/positions/{position_id}:close"]["post"]
    body = close["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"quantity", "volumeLots", "clientOrderId"}
    assert body["additionalProperties"] is False
    position = DOC["components"]["schemas"]["cfd.v1.Position"]["properties"]
    assert position["openTime"] == {
        "type": "string",
        "format": "date-time",
        "description": "When the position was opened.",
    }
    assert position["side"]["enum"] == ["SIDE_UNSPECIFIED", "SIDE_BUY", "SIDE_SELL"]
    events = DOC["components"]["schemas"]["cfd.v1.StreamEventsResponse"]["properties"]
    assert events["sequence"]["type"] == "string"


def test_errors_and_security_are_described() -> None:
    status = DOC["components"]["schemas"]["google.rpc.Status"]["properties"]
    assert set(status) == {"code", "message", "details"}
    account = DOC["paths"]["/v1/account"]["get"]
    assert account["security"] == [{"bearerAuth": []}]
    assert account["responses"]["default"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/google.rpc.Status"
    }
    assert "security" not in DOC["paths"]["/v1/instruments"]["get"]
    assert "security" not in DOC["paths"]["/v1/auth/signup"]["post"]
