"""`cfd up --cluster`: the mesh on a 3-node NATS cluster with a standby engine, which takes the
lead when the first engine is killed while the mesh keeps running."""

from __future__ import annotations

import functools
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from cfd.v1 import engine_admin_pb2, engine_admin_pb2_grpc
from integration.test_edge_support import TEST_ENV, signup
from launcher.status import SERVING, collect
from mesh.auth import shard_claim
from mesh.config import Settings, shard_port
from support import ServiceProcess, free_port, mesh_env, running_up, wait_for

pytestmark = pytest.mark.nats

STOP_WITHIN_S = 8


def _ports(count: int) -> str:
    return ",".join(str(free_port()) for _ in range(count))


def _cluster_env(data_dir: Path, **overrides: str) -> dict[str, str]:
    """Return the environment of `cfd up --cluster` on free ports, with a 1 s lease."""
    return mesh_env(
        data_dir,
        CFD_NATS_PORTS=_ports(3),
        CFD_NATS_ROUTE_PORTS=_ports(3),
        CFD_STANDBY_ENGINE_PORT=str(free_port()),
        CFD_STANDBY_METRICS_PORT=str(free_port()),
        CFD_LEASE_TTL_MS="1000",
        **overrides,
    )


@pytest.fixture
def cluster_mesh(tmp_path: Path) -> Iterator[tuple[ServiceProcess, dict[str, str]]]:
    """Run `cfd up --cluster` on free ports; stop it afterwards."""
    env = _cluster_env(
        tmp_path,
        CFD_FEED="manual",
        # Long, so that a stop waiting on a NATS call that cannot succeed shows.
        CFD_JOURNAL_TIMEOUT_MS=str(STOP_WITHIN_S * 2000),
    )
    with running_up(["--cluster"], env, tmp_path) as up:
        yield up, env


def _leader(target: str, env: dict[str, str]) -> str:
    metadata = (("x-cfd-internal-token", env["CFD_INTERNAL_TOKEN"]),)
    with grpc.insecure_channel(target) as channel:
        try:
            stats = engine_admin_pb2_grpc.EngineAdminServiceStub(channel).GetStats(
                engine_admin_pb2.GetStatsRequest(), metadata=metadata, timeout=2
            )
        except grpc.RpcError:
            return ""
    leader: str = stats.journal_leader
    return leader


def _edge_ready(env: dict[str, str]) -> bool:
    try:
        response = httpx.get(f"http://127.0.0.1:{env['CFD_EDGE_PORT']}/readyz", timeout=2)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def test_the_standby_leads_when_the_first_engine_dies_and_the_mesh_follows(
    cluster_mesh: tuple[ServiceProcess, dict[str, str]],
) -> None:
    up, env = cluster_mesh
    first = f"127.0.0.1:{env['CFD_ENGINE_PORT']}"
    # The target the other services use: the first engine, then the standby.
    target = f"ipv4:{first},127.0.0.1:{env['CFD_STANDBY_ENGINE_PORT']}"
    leader = wait_for(lambda: _leader(first, env), timeout=20)
    assert leader.endswith(f":{env['CFD_ENGINE_PORT']}")
    rows = collect(Settings.from_env(env), env)
    assert next(row.leader for row in rows if row.service == "engine") == leader
    # One recorder follows the stream for both engines.
    assert next(row.health for row in rows if row.service == "recorder") == SERVING
    wait_for(lambda: _edge_ready(env), timeout=20)

    os.kill(int(leader.split(":")[-2]), signal.SIGKILL)
    successor = wait_for(lambda: _leader(target, env).replace(leader, ""), timeout=30)
    assert successor.endswith(f":{env['CFD_STANDBY_ENGINE_PORT']}")
    # The edge reaches the new leader through the same target, without a restart.
    wait_for(lambda: _edge_ready(env), timeout=30)
    assert up.process.poll() is None
    assert "engine exited with code" in up.output()
    stopping = time.monotonic()
    assert up.stop(timeout=40) == 0
    # The engine hands its lease back before the NATS nodes stop, so nothing waits on them.
    assert time.monotonic() - stopping < STOP_WITHIN_S


def test_each_shard_has_its_own_leader_and_standby(tmp_path: Path) -> None:
    """Two shards on the cluster: each leads its own stream; killing shard 1's engine hands
    shard 1 to its standby while shard 0 keeps its leader, and shard 1's users trade on."""
    env = _cluster_env(tmp_path, **TEST_ENV, CFD_ENGINE_SHARDS="2")
    with running_up(["--cluster"], env, tmp_path) as up:
        port = int(env["CFD_ENGINE_PORT"])
        first = [f"127.0.0.1:{shard_port(port, shard)}" for shard in (0, 1)]
        standby = [
            f"127.0.0.1:{shard_port(int(env['CFD_STANDBY_ENGINE_PORT']), shard)}"
            for shard in (0, 1)
        ]
        leaders = [
            wait_for(functools.partial(_leader, address, env), timeout=30) for address in first
        ]
        assert leaders[0] != leaders[1]
        wait_for(lambda: _edge_ready(env), timeout=30)
        with httpx.Client(base_url=f"http://127.0.0.1:{env['CFD_EDGE_PORT']}", timeout=10) as http:
            # Users until one lands on shard 1 (half of them do).
            tokens = (signup(http, f"c{n}@example.com") for n in range(64))
            home1 = next(token for token in tokens if shard_claim(token) == 1)

            os.kill(int(leaders[1].split(":")[-2]), signal.SIGKILL)
            target = f"ipv4:{first[1]},{standby[1]}"
            successor = wait_for(lambda: _leader(target, env).replace(leaders[1], ""), timeout=30)
            assert successor.endswith(f":{standby[1].rpartition(':')[2]}")
            assert _leader(first[0], env) == leaders[0]

            def served() -> bool:
                reply = http.get("/v1/account", headers={"authorization": f"Bearer {home1}"})
                return reply.status_code == 200 and reply.json()["balance"] == "5000.00"

            wait_for(served, timeout=30)
        assert up.process.poll() is None
