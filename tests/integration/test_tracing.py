"""One trace from the browser's request through the edge to the engine's command, in the logs."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from integration.test_edge_support import LiveMesh, live_mesh, signup
from support import wait_for


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveMesh, str]]:
    with live_mesh(tmp_path_factory.mktemp("tracing"), CFD_LOG_LEVEL="DEBUG") as mesh:
        with httpx.Client(base_url=mesh.url, timeout=15) as http:
            token = signup(http, "traced@example.com")
        mesh.publish_and_wait("BTCUSD", "60000.00", "60010.00", token)
        yield mesh, token


def log_lines(mesh: LiveMesh, service: str) -> list[dict[str, Any]]:
    lines = []
    for line in mesh.processes[service].output().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def open_position(mesh: LiveMesh, token: str, headers: dict[str, str]) -> httpx.Response:
    order = {"symbol": "BTCUSD", "side": "SIDE_BUY", "leverage": 10, "quantity": "0.01",
             "clientOrderId": secrets.token_hex(8)}  # fmt: skip
    response = httpx.post(
        f"{mesh.url}/v1/positions",
        json=order,
        headers={"authorization": f"Bearer {token}", **headers},
        timeout=15,
    )
    assert response.status_code == 200, response.text
    return response


def committed_in_engine(mesh: LiveMesh, trace_id: str) -> list[dict[str, Any]]:
    return [
        line
        for line in log_lines(mesh, "engine")
        if line.get("trace_id") == trace_id and line["message"] == "command committed"
    ]


def test_the_browsers_trace_reaches_the_engines_command(traced: tuple[LiveMesh, str]) -> None:
    mesh, token = traced
    trace_id = secrets.token_hex(16)
    response = open_position(mesh, token, {"traceparent": f"00-{trace_id}-{'ab' * 8}-01"})
    assert response.headers["x-trace-id"] == trace_id
    assert response.headers["traceparent"].split("-")[1] == trace_id
    wait_for(lambda: committed_in_engine(mesh, trace_id), timeout=10, interval=0.1)
    assert committed_in_engine(mesh, trace_id)[0]["command"] == "OpenPosition"
    edge = [line for line in log_lines(mesh, "edge") if line.get("trace_id") == trace_id]
    assert any(line.get("path") == "/v1/positions" for line in edge), edge


def test_a_request_without_a_trace_starts_one_the_engine_logs(
    traced: tuple[LiveMesh, str],
) -> None:
    mesh, token = traced
    first = open_position(mesh, token, {}).headers["x-trace-id"]
    second = open_position(mesh, token, {}).headers["x-trace-id"]
    assert first != second
    assert len(first) == 32 and int(first, 16) != 0
    wait_for(lambda: committed_in_engine(mesh, second), timeout=10, interval=0.1)
    assert [line["command"] for line in committed_in_engine(mesh, first)] == ["OpenPosition"]


def test_a_websockets_trace_reaches_the_stream_it_opens_upstream(
    traced: tuple[LiveMesh, str],
) -> None:
    mesh, _ = traced
    with httpx.Client(base_url=mesh.url, timeout=15) as http:
        token = signup(http, "traced-ws@example.com")
    trace_id = secrets.token_hex(16)
    headers = {"traceparent": f"00-{trace_id}-{'cd' * 8}-01"}
    with connect(mesh.ws_url, additional_headers=headers, proxy=None) as ws:
        ws.send(json.dumps({"op": "auth", "token": token}))
        ws.send(json.dumps({"op": "subscribe", "channel": "events"}))

        def opened_in_engine() -> list[dict[str, Any]]:
            return [
                line
                for line in log_lines(mesh, "engine")
                if line.get("trace_id") == trace_id and line["message"] == "stream opened"
            ]

        opened = wait_for(opened_in_engine, timeout=10, interval=0.1)
    assert opened[0]["method"] == "/cfd.v1.TradingService/StreamEvents"
