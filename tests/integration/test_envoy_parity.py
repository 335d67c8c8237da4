"""The same REST calls through Envoy and through the edge, in front of the real mesh.

Each step runs on both fronts back to back, each front with its own user, and compares the
status codes and the JSON with ids, emails, tokens and times left out. Where the two cannot
agree the difference is the one envoy_front/README.md documents, and both sides are checked.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import jwt
import pytest

from cfd.v1 import engine_admin_pb2, engine_admin_pb2_grpc, trading_pb2
from envoy_support import RealMesh, running_mesh
from grpcweb import CONTENT_TYPE, FrameReader, encode_message
from mesh.tokens import (
    ALGORITHM,
    DEFAULT_AUDIENCE,
    DEFAULT_ISSUER,
    KEYS_DIR_NAME,
    PRIVATE_KEY_FILE_NAME,
    SigningKey,
)

PASSWORD = "correct horse battery"
QUOTES = {"BTCUSD": ("64000.00", "64010.00"), "ETHUSD": ("3000.00", "3000.60")}
# Values that differ between two users or two calls by nature.
VOLATILE = frozenset(
    {
        "id",
        "positionId",
        "email",
        "accessToken",
        "refreshToken",
        "createTime",
        "updateTime",
        "openTime",
        "closeTime",
        "sequence",
        "nextPageToken",
    }
)


@dataclass
class Front:
    """One way into the mesh, with its own signed-up user."""

    name: str
    client: httpx.Client
    email: str = ""
    token: str = ""
    refresh_token: str = ""

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealMesh]:
    with running_mesh(tmp_path_factory.mktemp("envoy-parity")) as running:
        running.publish(QUOTES)
        yield running


@pytest.fixture(scope="module")
def fronts(mesh: RealMesh) -> Iterator[tuple[Front, Front]]:
    with (
        httpx.Client(base_url=mesh.edge_url, timeout=15) as edge,
        httpx.Client(base_url=mesh.envoy_url, timeout=15) as envoy,
    ):
        pair = (Front("edge", edge), Front("envoy", envoy))
        for front in pair:
            front.email = f"{front.name}-{uuid.uuid4().hex[:10]}@example.com"
            reply = front.client.post(
                "/v1/auth/signup", json={"email": front.email, "password": PASSWORD}
            )
            assert reply.status_code == 200, (front.name, reply.text)
            front.token = reply.json()["accessToken"]
            front.refresh_token = reply.json()["refreshToken"]
        yield pair


def normalized(value: Any) -> Any:
    """Return the JSON with the volatile values replaced by a marker."""
    if isinstance(value, dict):
        return {k: "<volatile>" if k in VOLATILE else normalized(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalized(v) for v in value]
    return value


def both(
    fronts: tuple[Front, Front], method: str, path: str, **kwargs: Any
) -> tuple[httpx.Response, httpx.Response]:
    """Send one request to each front, with that front's own token unless headers are given."""
    replies = [
        front.client.request(method, path, **({"headers": front.auth} | kwargs)) for front in fronts
    ]
    return replies[0], replies[1]


def assert_same(
    edge: httpx.Response, envoy: httpx.Response, ids: tuple[str, str] | None = None
) -> Any:
    """Check that both fronts answered alike; return the normalized JSON.

    `ids` are each front's own id of the same object, which messages may quote.
    """
    assert edge.status_code == envoy.status_code, (edge.text, envoy.text)
    texts = [edge.text, envoy.text]
    if ids is not None:
        texts = [text.replace(own, "<id>") for text, own in zip(texts, ids, strict=True)]
    edge_json, envoy_json = (normalized(json.loads(text)) for text in texts)
    assert edge_json == envoy_json
    return envoy_json


def reasons(reply: httpx.Response) -> list[str]:
    return [
        d["reason"]
        for d in reply.json().get("details", [])
        if d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    ]


def assert_same_error(
    edge: httpx.Response, envoy: httpx.Response, status: int, reason: str
) -> None:
    """Check an API error that the services raise: identical bodies on both fronts."""
    body = assert_same(edge, envoy)
    assert edge.status_code == status, edge.text
    assert reasons(edge) == [reason], edge.text
    assert set(body) == {"code", "message", "details"}


# Successful calls -------------------------------------------------------------------------


