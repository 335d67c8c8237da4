"""Every service's `/metrics` port, read after a user signed up and traded through the edge."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest
from websockets.sync.client import connect

from integration.test_edge_support import LiveMesh, live_mesh, signup
from support import wait_for

EMAIL = "metrics-trader@example.com"
PORTS = {
    "engine": "CFD_ENGINE_METRICS_PORT",
    "market": "CFD_MARKET_METRICS_PORT",
    "accounts": "CFD_ACCOUNT_METRICS_PORT",
    "edge": "CFD_EDGE_METRICS_PORT",
}


@pytest.fixture(scope="module")
def traded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveMesh]:
    """A mesh where one user signed up, failed one sign-in and opened two positions."""
    with live_mesh(tmp_path_factory.mktemp("metrics")) as mesh, httpx.Client(
        base_url=mesh.url, timeout=15
    ) as http:
        token = signup(http, EMAIL)
        wrong = http.post("/v1/auth/signin", json={"email": EMAIL, "password": "not it at all"})
        assert wrong.status_code == 401
        mesh.publish_and_wait("BTCUSD", "60000.00", "60010.00", token)
        headers = {"authorization": f"Bearer {token}"}
        for n in range(2):
            order = {"symbol": "BTCUSD", "side": "SIDE_BUY", "leverage": 10, "quantity": "0.01",
                     "clientOrderId": f"metrics-{n}"}  # fmt: skip
            response = http.post("/v1/positions", json=order, headers=headers)
            assert response.status_code == 200, response.text
        yield mesh


def scrape(mesh: LiveMesh, service: str) -> str:
    response = httpx.get(f"http://127.0.0.1:{mesh.env[PORTS[service]]}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def value(text: str, sample: str) -> float:
    """Return the value of the exposition line that starts with `sample` (name and labels)."""
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {sample} in:\n{text}")


def test_the_engine_counts_commands_batches_and_state(traded: LiveMesh) -> None:
    text = scrape(traded, "engine")
    assert value(text, 'cfd_engine_commands_total{command="OpenPosition",result="OK"}') == 2
    assert value(text, 'cfd_engine_commands_total{command="CreateAccount",result="OK"}') == 1
    assert value(text, "cfd_engine_open_positions") == 2
    assert value(text, "cfd_engine_accounts") == 1
    assert value(text, 'cfd_engine_price_fresh{symbol="BTCUSD"}') == 1
    assert value(text, "cfd_engine_journal_append_seconds_count") >= 3
    assert value(text, "cfd_engine_journal_bytes") > 0
    assert value(text, "cfd_engine_batches_total") >= 3
    handled = (
        'grpc_server_handled_total{grpc_code="OK",grpc_method="OpenPosition",'
        'grpc_service="cfd.v1.TradingService",grpc_type="unary"}'
    )
    assert value(text, handled) == 2


def test_the_market_counts_ticks_and_feed_state(traded: LiveMesh) -> None:
    text = scrape(traded, "market")
    assert value(text, 'cfd_market_quotes_published_total{source="manual"}') >= 1
    assert value(text, 'cfd_market_feed_connected{source="manual"}') == 1
    assert value(text, 'cfd_market_feed_stale{source="manual"}') == 0


def test_the_accounts_service_counts_signups_and_signins_by_result(traded: LiveMesh) -> None:
    text = scrape(traded, "accounts")
    assert value(text, "cfd_accounts_signups_total") == 1
    assert value(text, 'cfd_accounts_signins_total{result="invalid_credentials"}') == 1


def test_the_edge_labels_requests_by_route_template(traded: LiveMesh) -> None:
    text = scrape(traded, "edge")
    sample = 'cfd_edge_http_requests_total{method="POST",route="/v1/positions",status="200"}'
    assert value(text, sample) == 2
    assert value(text, 'cfd_edge_http_requests_total{method="POST",route="/v1/auth/signin",'
                       'status="401"}') == 1  # fmt: skip


def test_no_metric_names_a_user(traded: LiveMesh) -> None:
    for service in PORTS:
        text = scrape(traded, service)
        assert EMAIL not in text
        assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-", text), service


def test_other_paths_of_the_metrics_port_are_not_found(traded: LiveMesh) -> None:
    port = traded.env[PORTS["engine"]]
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 404


def test_the_edge_counts_websocket_connections_and_frames(traded: LiveMesh) -> None:
    before = scrape(traded, "edge")
    sent_before = value(before, "cfd_edge_ws_frames_sent_total")
    with connect(traded.ws_url, compression=None, proxy=None) as ws:
        ws.send(json.dumps({"op": "subscribe", "channel": "prices", "symbols": ["BTCUSD"]}))
        assert json.loads(ws.recv(timeout=10))["type"] == "ack"
        during = scrape(traded, "edge")
        assert value(during, "cfd_edge_ws_connections") == 1
    assert value(during, "cfd_edge_ws_frames_sent_total") >= sent_before + 1
    assert value(during, "cfd_edge_ws_connections_opened_total") >= 1
    wait_for(lambda: value(scrape(traded, "edge"), "cfd_edge_ws_connections") == 0, timeout=10)
