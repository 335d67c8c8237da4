"""`cfd edge` as a process: it serves, refuses a taken port clearly and stops on SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from support import ServiceProcess, mesh_env, wait_for


def _healthy(url: str, process: ServiceProcess) -> bool:
    if process.process.poll() is not None:
        raise AssertionError(f"cfd edge exited:\n{process.output()}")
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_edge_serves_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = mesh_env(tmp_path)
    url = f"http://127.0.0.1:{env['CFD_EDGE_PORT']}"
    edge = ServiceProcess(["edge"], env, tmp_path / "edge.log")
    try:
        wait_for(lambda: _healthy(url, edge), timeout=30)
        # Without the services behind it, the edge is alive but not ready.
        ready = httpx.get(f"{url}/readyz", timeout=5)
        assert ready.status_code == 503
        assert set(ready.json()["services"].values()) == {"UNREACHABLE"}
        unavailable = httpx.get(f"{url}/v1/instruments", timeout=10)
        assert unavailable.status_code == 503
        assert unavailable.json()["code"] == 14
        assert httpx.get(f"{url}/openapi.json", timeout=5).json()["openapi"] == "3.0.3"
        # An open WebSocket whose feed keeps retrying the missing upstream does not stop
        # the shutdown: the client is told the server is going away.
        with connect(f"ws://127.0.0.1:{env['CFD_EDGE_PORT']}/v1/ws", proxy=None) as ws:
            ws.send(json.dumps({"op": "subscribe", "channel": "prices", "symbols": ["BTCUSD"]}))
            assert json.loads(ws.recv(timeout=10))["type"] == "ack"
            started = time.monotonic()
            edge.stop(signal.SIGTERM)
            assert time.monotonic() - started < 10
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
    finally:
        if edge.process.poll() is None:
            edge.stop(signal.SIGTERM)
    assert edge.process.returncode == 0, edge.output()
    assert '"request_id"' in edge.output()


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    env = mesh_env(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(env["CFD_EDGE_PORT"])))
        taken.listen(1)
        edge = ServiceProcess(["edge"], env, tmp_path / "edge.log")
        code = edge.process.wait(timeout=30)
        edge.stop()
    assert code == 1
    assert "is the port already in use" in edge.output()


def test_bad_edge_settings_stop_the_start(tmp_path: Path) -> None:
    env = mesh_env(tmp_path, CFD_MAX_BODY_BYTES="lots")
    edge = ServiceProcess(["edge"], env, tmp_path / "edge.log")
    code = edge.process.wait(timeout=30)
    edge.stop()
    assert code == 1
    assert "cfd edge: edge: configuration error: CFD_MAX_BODY_BYTES" in edge.output()
    assert "Traceback" not in edge.output()
