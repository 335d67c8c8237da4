"""Benchmark: WebSocket price fan-out through `cfd edge` with the real mesh.

Starts market (manual feed), engine, accounts and the edge as processes on loopback with rate
limits lifted. Then:
- `ws_prices_<n>_clients`: n WebSocket clients subscribe to BTCUSD; quotes are published
  through PublishTicks at a steady rate; each client records, per quote, the time from the
  publish call to its arrival (tick -> frame: market, engine, edge and client in turn). All
  clients share one upstream stream in each edge worker. `delivered_fraction` is the share of
  (quote, client) pairs that arrived: below 1 when a client fell behind and the edge conflated
  its pending quote into a newer one (a client always gets the latest; the edge counts those in
  `edge_conflated_frames`), or when a quote never reached the edge: the engine applies only the
  latest quote of a symbol in each commit batch.
BENCH_WS_CLIENTS sets the client counts, comma-separated (default 1,10,100; `1000` works too:
the open-files limit is raised to fit).
Client, edge and services share this machine (2 cores), so the figures are an upper bound of
the edge's own cost. Prints JSON lines: {"bench", "metric", "value", "unit"}.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
from websockets.asyncio.client import ClientConnection, connect

from cfd.v1 import market_admin_pb2, market_admin_pb2_grpc

REPO = Path(__file__).resolve().parent.parent
INTERNAL_TOKEN = "bench-internal-token-0123456789"
CLIENT_COUNTS = tuple(int(n) for n in os.environ.get("BENCH_WS_CLIENTS", "1,10,100").split(","))
QUOTES = 200
QUOTE_INTERVAL_S = 0.01


def emit(bench: str, metric: str, value: float, unit: str) -> None:
    """Print one result as a JSON line."""
    print(json.dumps({"bench": bench, "metric": metric, "value": value, "unit": unit}), flush=True)


def free_port() -> int:
    """Return a TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def percentile_ms(values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of durations in seconds, in milliseconds."""
    ordered = sorted(values)
    return round(ordered[round(fraction * (len(ordered) - 1))] * 1000, 3)


@contextlib.contextmanager
def mesh(data_dir: Path, **extra: str) -> Iterator[dict[str, str]]:
    """Run the four processes, with `extra` settings; yield their environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CFD_")}
    env.update(
        CFD_DATA_DIR=str(data_dir),
        CFD_FEED="manual",
        CFD_INTERNAL_TOKEN=INTERNAL_TOKEN,
        CFD_ENGINE_PORT=str(free_port()),
        CFD_MARKET_PORT=str(free_port()),
        CFD_ACCOUNT_PORT=str(free_port()),
        CFD_EDGE_PORT=str(free_port()),
        # Metrics on ports of their own: another mesh on this machine may hold the defaults.
        CFD_ENGINE_METRICS_PORT=str(free_port()),
        CFD_MARKET_METRICS_PORT=str(free_port()),
        CFD_ACCOUNT_METRICS_PORT=str(free_port()),
        CFD_EDGE_METRICS_PORT=str(free_port()),
        CFD_LOG_LEVEL="WARNING",
        CFD_RATE_LIMIT_IP="1000000",
        CFD_RATE_LIMIT_USER="1000000",
        CFD_WS_RATE_LIMIT="1000000",
        CFD_LIMIT_SIGNUP_PER_ADDRESS="100000/60",
        CFD_ARGON2_TIME_COST="1",
        CFD_ARGON2_MEMORY_KIB="1024",
        CFD_MAX_JUMP_BPS="100000",
    )
    env.update(extra)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name in ("market", "engine", "accounts", "edge"):
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "launcher.cli", name],
                    env=env,
                    cwd=REPO,
                    stdout=subprocess.DEVNULL,
                    stderr=(data_dir / f"{name}.log").open("wb"),
                )
            )
        url = f"http://127.0.0.1:{env['CFD_EDGE_PORT']}"
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                # The data dir goes with the benchmark: show the end of every log now.
                logs = "\n".join(
                    f"--- {path.name}\n{path.read_text(errors='replace')[-2000:]}"
                    for path in sorted(data_dir.glob("*.log"))
                )
                raise SystemExit(f"the mesh did not start:\n{logs}")
            time.sleep(0.2)
        yield env
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)


def price_text(cents: int) -> str:
    """Return a price in cents as the decimal string the services print."""
    return f"{cents // 100}.{cents % 100:02d}"


def publish(stub: market_admin_pb2_grpc.MarketDataAdminServiceStub, bid: int) -> None:
    """Publish one BTCUSD quote whose bid (in cents) identifies it."""
    ticks = [
        market_admin_pb2.TickInput(symbol="BTCUSD", bid=price_text(bid), ask=price_text(bid + 1000))
    ]
    stub.PublishTicks(
        market_admin_pb2.PublishTicksRequest(ticks=ticks),
        metadata=(("x-cfd-internal-token", INTERNAL_TOKEN),),
    )


