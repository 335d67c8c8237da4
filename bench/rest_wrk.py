"""Benchmark: REST through `cfd edge` under wrk, beside a bare uvicorn/Starlette JSON echo.

In one run, round after round so that both see the same machine:
- `http_echo_baseline`: a bare Starlette app echoing a JSON body (parsed and re-encoded), served
  by uvicorn with as many workers as the edge, POSTed from 32 connections;
- `rest_open_position_32_connections`: `POST /v1/positions` through the edge and the real mesh
  (durable: the engine fsyncs each group commit before answering), 32 connections;
- `rest_get_instruments_16_connections`, `rest_get_account_16_connections`: the reads;
- `rest_get_ticker_16_connections`: `GET /v1/instruments/BTCUSD/ticker` while BTCUSD's price
  moves MOVES_PER_SECOND times a second, each move invalidating the edge workers' copies.
The load comes from wrk (an outside client, so Python is not the bottleneck of the measure);
its script counts every response that is not a 200, and any such response fails the bench.
Each figure is the median over the rounds; `*_ratio_to_echo` divides by the echo's throughput
of the same round. BENCH_WRK_SECONDS sets each wrk run's length, BENCH_ROUNDS the rounds.
The engine runs with BENCH_FRONTS front processes (default 0: none).
Without wrk (Debian package `wrk`) the benchmark says so and is skipped.
Prints JSON lines: {"bench", "metric", "value", "unit"}.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.edge_ws import mesh, publish
from bench.engine_common import emit, free_port
from cfd.v1 import market_admin_pb2_grpc

SECONDS = int(os.environ.get("BENCH_WRK_SECONDS", "3"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
WORKERS = int(os.environ.get("CFD_EDGE_WORKERS") or os.cpu_count() or 1)
# The engine's front processes (CFD_ENGINE_FRONTS): its gRPC protocol work on the other core.
FRONTS = int(os.environ.get("BENCH_FRONTS", "0"))
WRK_THREADS = 2
SCRIPT = Path(__file__).resolve().parent / "wrk_report.lua"
REPO = Path(__file__).resolve().parent.parent
ORDER = {"symbol": "BTCUSD", "side": "SIDE_BUY", "leverage": 100, "quantity": "0.0001"}
ECHO = "http_echo_baseline"
TICKER_PATH = "/v1/instruments/BTCUSD/ticker"
MOVES_PER_SECOND = 10


def echo_app() -> Starlette:
    """Return the bare baseline: one route that parses a JSON body and answers it back."""

    async def echo(request: Request) -> Response:
        return JSONResponse(json.loads(await request.body()))

    return Starlette(routes=[Route("/echo", echo, methods=["POST"])])


@contextmanager
def echo_server(port: int) -> Iterator[str]:
    """Serve `echo_app` with uvicorn and WORKERS workers; yield its URL."""
    command = [sys.executable, "-m", "uvicorn", "--factory", "bench.rest_wrk:echo_app"]
    command += ["--port", str(port), "--workers", str(WORKERS), "--log-level", "warning"]
    command += ["--no-access-log"]
    process = subprocess.Popen(command, cwd=REPO)
    url = f"http://127.0.0.1:{port}/echo"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.post(url, json={}, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the echo server did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def wrk(url: str, connections: int, method: str = "GET", body: str = "", tokens: str = "") -> Any:
    """Run wrk against `url` for SECONDS; return the summary its script printed."""
    env = dict(os.environ, WRK_METHOD=method, WRK_BODY=body, WRK_TOKENS=tokens)
    command = ["wrk", "-t", str(WRK_THREADS), "-c", str(connections), "-d", f"{SECONDS}s"]
    command += ["--timeout", "10s", "-s", str(SCRIPT), url]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    for line in done.stdout.splitlines():
        if line.startswith("WRK_RESULT "):
            return json.loads(line.removeprefix("WRK_RESULT "))
    raise SystemExit(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")


@contextmanager
def moving_price(market_address: str) -> Iterator[None]:
    """Move BTCUSD's price MOVES_PER_SECOND times a second until the block ends."""
    stop = threading.Event()

    def move() -> None:
        with grpc.insecure_channel(market_address) as channel:
            stub = market_admin_pb2_grpc.MarketDataAdminServiceStub(channel)
            step = 0
            while not stop.wait(1 / MOVES_PER_SECOND):
                step += 1
                publish(stub, 6_400_000 + step % 100)

    mover = threading.Thread(target=move, name="price mover")
    mover.start()
    try:
        yield
    finally:
        stop.set()
        mover.join()


