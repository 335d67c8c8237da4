"""REST transcoding through the real edge against fake services on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from edge import rest
from edge.config import EdgeConfig
from support import free_port, set_fields, until
from unit.edge.edge_fakes import FakeMesh, RunningEdge, addresses_of, running_edge

ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


@pytest.fixture
async def client(edge: RunningEdge) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=edge.url, timeout=10) as http:
        yield http


def _reason(body: dict[str, object]) -> str:
    details = body["details"]
    assert isinstance(details, list)
    for detail in details:
        if detail["@type"] == ERROR_INFO:
            assert detail["domain"] == "cfd.v1"
            return str(detail["reason"])
    raise AssertionError(f"no ErrorInfo in {body}")


async def test_a_public_rpc_answers_with_camel_case_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/instruments")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert set_fields(response.json()) == {
        "instruments": [{"symbol": "BTCUSD", "maxLeverage": 100}]
    }
    # Fields without presence are printed at their default value too, as Envoy prints them.
    instrument = response.json()["instruments"][0]
    assert (instrument["displayName"], instrument["minQuantity"]) == ("", "")


async def test_the_body_maps_to_the_request_and_defaults_are_printed(
    client: httpx.AsyncClient, mesh: FakeMesh
) -> None:
    body = {"symbol": "BTCUSD", "side": "SIDE_BUY", "leverage": 10, "quantity": "0.5000"}
    response = await client.post(
        "/v1/positions", json=body, headers={"authorization": f"Bearer {mesh.token()}"}
    )
    assert response.status_code == 200
    position = response.json()["position"]
    assert (position["takeProfit"], position["realizedPnl"]) == ("", "")
    assert set_fields(response.json()) == {
        "position": {
            "id": "p1",
            "symbol": "BTCUSD",
            "side": "SIDE_BUY",
            "quantity": "0.5000",
            "leverage": 10,
        }
    }


async def test_proto_field_names_are_accepted_in_bodies(
    client: httpx.AsyncClient, mesh: FakeMesh
) -> None:
    body = {"symbol": "BTCUSD", "side": 2, "leverage": 3, "margin": "10", "client_order_id": "k1"}
    response = await client.post(
        "/v1/positions", json=body, headers={"authorization": f"Bearer {mesh.token()}"}
    )
    assert response.status_code == 200
    position = response.json()["position"]
    assert (position["side"], position["quantity"], position["clientOrderId"]) == (
        "SIDE_SELL",
        "10",
        "k1",
    )


async def test_path_variables_and_verbs_route_to_their_rpc(
    client: httpx.AsyncClient, mesh: FakeMesh
) -> None:
    auth = {"authorization": f"Bearer {mesh.token()}"}
    got = await client.get("/v1/positions/p%2042", headers=auth)
    assert set_fields(got.json()) == {"position": {"id": "p 42"}}
    closed = await client.post("/v1/positions/p7:close", json={"quantity": "0.1"}, headers=auth)
    assert set_fields(closed.json()) == {"position": {"id": "p7"}, "closedQuantity": "0.1"}
    # The path wins over a body field of the same name, as in grpc-gateway.
    closed = await client.post("/v1/positions/p8:close", json={"positionId": "other"}, headers=auth)
    assert set_fields(closed.json()["position"]) == {"id": "p8"}


async def test_optional_fields_keep_presence(client: httpx.AsyncClient, mesh: FakeMesh) -> None:
    auth = {"authorization": f"Bearer {mesh.token()}"}
    cleared = await client.patch("/v1/positions/p1", json={"takeProfit": ""}, headers=auth)
    untouched = await client.patch("/v1/positions/p1", json={}, headers=auth)
    assert cleared.json()["position"]["takeProfit"] == ""
    assert untouched.json()["position"]["takeProfit"] == "unset"


async def test_query_parameters_fill_enums_timestamps_and_numbers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(
        "/v1/instruments/BTCUSD/candles",
        params={
            "interval": "CANDLE_INTERVAL_5M",
            "startTime": "2024-01-02T03:04:05Z",
            "end_time": "2024-01-03T00:00:00.5Z",
            "limit": "7",
        },
    )
    assert response.status_code == 200, response.text
    assert set_fields(response.json()) == {
        "candles": [
            {
                "openTime": "2024-01-02T03:04:05Z",
                "closeTime": "2024-01-03T00:00:00.500Z",
                "volume": "CANDLE_INTERVAL_5M",
                "tickCount": "7",
                "open": "BTCUSD",
            }
        ]
    }


async def test_query_parameters_fill_strings(client: httpx.AsyncClient, mesh: FakeMesh) -> None:
    response = await client.get(
        "/v1/history",
        params={"pageSize": "20", "pageToken": "abc", "symbol": "ETHUSD"},
        headers={"authorization": f"Bearer {mesh.token()}"},
    )
    assert response.json() == {"positions": [], "nextPageToken": "20|abc|ETHUSD"}


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "field"),
    [
        ("post", "/v1/positions", {"content": b"{not json"}, "body"),
        ("post", "/v1/positions", {"content": b"[1, 2]"}, "body"),
        ("post", "/v1/positions", {"content": b"\xff\xfe"}, "body"),
        ("post", "/v1/positions", {"json": {"symbol": "BTCUSD", "bogus": 1}}, "bogus"),
        ("post", "/v1/positions", {"json": {"leverage": "ten"}}, "leverage"),
        ("post", "/v1/positions", {"json": {"leverage": 1e40}}, "leverage"),
        ("post", "/v1/positions", {"json": {"side": "SIDE_SIDEWAYS"}}, "side"),
        ("post", "/v1/positions", {"json": {"symbol": ["a"]}}, "symbol"),
        ("post", "/v1/positions", {"content": b'{"a":' * 5000}, "body"),
        ("post", "/v1/positions", {"content": b'{"leverage": ' + b"9" * 5000 + b"}"}, "body"),
        ("get", "/v1/instruments/BTCUSD/candles", {"params": {"limit": "x"}}, "limit"),
        ("get", "/v1/instruments/BTCUSD/candles", {"params": {"nope": "1"}}, "nope"),
        ("get", "/v1/instruments/BTCUSD/candles", {"params": {"symbol": "ETHUSD"}}, "symbol"),
        (
            "get",
            "/v1/instruments/BTCUSD/candles",
            {"params": [("limit", "1"), ("limit", "2")]},
            "limit",
        ),
        (
            "get",
            "/v1/instruments/BTCUSD/candles",
            {"params": {"startTime": "yesterday"}},
            "start_time",
        ),
        ("get", "/v1/instruments", {"content": b"{}"}, "body"),
        ("post", "/v1/positions/p1:close", {"params": {"quantity": "1"}}, "quantity"),
    ],
)
async def test_bad_input_is_a_400_with_a_status_body(
    client: httpx.AsyncClient,
    mesh: FakeMesh,
    method: str,
    path: str,
    kwargs: dict[str, object],
    field: str,
) -> None:
    headers = {"authorization": f"Bearer {mesh.token()}", "content-type": "application/json"}
    response = await client.request(method.upper(), path, headers=headers, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == 3
    assert _reason(body) == "VALIDATION_FAILED"
    violations = [d for d in body["details"] if d["@type"].endswith("BadRequest")]
    assert violations[0]["fieldViolations"][0]["field"] in (field, _camel(field))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


async def test_an_oversized_body_is_rejected_before_the_upstream(
    client: httpx.AsyncClient, mesh: FakeMesh
) -> None:
    body = json.dumps({"symbol": "x" * 5000}).encode()
    response = await client.post(
        "/v1/positions", content=body, headers={"authorization": f"Bearer {mesh.token()}"}
    )
    assert response.status_code == 400
    assert "larger than 4096 bytes" in response.json()["message"]

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 1000

    streamed = await client.post("/v1/positions", content=chunks())
    assert streamed.status_code == 400
    assert _reason(streamed.json()) == "VALIDATION_FAILED"


@pytest.mark.parametrize(
    ("request_args", "status", "code", "reason"),
    [
        (("GET", "/v1/account", None), 401, 16, "TOKEN_INVALID"),
        (("POST", "/v1/positions", {"symbol": "NOPE"}), 400, 3, "UNKNOWN_SYMBOL"),
        (("GET", "/v1/positions/missing", None), 404, 5, "POSITION_NOT_FOUND"),
        (("POST", "/v1/auth/signup", {"email": "taken@example.com"}), 409, 6, "EMAIL_TAKEN"),
        (("GET", "/v1/orders", None), 500, 13, "INTERNAL"),
    ],
)
async def test_upstream_errors_map_to_http_statuses(
    client: httpx.AsyncClient,
    mesh: FakeMesh,
    request_args: tuple[str, str, dict[str, str] | None],
    status: int,
    code: int,
    reason: str,
) -> None:
    method, path, body = request_args
    headers = {} if path == "/v1/account" else {"authorization": f"Bearer {mesh.token()}"}
    response = await client.request(method, path, json=body, headers=headers)
    assert response.status_code == status
    payload = response.json()
    assert payload["code"] == code
    assert _reason(payload) == reason
    assert set(payload) == {"code", "message", "details"}


async def test_field_violations_of_the_upstream_come_through(
    client: httpx.AsyncClient, mesh: FakeMesh
) -> None:
    response = await client.post(
        "/v1/positions",
        json={"symbol": "BTCUSD", "leverage": 500},
        headers={"authorization": f"Bearer {mesh.token()}"},
    )
    assert response.status_code == 400
    bad_request = [d for d in response.json()["details"] if d["@type"].endswith("BadRequest")]
    assert bad_request == [
        {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": "leverage", "description": "1 to 100", "reason": ""}],
        }
    ]


async def test_rate_limited_upstream_answers_carry_retry_after(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/auth/signup", json={"email": "busy@example.com"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert _reason(response.json()) == "RATE_LIMITED"


async def test_the_authorization_header_and_client_address_are_forwarded(
    client: httpx.AsyncClient, mesh: FakeMesh
) -> None:
    token = mesh.token("bob")
    response = await client.get(
        "/v1/account", headers={"authorization": f"Bearer {token}", "x-request-id": "req-123"}
    )
    assert response.json()["currency"] == "bob"
    assert response.headers["x-request-id"] == "req-123"
    seen = mesh.recorder.metadata["GetAccount"]
    assert seen["authorization"] == f"Bearer {token}"
    assert seen["x-request-id"] == "req-123"
    assert seen["x-forwarded-for"] == "127.0.0.1"
    await client.post("/v1/auth/signup", json={"email": "new@example.com"})
    assert mesh.recorder.metadata["Signup"]["x-forwarded-for"] == "127.0.0.1"


async def test_a_request_id_is_made_when_absent_or_unsafe(client: httpx.AsyncClient) -> None:
    first = await client.get("/v1/instruments")
    second = await client.get("/v1/instruments", headers={"x-request-id": "bad id <x>"})
    assert len(first.headers["x-request-id"]) == 32
    assert second.headers["x-request-id"] not in ("bad id <x>", first.headers["x-request-id"])


async def test_unknown_routes_and_methods(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/nothing/here")
    assert missing.status_code == 404
    assert missing.json()["code"] == 5
    wrong = await client.delete("/v1/instruments")
    assert wrong.status_code == 405
    assert wrong.json()["code"] == 12


async def test_a_slow_upstream_hits_the_deadline(client: httpx.AsyncClient, mesh: FakeMesh) -> None:
    response = await client.get("/v1/prices", headers={"authorization": f"Bearer {mesh.token()}"})
    assert response.status_code == 504
    assert response.json()["code"] == 4


async def test_an_unreachable_service_is_a_503_not_a_hang(mesh: FakeMesh) -> None:
    dead = f"127.0.0.1:{free_port()}"
    addresses = addresses_of(mesh.address) | {"cfd.v1.MarketDataService": dead}
    config = EdgeConfig(upstream_timeout_s=5.0)
    async with (
        running_edge(mesh.settings, config, addresses) as edge,
        httpx.AsyncClient(base_url=edge.url, timeout=10) as http,
    ):
        response = await http.get("/v1/instruments")
        assert response.status_code == 503
        assert _reason(response.json()) == "SERVICE_UNAVAILABLE"
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["services"]["cfd.v1.MarketDataService"] == "UNREACHABLE"
        assert (await http.get("/healthz")).status_code == 200


async def test_readyz_is_200_when_every_upstream_serves(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert set(response.json()["services"].values()) == {"SERVING"}


async def test_streams_are_newline_delimited_json(
    client: httpx.AsyncClient, mesh: FakeMesh
) -> None:
    response = await client.get(
        "/v1/prices:stream",
        params=[("symbols", "BTCUSD"), ("symbols", "ETHUSD")],
        headers={"authorization": f"Bearer {mesh.token()}"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [(m["symbol"], m["sequence"]) for m in lines] == [("BTCUSD", "1"), ("ETHUSD", "2")]


async def test_a_stream_that_fails_at_once_is_an_error_response(
    client: httpx.AsyncClient, mesh: FakeMesh
) -> None:
    response = await client.get(
        "/v1/prices:stream",
        params={"symbols": "NOPE"},
        headers={"authorization": f"Bearer {mesh.token()}"},
    )
    assert response.status_code == 400
    assert _reason(response.json()) == "UNKNOWN_SYMBOL"
    unauthenticated = await client.get("/v1/events:stream")
    assert unauthenticated.status_code == 401


async def test_cors_preflight_allows_configured_origins(mesh: FakeMesh) -> None:
    config = EdgeConfig(cors_origins=("http://localhost:5173",))
    async with (
        running_edge(mesh.settings, config, addresses_of(mesh.address)) as edge,
        httpx.AsyncClient(base_url=edge.url, timeout=10) as http,
    ):
        headers = {
            "origin": "http://localhost:5173",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        }
        allowed = await http.options("/v1/positions", headers=headers)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "http://localhost:5173"
        denied = await http.options(
            "/v1/positions", headers=headers | {"origin": "http://evil.example"}
        )
        assert "access-control-allow-origin" not in denied.headers
        simple = await http.get("/v1/instruments", headers={"origin": "http://localhost:5173"})
        assert simple.headers["access-control-allow-origin"] == "http://localhost:5173"
        assert "x-request-id" in simple.headers["access-control-expose-headers"]


async def test_rest_rate_limits_per_address_and_per_user(mesh: FakeMesh) -> None:
    config = EdgeConfig(rate_limit_ip=3, rate_limit_user=2)
    async with (
        running_edge(mesh.settings, config, addresses_of(mesh.address)) as edge,
        httpx.AsyncClient(base_url=edge.url, timeout=10) as http,
    ):
        statuses = [(await http.get("/v1/instruments")).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = await http.get("/v1/instruments")
        assert _reason(limited.json()) == "RATE_LIMITED"
        assert int(limited.headers["retry-after"]) >= 1
        # Another address has its own budget, but one user is limited across addresses.
        token = mesh.token("carol")
        user_statuses = [
            (
                await http.get(
                    "/v1/account",
                    headers={"authorization": f"Bearer {token}", "x-forwarded-for": f"10.0.0.{i}"},
                )
            ).status_code
            for i in range(3)
        ]
        assert user_statuses == [200, 200, 429]
        assert (await http.get("/healthz")).status_code == 200


async def test_the_jwks_document_is_published(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/jwks.json")
    keys = response.json()["keys"]
    assert [(k["kty"], k["crv"], k["alg"]) for k in keys] == [("OKP", "Ed25519", "EdDSA")]


async def test_static_pages_and_docs_are_served(client: httpx.AsyncClient) -> None:
    index = await client.get("/")
    assert index.status_code == 200
    assert "/v1/ws" in (await client.get("/_edge/prices.js")).text
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "docs.js" in docs.text
    assert "cdn" not in docs.text.lower()
    assert (await client.get("/_edge/docs.js")).status_code == 200


async def test_every_api_path_reaches_the_gateway(
    client: httpx.AsyncClient, mesh: FakeMesh
) -> None:
    auth = {"authorization": f"Bearer {mesh.token()}"}
    odd = await client.get("/v1/positions/%0A%C4%80", headers=auth)
    assert odd.status_code == 200
    assert set_fields(odd.json()) == {"position": {"id": "\nĀ"}}
    missing = await client.get("/v1/%0A")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/json"


async def test_rest_rate_limits_are_shared_through_redis(mesh: FakeMesh, redis_url: str) -> None:
    settings = replace(mesh.settings, redis_url=redis_url)
    config = EdgeConfig(rate_limit_ip=2)
    async with (
        running_edge(settings, config, addresses_of(mesh.address)) as first,
        running_edge(settings, config, addresses_of(mesh.address)) as second,
        httpx.AsyncClient(timeout=10) as http,
    ):
        statuses = [
            (await http.get(f"{edge.url}/v1/instruments")).status_code
            for edge in (first, second, first)
        ]
        # Two edges, one budget: the third request is over it whichever edge serves it.
        assert statuses == [200, 200, 429]


async def test_rest_rate_limits_hold_while_redis_is_down(mesh: FakeMesh) -> None:
    # Port 1 on loopback refuses connections: each edge process counts by itself meanwhile.
    settings = replace(mesh.settings, redis_url="redis://127.0.0.1:1/0")
    config = EdgeConfig(rate_limit_ip=3, rate_limit_user=2)
    async with (
        running_edge(settings, config, addresses_of(mesh.address)) as edge,
        httpx.AsyncClient(base_url=edge.url, timeout=10) as http,
    ):
        statuses = [(await http.get("/v1/instruments")).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        headers = {"authorization": f"Bearer {mesh.token('dora')}"}
        user_statuses = [
            (
                await http.get("/v1/account", headers=headers | {"x-forwarded-for": f"10.1.0.{i}"})
            ).status_code
            for i in range(3)
        ]
        assert user_statuses == [200, 200, 429]


async def test_a_client_leaving_a_stream_ends_the_upstream_call(
    client: httpx.AsyncClient, mesh: FakeMesh
) -> None:
    positions = mesh.recorder.positions
    headers = {"authorization": f"Bearer {mesh.token('gus')}"}
    async with client.stream("GET", "/v1/positions:stream", headers=headers) as response:
        assert response.status_code == 200
        await until(lambda: positions.open_streams == 1)
        positions.publish(3)
        line = await anext(response.aiter_lines())
        assert set_fields(json.loads(line)) == {"account": {"currency": "gus"}, "sequence": "3"}
        assert json.loads(line)["positions"] == []
    await until(lambda: positions.open_streams == 0)


def _violations(body: dict[str, object]) -> list[str]:
    details = body["details"]
    assert isinstance(details, list)
    return [
        v["field"]
        for d in details
        if d["@type"].endswith("BadRequest")
        for v in d["fieldViolations"]
    ]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/v1/positions",
         b'{"symbol":"BTCUSD","side":"SIDE_BUY","leverage":10,"quantity":"0.0010",'
         b'"stopLoss":"60000","stopLoss":""}', "stopLoss"),
        ("POST", "/v1/positions",
         b'{"symbol":"BTCUSD","side":"SIDE_BUY","leverage":10,"quantity":"0.0010",'
         b'"quantity":"0.0020"}', "quantity"),
        ("PATCH", "/v1/positions/p1", b'{"takeProfit":"70000","take_profit":""}', "take_profit"),
        ("POST", "/v1/auth/signup", b'{"email":"a@example.com","email":"b@example.com"}',
         "email"),
    ],
)  # fmt: skip
async def test_a_key_given_twice_is_a_400_and_reaches_no_service(
    client: httpx.AsyncClient, mesh: FakeMesh, method: str, path: str, body: bytes, field: str
) -> None:
    headers = {"authorization": f"Bearer {mesh.token()}", "content-type": "application/json"}
    response = await client.request(method, path, content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 3
    assert _reason(response.json()) == "VALIDATION_FAILED"
    assert _violations(response.json()) == [field]
    assert mesh.recorder.metadata == {}


@pytest.mark.parametrize("side", ["1.5", "2.9", "true", '"2"', "7"])
async def test_a_fractional_or_unknown_enum_number_is_a_400_and_reaches_no_service(
    client: httpx.AsyncClient, mesh: FakeMesh, side: str
) -> None:
    body = '{"symbol":"BTCUSD","leverage":10,"quantity":"0.0010","side":' + side + "}"
    response = await client.post(
        "/v1/positions",
        content=body,
        headers={"authorization": f"Bearer {mesh.token()}", "content-type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert _violations(response.json()) == ["side"]
    assert "OpenPosition" not in mesh.recorder.metadata


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        (None, 415),
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("application/jsonx", 415),
        ("application/json; charset=latin-1", 415),
        ("application/json; version=2", 415),
        ("application/json;", 415),
        ("application/json", 200),
        ("application/json; charset=utf-8", 200),
        ('Application/JSON;Charset="UTF-8"', 200),
    ],
)
async def test_a_json_body_needs_a_json_content_type(
    client: httpx.AsyncClient, mesh: FakeMesh, content_type: str | None, status: int
) -> None:
    headers = {"authorization": f"Bearer {mesh.token()}"}
    if content_type is not None:
        headers["content-type"] = content_type
    body = b'{"symbol":"BTCUSD","side":"SIDE_BUY","leverage":10,"quantity":"0.5000"}'
    for method, path in (("POST", "/v1/positions"), ("PATCH", "/v1/positions/p1")):
        payload = body if method == "POST" else b'{"takeProfit":"70000"}'
        response = await client.request(method, path, content=payload, headers=headers)
        assert response.status_code == status, (method, response.text)
        if status == 415:
            assert set(response.json()) == {"code", "message", "details"}
            assert response.json()["code"] == 3
            assert _reason(response.json()) == "VALIDATION_FAILED"
            assert _violations(response.json()) == ["content-type"]
    if status == 415:
        assert mesh.recorder.metadata == {}


async def test_a_post_without_a_body_needs_no_content_type(
    client: httpx.AsyncClient, mesh: FakeMesh
) -> None:
    response = await client.post(
        "/v1/positions/p1:close", headers={"authorization": f"Bearer {mesh.token()}"}
    )
    assert response.status_code == 200, response.text
    assert set_fields(response.json()) == {"position": {"id": "p1"}}


async def test_instruments_are_answered_from_a_copy_and_the_account_never_is(
    client: httpx.AsyncClient, mesh: FakeMesh
) -> None:
    for _ in range(3):
        response = await client.get("/v1/instruments")
        assert set_fields(response.json()) == {
            "instruments": [{"symbol": "BTCUSD", "maxLeverage": 100}]
        }
    assert mesh.recorder.calls["ListInstruments"] == 1
    headers = {"authorization": f"Bearer {mesh.token()}"}
    accounts = [(await client.get("/v1/account", headers=headers)).json() for _ in range(3)]
    assert mesh.recorder.calls["GetAccount"] == 3
    assert accounts[0] == accounts[2]


async def test_the_instruments_copy_is_refreshed_once_it_expires(
    client: httpx.AsyncClient, mesh: FakeMesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(rest.SHARED_REPLIES_S, "/cfd.v1.MarketDataService/ListInstruments", 0.0)
    for _ in range(2):
        assert (await client.get("/v1/instruments")).status_code == 200
    assert mesh.recorder.calls["ListInstruments"] == 2