def test_account_user_and_prices_are_identical(fronts: tuple[Front, Front]) -> None:
    for path in ("/v1/users/me", "/v1/account", "/v1/prices", "/v1/orders", "/v1/history"):
        edge, envoy = both(fronts, "GET", path)
        assert edge.status_code == 200, (path, edge.text)
        assert_same(edge, envoy)
    prices = fronts[1].client.get("/v1/prices", headers=fronts[1].auth).json()["prices"]
    assert {q["symbol"]: (q["bid"], q["ask"]) for q in prices} == QUOTES


def test_market_data_is_identical_and_public(fronts: tuple[Front, Front]) -> None:
    params = {"interval": "CANDLE_INTERVAL_1H", "limit": "3"}
    for path, query in (
        ("/v1/instruments", {}),
        ("/v1/instruments/BTCUSD/ticker", {}),
        ("/v1/instruments/ETHUSD/candles", params),
    ):
        edge, envoy = both(fronts, "GET", path, params=query, headers={})
        assert edge.status_code == 200, (path, edge.text)
        assert_same(edge, envoy)


def test_a_position_lifecycle_is_identical(fronts: tuple[Front, Front]) -> None:
    opened = both(
        fronts,
        "POST",
        "/v1/positions",
        json={"symbol": "BTCUSD", "side": "SIDE_BUY", "leverage": 10, "quantity": "0.0100",
              "takeProfit": "70000.00", "stopLoss": "60000.00", "clientOrderId": "parity-1"},
    )  # fmt: skip
    body = assert_same(*opened)
    assert opened[0].status_code == 200
    assert body["position"]["entryPrice"] == "64010.00"
    ids = [reply.json()["position"]["id"] for reply in opened]

    def each(method: str, suffix: str, **kwargs: Any) -> tuple[httpx.Response, httpx.Response]:
        replies = [
            front.client.request(method, f"/v1/positions/{pid}{suffix}", headers=front.auth,
                                 **kwargs)
            for front, pid in zip(fronts, ids, strict=True)
        ]  # fmt: skip
        return replies[0], replies[1]

    for method, suffix, kwargs in (
        ("GET", "", {}),
        ("PATCH", "", {"json": {"takeProfit": "71000.00", "trailingDistance": ""}}),
        ("POST", ":addMargin", {"json": {"amount": "10.5"}}),
        ("POST", ":close", {"json": {"quantity": "0.0040"}}),
        ("GET", "", {}),
    ):
        edge, envoy = each(method, suffix, **kwargs)
        assert edge.status_code == 200, (method, suffix, edge.text)
        assert_same(edge, envoy)
    for path in ("/v1/positions", "/v1/account", "/v1/history"):
        assert_same(*both(fronts, "GET", path))
    # The same idempotency key returns the first result on both.
    again = both(
        fronts,
        "POST",
        "/v1/positions",
        json={"symbol": "BTCUSD", "side": "SIDE_BUY", "leverage": 10, "quantity": "0.0100",
              "clientOrderId": "parity-1"},
    )  # fmt: skip
    assert [r.json()["position"]["id"] for r in again] == ids


def test_a_pending_order_lifecycle_is_identical(fronts: tuple[Front, Front]) -> None:
    placed = both(
        fronts,
        "POST",
        "/v1/orders",
        json={"symbol": "ETHUSD", "side": "SIDE_BUY", "type": "ORDER_TYPE_LIMIT",
              "triggerPrice": "2500.00", "leverage": 5, "margin": "100"},
    )  # fmt: skip
    assert placed[0].status_code == 200, placed[0].text
    assert_same(*placed)
    ids = [reply.json()["order"]["id"] for reply in placed]
    assert_same(*both(fronts, "GET", "/v1/orders"))
    for change, expected in (({"triggerPrice": "2400.00", "quantity": "0.100"}, 200),
                             ({"triggerPrice": "3100.00"}, 400)):
        replies = [
            front.client.patch(f"/v1/orders/{oid}", json=change, headers=front.auth)
            for front, oid in zip(fronts, ids, strict=True)
        ]
        assert replies[0].status_code == expected, replies[0].text
        assert_same(replies[0], replies[1], (ids[0], ids[1]))
        if expected == 200:
            order = replies[1].json()["order"]
            assert (order["triggerPrice"], order["quantity"]) == ("2400.00", "0.100")
    assert_same(*both(fronts, "GET", "/v1/orders"))
    for expected in (200, 404):
        replies = [
            front.client.post(f"/v1/orders/{oid}:cancel", json={}, headers=front.auth)
            for front, oid in zip(fronts, ids, strict=True)
        ]
        assert replies[0].status_code == expected, replies[0].text
        assert_same(replies[0], replies[1], (ids[0], ids[1]))


