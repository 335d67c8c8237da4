"""Durable OpenPosition at 32 clients on the file journal versus the replicated journal (a
3-node NATS JetStream cluster on loopback, R3), in one run; then the fail-over time: kill -9
of the primary until its hot standby serves.

Prints JSON lines. BENCH_ORDERS_SECONDS sets each run's length.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from nats_support import NatsCluster

from bench.engine_common import (
    EngineProcess,
    emit,
    engine_env,
    free_port,
    percentile,
    start_quote_source,
)
from bench.engine_orders import SECONDS, drive, open_accounts
from mesh.config import Settings

BENCH = "engine_replicated"
CLIENTS = 32


async def measure(label: str, address: str, tokens: list[str]) -> None:
    """Drive 32 clients for SECONDS and print throughput and latency."""
    await drive(address, tokens, 4, 1.0)  # warm up
    started = time.perf_counter()
    latencies = await drive(address, tokens, CLIENTS, SECONDS)
    elapsed = time.perf_counter() - started
    latencies.sort()
    emit(BENCH, f"{label}_c32_throughput", round(len(latencies) / elapsed, 1), "orders/s")
    emit(BENCH, f"{label}_c32_p50", round(percentile(latencies, 0.5) * 1000, 3), "ms")
    emit(BENCH, f"{label}_c32_p99", round(percentile(latencies, 0.99) * 1000, 3), "ms")


async def main() -> None:
    """Run the file and replicated journals in turn, then a fail-over."""
    server, market_addr = await start_quote_source({"BTCUSD": ("64250.00", "64251.00")})
    with tempfile.TemporaryDirectory(prefix="cfd-bench-") as tmp:
        root = Path(tmp)
        cluster = NatsCluster(root / "nats")
        await asyncio.to_thread(cluster.start)
        engines: list[EngineProcess] = []
        try:
            for label, extra in (
                ("file", {}),
                ("replicated", {"CFD_JOURNAL_URL": cluster.url, "CFD_LEASE_TTL_MS": "1000"}),
            ):
                port = free_port()
                env = engine_env(root / label, port, market_addr, CFD_FSYNC="on", **extra)
                settings = Settings.from_env(env)
                engine = EngineProcess(env, root / f"{label}.log")
                engines.append(engine)
                address = f"127.0.0.1:{port}"
                await engine.wait_serving(address)
                tokens = await open_accounts(address, settings, CLIENTS)
                await measure(label, address, tokens)
            primary = engines[-1]
            port = free_port()
            env = engine_env(
                root / "standby",
                port,
                market_addr,
                CFD_JOURNAL_URL=cluster.url,
                CFD_LEASE_TTL_MS="1000",
                CFD_ENGINE_STANDBY="on",
            )
            standby = EngineProcess(env, root / "standby.log")
            engines.append(standby)
            # Let the standby recover and start following before the primary dies.
            await asyncio.sleep(3.0)
            primary.process.send_signal(signal.SIGKILL)
            primary.process.wait()
            failover_s = await standby.wait_serving(f"127.0.0.1:{port}")
            emit(BENCH, "failover_kill9_to_serving", round(failover_s, 3), "s")
        finally:
            for engine in engines:
                engine.stop(signal.SIGKILL)
            cluster.stop()
            await server.stop(0)


if __name__ == "__main__":
    asyncio.run(main())
