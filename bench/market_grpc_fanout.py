"""Benchmark: a real `cfd market` process ingesting ticks and fanning them out over gRPC.

The manual feed takes ticks through `PublishTicks` (batches of 100, as fast as the service
answers) while ten `StreamTicks` clients read concurrently. Measures ticks/s ingested end to
end and quotes/s delivered to the ten subscribers (fewer than ingested × 10 when a reader
falls behind and is conflated). Prints JSON lines: {"bench", "metric", "value", "unit"}.
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
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cfd.v1 import market_admin_pb2, market_admin_pb2_grpc

TOKEN = "bench-internal-token-0123456789"
METADATA = (("x-cfd-internal-token", TOKEN),)
SUBSCRIBERS = 10
BATCHES = 200
BATCH = 100
SYMBOLS = ("BTCUSD", "ETHUSD", "SOLUSD")


def emit(metric: str, value: float, unit: str) -> None:
    line = {"bench": "market_grpc_fanout", "metric": metric, "value": round(value, 3), "unit": unit}
    print(json.dumps(line), flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_serving(address: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if process.poll() is not None:
                raise RuntimeError("cfd market exited during start-up")
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("cfd market did not start within 60 s")
            await asyncio.sleep(0.1)


def batch_request(index: int) -> market_admin_pb2.PublishTicksRequest:
    ticks = []
    for offset in range(BATCH):
        n = index * BATCH + offset
        symbol = SYMBOLS[n % 3]
        cents = 1_000_000 + n % 5000
        bid = f"{cents // 100}.{cents % 100:02d}"
        ask = f"{(cents + 1) // 100}.{(cents + 1) % 100:02d}"
        ticks.append(market_admin_pb2.TickInput(symbol=symbol, bid=bid, ask=ask))
    return market_admin_pb2.PublishTicksRequest(ticks=ticks)


async def read(
    address: str,
    final: asyncio.Future[int],
    counts: list[int],
    slot: int,
    receiving: asyncio.Event,
) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = market_admin_pb2_grpc.MarketDataAdminServiceStub(channel)
        call = stub.StreamTicks(market_admin_pb2.StreamTicksRequest(), metadata=METADATA)
        async for message in call:
            counts[slot] += 1
            receiving.set()
            if final.done() and message.quote.sequence >= final.result():
                call.cancel()
                return


async def run(address: str) -> None:
    requests = [batch_request(i) for i in range(BATCHES)]
    async with grpc.aio.insecure_channel(address) as channel:
        admin = market_admin_pb2_grpc.MarketDataAdminServiceStub(channel)
        # One quote of each symbol first, so every reader starts from a current quote.
        await admin.PublishTicks(batch_request(BATCHES), metadata=METADATA)
        final: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        counts = [0] * SUBSCRIBERS
        receiving = [asyncio.Event() for _ in range(SUBSCRIBERS)]
        readers = [
            asyncio.create_task(read(address, final, counts, i, receiving[i]))
            for i in range(SUBSCRIBERS)
        ]
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in receiving)), 60)
        before = sum(counts)
        started = time.perf_counter()
        last = 0
        for request in requests:
            reply = await admin.PublishTicks(request, metadata=METADATA)
            last = reply.quotes[-1].sequence
        published = time.perf_counter() - started
        final.set_result(last)
        await asyncio.wait_for(asyncio.gather(*readers), 120)
        drained = time.perf_counter() - started
    ticks = BATCHES * BATCH
    emit("publish_ticks_ingest", ticks / published, "ticks/s")
    emit("ingest_until_10_subscribers_current", ticks / drained, "ticks/s")
    emit("deliveries_10_subscribers", (sum(counts) - before) / drained, "quotes/s")


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CFD_")}
        env.update(
            CFD_DATA_DIR=str(Path(directory) / "data"),
            CFD_FEED="manual",
            CFD_MARKET_PORT=str(port),
            CFD_INTERNAL_TOKEN=TOKEN,
            CFD_BACKFILL_DAYS="0",
            CFD_LOG_LEVEL="WARNING",
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "launcher.cli", "market"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        address = f"127.0.0.1:{port}"
        try:
            asyncio.run(wait_serving(address, process))
            asyncio.run(run(address))
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


if __name__ == "__main__":
    main()
