"""`cfd edge` as a process: it serves, refuses a taken port clearly and stops on SIGTERM."""

from __future__ import annotations

import json
import os
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
        edge.stop(signal.SIGTERM)
    assert edge.process.returncode == 0, edge.output()
    assert '"request_id"' in edge.output()


def test_a_stop_while_the_workers_start_is_a_clean_stop(tmp_path: Path) -> None:
    env = mesh_env(tmp_path, CFD_EDGE_WORKERS="2")
    edge = ServiceProcess(["edge"], env, tmp_path / "edge.log")
    # The workers are still importing when the edge passes the signal on to them.
    wait_for(lambda: "edge starting" in edge.output(), timeout=30, interval=0.01)
    assert edge.stop(signal.SIGTERM) == 0, edge.output()


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


def _workers(edge: ServiceProcess) -> list[int]:
    pid = edge.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def _gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status


def _serving_workers(url: str, edge: ServiceProcess, count: int) -> list[int] | None:
    if not _healthy(url, edge):
        return None
    workers = _workers(edge)
    return workers if len(workers) == count else None


def test_worker_processes_share_the_port_and_all_stop_on_sigterm(tmp_path: Path) -> None:
    env = mesh_env(tmp_path, CFD_EDGE_WORKERS="3")
    url = f"http://127.0.0.1:{env['CFD_EDGE_PORT']}"
    edge = ServiceProcess(["edge"], env, tmp_path / "edge.log")
    try:
        workers = wait_for(lambda: _serving_workers(url, edge, 3), timeout=30)
        # Every worker accepts on the shared socket: each logs that it listens.
        wait_for(lambda: edge.output().count("edge listening on") == 3, timeout=30)
        with httpx.Client(base_url=url, timeout=5) as http:
            assert all(http.get("/healthz").status_code == 200 for _ in range(20))
    finally:
        code = edge.stop(signal.SIGTERM)
    assert code == 0, edge.output()
    assert all(_gone(pid) for pid in workers)


def _edge_with_two_workers(tmp_path: Path) -> tuple[ServiceProcess, list[int]]:
    env = mesh_env(tmp_path, CFD_EDGE_WORKERS="2")
    url = f"http://127.0.0.1:{env['CFD_EDGE_PORT']}"
    edge = ServiceProcess(["edge"], env, tmp_path / "edge.log")
    return edge, wait_for(lambda: _serving_workers(url, edge, 2), timeout=30)


def test_a_worker_that_dies_stops_the_edge(tmp_path: Path) -> None:
    edge, workers = _edge_with_two_workers(tmp_path)
    try:
        os.kill(workers[0], signal.SIGKILL)
        code = edge.process.wait(timeout=30)
    finally:
        edge.stop()
    assert code == 1
    assert f"worker {workers[0]} exited with code -9" in edge.output()
    wait_for(lambda: _gone(workers[1]), timeout=15)


def test_workers_stop_when_the_edge_process_is_killed(tmp_path: Path) -> None:
    edge, workers = _edge_with_two_workers(tmp_path)
    edge.stop(signal.SIGKILL)
    wait_for(lambda: all(_gone(pid) for pid in workers), timeout=30)
