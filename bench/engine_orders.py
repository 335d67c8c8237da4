"""Durable OpenPosition over gRPC (fsync on) at 1 and 32 clients, beside a bare grpc.aio server.

Starts a real `cfd engine` child on a fresh data dir with a minimal quote source, and a bare
`grpc.aio` server answering an empty unary call in another process, then drives both, round
after round, with the same load client: at 32 clients it runs in BENCH_CLIENT_PROCESSES
processes (default 2), and every process reports its CPU share, so a figure limited by the
client shows as a client near one full core. Each figure is the median over BENCH_ROUNDS
rounds (default 3) of BENCH_ORDERS_SECONDS seconds each; `ratio_to_bare` divides by the bare
server's throughput in the same round. Engine CPU per order is the engine process's own CPU
time (from /proc) over the orders of the round. Prints JSON lines.

A second engine runs with BENCH_FRONTS front processes (default 1; 0 leaves it out,
`CFD_ENGINE_FRONTS`): the gRPC protocol work on the other core, the single writer behind it.
It is driven in the same rounds; its CPU per order is given for the writer and for its fronts.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import Executor, ProcessPoolExecutor
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
BARE = "grpc_aio_baseline"
FRONTED = "engine_open_position_fronts"
FRONTS = int(os.environ.get("BENCH_FRONTS", "1"))
SECONDS = float(os.environ.get("BENCH_ORDERS_SECONDS", "3"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CLIENT_PROCESSES = int(os.environ.get("BENCH_CLIENT_PROCESSES", "2"))
CONCURRENCIES = (1, 32)
INTERNAL = (("x-cfd-internal-token", INTERNAL_TOKEN),)


async def drive(address: str, tokens: list[str], concurrency: int, seconds: float) -> list[float]:
    """Call from `concurrency` clients for `seconds`; return latencies in seconds.

    With tokens, each client opens positions with its own; without, it makes the bare
    server's empty call.
    """
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    channels = [grpc.aio.insecure_channel(address) for _ in range(min(concurrency, 4))]

    async def client(number: int) -> None:
        channel = channels[number % len(channels)]
        metadata: tuple[tuple[str, str], ...] = ()
        request: Any
        if tokens:
            stub = trading_pb2_grpc.TradingServiceStub(channel)
            metadata = (("authorization", f"Bearer {tokens[number]}"),)
            request = trading_pb2.OpenPositionRequest(
                symbol="BTCUSD", side=common_pb2.SIDE_BUY, leverage=100, quantity="0.0001"
            )
            call: Any = stub.OpenPosition
        else:
            call = engine_admin_pb2_grpc.EngineAdminServiceStub(channel).GetStats
            request = engine_admin_pb2.GetStatsRequest()
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await call(request, metadata=metadata)
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(client(n) for n in range(concurrency)))
    for channel in channels:
        await channel.close()
    return latencies


def drive_process(
    address: str, tokens: list[str], concurrency: int, seconds: float
) -> tuple[list[float], float]:
    """Run `drive` in this (client) process; return its latencies and its CPU seconds."""
    cpu = time.process_time()
    latencies = asyncio.run(drive(address, tokens, concurrency, seconds))
    return latencies, time.process_time() - cpu


class Load:
    """The figures of one driven period."""

    def __init__(self, latencies: list[float], elapsed: float, client_cpu: list[float]) -> None:
        self.latencies = sorted(latencies)
        self.elapsed = elapsed
        self.rate = len(latencies) / elapsed
        # The busiest client process, in cores: near 1.0 would mean the client is the limit.
        self.client_share = max(client_cpu) / elapsed


async def load(
    pool: Executor, address: str, tokens: list[str], concurrency: int, seconds: float
) -> Load:
    """Drive `address` from client processes sharing `concurrency` clients between them."""
    processes = 1 if concurrency == 1 else CLIENT_PROCESSES
    loop = asyncio.get_running_loop()
    shares = [concurrency // processes + (n < concurrency % processes) for n in range(processes)]
    offsets = [sum(shares[:n]) for n in range(processes)]
    started = time.perf_counter()
    results = await asyncio.gather(
        *(
            loop.run_in_executor(
                pool,
                drive_process,
                address,
                tokens[offset : offset + share] if tokens else [],
                share,
                seconds,
            )
            for offset, share in zip(offsets, shares, strict=True)
        )
    )
    elapsed = time.perf_counter() - started
    return Load([x for r in results for x in r[0]], elapsed, [r[1] for r in results])


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

    async def DepositAsset(
        self, request: engine_admin_pb2.DepositAssetRequest, context: Any
    ) -> engine_admin_pb2.DepositAssetResponse:
        return engine_admin_pb2.DepositAssetResponse()

    async def GetStats(
        self, request: engine_admin_pb2.GetStatsRequest, context: Any
    ) -> engine_admin_pb2.GetStatsResponse:
        return engine_admin_pb2.GetStatsResponse()

    async def RunRollover(
        self, request: engine_admin_pb2.RunRolloverRequest, context: Any
    ) -> engine_admin_pb2.RunRolloverResponse:
        return engine_admin_pb2.RunRolloverResponse()

    async def SendTransfer(
        self, request: engine_admin_pb2.SendTransferRequest, context: Any
    ) -> engine_admin_pb2.SendTransferResponse:
        return engine_admin_pb2.SendTransferResponse()

    async def ReceiveTransfer(
        self, request: engine_admin_pb2.ReceiveTransferRequest, context: Any
    ) -> engine_admin_pb2.ReceiveTransferResponse:
        return engine_admin_pb2.ReceiveTransferResponse()


def serve_baseline(port: int) -> None:
    """Serve EmptyStats until killed (run in a child process)."""

    async def run() -> None:
        server = grpc.aio.server()
        engine_admin_pb2_grpc.add_EngineAdminServiceServicer_to_server(EmptyStats(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    asyncio.run(run())


def median(values: list[float], digits: int = 1) -> float:
    """Return the median of `values`, rounded."""
    return round(statistics.median(values), digits)


def report(
    concurrency: int,
    ours: list[Load],
    bare: list[Load],
    cpu_per_order: list[float],
    fronted: list[Load],
    fronted_cpu: list[tuple[float, float]],
) -> None:
    """Print the medians of one concurrency over the rounds, with the bare server's."""
    label = f"c{concurrency}"
    for bench, runs in ((BENCH, ours), (BARE, bare), (FRONTED, fronted)):
        if not runs:
            continue
        emit(bench, f"{label}_throughput", median([r.rate for r in runs]), "calls/s")
        p50 = [percentile(r.latencies, 0.5) * 1000 for r in runs]
        p99 = [percentile(r.latencies, 0.99) * 1000 for r in runs]
        emit(bench, f"{label}_p50", median(p50, 3), "ms")
        emit(bench, f"{label}_p99", median(p99, 3), "ms")
        share = max(r.client_share for r in runs)
        emit(bench, f"{label}_client_cpu_share_max", round(share, 3), "cores")
    ratios = [o.rate / b.rate for o, b in zip(ours, bare, strict=True)]
    emit(BENCH, f"{label}_ratio_to_bare", median(ratios, 3), "ratio")
    emit(BENCH, f"{label}_engine_cpu_per_order", median(cpu_per_order), "us")
    if fronted:
        ratios = [o.rate / b.rate for o, b in zip(fronted, bare, strict=True)]
        emit(FRONTED, f"{label}_ratio_to_bare", median(ratios, 3), "ratio")
        ratios = [f.rate / o.rate for f, o in zip(fronted, ours, strict=True)]
        emit(FRONTED, f"{label}_ratio_to_one_process", median(ratios, 3), "ratio")
        emit(FRONTED, f"{label}_writer_cpu_per_order", median([w for w, _ in fronted_cpu]), "us")
        emit(FRONTED, f"{label}_fronts_cpu_per_order", median([f for _, f in fronted_cpu]), "us")


