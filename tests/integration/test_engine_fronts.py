"""A real `cfd engine` with front processes (CFD_ENGINE_FRONTS): the gRPC protocol work in
the fronts, the single writer behind them. Calls answer as on the engine's own port, nothing
acknowledged is lost when the writer is killed, and fronts never outlive it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import time
from functools import partial
from pathlib import Path

import grpc
import pytest

from cfd.v1 import common_pb2, trading_pb2
from integration.test_engine_crash import USERS, Ledger, _priced, conservation, trader, verify
from integration.test_engine_harness import Client, engine_settings, fake_market, user_issuer
from mesh.config import Settings
from mesh.errors import reason_of
from support import ServiceProcess, until, wait_for


def fronts_of(process: ServiceProcess) -> set[int]:
    """The process ids of the engine's front processes."""
    pids: set[int] = set()
    for task in Path(f"/proc/{process.process.pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            pids |= {int(pid) for pid in (task / "children").read_text().split()}
    return {pid for pid in pids if b"mesh.front" in _cmdline(pid)}


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def gone(pids: set[int]) -> bool:
    return all(not _cmdline(pid) for pid in pids)


def start(settings: Settings, env: dict[str, str], log: Path) -> ServiceProcess:
    process = ServiceProcess(["engine"], env, log)
    process.wait_grpc_ready(settings.engine_port)
    wait_for(lambda: len(fronts_of(process)) == 2, timeout=20)
    return process


async def test_calls_through_fronts_answer_as_the_engine_does(tmp_path: Path) -> None:
    async with fake_market() as (market, address):
        settings, env = engine_settings(tmp_path, address, CFD_ENGINE_FRONTS="2")
        issuer = user_issuer(settings)
        market.push("BTCUSD", "64250.00", "64251.00")
        process = start(settings, env, tmp_path / "engine.log")
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.engine_port}") as ch:
                client = Client(ch, issuer)
                await client.create_account(USERS[0], "10000")
                await until(partial(_priced, client))
                md = client.auth(USERS[0])
                events = client.trading.StreamEvents(
                    trading_pb2.StreamEventsRequest(from_sequence=0), metadata=md
                )
                opened = await client.trading.OpenPosition(
                    trading_pb2.OpenPositionRequest(
                        symbol="BTCUSD", side=common_pb2.SIDE_BUY, leverage=10, quantity="0.01"
                    ),
                    metadata=md,
                )
                assert opened.position.entry_price == "64251.00"
                seen: set[int] = set()
                while trading_pb2.EVENT_TYPE_POSITION_OPENED not in seen:
                    item = await asyncio.wait_for(events.read(), 10)
                    assert isinstance(item, trading_pb2.StreamEventsResponse)
                    seen.add(item.type)
                events.cancel()
                # Errors keep their code, message and rich details through the front.
                try:
                    await client.trading.OpenPosition(
                        trading_pb2.OpenPositionRequest(
                            symbol="BTCUSD", side=common_pb2.SIDE_BUY, leverage=10, quantity="x"
                        ),
                        metadata=md,
                    )
                    raise AssertionError("a malformed quantity was accepted")
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
                    assert reason_of(exc) == "VALIDATION_FAILED"
                try:
                    await client.trading.GetAccount(trading_pb2.GetAccountRequest())
                    raise AssertionError("a call without a token was answered")
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() == grpc.StatusCode.UNAUTHENTICATED
                # A front that dies is replaced; the calls go on through the others meanwhile.
                victim = min(fronts_of(process))
                with contextlib.suppress(ProcessLookupError):
                    os.kill(victim, signal.SIGKILL)
                wait_for(lambda: len(fronts_of(process) - {victim}) == 2, timeout=20)
                for _ in range(20):
                    account = await client.trading.GetAccount(
                        trading_pb2.GetAccountRequest(), metadata=md, timeout=5
                    )
                    assert account.used_margin == opened.position.margin
            fronts = fronts_of(process)
        finally:
            code = process.stop()
        assert code == 0, process.output()[-3000:]
        assert gone(fronts)
        assert "exited with" in process.output()


async def test_a_killed_engine_takes_its_fronts_down_and_loses_nothing_acknowledged(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    random.seed(11)
    async with fake_market() as (market, address):
        settings, env = engine_settings(tmp_path, address, CFD_ENGINE_FRONTS="2")
        issuer = user_issuer(settings)
        market.push("BTCUSD", "64250.00", "64251.00")
        ledger = Ledger()
        # Closed positions are read back from the history the recorder writes.
        recorder = ServiceProcess(["recorder"], env, tmp_path / "recorder.log")
        request.addfinalizer(recorder.stop)
        for cycle in range(2):
            process = start(settings, env, tmp_path / f"engine-{cycle}.log")
            try:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.engine_port}") as ch:
                    client = Client(ch, issuer)
                    if cycle:
                        await verify(client, ledger)
                        await conservation(client)
                    for user in USERS:
                        await client.create_account(user, "100000")
                    await until(partial(_priced, client))
                    stop = asyncio.Event()
                    tasks = [asyncio.create_task(trader(client, u, ledger, stop)) for u in USERS]
                    await asyncio.sleep(random.uniform(0.8, 1.4))
                    fronts = fronts_of(process)
                    process.process.send_signal(signal.SIGKILL)
                    process.process.wait(10)
                    stop.set()
                    await asyncio.gather(*tasks)
                # With the writer gone its fronts close and free the port.
                wait_for(partial(gone, fronts), timeout=10)
                with socket.socket() as probe:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    probe.bind(("127.0.0.1", settings.engine_port))
            finally:
                with contextlib.suppress(AssertionError):
                    process.stop(signal.SIGKILL)
        assert len(ledger.opened) > 20
        process = start(settings, env, tmp_path / "engine-last.log")
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.engine_port}") as ch:
                client = Client(ch, issuer)
                await verify(client, ledger)
                await conservation(client)
        finally:
            assert process.stop() == 0


def test_fronts_on_a_taken_port_are_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        _, env = engine_settings(
            tmp_path, "127.0.0.1:1", CFD_ENGINE_FRONTS="1", CFD_ENGINE_PORT=str(port)
        )
        process = ServiceProcess(["engine"], env, tmp_path / "engine.log")
        deadline = time.monotonic() + 60
        while process.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert process.stop() == 1
        assert "is the port already in use" in process.output()