async def receive(
    ws: ClientConnection, sent: dict[str, float], got: list[float], last: str
) -> None:
    """Record the delay of every quote this client sees until it sees `last`."""
    while True:
        frame = json.loads(await ws.recv())
        if frame.get("channel") != "prices":
            continue
        bid = frame["data"]["bid"]
        if bid in sent:
            got.append(time.monotonic() - sent[bid])
        if bid == last:
            return


async def edge_figure(env: dict[str, str], name: str) -> float:
    """Return the sum of the samples of `name` on the edge's `/metrics` (all its workers)."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{env['CFD_EDGE_METRICS_PORT']}/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((name + " ", name + "{"))
    )


async def conflated_since(env: dict[str, str], before: float) -> int:
    """Return the frames the edge conflated since `before`, once every connection has closed
    (a connection adds its count when it ends)."""
    for _ in range(300):  # 30 s at most
        if not await edge_figure(env, "cfd_edge_ws_connections"):
            break
        await asyncio.sleep(0.1)
    return round(await edge_figure(env, "cfd_edge_ws_frames_conflated_total") - before)


async def subscribed(url: str) -> ClientConnection:
    """Return a WebSocket connection subscribed to BTCUSD's prices."""
    ws = await connect(url, compression=None, proxy=None, max_queue=None)
    await ws.send(json.dumps({"op": "subscribe", "channel": "prices", "symbols": ["BTCUSD"]}))
    while json.loads(await ws.recv()).get("type") != "ack":
        pass
    return ws


async def warm_up(env: dict[str, str]) -> None:
    """Publish quotes until one reaches a WebSocket client: the engine follows the market and
    the edge the engine, so the first measured quote does not wait for either to connect."""
    ws = await subscribed(f"ws://127.0.0.1:{env['CFD_EDGE_PORT']}/v1/ws")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{env['CFD_MARKET_PORT']}") as channel:
            stub = market_admin_pb2_grpc.MarketDataAdminServiceStub(channel)
            deadline = time.monotonic() + 60
            bid = 5_000_000
            while time.monotonic() < deadline:
                bid += 1
                await asyncio.to_thread(publish, stub, bid)
                with contextlib.suppress(TimeoutError):
                    while True:
                        frame = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                        if frame.get("data", {}).get("bid") == price_text(bid):
                            return
        raise SystemExit("no quote reached a WebSocket client within 60 s")
    finally:
        await ws.close()


async def ws_fanout(env: dict[str, str], clients: int) -> None:
    """Measure the delivery delay of published quotes to `clients` WebSocket subscribers."""
    bench = f"ws_prices_{clients}_clients"
    url = f"ws://127.0.0.1:{env['CFD_EDGE_PORT']}/v1/ws"
    sockets: list[ClientConnection] = []
    conflated = await edge_figure(env, "cfd_edge_ws_frames_conflated_total")
    try:
        for _ in range(clients):
            sockets.append(await subscribed(url))
        base = 6_000_000 + clients * 10_000
        sent: dict[str, float] = {}
        delays: list[list[float]] = [[] for _ in sockets]
        last = price_text(base + QUOTES - 1)
        receivers = [
            asyncio.create_task(receive(ws, sent, d, last))
            for ws, d in zip(sockets, delays, strict=True)
        ]
        with grpc.insecure_channel(f"127.0.0.1:{env['CFD_MARKET_PORT']}") as channel:
            stub = market_admin_pb2_grpc.MarketDataAdminServiceStub(channel)
            started = time.monotonic()
            for n in range(QUOTES):
                bid = base + n
                sent[price_text(bid)] = time.monotonic()
                await asyncio.to_thread(publish, stub, bid)
                await asyncio.sleep(QUOTE_INTERVAL_S)
            await asyncio.wait_for(asyncio.gather(*receivers), 60 + clients / 10)
            elapsed = time.monotonic() - started
        for ws in sockets:
            await ws.close()
        everything = [d for per_client in delays for d in per_client]
        emit(bench, "quotes_published", QUOTES, "quotes")
        emit(bench, "frames_delivered", len(everything), "frames")
        emit(bench, "delivered_fraction", round(len(everything) / (QUOTES * clients), 4), "ratio")
        emit(bench, "frames_per_second", round(len(everything) / elapsed, 1), "frames/s")
        emit(bench, "delay_p50", percentile_ms(everything, 0.5), "ms")
        emit(bench, "delay_p99", percentile_ms(everything, 0.99), "ms")
        emit(bench, "edge_conflated_frames", await conflated_since(env, conflated), "frames")
    finally:
        for ws in sockets:
            await ws.close()


async def run(env: dict[str, str]) -> None:
    await warm_up(env)
    for clients in CLIENT_COUNTS:
        await ws_fanout(env, clients)


def raise_open_files(wanted: int) -> None:
    """Raise this process's open-files limit (inherited by the mesh) to `wanted` if it can."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < ceiling:
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))


def main() -> None:
    # Each client holds a socket here and one in an edge worker.
    raise_open_files(2 * max(CLIENT_COUNTS) + 1024)
    with tempfile.TemporaryDirectory(prefix="cfd-edge-bench-") as tmp, mesh(Path(tmp)) as env:
        asyncio.run(run(env))


if __name__ == "__main__":
    main()