# API errors raised by the services --------------------------------------------------------

OPEN = {"symbol": "BTCUSD", "side": "SIDE_BUY", "leverage": 10, "quantity": "0.0100"}


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        ({"side": None}, 400, "VALIDATION_FAILED"),
        ({"symbol": "DOGEUSD"}, 400, "UNKNOWN_SYMBOL"),
        ({"leverage": 500}, 400, "INVALID_LEVERAGE"),
        ({"quantity": "0.00001"}, 400, "QUANTITY_TOO_SMALL"),
        ({"stopLoss": "65000.00"}, 400, "INVALID_STOPS"),
        ({"quantity": "100"}, 400, "INSUFFICIENT_BALANCE"),
        ({"expectedPrice": "60000.00", "maxSlippageBps": 5}, 400, "SLIPPAGE_EXCEEDED"),
        ({"symbol": "SOLUSD", "quantity": "1"}, 400, "PRICE_UNAVAILABLE"),
    ],
)
def test_open_position_errors_are_identical(
    fronts: tuple[Front, Front], change: dict[str, Any], status: int, reason: str
) -> None:
    body = {k: v for k, v in (OPEN | change).items() if v is not None}

    assert_same_error(*both(fronts, "POST", "/v1/positions", json=body), status, reason)


def test_not_found_errors_are_identical(fronts: tuple[Front, Front]) -> None:
    assert_same_error(*both(fronts, "GET", "/v1/positions/p-999999"), 404, "POSITION_NOT_FOUND")
    assert_same_error(
        *both(fronts, "POST", "/v1/orders/o-999999:cancel", json={}), 404, "ORDER_NOT_FOUND"
    )


def test_market_errors_are_identical(fronts: tuple[Front, Front]) -> None:
    assert_same_error(*both(fronts, "GET", "/v1/instruments/DOGEUSD/ticker"), 400, "UNKNOWN_SYMBOL")
    assert_same_error(
        *both(fronts, "GET", "/v1/instruments/SOLUSD/ticker"), 400, "PRICE_UNAVAILABLE"
    )
    assert_same_error(
        *both(fronts, "GET", "/v1/instruments/BTCUSD/candles"), 400, "VALIDATION_FAILED"
    )


def test_account_errors_are_identical(fronts: tuple[Front, Front]) -> None:
    taken = [
        f.client.post("/v1/auth/signup", json={"email": f.email, "password": PASSWORD})
        for f in fronts
    ]
    assert_same_error(taken[0], taken[1], 409, "EMAIL_TAKEN")
    assert_same_error(
        *both(fronts, "POST", "/v1/auth/signup", json={"email": "nobody", "password": PASSWORD}),
        400,
        "VALIDATION_FAILED",
    )
    wrong = [
        f.client.post("/v1/auth/signin", json={"email": f.email, "password": "not the one"})
        for f in fronts
    ]
    assert_same_error(wrong[0], wrong[1], 401, "INVALID_CREDENTIALS")
    assert_same_error(
        *both(fronts, "POST", "/v1/auth/refresh", json={"refreshToken": "spent-or-invented"}),
        401,
        "TOKEN_INVALID",
    )
    signed_in = [
        f.client.post("/v1/auth/signin", json={"email": f.email, "password": PASSWORD})
        for f in fronts
    ]
    assert_same(signed_in[0], signed_in[1])
    assert signed_in[0].status_code == 200


def test_rate_limited_by_the_service_is_identical(fronts: tuple[Front, Front]) -> None:
    limited: list[httpx.Response] = []
    for front in fronts:
        email = f"limited-{front.name}-{uuid.uuid4().hex[:8]}@example.com"
        for _ in range(30):
            reply = front.client.post(
                "/v1/auth/signin", json={"email": email, "password": "wrong password"}
            )
            if reply.status_code == 429:
                limited.append(reply)
                break
            assert reasons(reply) == ["INVALID_CREDENTIALS"], reply.text
    assert len(limited) == 2
    edge, envoy = limited
    assert edge.json()["code"] == envoy.json()["code"] == 8
    assert reasons(edge) == reasons(envoy) == ["RATE_LIMITED"]
    # The wait is counted in seconds from each front's own first attempt.
    assert re.sub(r"\d+", "N", edge.json()["message"]) == re.sub(
        r"\d+", "N", envoy.json()["message"]
    )
    retry_types = [[d["@type"] for d in r.json()["details"]] for r in limited]
    assert retry_types[0] == retry_types[1]
    assert "type.googleapis.com/google.rpc.RetryInfo" in retry_types[0]
    # The edge turns the RetryInfo into a header; Envoy passes the body on as it is.
    assert edge.headers["retry-after"]
    assert "retry-after" not in envoy.headers