async def open_accounts(address: str, settings: Settings, count: int) -> list[str]:
    """Open `count` funded accounts on the engine at `address`; return their tokens once the
    engine has a price."""
    issuer = load_issuer(settings)
    tokens = []
    async with grpc.aio.insecure_channel(address) as channel:
        admin = engine_admin_pb2_grpc.EngineAdminServiceStub(channel)
        for number in range(count):
            user = f"bench-{number}"
            await admin.CreateAccount(
                engine_admin_pb2.CreateAccountRequest(user_id=user, initial_balance="100000000"),
                metadata=INTERNAL,
            )
            tokens.append(issuer.issue(user)[0])
        await wait_price(channel, tokens[0])
    return tokens


async def start_engine(
    data_dir: Path, market_addr: str, **extra: str
) -> tuple[EngineProcess, str, list[str]]:
    """Start a durable engine, open the benchmark's accounts; return it, its address and the
    accounts' tokens."""
    port = free_port()
    env = engine_env(data_dir, port, market_addr, CFD_FSYNC="on", **extra)
    engine = EngineProcess(env, data_dir / "engine.log")
    address = f"127.0.0.1:{port}"
    await engine.wait_serving(address)
    tokens = await open_accounts(address, Settings.from_env(env), max(CONCURRENCIES))
    return engine, address, tokens


