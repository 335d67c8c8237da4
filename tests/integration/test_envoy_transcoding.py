"""REST through a real Envoy in front of gRPC fakes: JSON, error bodies, Envoy's own replies."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest

from cfd.v1 import engine_admin_pb2, engine_admin_pb2_grpc, market_pb2, market_pb2_grpc
from envoy_front.runner import EnvoyOptions
from envoy_support import EnvoyProcess, FakeMesh, running_front
from mesh.config import Settings

Front = tuple[Settings, FakeMesh, EnvoyProcess]


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    with running_front(tmp_path_factory.mktemp("envoy-transcoding")) as running:
        yield running


@pytest.fixture(scope="module")
def client(front: Front) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=front[2].base_url, timeout=10) as http:
        yield http


@pytest.fixture(scope="module")
def auth(client: httpx.Client) -> dict[str, str]:
    reply = client.post(
        "/v1/auth/signup", json={"email": "Trader@Example.com", "password": "s3cret-pass"}
    )
    assert reply.status_code == 200, reply.text
    return {"authorization": f"Bearer {reply.json()['accessToken']}"}


def _error(reply: httpx.Response) -> tuple[int, int, list[str]]:
    """Return HTTP status, google.rpc code and the ErrorInfo reasons of an error reply."""
    assert reply.headers["content-type"].startswith("application/json"), reply.text
    body: dict[str, Any] = reply.json()
    assert set(body) <= {"code", "message", "details"}, body
    assert isinstance(body["message"], str) and body["message"]
    reasons = [
        d["reason"]
        for d in body.get("details", [])
        if d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    ]
    return reply.status_code, body["code"], reasons


def test_signup_returns_lower_camel_case_json(client: httpx.Client) -> None:
    reply = client.post(
        "/v1/auth/signup", json={"email": "json@example.com", "password": "s3cret-pass"}
    )

    assert reply.status_code == 200
    body = reply.json()
    assert set(body) == {"user", "accessToken", "refreshToken", "expiresIn"}
    assert body["user"]["email"] == "json@example.com"
    assert body["user"]["createTime"].endswith("Z")
    assert body["expiresIn"] == 900


def test_open_position_maps_body_enums_and_prints_defaults(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    reply = client.post(
        "/v1/positions",
        headers=auth,
        json={"symbol": "BTCUSD", "side": "SIDE_BUY", "leverage": 10, "quantity": "0.01",
              "stopLoss": "60000", "clientOrderId": "c-1"},
    )  # fmt: skip

    assert reply.status_code == 200, reply.text
    position = reply.json()["position"]
    assert position["side"] == "SIDE_BUY"
    assert position["leverage"] == 10
    assert position["stopLoss"] == "60000"
    assert position["clientOrderId"] == "c-1"
    # Empty strings and zero enums are printed, as the edge prints them.
    assert position["takeProfit"] == ""
    assert position["closeReason"] == "CLOSE_REASON_UNSPECIFIED"
    fetched = client.get(f"/v1/positions/{position['id']}", headers=auth)
    assert fetched.json() == {"position": position}


def test_volume_lots_passes_through_both_ways(client: httpx.Client, auth: dict[str, str]) -> None:
    base = {"symbol": "BTCUSD", "side": "SIDE_BUY", "leverage": 10}
    reply = client.post("/v1/positions", headers=auth, json={**base, "volumeLots": "0.02"})
    assert reply.status_code == 200, reply.text
    position = reply.json()["position"]
    assert (position["quantity"], position["volumeLots"]) == ("0.02", "0.02")
    both = client.post(
        "/v1/positions", headers=auth, json={**base, "quantity": "1", "volumeLots": "1"}
    )
    assert _error(both) == (400, 3, ["VALIDATION_FAILED"])
    (bad_request,) = [
        d for d in both.json()["details"] if d["@type"].endswith("google.rpc.BadRequest")
    ]
    assert [v["field"] for v in bad_request["fieldViolations"]] == ["volumeLots"]


@pytest.mark.parametrize(
    ("body", "status", "code", "reason"),
    [
        ({"symbol": "DOGEUSD", "side": "SIDE_BUY", "leverage": 5, "quantity": "1"},
         400, 3, "UNKNOWN_SYMBOL"),
        ({"symbol": "BTCUSD", "side": "SIDE_BUY", "leverage": 500, "quantity": "1"},
         400, 3, "INVALID_LEVERAGE"),
        ({"symbol": "BTCUSD", "leverage": 5, "quantity": "1"}, 400, 3, "VALIDATION_FAILED"),
        ({"symbol": "BTCUSD", "side": "SIDE_SELL", "leverage": 5, "quantity": "1000"},
         400, 9, "INSUFFICIENT_BALANCE"),
    ],
)  # fmt: skip
def test_service_errors_become_status_bodies_with_their_reason(
    client: httpx.Client,
    auth: dict[str, str],
    body: dict[str, Any],
    status: int,
    code: int,
    reason: str,
) -> None:
    reply = client.post("/v1/positions", headers=auth, json=body)

    assert _error(reply) == (status, code, [reason])


def test_validation_errors_carry_field_violations(client: httpx.Client) -> None:
    reply = client.post("/v1/auth/signup", json={"email": "nobody", "password": "s3cret-pass"})

    assert _error(reply) == (400, 3, ["VALIDATION_FAILED"])
    (bad_request,) = [
        d for d in reply.json()["details"] if d["@type"].endswith("google.rpc.BadRequest")
    ]
    assert bad_request["fieldViolations"] == [
        {"field": "email", "description": "must be an email address", "reason": ""}
    ]


def test_not_found_and_already_exists(client: httpx.Client, auth: dict[str, str]) -> None:
    assert _error(client.get("/v1/positions/pos-999", headers=auth)) == (
        404, 5, ["POSITION_NOT_FOUND"],
    )  # fmt: skip
    again = client.post(
        "/v1/auth/signup", json={"email": "trader@example.com", "password": "x" * 9}
    )
    assert _error(again) == (409, 6, ["EMAIL_TAKEN"])


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"{not json", "Expected"),
        (b'{"symbol": "BTCUSD", "leverage": "ten"}', "leverage"),
        (b'{"side": "SIDE_SIDEWAYS"}', "SIDE_SIDEWAYS"),
        (b"[1, 2]", ""),
    ],
)
def test_malformed_bodies_are_validation_failures_from_envoy(
    client: httpx.Client, auth: dict[str, str], content: bytes, fragment: str
) -> None:
    reply = client.post(
        "/v1/positions", headers=auth | {"content-type": "application/json"}, content=content
    )

    assert _error(reply) == (400, 3, ["VALIDATION_FAILED"])
    assert fragment in reply.json()["message"]


def test_oversized_body_is_a_validation_failure_not_413(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    padding = "x" * (EnvoyOptions().limits.max_body_bytes + 1)
    reply = client.post("/v1/positions", headers=auth, json={"clientOrderId": padding})

    assert _error(reply) == (400, 3, ["VALIDATION_FAILED"])


def test_unknown_query_parameter_is_refused(client: httpx.Client, auth: dict[str, str]) -> None:
    reply = client.get("/v1/account", headers=auth, params={"verbose": "1"})

    assert _error(reply) == (400, 3, ["VALIDATION_FAILED"])
    assert "verbose" in reply.json()["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/nothing"),
        ("GET", "/"),
        ("POST", "/cfd.v1.EngineAdminService/GetStats"),
        ("POST", "/cfd.v1.MarketDataAdminService/PublishTicks"),
    ],
)
def test_unknown_endpoints_are_not_found_with_or_without_a_token(
    client: httpx.Client, auth: dict[str, str], method: str, path: str
) -> None:
    for headers in ({}, auth):
        reply = client.request(method, path, headers=headers, json={})
        status, code, _ = _error(reply)
        assert (status, code) == (404, 5), (headers, reply.text)


def test_a_wrong_method_on_a_private_path_needs_a_token_then_is_not_found(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    assert _error(client.delete("/v1/positions"))[:2] == (401, 16)
    assert _error(client.delete("/v1/positions", headers=auth))[:2] == (404, 5)


def test_internal_services_are_unreachable_over_grpc_through_envoy(front: Front) -> None:
    settings = front[0]
    request = engine_admin_pb2.GetStatsRequest()
    metadata = (("x-cfd-internal-token", settings.internal_token),)
    with grpc.insecure_channel(f"127.0.0.1:{settings.engine_port}") as direct:
        reply = engine_admin_pb2_grpc.EngineAdminServiceStub(direct).GetStats(
            request, metadata=metadata, timeout=5
        )
        assert reply.sequence == 42
    with grpc.insecure_channel(f"127.0.0.1:{settings.envoy_port}") as through_envoy:
        with pytest.raises(grpc.RpcError) as failure:
            engine_admin_pb2_grpc.EngineAdminServiceStub(through_envoy).GetStats(
                request, metadata=metadata, timeout=5
            )
        assert failure.value.code() == grpc.StatusCode.UNIMPLEMENTED
        # A public service answers over plain gRPC on the same listener.
        instruments = market_pb2_grpc.MarketDataServiceStub(through_envoy).ListInstruments(
            market_pb2.ListInstrumentsRequest(), timeout=5
        )
        assert [i.symbol for i in instruments.instruments] == ["BTCUSD", "ETHUSD", "SOLUSD"]


def test_token_is_forwarded_and_only_envoys_own_internal_headers_reach_services(
    front: Front, client: httpx.Client, auth: dict[str, str]
) -> None:
    spoofed = {
        "x-cfd-internal-token": "a-guess-at-the-internal-token",
        "x-cfd-subject": "someone-else",
        "x-forwarded-for": "203.0.113.9",
    }
    reply = client.get("/v1/account", headers=auth | spoofed)

    assert reply.status_code == 200
    seen = front[1].trading.last_metadata
    assert seen["authorization"] == auth["authorization"]
    # Envoy vouches for the address it saw, appended last to x-forwarded-for, as the edge
    # does (for a loopback peer Envoy appends its own node address).
    assert seen["x-cfd-internal-token"] == front[0].internal_token
    sent, observed = (entry.strip() for entry in seen["x-forwarded-for"].split(","))
    assert sent == "203.0.113.9"
    assert observed != sent
    assert "x-cfd-subject" not in seen
    assert "x-cfd-client-content-type" not in seen


def test_public_market_data_needs_no_token(client: httpx.Client) -> None:
    reply = client.get("/v1/instruments")

    assert reply.status_code == 200
    assert [i["symbol"] for i in reply.json()["instruments"]] == ["BTCUSD", "ETHUSD", "SOLUSD"]


def test_cors_allows_the_edge_origin_by_default(
    front: Front, client: httpx.Client, auth: dict[str, str]
) -> None:
    origin = f"http://localhost:{front[0].edge_port}"
    preflight = client.options(
        "/v1/positions",
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type",
        },
    )

    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"]
    actual = client.get("/v1/account", headers=auth | {"origin": origin})
    assert actual.headers["access-control-allow-origin"] == origin
    assert "grpc-status" in actual.headers["access-control-expose-headers"]
    other = client.get("/v1/account", headers=auth | {"origin": "https://elsewhere.example"})
    assert "access-control-allow-origin" not in other.headers


def test_cors_origins_setting_replaces_the_default(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    base = tmp_path_factory.mktemp("envoy-cors")
    with running_front(base, CFD_CORS_ORIGINS="https://trader.example") as (settings, _, front):
        allowed = httpx.get(
            f"{front.base_url}/v1/instruments", headers={"origin": "https://trader.example"}
        )
        edge = httpx.get(
            f"{front.base_url}/v1/instruments",
            headers={"origin": f"http://localhost:{settings.edge_port}"},
        )

    assert allowed.headers["access-control-allow-origin"] == "https://trader.example"
    assert "access-control-allow-origin" not in edge.headers


def test_rate_limit_per_address_answers_429_with_a_status_body(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    base = tmp_path_factory.mktemp("envoy-rate-limit")
    with running_front(base, CFD_RATE_LIMIT_IP="3") as (settings, _mesh, envoy_front):
        # A burst of three, then one more per second: twelve quick requests cannot all pass.
        with httpx.Client(base_url=envoy_front.base_url, timeout=10) as http:
            replies = [http.get("/v1/instruments") for _ in range(12)]
        with (
            grpc.insecure_channel(f"127.0.0.1:{settings.envoy_port}") as channel,
            pytest.raises(grpc.RpcError) as failure,
        ):
            market_pb2_grpc.MarketDataServiceStub(channel).ListInstruments(
                market_pb2.ListInstrumentsRequest(), timeout=5
            )
    assert failure.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    statuses = [r.status_code for r in replies]
    assert statuses[:3] == [200, 200, 200]
    limited = [r for r in replies if r.status_code == 429]
    assert limited, statuses
    assert _error(limited[0]) == (429, 8, ["RATE_LIMITED"])
    assert limited[0].headers["retry-after"] == "1"
    retry = [d for d in limited[0].json()["details"] if d["@type"].endswith("RetryInfo")]
    assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}]


def test_rate_limit_per_user_counts_each_user_alone(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    base = tmp_path_factory.mktemp("envoy-rate-limit-user")
    with running_front(base, CFD_RATE_LIMIT_USER="2") as (_settings, mesh, envoy_front):
        alice = {"authorization": f"Bearer {mesh.issuer.issue('alice')[0]}"}
        bob = {"authorization": f"Bearer {mesh.issuer.issue('bob')[0]}"}
        url = f"{envoy_front.base_url}/v1/account"
        # A client cannot pick the bucket it is counted in.
        spoofed = {"x-cfd-subject": "bob"}
        alice_replies = [httpx.get(url, headers=alice | spoofed) for _ in range(8)]
        bob_reply = httpx.get(url, headers=bob)
        public = [httpx.get(f"{envoy_front.base_url}/v1/instruments") for _ in range(4)]

    assert [r.status_code for r in alice_replies[:2]] == [200, 200]
    assert 429 in [r.status_code for r in alice_replies]
    assert bob_reply.status_code == 200
    assert [r.status_code for r in public] == [200] * 4


def test_a_stopped_service_is_unavailable_with_a_status_body(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    base = tmp_path_factory.mktemp("envoy-unavailable")
    with running_front(base) as (_settings, mesh, envoy_front):
        mesh.stop_market()
        with httpx.Client(base_url=envoy_front.base_url, timeout=10) as http:
            reply = http.get("/v1/instruments")

    assert _error(reply) == (503, 14, ["SERVICE_UNAVAILABLE"])
