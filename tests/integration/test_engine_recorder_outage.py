"""The recorder against a real PostgreSQL that goes away mid-run and comes back.

The database sits behind a hand-written TCP proxy that the test cuts (every connection
dropped, new ones refused) and restores. Orders keep working while it is down (the engine
writes no SQL); the recorder says it is not serving and retries; afterwards the history holds
every closed position, ledger entry and event exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from cfd.v1 import common_pb2, trading_pb2
from engine_svc.history import closed_positions, events, ledger
from integration.test_engine_harness import (
    Client,
    Engine,
    engine_settings,
    failure,
    fake_market,
    grpc_ready,
    start_engine,
    user_issuer,
)
from mesh.db import create_engine
from support import until

pytestmark = pytest.mark.postgres


class TcpProxy:
    """Forwards a local port to a target; `cut` drops everything, `restore` listens again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, upstream_writer))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        self._writers.difference_update((writer, upstream_writer))

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        if self._server is not None and self._server.is_serving():
            await self.cut()


async def _round_trips(client: Client, user: str, count: int) -> None:
    md = client.auth(user)
    for _ in range(count):
        opened = await client.trading.OpenPosition(
            trading_pb2.OpenPositionRequest(
                symbol="BTCUSD", side=common_pb2.SIDE_SELL, leverage=5, quantity="0.001"
            ),
            metadata=md,
        )
        await client.trading.ClosePosition(
            trading_pb2.ClosePositionRequest(position_id=opened.position.id), metadata=md
        )


async def test_a_database_outage_loses_and_duplicates_nothing(
    tmp_path: Path, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = make_url(postgres_url)
    assert url.host is not None and url.port is not None
    proxy = TcpProxy(url.host, url.port)
    await proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    async with fake_market() as (market, address):
        market.push("BTCUSD", "64250.00", "64251.00")
        settings, _ = engine_settings(tmp_path, address)
        engine = await start_engine(settings, db_url=proxied)
        try:
            async with grpc.aio.insecure_channel(engine.address) as channel:
                client = Client(channel, user_issuer(settings))
                await client.create_account("alice", "100000")
                await until(_priced(engine))
                await _round_trips(client, "alice", 5)
                await until(_caught_up(client))
                await proxy.cut()
                await _round_trips(client, "alice", 10)
                stats = await client.stats()
                assert stats.recorded_sequence < stats.sequence
                recorder = engine.recorder
                assert recorder is not None
                await until(lambda: not recorder.runtime.serving, within=10)
                writer = recorder.runtime.recorder
                assert writer is not None
                await until(lambda: writer.failures > 0, within=10)
                # The engine's consumers are unaffected: the recorder is not one of them.
                assert list((await client.stats()).failing_consumers) == []
                # The history's database is down: the engine's health says so.
                await until(_serving(engine, False), within=10)
                with pytest.raises(grpc.aio.AioRpcError) as down:
                    await client.trading.ListHistory(
                        trading_pb2.ListHistoryRequest(), metadata=client.auth("alice")
                    )
                assert failure(down.value) == (grpc.StatusCode.UNAVAILABLE, "SERVICE_UNAVAILABLE")
                await proxy.restore()
                with caplog.at_level(logging.INFO, logger="engine.recorder"):
                    await until(_caught_up(client), within=30)
                    await until(lambda: recorder.runtime.serving)
                    await until(_serving(engine, True), within=10)
                assert any(
                    r.getMessage().startswith("recorder: caught up at seq") for r in caplog.records
                )
                history = await client.trading.ListHistory(
                    trading_pb2.ListHistoryRequest(page_size=100), metadata=client.auth("alice")
                )
                assert len(history.positions) == 15
                assert len({p.id for p in history.positions}) == 15
        finally:
            await engine.shutdown()
            await proxy.close()
    direct = create_engine(postgres_url)
    try:
        async with direct.connect() as conn:
            closed = await conn.scalar(select(func.count()).select_from(closed_positions))
            entries = await conn.scalar(select(func.count()).select_from(ledger))
            stored = await conn.scalar(select(func.count()).select_from(events))
    finally:
        await direct.dispose()
    # 15 round trips: reserve + settle each, plus the opening deposit.
    assert (closed, entries) == (15, 31)
    # Per round trip: reserve, open, close, settle; plus the deposit.
    assert stored == 61


def _serving(engine: Engine, serving: bool) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await grpc_ready(engine.address) == serving

    return check


def _priced(engine: Engine) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return engine.runtime.core.get_quote("BTCUSD") is not None

    return check


def _caught_up(client: Client) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        stats = await client.stats()
        return stats.recorded_sequence == stats.sequence

    return check

