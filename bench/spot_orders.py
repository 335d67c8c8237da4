"""Durable PlaceSpotOrder over gRPC (fsync on): throughput and latency at 32 clients.

Starts a real `cfd engine` child on a fresh data dir, funds 32 accounts' spot wallets (USD by
TransferFunds, BTC by the admin DepositAsset), then each client places limit orders at one
price, buying and selling in turn, so about half of them trade against the book and the book
stays shallow. Prints JSON lines. BENCH_ORDERS_SECONDS sets the run's length.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
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
from cfd.v1 import (
    common_pb2,
    engine_admin_pb2,
    engine_admin_pb2_grpc,
    exchange_pb2,
    exchange_pb2_grpc,
)
from mesh.config import Settings

BENCH = "engine_spot_orders"
SECONDS = float(os.environ.get("BENCH_ORDERS_SECONDS", "5"))
CLIENTS = 32
INTERNAL = (("x-cfd-internal-token", INTERNAL_TOKEN),)


async def drive(address: str, tokens: list[str], seconds: float) -> tuple[list[float], int]:
    """Place orders from every client for `seconds`; return latencies and the fill count."""
    latencies: list[float] = []
    fills = 0
    deadline = time.perf_counter() + seconds
    channels = [grpc.aio.insecure_channel(address) for _ in range(4)]

    async def client(number: int) -> None:
        nonlocal fills
        stub = exchange_pb2_grpc.ExchangeServiceStub(channels[number % len(channels)])
        metadata = (("authorization", f"Bearer {tokens[number]}"),)
        sides = (common_pb2.SIDE_BUY, common_pb2.SIDE_SELL)
        turn = number
        while time.perf_counter() < deadline:
            turn += 1
            request = exchange_pb2.PlaceSpotOrderRequest(
                market="BTC_USD",
                side=sides[turn % 2],
                type=exchange_pb2.SPOT_ORDER_TYPE_LIMIT,
                price="64000.00",
                quantity="0.0001",
            )
            started = time.perf_counter()
            reply = await stub.PlaceSpotOrder(request, metadata=metadata)
            latencies.append(time.perf_counter() - started)
            fills += len(reply.fills)

    await asyncio.gather(*(client(n) for n in range(len(tokens))))
    for channel in channels:
        await channel.close()
    return latencies, fills


async def fund(channel: grpc.aio.Channel, user: str, token: str) -> None:
    """Open the account and fill its wallet with USD and BTC."""
    admin = engine_admin_pb2_grpc.EngineAdminServiceStub(channel)
    await admin.CreateAccount(
        engine_admin_pb2.CreateAccountRequest(user_id=user, initial_balance="100000000"),
        metadata=INTERNAL,
    )
    await admin.DepositAsset(
        engine_admin_pb2.DepositAssetRequest(user_id=user, asset="BTC", amount="1000"),
        metadata=INTERNAL,
    )
    await exchange_pb2_grpc.ExchangeServiceStub(channel).TransferFunds(
        exchange_pb2.TransferFundsRequest(
            amount="50000000", direction=exchange_pb2.TRANSFER_DIRECTION_TO_SPOT
        ),
        metadata=(("authorization", f"Bearer {token}"),),
    )


async def main() -> None:
    """Run the benchmark and print its figures."""
    server, market_addr = await start_quote_source({"BTCUSD": ("64250.00", "64251.00")})
    with tempfile.TemporaryDirectory(prefix="cfd-bench-") as tmp:
        data_dir = Path(tmp)
        port = free_port()
        env = engine_env(data_dir, port, market_addr, CFD_FSYNC="on")
        issuer = load_issuer(Settings.from_env(env))
        engine = EngineProcess(env, data_dir / "engine.log")
        address = f"127.0.0.1:{port}"
        try:
            await engine.wait_serving(address)
            tokens = []
            async with grpc.aio.insecure_channel(address) as channel:
                for number in range(CLIENTS):
                    user = f"spot-{number}"
                    tokens.append(issuer.issue(user)[0])
                    await fund(channel, user, tokens[-1])
            await drive(address, tokens[:4], 1.0)  # warm up
            engine_cpu = engine.cpu_seconds()
            started = time.perf_counter()
            latencies, fills = await drive(address, tokens, SECONDS)
            elapsed = time.perf_counter() - started
            engine_cpu = engine.cpu_seconds() - engine_cpu
            latencies.sort()
            label = f"c{CLIENTS}"
            emit(BENCH, f"{label}_throughput", round(len(latencies) / elapsed, 1), "orders/s")
            emit(BENCH, f"{label}_fills", round(fills / elapsed, 1), "taker fills/s")
            emit(BENCH, f"{label}_p50", round(percentile(latencies, 0.5) * 1000, 3), "ms")
            emit(BENCH, f"{label}_p99", round(percentile(latencies, 0.99) * 1000, 3), "ms")
            per_order = engine_cpu / max(1, len(latencies)) * 1e6
            emit(BENCH, f"{label}_engine_cpu_per_order", round(per_order, 1), "us")
        finally:
            engine.stop()
            await server.stop(0)


if __name__ == "__main__":
    asyncio.run(main())
