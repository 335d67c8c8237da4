"""The metrics of the service shell, its health watch and the `/metrics` port."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY, CollectorRegistry, Counter, generate_latest

from cfd.v1 import trading_pb2, trading_pb2_grpc
from mesh.config import ConfigError, Settings
from mesh.metrics import (
    MULTIPROC_DIR,
    metrics_port,
    multiprocess_registry,
    serve_metrics,
)
from mesh.server import Service, serve
from support import free_port, until
from unit.mesh.test_mesh_server import INTERNAL, FixedVerifier, Trading

BEARER = (("authorization", "Bearer good-token"),)
TRADING = "cfd.v1.TradingService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def handled(method: str, code: str) -> float:
    labels = {"grpc_type": "unary", "grpc_service": TRADING, "grpc_method": method}
    labels["grpc_code"] = code
    return REGISTRY.get_sample_value("grpc_server_handled_total", labels) or 0.0


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"CFD_DATA_DIR": str(tmp_path), "CFD_INTERNAL_TOKEN": INTERNAL})


class Served:
    """A running shell with the Trading fake; `healthy` is what its health check answers."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.healthy = True
        self.started = asyncio.Event()

    async def check(self) -> bool:
        return self.healthy

    async def wait_started(self) -> None:
        await self.started.wait()

    async def status(self, service: str = "") -> int:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=5
            )
        return int(reply.status)


async def _serve(
    settings: Settings, served: Served, on_start: Callable[[], Awaitable[None]] | None = None
) -> AsyncIterator[Served]:
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(
            "test",
            served.port,
            [Service(trading_pb2_grpc.add_TradingServiceServicer_to_server, Trading(), TRADING)],  # type: ignore[abstract]
            settings=settings,
            verifier=FixedVerifier(),
            stop=stop,
            grace=0.5,
            on_start=on_start,
            health_check=served.check,
            open_early=on_start is not None,
        )
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{served.port}") as channel:
        await asyncio.wait_for(channel.channel_ready(), 10)
    try:
        yield served
    finally:
        served.started.set()
        stop.set()
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def shell(settings: Settings) -> AsyncIterator[Served]:
    async for served in _serve(settings, Served(free_port())):
        yield served


async def test_the_interceptor_counts_calls_by_method_and_status(shell: Served) -> None:
    before = (
        handled("GetAccount", "OK"),
        handled("ClosePosition", "INVALID_ARGUMENT"),
        handled("ListOrders", "INTERNAL"),
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{shell.port}") as channel:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        await stub.GetAccount(trading_pb2.GetAccountRequest(), metadata=BEARER)
        await stub.GetAccount(trading_pb2.GetAccountRequest(), metadata=BEARER)
        for call in (
            stub.ClosePosition(trading_pb2.ClosePositionRequest(), metadata=BEARER),
            stub.ListOrders(trading_pb2.ListOrdersRequest(), metadata=BEARER),
        ):
            with pytest.raises(grpc.aio.AioRpcError):
                await call
    after = (
        handled("GetAccount", "OK"),
        handled("ClosePosition", "INVALID_ARGUMENT"),
        handled("ListOrders", "INTERNAL"),
    )
    assert [b - a for a, b in zip(before, after, strict=True)] == [2, 1, 1]
    labels = {"grpc_type": "unary", "grpc_service": TRADING, "grpc_method": "GetAccount"}
    assert (REGISTRY.get_sample_value("grpc_server_handling_seconds_count", labels) or 0) >= 2


async def test_the_health_check_sets_the_status_of_the_process_and_its_services(
    shell: Served, caplog: pytest.LogCaptureFixture
) -> None:
    assert await shell.status() == SERVING
    with caplog.at_level(logging.INFO, logger="mesh.server"):
        shell.healthy = False
        await until(lambda: _is(shell, "", NOT_SERVING), within=10)
        assert await shell.status(TRADING) == NOT_SERVING
        shell.healthy = True
        await until(lambda: _is(shell, TRADING, SERVING), within=10)
    messages = [record.getMessage() for record in caplog.records]
    assert "test is NOT_SERVING" in messages
    assert "test is SERVING again" in messages


async def _is(served: Served, service: str, status: int) -> bool:
    return await served.status(service) == status


async def test_a_service_that_opens_early_refuses_calls_until_it_started(
    settings: Settings,
) -> None:
    served = Served(free_port())
    async for _running in _serve(settings, served, on_start=served.wait_started):
        assert await served.status() == NOT_SERVING
        async with grpc.aio.insecure_channel(f"127.0.0.1:{served.port}") as channel:
            stub = trading_pb2_grpc.TradingServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.GetAccount(trading_pb2.GetAccountRequest(), metadata=BEARER)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "starting" in (refused.value.details() or "")
            served.started.set()
            await until(lambda: _is(served, "", SERVING), within=10)
            reply = await stub.GetAccount(trading_pb2.GetAccountRequest(), metadata=BEARER)
            assert reply.balance == "alice"


async def test_the_metrics_port_serves_the_registry_and_nothing_else() -> None:
    registry = CollectorRegistry()
    Counter("probe_hits", "Hits.", registry=registry).inc(3)
    port = free_port()
    server = await serve_metrics("127.0.0.1", port, registry)
    assert server is not None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            page = await http.get("/metrics")
            missing = await http.get("/")
    finally:
        server.close()
    assert page.status_code == 200
    assert "probe_hits_total 3.0" in page.text
    assert missing.status_code == 404


async def test_a_taken_metrics_port_is_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    first = await serve_metrics("127.0.0.1", port)
    assert first is not None
    try:
        with caplog.at_level(logging.ERROR, logger="mesh.metrics"):
            assert await serve_metrics("127.0.0.1", port) is None
    finally:
        first.close()
    assert f"cannot serve metrics on 127.0.0.1:{port}" in caplog.text


def test_each_service_has_its_own_default_metrics_port() -> None:
    ports = {name: metrics_port(name, {}) for name in ("engine", "market", "accounts", "edge")}
    assert ports == {"engine": 9181, "market": 9182, "accounts": 9183, "edge": 9184}
    assert metrics_port("edge", {"CFD_EDGE_METRICS_PORT": "7001"}) == 7001
    with pytest.raises(ConfigError, match="CFD_ENGINE_METRICS_PORT"):
        metrics_port("engine", {"CFD_ENGINE_METRICS_PORT": "0"})


def test_multiprocess_mode_sums_the_files_of_every_process() -> None:
    with multiprocess_registry() as registry:
        directory = Path(os.environ[MULTIPROC_DIR])
        hits = Counter("worker_hits", "Hits.", registry=None)
        hits.inc(2)
        assert "worker_hits_total 2.0" in generate_latest(registry).decode()
        assert any(directory.iterdir())
    assert MULTIPROC_DIR not in os.environ
    assert not directory.exists()
