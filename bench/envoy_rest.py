"""Benchmark: OpenPosition over REST at 32 connections, through Envoy and through the edge.

Starts the real mesh with Envoy (`cfd up --envoy`, manual feed, rate limits lifted), signs up
one user per connection and front, publishes a quote, then drives `POST /v1/positions` from
32 keep-alive connections against each front in the same run. The fronts take turns in short
rounds, after a warm-up round each, so that neither gains from running while the machine is
quieter or the accounts are emptier. Client, fronts and services share this machine.
For reference it also measures the same call over gRPC straight to the engine (`grpc_*`),
which is what both fronts add their cost to.
Prints JSON lines: {"bench", "metric", "value", "unit"} (throughput, p50 and p99 latency).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from cfd.v1 import (
    account_pb2,
    account_pb2_grpc,
    common_pb2,
    market_admin_pb2,
    market_admin_pb2_grpc,
    trading_pb2,
    trading_pb2_grpc,
)

BENCH = "rest_open_position_32_connections"
CONNECTIONS = 32
ROUND_S = 2.0
ROUNDS = 4
START_TIMEOUT_S = 120.0
INTERNAL_TOKEN = "bench-internal-token-0123456789"
QUOTE = ("BTCUSD", "64000.00", "64010.00")
ORDER = {"symbol": "BTCUSD", "side": "SIDE_BUY", "leverage": 100, "quantity": "0.0001"}
REPO = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    """Latencies of the successful calls of one measured period, and its failures."""

    elapsed_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def percentile_ms(self, fraction: float) -> float:
        """Return the nearest-rank percentile of the latencies in milliseconds."""
        ordered = sorted(self.latencies_s)
        return round(ordered[round(fraction * (len(ordered) - 1))] * 1000, 3)


def emit(metric: str, value: float, unit: str) -> None:
    """Print one result as a JSON line."""
    print(json.dumps({"bench": BENCH, "metric": metric, "value": value, "unit": unit}))
    sys.stdout.flush()


def free_port() -> int:
    """Return a TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def mesh(data_dir: Path) -> Iterator[dict[str, str]]:
    """Run `cfd up --envoy` until the block ends; yield its environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CFD_")}
    for name in ("ENGINE", "MARKET", "ACCOUNT", "EDGE", "ENVOY", "ENVOY_ADMIN"):
        env[f"CFD_{name}_PORT"] = str(free_port())
    env.update(
        CFD_DATA_DIR=str(data_dir),
        CFD_FEED="manual",
        CFD_INTERNAL_TOKEN=INTERNAL_TOKEN,
        CFD_LOG_LEVEL="WARNING",
        CFD_BACKFILL_DAYS="0",
        # The benchmark is one address and 32 users far above the default abuse limits.
        CFD_RATE_LIMIT_IP="1000000",
        CFD_RATE_LIMIT_USER="1000000",
        CFD_LIMIT_SIGNUP_PER_ADDRESS="1000/3600",
    )
    log_path = data_dir / "up.log"
    with log_path.open("wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "launcher.cli", "up", "--envoy"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while b"CFD Mesh is up" not in log_path.read_bytes():
                if up.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"cfd up --envoy did not start:\n{log_path.read_text()}")
                time.sleep(0.2)
            yield env
        finally:
            up.send_signal(signal.SIGTERM)
            try:
                up.wait(timeout=30)
            except subprocess.TimeoutExpired:
                up.kill()
                up.wait()


def prepare(env: dict[str, str], fronts: list[str]) -> dict[str, list[str]]:
    """Publish the quote and return, per front, an access token for each connection."""
    internal = (("x-cfd-internal-token", INTERNAL_TOKEN),)
    with grpc.insecure_channel(f"127.0.0.1:{env['CFD_MARKET_PORT']}") as channel:
        market_admin_pb2_grpc.MarketDataAdminServiceStub(channel).PublishTicks(
            market_admin_pb2.PublishTicksRequest(
                ticks=[market_admin_pb2.TickInput(symbol=QUOTE[0], bid=QUOTE[1], ask=QUOTE[2])]
            ),
            metadata=internal,
            timeout=10,
        )
    tokens: dict[str, list[str]] = {front: [] for front in fronts}
    with grpc.insecure_channel(f"127.0.0.1:{env['CFD_ACCOUNT_PORT']}") as channel:
        accounts = account_pb2_grpc.AccountServiceStub(channel)
        for front, index in ((f, i) for f in fronts for i in range(CONNECTIONS)):
            reply = accounts.Signup(
                account_pb2.SignupRequest(
                    email=f"bench-{front}-{index}@example.com", password="benchmark-password"
                ),
                timeout=30,
            )
            tokens[front].append(reply.access_token)
    return tokens


class HttpConnection:
    """One keep-alive HTTP/1.1 connection, as lean as a load generator needs.

    httpx is the one HTTP client of the project, but at 32 concurrent connections its own
    overhead caps it below what the fronts serve on this machine; measured through it, both
    fronts would look alike.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> HttpConnection:
        """Connect to `host:port`."""
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """Send one POST and return the status code and the body of the response."""
        lines = [f"POST {path} HTTP/1.1", "host: bench", f"content-length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await self._writer.drain()
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        fields = dict(
            (name.strip().lower(), value.strip())
            for name, _, value in (line.partition(":") for line in header_lines if line)
        )
        if "content-length" in fields:
            return int(status_line.split()[1]), await self._reader.readexactly(
                int(fields["content-length"])
            )
        if fields.get("transfer-encoding", "").lower() != "chunked":
            raise RuntimeError(f"response without a length: {status_line}")
        chunks = []
        while size := int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16):
            chunks.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)
        await self._reader.readuntil(b"\r\n")
        return int(status_line.split()[1]), b"".join(chunks)

    async def close(self) -> None:
        """Close the connection."""
        self._writer.close()
        await self._writer.wait_closed()


