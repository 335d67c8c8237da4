"""Durable OpenPosition over gRPC (fsync on): throughput and latency at concurrency 1 and 32.

Starts a real `cfd engine` child on a fresh data dir with a minimal quote source, then drives
it from this process. Prints JSON lines. BENCH_ORDERS_SECONDS sets each run's length.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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
from cfd.v1 import (
    common_pb2,
    engine_admin_pb2,
    engine_admin_pb2_grpc,
    trading_pb2,
    trading_pb2_grpc,
)
from mesh.config import Settings

BENCH = "engine_open_position"
SECONDS = float(os.environ.get("BENCH_ORDERS_SECONDS", "5"))
INTERNAL = (("x-cfd-internal-token", INTERNAL_TOKEN),)


async def drive(address: str, tokens: list[str], concurrency: int, seconds: float) -> list[float]:
    """Open positions from `concurrency` clients for `seconds`; return latencies in seconds."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    channels = [grpc.aio.insecure_channel(address) for _ in range(min(concurrency, 4))]

    async def client(number: int) -> None:
        stub = trading_pb2_grpc.TradingServiceStub(channels[number % len(channels)])
        metadata = (("authorization", f"Bearer {tokens[number]}"),)
        request = trading_pb2.OpenPositionRequest(
            symbol="BTCUSD", side=common_pb2.SIDE_BUY, leverage=100, quantity="0.0001"
        )
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await stub.OpenPosition(request, metadata=metadata)
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(client(n) for n in range(concurrency)))
    for channel in channels:
        await channel.close()
    return latencies


async def wait_price(channel: grpc.aio.Channel, token: str, limit_s: float = 30.0) -> None:
    """Poll ListPrices until the engine has a BTCUSD quote."""
    stub = trading_pb2_grpc.TradingServiceStub(channel)
    deadline = time.perf_counter() + limit_s
    metadata = (("authorization", f"Bearer {token}"),)
    while time.perf_counter() < deadline:
        reply = await stub.ListPrices(trading_pb2.ListPricesRequest(), metadata=metadata)
        if any(quote.symbol == "BTCUSD" for quote in reply.prices):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("the engine has no price")


class EmptyStats(engine_admin_pb2_grpc.EngineAdminServiceServicer):
    """The cheapest possible unary handler: the ceiling of grpc.aio on this machine."""

    async def CreateAccount(
        self, request: engine_admin_pb2.CreateAccountRequest, context: Any
    ) -> engine_admin_pb2.CreateAccountResponse:
        return engine_admin_pb2.CreateAccountResponse()

    async def Deposit(
        self, request: engine_admin_pb2.DepositRequest, context: Any
    ) -> engine_admin_pb2.DepositResponse:
        return engine_admin_pb2.DepositResponse()

    async def GetStats(
        self, request: engine_admin_pb2.GetStatsRequest, context: Any
    ) -> engine_admin_pb2.GetStatsResponse:
        return engine_admin_pb2.GetStatsResponse()


def serve_baseline(port: int) -> None:
    """Serve EmptyStats until killed (run in a child process)."""

    async def run() -> None:
        server = grpc.aio.server()
        engine_admin_pb2_grpc.add_EngineAdminServiceServicer_to_server(EmptyStats(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    asyncio.run(run())


async def baseline(concurrency: int, seconds: float) -> float:
    """Return calls/s of an empty unary RPC on a bare grpc.aio server in another process."""
    port = free_port()
    child = multiprocessing.get_context("spawn").Process(target=serve_baseline, args=(port,))
    child.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await channel.channel_ready()
            stub = engine_admin_pb2_grpc.EngineAdminServiceStub(channel)
            calls = 0
            deadline = time.perf_counter() + seconds

            async def client() -> None:
                nonlocal calls
                while time.perf_counter() < deadline:
                    await stub.GetStats(engine_admin_pb2.GetStatsRequest())
                    calls += 1

            await asyncio.gather(*(client() for _ in range(concurrency)))
            return calls / seconds
    finally:
        child.kill()
        child.join()


async def main() -> None:
    """Run the benchmark and print its figures."""
    server, market_addr = await start_quote_source({"BTCUSD": ("64250.00", "64251.00")})
    with tempfile.TemporaryDirectory(prefix="cfd-bench-") as tmp:
        data_dir = Path(tmp)
        port = free_port()
        env = engine_env(data_dir, port, market_addr, CFD_FSYNC="on")
        settings = Settings.from_env(env)
        issuer = load_issuer(settings)
        engine = EngineProcess(env, data_dir / "engine.log")
        address = f"127.0.0.1:{port}"
        try:
            await engine.wait_serving(address)
            async with grpc.aio.insecure_channel(address) as channel:
                admin = engine_admin_pb2_grpc.EngineAdminServiceStub(channel)
                tokens = []
                for number in range(32):
                    user = f"bench-{number}"
                    await admin.CreateAccount(
                        engine_admin_pb2.CreateAccountRequest(
                            user_id=user, initial_balance="100000000"
                        ),
                        metadata=INTERNAL,
                    )
                    tokens.append(issuer.issue(user)[0])
                await wait_price(channel, tokens[0])
            await drive(address, tokens, 4, 1.0)  # warm up
            for concurrency in (1, 32):
                engine_cpu = engine.cpu_seconds()
                own_cpu = time.process_time()
                started = time.perf_counter()
                latencies = await drive(address, tokens, concurrency, SECONDS)
                elapsed = time.perf_counter() - started
                engine_cpu = engine.cpu_seconds() - engine_cpu
                own_cpu = time.process_time() - own_cpu
                latencies.sort()
                label = f"c{concurrency}"
                emit(BENCH, f"{label}_throughput", round(len(latencies) / elapsed, 1), "orders/s")
                emit(BENCH, f"{label}_p50", round(percentile(latencies, 0.5) * 1000, 3), "ms")
                emit(BENCH, f"{label}_p99", round(percentile(latencies, 0.99) * 1000, 3), "ms")
                per_order = engine_cpu / max(1, len(latencies)) * 1e6
                emit(BENCH, f"{label}_engine_cpu_per_order", round(per_order, 1), "us")
                emit(BENCH, f"{label}_engine_cpu_share", round(engine_cpu / elapsed, 3), "cores")
                emit(BENCH, f"{label}_client_cpu_share", round(own_cpu / elapsed, 3), "cores")
        finally:
            engine.stop()
            await server.stop(0)
    for concurrency in (1, 32):
        rate = await baseline(concurrency, SECONDS)
        emit(
            "grpc_aio_baseline", f"c{concurrency}_empty_unary_throughput", round(rate, 1), "calls/s"
        )


if __name__ == "__main__":
    asyncio.run(main())