# Where Envoy answers itself: same status, code and reason; Envoy's own message -------------


def _expired_token(mesh: RealMesh, subject: str) -> str:
    key_file = Path(mesh.env["CFD_DATA_DIR"]) / KEYS_DIR_NAME / PRIVATE_KEY_FILE_NAME
    key = SigningKey.from_pem(key_file.read_bytes())
    now = int(time.time())
    claims = {"iss": DEFAULT_ISSUER, "aud": DEFAULT_AUDIENCE, "sub": subject,
              "iat": now - 600, "exp": now - 300, "jti": "expired"}  # fmt: skip
    return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})


def test_token_rejections_agree_on_status_and_reason(
    mesh: RealMesh, fronts: tuple[Front, Front]
) -> None:
    forged_key = SigningKey.generate()
    forged = jwt.encode(
        {"iss": DEFAULT_ISSUER, "aud": DEFAULT_AUDIENCE, "sub": "x", "iat": int(time.time()),
         "exp": int(time.time()) + 300, "jti": "forged"},
        forged_key.private_key, algorithm=ALGORITHM, headers={"kid": forged_key.kid},
    )  # fmt: skip
    cases = {
        "missing": ({}, "TOKEN_INVALID"),
        "forged": ({"authorization": f"Bearer {forged}"}, "TOKEN_INVALID"),
        "garbage": ({"authorization": "Bearer x.y.z"}, "TOKEN_INVALID"),
        "expired": (
            {"authorization": f"Bearer {_expired_token(mesh, 'someone')}"},
            "TOKEN_EXPIRED",
        ),
    }
    for name, (headers, reason) in cases.items():
        edge, envoy = both(fronts, "GET", "/v1/account", headers=headers)
        for reply in (edge, envoy):
            assert reply.status_code == 401, (name, reply.text)
            assert reply.json()["code"] == 16
            assert reasons(reply) == [reason], (name, reply.text)
        # Envoy's jwt_authn speaks for itself ("Jwt is missing", ...) and adds a challenge.
        assert "Jwt" in envoy.json()["message"], envoy.text
        assert envoy.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("request_args", "fragment"),
    [
        ({"content": b"{not json", "headers_extra": {"content-type": "application/json"}}, ""),
        ({"json": {"symbol": "BTCUSD", "leverage": "ten"}}, "leverage"),
        ({"json": {"symbol": "BTCUSD", "side": "SIDE_SIDEWAYS"}}, "SIDE_SIDEWAYS"),
    ],
)
def test_malformed_bodies_agree_on_status_and_reason(
    fronts: tuple[Front, Front], request_args: dict[str, Any], fragment: str
) -> None:
    args = dict(request_args)
    extra = args.pop("headers_extra", {})
    replies = [f.client.post("/v1/positions", headers=f.auth | extra, **args) for f in fronts]
    for reply in replies:
        assert reply.status_code == 400, reply.text
        assert reply.json()["code"] == 3
        assert reasons(reply) == ["VALIDATION_FAILED"]
        assert fragment in reply.json()["message"]


def test_unknown_query_parameters_agree_on_status_and_reason(
    fronts: tuple[Front, Front],
) -> None:
    for reply in both(fronts, "GET", "/v1/account", params={"verbose": "1"}):
        assert reply.status_code == 400, reply.text
        assert reply.json()["code"] == 3
        assert reasons(reply) == ["VALIDATION_FAILED"]
        assert "verbose" in reply.json()["message"]


def test_unknown_paths_are_not_found_on_both(fronts: tuple[Front, Front]) -> None:
    for reply in both(fronts, "GET", "/v1/nothing-here"):
        assert reply.status_code == 404
        body = reply.json()
        assert (body["code"], body["details"]) == (5, [])


