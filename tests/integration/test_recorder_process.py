"""`cfd recorder` as its own process beside a real `cfd engine`.

The engine journals thousands of commands and keeps answering while no recorder runs (and
keeps the journal the recorder will need); a recorder started late catches up; one killed with
SIGKILL under load and restarted after the engine snapshotted and pruned again records every
event exactly once.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import grpc
from sqlalchemy import func, select

from cfd.v1 import engine_admin_pb2, trading_pb2
from engine_svc.history import HistoryStore, closed_positions, events, ledger
from engine_svc.journal import SUFFIX
from engine_svc.recorder import read_hint
from integration.test_edge_support import recorder_serving
from integration.test_engine_harness import Client, engine_settings, fake_market, user_issuer
from integration.test_engine_recorder_outage import _round_trips as round_trips
from mesh.config import Settings
from mesh.db import create_engine, database_url
from support import ServiceProcess, until

USER = "trader-1"
DEPOSITS = 2000
ROUND_TRIPS = 150


async def _recorded(settings: Settings) -> int:
    store = HistoryStore(create_engine(database_url(settings, "engine")))
    try:
        await store.create_schema()
        return await store.recorded_seq()
    finally:
        await store.engine.dispose()


async def _counts(settings: Settings) -> tuple[int, int, int]:
    engine = create_engine(database_url(settings, "engine"))
    try:
        async with engine.connect() as conn:
            counted = [
                await conn.scalar(select(func.count()).select_from(table))
                for table in (events, ledger, closed_positions)
            ]
    finally:
        await engine.dispose()
    return counted[0] or 0, counted[1] or 0, counted[2] or 0


async def _deposits(client: Client, first: int, count: int) -> None:
    async def one(index: int) -> None:
        await client.admin.Deposit(
            engine_admin_pb2.DepositRequest(
                user_id=USER, amount="1", client_order_id=f"deposit-{index}"
            ),
            metadata=client.internal,
        )

    for start in range(first, first + count, 50):
        await asyncio.gather(*(one(i) for i in range(start, min(first + count, start + 50))))


async def _round_trips(client: Client, count: int) -> None:
    """Open and close `count` positions, ten at a time."""
    await asyncio.gather(*(round_trips(client, USER, count // 10) for _ in range(10)))
    await round_trips(client, USER, count % 10)


async def test_a_recorder_process_catches_up_and_survives_sigkill_with_every_event_once(
    tmp_path: Path,
) -> None:
    async with fake_market() as (market, address):
        market.push("BTCUSD", "64250.00", "64251.00")
        settings, env = engine_settings(
            tmp_path,
            address,
            CFD_PRICE_STALE_MS="600000",
            CFD_SNAPSHOT_EVERY="400",
            CFD_JOURNAL_SEGMENT_BYTES="16384",
            CFD_FSYNC="off",
        )
        root = tmp_path / "engine"
        engine = ServiceProcess(["engine"], env, tmp_path / "engine.log")
        recorder: ServiceProcess | None = None
        try:
            engine.wait_grpc_ready(settings.engine_port)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.engine_port}") as ch:
                client = Client(ch, user_issuer(settings))
                await client.create_account(USER, "100000")
                # No recorder yet: the engine answers, snapshots, and keeps every segment.
                await _deposits(client, 0, DEPOSITS)
                await _round_trips(client, ROUND_TRIPS // 3)
                journaled = (await client.stats()).sequence
                assert journaled > DEPOSITS
                assert list(root.glob("snapshots/*.snapshot")), "no snapshot was taken"
                assert (root / "journal" / f"{1:020d}{SUFFIX}").exists()
                assert await _recorded(settings) == 0

                recorder = ServiceProcess(["recorder"], env, tmp_path / "recorder-0.log")

                async def caught_up() -> bool:
                    return await _recorded(settings) >= (await client.stats()).sequence

                await until(caught_up, within=90, interval=0.1)
                assert recorder_serving(env)

                # Under load, the recorder is killed once it has written part of it.
                load = asyncio.create_task(_round_trips(client, ROUND_TRIPS // 3))
                start = await _recorded(settings)

                async def progressed() -> bool:
                    return await _recorded(settings) > start + 20 or load.done()

                await until(progressed, within=60, interval=0.02)
                recorder.stop(signal.SIGKILL)
                await load
                killed_at = await _recorded(settings)
                # While it is down the engine snapshots and prunes again; what the recorder
                # needs from its hint on is kept.
                await _deposits(client, DEPOSITS, 1000)
                await _round_trips(client, ROUND_TRIPS - 2 * (ROUND_TRIPS // 3))
                assert read_hint(root / "recorded_seq") <= killed_at
                snapshots = sorted(int(p.name[:20]) for p in root.glob("snapshots/*.snapshot"))
                assert snapshots[0] <= killed_at < snapshots[-1], (snapshots, killed_at)
                segments = sorted(int(p.name[:20]) for p in root.glob(f"journal/*{SUFFIX}"))
                assert segments[0] <= snapshots[0] + 1, (segments[0], snapshots)
                assert segments[0] > 1, "the engine pruned nothing once the recorder ran"

                recorder = ServiceProcess(["recorder"], env, tmp_path / "recorder-1.log")
                await until(caught_up, within=90, interval=0.1)
                history = await client.trading.ListHistory(
                    trading_pb2.ListHistoryRequest(page_size=500), metadata=client.auth(USER)
                )
                assert len({p.id for p in history.positions}) == ROUND_TRIPS
        finally:
            engine.stop()
            stopped = recorder.stop() if recorder is not None else None
        assert recorder is not None and stopped == 0, recorder and recorder.output()[-3000:]
        assert "cannot be rebuilt" not in recorder.output()
    deposits = DEPOSITS + 1000
    # The opening deposit; a ledger entry and an event per deposit; per round trip a reserve
    # and a settlement in the ledger, and reserve, open, close and settle events.
    assert await _counts(settings) == (
        1 + deposits + 4 * ROUND_TRIPS,
        1 + deposits + 2 * ROUND_TRIPS,
        ROUND_TRIPS,
    )