def signup(edge: str, count: int) -> list[str]:
    """Sign up `count` users through the edge; return their access tokens."""
    tokens = []
    for number in range(count):
        reply = httpx.post(
            f"{edge}/v1/auth/signup",
            json={"email": f"wrk-{number}@example.com", "password": "bench password 1"},
            timeout=30,
        )
        reply.raise_for_status()
        tokens.append(reply.json()["accessToken"])
    return tokens


def wait_orderable(edge: str, token: str) -> None:
    """Poll one order until the engine has the published price."""
    deadline = time.monotonic() + 30
    headers = {"authorization": f"Bearer {token}"}
    while httpx.post(f"{edge}/v1/positions", json=ORDER, headers=headers).status_code != 200:
        if time.monotonic() > deadline:
            raise SystemExit("the engine never took an order")
        time.sleep(0.1)


def report(bench: str, runs: list[Any], echo_runs: list[Any]) -> int:
    """Print the medians of `runs` beside the echo of the same rounds; return the failures."""
    rates = [run["requests"] / run["duration_us"] * 1e6 for run in runs]
    emit(bench, "throughput", round(statistics.median(rates), 1), "req/s")
    emit(bench, "p50", round(statistics.median(r["p50_us"] for r in runs) / 1000, 3), "ms")
    emit(bench, "p99", round(statistics.median(r["p99_us"] for r in runs) / 1000, 3), "ms")
    if echo_runs is not runs:
        echo_rates = [run["requests"] / run["duration_us"] * 1e6 for run in echo_runs]
        ratios = [ours / echo for ours, echo in zip(rates, echo_rates, strict=True)]
        emit(bench, "throughput_ratio_to_echo", round(statistics.median(ratios), 3), "ratio")
    failed: int = sum(run["non200"] + run["socket_errors"] for run in runs)
    emit(bench, "non_200_responses", failed, "responses")
    return failed


def main() -> None:
    """Run the rounds and print the figures."""
    if shutil.which("wrk") is None:
        print(json.dumps({"bench": "rest_wrk", "skipped": "wrk is not installed (apt wrk)"}))
        return
    emit("rest_wrk", "edge_workers", WORKERS, "processes")
    emit("rest_wrk", "engine_fronts", FRONTS, "processes")
    targets: dict[str, list[Any]] = {
        ECHO: [],
        "rest_open_position_32_connections": [],
        "rest_get_instruments_16_connections": [],
        "rest_get_account_16_connections": [],
        "rest_get_ticker_16_connections": [],
    }
    order = json.dumps(ORDER)
    with (
        tempfile.TemporaryDirectory(prefix="cfd-wrk-bench-") as tmp,
        mesh(
            Path(tmp),
            CFD_DEMO_BALANCE="1000000000",
            CFD_EDGE_WORKERS=str(WORKERS),
            CFD_ENGINE_FRONTS=str(FRONTS),
        ) as env,
        echo_server(free_port()) as echo_url,
    ):
        edge = f"http://127.0.0.1:{env['CFD_EDGE_PORT']}"
        market = f"127.0.0.1:{env['CFD_MARKET_PORT']}"
        with grpc.insecure_channel(market) as channel:
            publish(market_admin_pb2_grpc.MarketDataAdminServiceStub(channel), 6_400_000)
        tokens = signup(edge, WRK_THREADS)
        wait_orderable(edge, tokens[0])
        both = ",".join(tokens)
        for _ in range(ROUNDS):
            targets[ECHO].append(wrk(echo_url, 32, "POST", order))
            targets["rest_open_position_32_connections"].append(
                wrk(f"{edge}/v1/positions", 32, "POST", order, both)
            )
            targets["rest_get_instruments_16_connections"].append(wrk(f"{edge}/v1/instruments", 16))
            targets["rest_get_account_16_connections"].append(
                wrk(f"{edge}/v1/account", 16, tokens=both)
            )
            with moving_price(market):
                targets["rest_get_ticker_16_connections"].append(wrk(f"{edge}{TICKER_PATH}", 16))
    failed = sum(report(bench, runs, targets[ECHO]) for bench, runs in targets.items())
    if failed:
        raise SystemExit(f"{failed} responses were not 200")


if __name__ == "__main__":
    main()