def test_a_wrong_method_is_405_on_the_edge_and_404_on_envoy(fronts: tuple[Front, Front]) -> None:
    edge, envoy = both(fronts, "DELETE", "/v1/positions")

    assert (edge.status_code, edge.json()["code"]) == (405, 12)
    assert (envoy.status_code, envoy.json()["code"]) == (404, 5)


def test_unknown_json_fields_are_refused_by_the_edge_and_ignored_by_envoy(
    fronts: tuple[Front, Front],
) -> None:
    # A misspelt stopLoss: the edge refuses it, Envoy's transcoder drops it silently and the
    # position opens without a stop. This is why the edge is the recommended front.
    body = OPEN | {"stopLos": "60000.00"}
    edge, envoy = both(fronts, "POST", "/v1/positions", json=body)

    assert edge.status_code == 400
    assert reasons(edge) == ["VALIDATION_FAILED"]
    assert "stopLos" in edge.json()["message"]
    assert envoy.status_code == 200, envoy.text
    assert envoy.json()["position"]["stopLoss"] == ""


def _post_raw(front: Front, path: str, body: bytes, **headers: str) -> httpx.Response:
    return front.client.post(
        path, content=body, headers=front.auth | {"content-type": "application/json"} | headers
    )


def _open_raw(fields: str) -> bytes:
    return ('{"symbol":"BTCUSD","side":"SIDE_BUY","leverage":10,' + fields + "}").encode()


@pytest.mark.parametrize(
    ("fields", "key", "envoy_stop"),
    [
        ('"quantity":"0.0010","stopLoss":"60000.00","stopLoss":""', "stopLoss", ""),
        ('"quantity":"0.0010","stopLoss":"","stopLoss":"60000.00"', "stopLoss", "60000.00"),
        ('"quantity":"0.0010","stopLoss":"60000.00","stop_loss":""', "stop_loss", ""),
    ],
)
def test_a_key_given_twice_is_refused_by_the_edge_and_the_last_one_wins_on_envoy(
    fronts: tuple[Front, Front], fields: str, key: str, envoy_stop: str
) -> None:
    edge, envoy = (_post_raw(front, "/v1/positions", _open_raw(fields)) for front in fronts)

    assert edge.status_code == 400, edge.text
    assert reasons(edge) == ["VALIDATION_FAILED"]
    assert edge.json()["message"].startswith(f"{key}: ")
    # Envoy's transcoder keeps the last value: the position opens, with or without its stop.
    assert envoy.status_code == 200, envoy.text
    assert envoy.json()["position"]["stopLoss"] == envoy_stop


def test_a_size_given_twice_is_refused_by_both(fronts: tuple[Front, Front]) -> None:
    body = _open_raw('"quantity":"0.0010","quantity":"0.0020"')
    for reply in (_post_raw(front, "/v1/positions", body) for front in fronts):
        assert reply.status_code == 400, reply.text
        assert reasons(reply) == ["VALIDATION_FAILED"]


@pytest.mark.parametrize(
    ("side", "envoy_status"),
    [("1.5", 400), ("2.9", 400), ("true", 400), ("7", 400), ("1.0", 200), ('"1"', 200)],
)
def test_enum_values_that_are_not_a_name_or_an_exact_number_are_refused_by_the_edge(
    fronts: tuple[Front, Front], side: str, envoy_status: int
) -> None:
    body = _open_raw(f'"quantity":"0.0010","side":{side}')
    edge, envoy = (_post_raw(front, "/v1/positions", body) for front in fronts)

    assert edge.status_code == 400, edge.text
    assert reasons(edge) == ["VALIDATION_FAILED"]
    assert edge.json()["message"].startswith("side: ")
    # Envoy refuses fractions and booleans too, but reads 1.0 and "1" as SIDE_BUY; an unknown
    # number reaches the engine, which refuses it.
    assert envoy.status_code == envoy_status, envoy.text
    if envoy_status == 400:
        assert reasons(envoy) == ["VALIDATION_FAILED"]
    else:
        assert envoy.json()["position"]["side"] == "SIDE_BUY"


