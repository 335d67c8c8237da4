"""Server streams through Envoy's transcoder: newline-delimited JSON, errors, authentication."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from envoy_support import (
    HALTING_SYMBOL,
    QUOTES_PER_SYMBOL,
    EnvoyProcess,
    FakeMesh,
    running_front,
)
from mesh.config import Settings

Front = tuple[Settings, FakeMesh, EnvoyProcess]


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    with running_front(tmp_path_factory.mktemp("envoy-streaming")) as running:
        yield running


@pytest.fixture(scope="module")
def client(front: Front) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=front[2].base_url, timeout=10) as http:
        yield http


@pytest.fixture(scope="module")
def auth(front: Front) -> dict[str, str]:
    token, _ = front[1].issuer.issue("user-stream")
    return {"authorization": f"Bearer {token}"}


def test_stream_prices_arrives_as_one_json_object_per_line(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    params = httpx.QueryParams([("symbols", "BTCUSD"), ("symbols", "ETHUSD")])
    with client.stream("GET", "/v1/prices:stream", params=params, headers=auth) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("application/json")
        lines = [line for line in reply.iter_lines() if line]

    quotes = [json.loads(line) for line in lines]
    assert len(quotes) == 2 * QUOTES_PER_SYMBOL
    assert [q["symbol"] for q in quotes[:2]] == ["BTCUSD", "ETHUSD"]
    # int64 is a JSON string, as the protobuf JSON mapping says.
    assert [q["sequence"] for q in quotes] == [str(n) for n in range(1, 7)]
    assert quotes[0] == {
        "symbol": "BTCUSD",
        "bid": "100.00",
        "ask": "100.10",
        "time": "2026-05-28T20:26:40Z",
        "sequence": "1",
    }


def test_stream_error_before_the_first_message_is_a_status_body(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    reply = client.get("/v1/prices:stream", params={"symbols": "DOGEUSD"}, headers=auth)

    assert reply.status_code == 400
    body = reply.json()
    assert body["code"] == 3
    assert body["details"][0]["reason"] == "UNKNOWN_SYMBOL"


def test_stream_needs_a_token(client: httpx.Client) -> None:
    reply = client.get("/v1/prices:stream")

    assert reply.status_code == 401
    assert reply.json()["details"][0]["reason"] == "TOKEN_INVALID"


def test_an_error_after_the_first_message_just_ends_the_stream(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    # Documented difference: the edge ends such a stream with an {"error": ...} line; Envoy's
    # transcoder has nowhere to put the status in an HTTP/1.1 body, so the stream just ends.
    params = httpx.QueryParams([("symbols", "BTCUSD"), ("symbols", HALTING_SYMBOL)])
    with client.stream("GET", "/v1/prices:stream", params=params, headers=auth) as reply:
        assert reply.status_code == 200
        lines = [json.loads(line) for line in reply.iter_lines() if line]

    assert [line["symbol"] for line in lines] == ["BTCUSD"]
    assert "error" not in lines[0]


def test_the_unary_timeout_cuts_slow_calls_but_not_streams(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    base = tmp_path_factory.mktemp("envoy-timeouts")
    with running_front(base, CFD_UPSTREAM_TIMEOUT="0.3") as (_settings, mesh, envoy_front):
        mesh.trading.account_delay_s = 1.0
        mesh.trading.stream_step_delay_s = 0.25
        auth = {"authorization": f"Bearer {mesh.issuer.issue('user-slow')[0]}"}
        with httpx.Client(base_url=envoy_front.base_url, timeout=10) as http:
            slow = http.get("/v1/account", headers=auth)
            started = time.monotonic()
            with http.stream(
                "GET", "/v1/prices:stream", params={"symbols": "BTCUSD"}, headers=auth
            ) as stream:
                lines = [line for line in stream.iter_lines() if line]
            lasted = time.monotonic() - started

    assert slow.status_code == 504
    assert slow.json()["code"] == 4
    # Three steps a quarter second apart: well past the 0.3 s unary timeout, yet complete.
    assert lasted > 0.5
    assert len(lines) == QUOTES_PER_SYMBOL