async def drive(port: int, tokens: list[str], duration_s: float, run: Run) -> None:
    """Open positions from one connection per token for `duration_s`, adding to `run`."""
    body = json.dumps(ORDER).encode()
    started = time.perf_counter()
    deadline = started + duration_s

    async def connection(token: str) -> None:
        headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        http = await HttpConnection.open("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                status, reply = await http.post("/v1/positions", body, headers)
                if status == 200:
                    run.latencies_s.append(time.perf_counter() - sent)
                else:
                    run.failures.append(f"{status} {reply[:200]!r}")
        finally:
            await http.close()

    await asyncio.gather(*(connection(token) for token in tokens))
    run.elapsed_s += time.perf_counter() - started


async def drive_grpc(address: str, tokens: list[str], duration_s: float, run: Run) -> None:
    """Open positions over gRPC, one channel per token, for `duration_s`, adding to `run`."""
    request = trading_pb2.OpenPositionRequest(
        symbol=QUOTE[0], side=common_pb2.SIDE_BUY, leverage=100, quantity="0.0001"
    )
    started = time.perf_counter()
    deadline = started + duration_s

    async def connection(token: str) -> None:
        metadata = (("authorization", f"Bearer {token}"),)
        async with grpc.aio.insecure_channel(address) as channel:
            stub = trading_pb2_grpc.TradingServiceStub(channel)
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                try:
                    await stub.OpenPosition(request, metadata=metadata, timeout=30)
                except grpc.aio.AioRpcError as exc:
                    run.failures.append(f"{exc.code().name} {exc.details()}")
                else:
                    run.latencies_s.append(time.perf_counter() - sent)

    await asyncio.gather(*(connection(token) for token in tokens))
    run.elapsed_s += time.perf_counter() - started


def main() -> None:
    """Run the benchmark and print its figures."""
    with tempfile.TemporaryDirectory(prefix="cfd-bench-envoy-") as tmp, mesh(Path(tmp)) as env:
        fronts = {"edge": int(env["CFD_EDGE_PORT"]), "envoy": int(env["CFD_ENVOY_PORT"])}
        engine = f"127.0.0.1:{env['CFD_ENGINE_PORT']}"
        tokens = prepare(env, [*fronts, "grpc"])
        runs = {name: Run() for name in (*fronts, "grpc")}
        for name, port in fronts.items():
            asyncio.run(drive(port, tokens[name], ROUND_S, Run()))
        asyncio.run(drive_grpc(engine, tokens["grpc"], ROUND_S, Run()))
        for _ in range(ROUNDS):
            for name, port in fronts.items():
                asyncio.run(drive(port, tokens[name], ROUND_S, runs[name]))
            asyncio.run(drive_grpc(engine, tokens["grpc"], ROUND_S, runs["grpc"]))
    for name, run in runs.items():
        if run.failures or not run.latencies_s:
            raise SystemExit(f"{name}: {len(run.failures)} failed calls, e.g. {run.failures[:3]}")
        emit(f"{name}_throughput", round(len(run.latencies_s) / run.elapsed_s, 1), "req/s")
        emit(f"{name}_p50", run.percentile_ms(0.50), "ms")
        emit(f"{name}_p99", run.percentile_ms(0.99), "ms")


if __name__ == "__main__":
    main()