@pytest.mark.parametrize(
    ("leverage", "status", "reason"),
    [
        ("10.5", 400, "VALIDATION_FAILED"),
        ("true", 400, "VALIDATION_FAILED"),
        ("99999999999999999999", 400, "VALIDATION_FAILED"),
        ("1e400", 400, "VALIDATION_FAILED"),
        ("NaN", 400, "VALIDATION_FAILED"),
        ("1e3", 400, "INVALID_LEVERAGE"),
        ("10.0", 200, ""),
        ('"10"', 200, ""),
    ],
)
def test_integer_fields_take_the_same_numbers_on_both(
    fronts: tuple[Front, Front], leverage: str, status: int, reason: str
) -> None:
    body = ('{"symbol":"BTCUSD","side":"SIDE_BUY","quantity":"0.0010","leverage":' + leverage
            + "}").encode()  # fmt: skip
    for reply in (_post_raw(front, "/v1/positions", body) for front in fronts):
        assert reply.status_code == status, reply.text
        if reason:
            assert reasons(reply) == [reason]
        else:
            assert reply.json()["position"]["leverage"] == 10


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/json; charset=latin-1", "application/json;"]
)
def test_a_body_that_is_not_declared_json_is_415_on_both(
    fronts: tuple[Front, Front], content_type: str | None
) -> None:
    body = _open_raw('"quantity":"0.0010"')

    def chunked() -> Iterator[bytes]:
        yield body

    for content in (body, chunked):
        replies = []
        for front in fronts:
            headers = front.auth | ({} if content_type is None else {"content-type": content_type})
            data = content() if callable(content) else content
            replies.append(front.client.post("/v1/positions", content=data, headers=headers))
        edge, envoy = replies
        assert edge.status_code == 415, edge.text
        assert (edge.json()["code"], reasons(edge)) == (3, ["VALIDATION_FAILED"])
        if content is body:
            assert_same(edge, envoy)
        else:
            # Without a content-length Envoy's routing cannot tell a body from none.
            assert envoy.status_code == 200, envoy.text


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "APPLICATION/JSON"])
def test_json_in_utf8_is_accepted_on_both(fronts: tuple[Front, Front], content_type: str) -> None:
    body = _open_raw('"quantity":"0.0010"')
    for front in fronts:
        headers = front.auth | {"content-type": content_type}
        reply = front.client.post("/v1/positions", content=body, headers=headers)
        assert reply.status_code == 200, reply.text


def test_a_post_without_a_body_needs_no_content_type_on_both(fronts: tuple[Front, Front]) -> None:
    for front in fronts:
        for headers in ({}, {"content-type": "text/plain", "content-length": "0"}):
            reply = front.client.post("/v1/orders/o-999999:cancel", headers=front.auth | headers)
            assert reply.status_code == 404, reply.text
            assert reasons(reply) == ["ORDER_NOT_FOUND"]


def test_error_messages_speak_the_api_units(fronts: tuple[Front, Front]) -> None:
    far = OPEN | {"type": "ORDER_TYPE_LIMIT", "triggerPrice": "60000.00",
                  "expireTime": "2300-01-01T00:00:00Z"}  # fmt: skip
    expired = both(fronts, "POST", "/v1/orders", json=far)
    assert_same_error(*expired, 400, "VALIDATION_FAILED")
    assert "2262-04-11T23:47:16Z" in expired[0].json()["message"]
    too_big = both(fronts, "POST", "/v1/positions", json=OPEN | {"quantity": "100"})
    opened = both(fronts, "POST", "/v1/positions", json=OPEN)
    ids = [reply.json()["position"]["id"] for reply in opened]
    too_much = [
        front.client.post(f"/v1/positions/{pid}:addMargin", json={"amount": "1000000"},
                          headers=front.auth)
        for front, pid in zip(fronts, ids, strict=True)
    ]  # fmt: skip
    for reply, pattern in (
        (too_big[0], r"margin 640100\.00 USD exceeds the free balance \d+\.\d+ USD"),
        (too_big[1], r"margin 640100\.00 USD exceeds the free balance \d+\.\d+ USD"),
        (too_much[0], r"amount 1000000\.00 USD exceeds the free balance \d+\.\d+ USD"),
        (too_much[1], r"amount 1000000\.00 USD exceeds the free balance \d+\.\d+ USD"),
    ):
        assert reply.status_code == 400, reply.text
        assert reasons(reply) == ["INSUFFICIENT_BALANCE"]
        assert re.fullmatch(pattern, reply.json()["message"]), reply.text
    for reply in (*expired, *too_big, *too_much):
        assert "micro" not in reply.text
        assert "9223372036854775807" not in reply.text


# Streams and gRPC-Web ---------------------------------------------------------------------