async def main() -> None:
    """Run the benchmark and print its figures."""
    server, market_addr = await start_quote_source({"BTCUSD": ("64250.00", "64251.00")})
    context = multiprocessing.get_context("spawn")
    bare_port = free_port()
    bare_server = context.Process(target=serve_baseline, args=(bare_port,))
    bare_server.start()
    bare_address = f"127.0.0.1:{bare_port}"
    ours: dict[int, list[Load]] = {c: [] for c in CONCURRENCIES}
    bare: dict[int, list[Load]] = {c: [] for c in CONCURRENCIES}
    fronted: dict[int, list[Load]] = {c: [] for c in CONCURRENCIES}
    cpu_per_order: dict[int, list[float]] = {c: [] for c in CONCURRENCIES}
    fronted_cpu: dict[int, list[tuple[float, float]]] = {c: [] for c in CONCURRENCIES}
    engines: list[EngineProcess] = []
    with (
        tempfile.TemporaryDirectory(prefix="cfd-bench-") as tmp,
        ProcessPoolExecutor(CLIENT_PROCESSES, mp_context=context) as pool,
    ):
        try:
            (Path(tmp) / "one").mkdir()
            engine, address, tokens = await start_engine(Path(tmp) / "one", market_addr)
            engines.append(engine)
            emit(BENCH, "engine_core_compiled", int(engine.runs_compiled_core()), "bool")
            front: tuple[EngineProcess, str, list[str]] | None = None
            if FRONTS > 0:
                (Path(tmp) / "fronts").mkdir()
                front = await start_engine(
                    Path(tmp) / "fronts", market_addr, CFD_ENGINE_FRONTS=str(FRONTS)
                )
                engines.append(front[0])
            # Warm up the servers and start the client processes.
            await load(pool, address, tokens, 4, 1.0)
            await load(pool, bare_address, [], 4, 1.0)
            if front is not None:
                await load(pool, front[1], front[2], 4, 1.0)
            for _ in range(ROUNDS):
                for concurrency in CONCURRENCIES:
                    engine_cpu = engine.cpu_seconds()
                    run = await load(pool, address, tokens, concurrency, SECONDS)
                    engine_cpu = engine.cpu_seconds() - engine_cpu
                    ours[concurrency].append(run)
                    cpu_per_order[concurrency].append(engine_cpu / max(1, len(run.latencies)) * 1e6)
                    baseline = await load(pool, bare_address, [], concurrency, SECONDS)
                    bare[concurrency].append(baseline)
                    if front is not None:
                        writer, fronts = front[0].cpu_seconds(), front[0].children_cpu_seconds()
                        run = await load(pool, front[1], front[2], concurrency, SECONDS)
                        orders = max(1, len(run.latencies))
                        writer = (front[0].cpu_seconds() - writer) / orders * 1e6
                        fronts = (front[0].children_cpu_seconds() - fronts) / orders * 1e6
                        fronted[concurrency].append(run)
                        fronted_cpu[concurrency].append((writer, fronts))
        finally:
            for each in engines:
                each.stop()
            await server.stop(0)
            bare_server.kill()
            bare_server.join()
    emit(BENCH, "client_processes_at_32", CLIENT_PROCESSES, "processes")
    emit(FRONTED, "fronts", FRONTS, "processes")
    for concurrency in CONCURRENCIES:
        report(
            concurrency,
            ours[concurrency],
            bare[concurrency],
            cpu_per_order[concurrency],
            fronted[concurrency],
            fronted_cpu[concurrency],
        )


if __name__ == "__main__":
    asyncio.run(main())
