"""Honest health: a silent price feed flips the market, the edge's /readyz and `cfd status`."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections.abc import Iterator

import httpx
import pytest

from integration.test_edge_support import LiveMesh, live_mesh
from launcher.cli import grpc_serving
from support import REPO, wait_for

STALE_MS = "1500"
MARKET = "cfd.v1.MarketDataService"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveMesh]:
    with live_mesh(
        tmp_path_factory.mktemp("health"), with_maker=True, CFD_FEED_STALE_MS=STALE_MS
    ) as running:
        yield running


def status(mesh: LiveMesh) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "launcher.cli", "status"],
        env=mesh.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def readyz(mesh: LiveMesh) -> httpx.Response:
    return httpx.get(f"{mesh.url}/readyz", timeout=5)


def market_serving(mesh: LiveMesh) -> bool:
    return grpc_serving(f"127.0.0.1:{mesh.env['CFD_MARKET_PORT']}")


@contextlib.contextmanager
def ticking(mesh: LiveMesh) -> Iterator[None]:
    """Publish a quote every 200 ms (a live feed) until the block ends."""
    stop = threading.Event()

    def publish() -> None:
        while not stop.is_set():
            mesh.publish(("BTCUSD", "60000.00", "60010.00"))
            stop.wait(0.2)

    thread = threading.Thread(target=publish)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def row(output: str, service: str) -> list[str]:
    for line in output.splitlines():
        cells = line.split()
        if cells and cells[0] == service:
            return cells
    raise AssertionError(f"no {service} row in:\n{output}")


def test_a_silent_feed_flips_market_health_readyz_and_cfd_status(mesh: LiveMesh) -> None:
    with ticking(mesh):
        wait_for(lambda: readyz(mesh).status_code == 200, timeout=20, interval=0.2)
        live = status(mesh)
    assert live.returncode == 0, live.stdout + live.stderr
    assert row(live.stdout, "market")[1:2] == ["SERVING"]
    assert row(live.stdout, "market")[-2:] == ["live", "(manual)"]
    assert row(live.stdout, "edge")[1] == "SERVING"
    engine = row(live.stdout, "engine")
    assert engine[1] == "SERVING" and engine[2] != "-" and int(engine[3]) >= 1
    assert row(live.stdout, "maker")[1] == "SERVING"

    # No tick for longer than CFD_FEED_STALE_MS: the feed is dead.
    wait_for(lambda: not market_serving(mesh), timeout=20, interval=0.2)
    ready = readyz(mesh)
    assert ready.status_code == 503
    assert ready.json()["services"][MARKET] == "NOT_SERVING"
    stale = status(mesh)
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert row(stale.stdout, "market")[1] == "NOT_SERVING"
    assert "stale" in row(stale.stdout, "market")
    assert "not serving: market" in stale.stdout
    assert "market is NOT_SERVING" in mesh.processes["market"].output()

    # Ticks again: healthy again.
    mesh.publish(("BTCUSD", "60001.00", "60011.00"))
    wait_for(lambda: readyz(mesh).status_code == 200, timeout=20, interval=0.2)