def test_stream_prices_is_newline_delimited_json_on_both(fronts: tuple[Front, Front]) -> None:
    firsts = []
    for front in fronts:
        with front.client.stream(
            "GET", "/v1/prices:stream", params={"symbols": "ETHUSD"}, headers=front.auth
        ) as reply:
            assert reply.status_code == 200
            firsts.append((reply.headers["content-type"], json.loads(next(reply.iter_lines()))))
    (edge_type, edge_quote), (envoy_type, envoy_quote) = firsts

    # The current quote comes first, the very same on both.
    assert edge_quote == envoy_quote
    assert (edge_quote["bid"], edge_quote["ask"]) == QUOTES["ETHUSD"]
    assert edge_type == "application/x-ndjson"
    assert envoy_type == "application/json"


def test_stream_errors_before_the_first_message_are_identical(
    fronts: tuple[Front, Front],
) -> None:
    assert_same_error(
        *both(fronts, "GET", "/v1/prices:stream", params={"symbols": "DOGEUSD"}),
        400,
        "UNKNOWN_SYMBOL",
    )


def test_grpc_web_stream_prices_from_the_real_engine(
    mesh: RealMesh, fronts: tuple[Front, Front]
) -> None:
    request = trading_pb2.StreamPricesRequest(symbols=["BTCUSD"])
    reader = FrameReader()
    headers = {"content-type": CONTENT_TYPE, "x-grpc-web": "1"} | fronts[1].auth
    with fronts[1].client.stream(
        "POST",
        "/cfd.v1.TradingService/StreamPrices",
        content=encode_message(request.SerializeToString()),
        headers=headers,
    ) as reply:
        assert reply.status_code == 200
        messages: list[bytes] = []
        for chunk in reply.iter_bytes():
            messages += reader.feed(chunk)
            if messages:
                break
    quote = trading_pb2.StreamPricesResponse.FromString(messages[0])
    assert (quote.symbol, quote.bid, quote.ask) == ("BTCUSD", *QUOTES["BTCUSD"])


def test_a_malformed_grpc_request_is_invalid_argument_directly_and_through_envoy(
    mesh: RealMesh, fronts: tuple[Front, Front]
) -> None:
    # ClosePositionRequest whose position_id (field 1, a string) is not UTF-8.
    payload = b"\x0a\x02\xff\xfe"
    metadata = tuple(fronts[1].auth.items())
    for port in ("CFD_ENGINE_PORT", "CFD_ENVOY_PORT"):
        with grpc.insecure_channel(mesh.address(port)) as channel:
            close = channel.unary_unary(
                "/cfd.v1.TradingService/ClosePosition",
                request_serializer=lambda data: data,
                response_deserializer=lambda data: data,
            )
            with pytest.raises(grpc.RpcError) as failure:
                close(payload, metadata=metadata, timeout=10)
        assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT, port
        assert "not a valid protobuf message" in (failure.value.details() or ""), port
    assert "Traceback" not in mesh.up.output()


def test_internal_services_are_unreachable_through_envoy(mesh: RealMesh) -> None:
    with grpc.insecure_channel(mesh.address("CFD_ENVOY_PORT")) as channel:
        stub = engine_admin_pb2_grpc.EngineAdminServiceStub(channel)
        with pytest.raises(grpc.RpcError) as failure:
            stub.GetStats(engine_admin_pb2.GetStatsRequest(), metadata=mesh.internal, timeout=5)
    assert failure.value.code() == grpc.StatusCode.UNIMPLEMENTED
    for path in (
        "/cfd.v1.EngineAdminService/Deposit",
        "/cfd.v1.MarketDataAdminService/PublishTicks",
    ):
        reply = httpx.post(
            mesh.envoy_url + path,
            content=encode_message(b""),
            headers={"content-type": CONTENT_TYPE, "x-grpc-web": "1"} | dict(mesh.internal),
        )
        assert reply.status_code == 404, path
        rest = httpx.post(mesh.envoy_url + path, json={}, headers=dict(mesh.internal))
        assert rest.status_code == 404, path
    # Directly, the same call works: the route, not the service, keeps callers out.
    with grpc.insecure_channel(mesh.address("CFD_ENGINE_PORT")) as channel:
        stats = engine_admin_pb2_grpc.EngineAdminServiceStub(channel).GetStats(
            engine_admin_pb2.GetStatsRequest(), metadata=mesh.internal, timeout=5
        )
    assert stats.sequence > 0
