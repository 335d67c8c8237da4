"""Shared pieces of the engine benchmarks: a quote source, a `cfd engine` child, JSON lines."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc

from cfd.v1 import common_pb2, market_admin_pb2, market_admin_pb2_grpc

REPO = Path(__file__).resolve().parent.parent
INTERNAL_TOKEN = "bench-internal-token-0123456789"


def emit(bench: str, metric: str, value: float, unit: str) -> None:
    """Print one result as a JSON line."""
    print(json.dumps({"bench": bench, "metric": metric, "value": value, "unit": unit}))
    sys.stdout.flush()


def free_port() -> int:
    """Return a free loopback port."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class QuoteSource(market_admin_pb2_grpc.MarketDataAdminServiceServicer):
    """A minimal market: streams fixed quotes and re-sends them as keepalives."""

    def __init__(self, quotes: dict[str, tuple[str, str]]) -> None:
        self.quotes = quotes

    async def StreamTicks(
        self,
        request: market_admin_pb2.StreamTicksRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[market_admin_pb2.StreamTicksResponse]:
        sequence = 0
        while True:
            for symbol, (bid, ask) in self.quotes.items():
                sequence += 1
                yield market_admin_pb2.StreamTicksResponse(
                    quote=common_pb2.Quote(symbol=symbol, bid=bid, ask=ask, sequence=sequence)
                )
            await asyncio.sleep(0.5)

    async def PublishTicks(
        self,
        request: market_admin_pb2.PublishTicksRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> market_admin_pb2.PublishTicksResponse:
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "fixed quotes only")
        raise AssertionError("abort returned")


async def start_quote_source(quotes: dict[str, tuple[str, str]]) -> tuple[grpc.aio.Server, str]:
    """Serve a QuoteSource on a free port; return the server and its address."""
    server = grpc.aio.server()
    market_admin_pb2_grpc.add_MarketDataAdminServiceServicer_to_server(QuoteSource(quotes), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


def engine_env(data_dir: Path, port: int, market_addr: str, **extra: str) -> dict[str, str]:
    """Return the environment of a benchmark engine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CFD_")}
    env.update(
        CFD_DATA_DIR=str(data_dir),
        CFD_ENGINE_PORT=str(port),
        CFD_MARKET_ADDR=market_addr,
        CFD_INTERNAL_TOKEN=INTERNAL_TOKEN,
        CFD_LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


class EngineProcess:
    """A `cfd engine` child process."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self._log = log_path.open("ab")
        profile = os.environ.get("BENCH_PROFILE")
        prefix = ["-m", "cProfile", "-o", profile] if profile else []
        self.process = subprocess.Popen(
            [sys.executable, *prefix, "-m", "launcher.cli", "engine"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        self.log_path = log_path

    async def wait_serving(self, address: str, limit_s: float = 120.0) -> float:
        """Wait until the engine reports SERVING; return the seconds it took."""
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        started = time.perf_counter()
        deadline = started + limit_s
        async with grpc.aio.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"engine exited:\n{self.log_path.read_text()[-4000:]}")
                try:
                    reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=0.5)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return time.perf_counter() - started
                except grpc.aio.AioRpcError:
                    pass
                if time.perf_counter() > deadline:
                    raise RuntimeError("engine did not start in time")
                await asyncio.sleep(0.01)

    def cpu_seconds(self) -> float:
        """Return the CPU time the engine process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def children_cpu_seconds(self) -> float:
        """Return the CPU time the engine's running child processes (its fronts) have used."""
        total = 0.0
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                try:
                    stat = Path(f"/proc/{child}/stat").read_text()
                except FileNotFoundError:
                    continue
                fields = stat.rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def runs_compiled_core(self) -> bool:
        """Return whether the engine has loaded the mypyc-compiled core (its shared library)."""
        return "__mypyc" in Path(f"/proc/{self.process.pid}/maps").read_text()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Signal the engine and wait for it."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.process.wait(timeout=120)
        self._log.close()


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of sorted values."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values)) - 1))
    return sorted_values[rank]

