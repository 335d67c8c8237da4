"""Durable OpenPosition at 32 clients on one CFD engine shard versus two, in one run.

Each shard is its own `cfd engine` process (a single writer with its own fsync'd journal);
the 32 clients are spread over the shards as the accounts service spreads users, each client
calling its own account's shard. Both runs share this 2-core machine, so two shards compete
for the same cores as the client processes: the figure says how much of a second engine one
machine can use, not what a second machine adds (see bench/PROFILE.md for the projection).

Prints JSON lines. BENCH_ORDERS_SECONDS sets each run's length.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from account_svc.issuer import load_issuer
from bench.engine_common import (
    INTERNAL_TOKEN,
    EngineProcess,
    emit,
    engine_env,
    free_port,
    percentile,
    start_quote_source,
)
from bench.engine_orders import SECONDS, drive_process, wait_price
from cfd.v1 import engine_admin_pb2, engine_admin_pb2_grpc
from mesh.config import Settings

BENCH = "engine_shards"
INTERNAL = (("x-cfd-internal-token", INTERNAL_TOKEN),)
CLIENTS = 32


async def open_accounts(addresses: list[str], settings: Settings) -> list[list[str]]:
    """Open CLIENTS accounts spread over the shards; return each shard's tokens."""
    issuer = load_issuer(settings)
    tokens: list[list[str]] = [[] for _ in addresses]
    for number in range(CLIENTS):
        shard = number % len(addresses)
        user = f"bench-{number}"
        async with grpc.aio.insecure_channel(addresses[shard]) as channel:
            await engine_admin_pb2_grpc.EngineAdminServiceStub(channel).CreateAccount(
                engine_admin_pb2.CreateAccountRequest(user_id=user, initial_balance="100000000"),
                metadata=INTERNAL,
            )
        tokens[shard].append(issuer.issue(user, shard=shard)[0])
    for address, own in zip(addresses, tokens, strict=True):
        async with grpc.aio.insecure_channel(address) as channel:
            await wait_price(channel, own[0])
    return tokens


async def measure(
    shards: int, addresses: list[str], tokens: list[list[str]], engines: list[EngineProcess]
) -> float:
    """Drive every shard's clients at once from one client process per shard."""
    loop = asyncio.get_running_loop()
    # Spawned, not forked: this process already runs gRPC.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(len(addresses), mp_context=context) as pool:
        # Warm up every shard's connections and code paths.
        await asyncio.gather(
            *(
                loop.run_in_executor(pool, drive_process, a, t, min(4, len(t)), 1.0)
                for a, t in zip(addresses, tokens, strict=True)
            )
        )
        cpu = [engine.cpu_seconds() for engine in engines]
        started = time.perf_counter()
        results = await asyncio.gather(
            *(
                loop.run_in_executor(pool, drive_process, a, t, len(t), SECONDS)
                for a, t in zip(addresses, tokens, strict=True)
            )
        )
        elapsed = time.perf_counter() - started
        cpu = [engine.cpu_seconds() - before for engine, before in zip(engines, cpu, strict=True)]
    latencies = sorted(x for result in results for x in result[0])
    rate = len(latencies) / elapsed
    emit(BENCH, f"shards{shards}_c32_throughput", round(rate, 1), "orders/s")
    emit(BENCH, f"shards{shards}_c32_p50", round(percentile(latencies, 0.5) * 1000, 3), "ms")
    emit(BENCH, f"shards{shards}_c32_p99", round(percentile(latencies, 0.99) * 1000, 3), "ms")
    # What one order costs its engine, and how busy the busiest engine was (1.0: a full core).
    per_order = sum(cpu) / len(latencies) * 1e6 if latencies else 0.0
    emit(BENCH, f"shards{shards}_engine_cpu_per_order", round(per_order, 1), "us")
    emit(BENCH, f"shards{shards}_busiest_engine_cores", round(max(cpu) / elapsed, 2), "cores")
    return rate


async def run(shards: int, root: Path, market_addr: str) -> float:
    """Start `shards` engines, drive them, stop them; return orders per second."""
    ports = [free_port() for _ in range(shards)]
    addresses = [f"127.0.0.1:{port}" for port in ports]
    shared = {
        "CFD_ENGINE_SHARDS": str(shards),
        "CFD_ENGINE_ADDR": addresses[0],
        **{f"CFD_ENGINE_ADDR_{n}": addresses[n] for n in range(1, shards)},
        "CFD_FSYNC": "on",
    }
    engines = []
    try:
        for shard, port in enumerate(ports):
            env = engine_env(root, port, market_addr, CFD_ENGINE_SHARD=str(shard), **shared)
            engines.append(EngineProcess(env, root / f"engine-{shard}.log"))
        for engine, address in zip(engines, addresses, strict=True):
            await engine.wait_serving(address)
        settings = Settings.from_env(engine_env(root, ports[0], market_addr, **shared))
        tokens = await open_accounts(addresses, settings)
        return await measure(shards, addresses, tokens, engines)
    finally:
        for engine in engines:
            engine.stop(signal.SIGTERM)


async def main() -> None:
    """One shard, then two, each on fresh files."""
    server, market_addr = await start_quote_source({"BTCUSD": ("64250.00", "64251.00")})
    try:
        with tempfile.TemporaryDirectory(prefix="cfd-bench-") as tmp:
            for name in ("one", "two"):
                (Path(tmp) / name).mkdir()
            one = await run(1, Path(tmp) / "one", market_addr)
            two = await run(2, Path(tmp) / "two", market_addr)
        emit(BENCH, "shards2_over_shards1", round(two / one, 2), "ratio")
    finally:
        await server.stop(0)


if __name__ == "__main__":
    asyncio.run(main())
