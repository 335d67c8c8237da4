"""Start-up recovery: which snapshot the engine replays from, and what it rebuilds."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import update

from engine_svc.config import EngineConfig
from engine_svc.core import (
    ApplyQuote,
    Command,
    Core,
    CreateAccount,
    Deposit,
    OpenPosition,
    Side,
    make_charges,
    make_instrument,
)
from engine_svc.core.codec import encode_command
from engine_svc.history import HistoryStore, recorder_state
from engine_svc.journal import Journal
from engine_svc.rollover import NS_PER_DAY, RolloverSchedule
from engine_svc.runtime import EngineRuntime, RecoveryError
from engine_svc.snapshots import SnapshotStore
from engine_svc.witnesses import LostCommandsError
from mesh.config import Settings
from mesh.db import create_engine
from support import mesh_env, until

COMMANDS = 30


def _commands() -> list[Command]:
    commands: list[Command] = [
        CreateAccount(1, 1, "a", 1_000_000),
        ApplyQuote(2, 2, "BTCUSD", 6_425_000, 6_425_100),
    ]
    for seq in range(3, COMMANDS + 1):
        commands.append(Deposit(seq, seq, "a", seq))
    return commands


def _prepare(data_dir: Path, snapshots: tuple[int, ...], segment_bytes: int = 1 << 20) -> str:
    """Write the journal of `_commands` and snapshots after the given seqs; return the digest."""
    root = data_dir / "engine"
    journal = Journal.open(root / "journal", segment_bytes=segment_bytes, fsync=False)
    store = SnapshotStore(root / "snapshots", fsync=False)
    core = Core()
    for command in _commands():
        core.apply(command)
        journal.append([(command.seq, encode_command(command))])
        if command.seq in snapshots:
            store.write(command.seq, command.seq, core.digest(), core.snapshot())
    journal.close()
    return core.digest()


async def _set_recorded(url: str, seq: int) -> None:
    store = HistoryStore(create_engine(url))
    await store.create_schema()
    async with store.engine.begin() as conn:
        await conn.execute(update(recorder_state).values(seq=seq))
    await store.engine.dispose()


async def _recover(tmp_path: Path, recorded: int) -> EngineRuntime:
    settings = Settings.from_env(mesh_env(tmp_path, CFD_MARKET_ADDR="127.0.0.1:9"))
    url = f"sqlite+aiosqlite:///{tmp_path / 'history.sqlite3'}"
    await _set_recorded(url, recorded)
    runtime = EngineRuntime(settings, EngineConfig(fsync=False), db_url=url)
    try:
        await runtime.start()
    except BaseException:
        await runtime.stop()
        raise
    return runtime


@pytest.mark.parametrize("recorded", [0, 15, 25, 30])
async def test_recovery_starts_from_the_newest_snapshot_whatever_the_recorder_wrote(
    tmp_path: Path, recorded: int
) -> None:
    digest = _prepare(tmp_path, (10, 20))
    runtime = await _recover(tmp_path, recorded)
    try:
        assert runtime.core.last_seq == COMMANDS
        assert runtime.core.digest() == digest
        assert runtime.replayed == COMMANDS - 20
        info = runtime.snapshot_info
        assert info is not None and info.seq == 20
        assert runtime.progress.recorded_seq == recorded
    finally:
        await runtime.stop()


async def test_without_the_old_journal_the_newest_snapshot_is_used(tmp_path: Path) -> None:
    digest = _prepare(tmp_path, (10, 20), segment_bytes=64)
    journal = Journal.open(tmp_path / "engine" / "journal", segment_bytes=64, fsync=False)
    journal.delete_through(12)
    journal.close()
    runtime = await _recover(tmp_path, 5)
    try:
        assert runtime.core.digest() == digest
        assert runtime.replayed == COMMANDS - 20
    finally:
        await runtime.stop()


async def test_retention_keeps_what_a_lagging_recorder_needs(tmp_path: Path) -> None:
    _prepare(tmp_path, (10, 20), segment_bytes=64)
    # The recorder wrote up to seq 15: it restarts from the snapshot at 10.
    (tmp_path / "engine" / "recorded_seq").write_text("15")
    runtime = await _recover(tmp_path, 15)
    try:
        task = runtime.request_snapshot()
        assert task is not None
        await task
        snapshots = [path.name for path in runtime.snapshots.paths()]
        assert snapshots == [f"{COMMANDS:020d}.snapshot", f"{10:020d}.snapshot"]
        assert runtime.journal is not None and runtime.journal.covers(10)
        # Once it has recorded everything, only the newest snapshot is needed.
        (tmp_path / "engine" / "recorded_seq").write_text(str(COMMANDS))
        runtime.prune()
        assert [path.name for path in runtime.snapshots.paths()] == [f"{COMMANDS:020d}.snapshot"]
        assert not runtime.journal.covers(10)
    finally:
        await runtime.stop()


async def test_retention_without_any_recorded_seq_keeps_the_whole_journal(
    tmp_path: Path,
) -> None:
    _prepare(tmp_path, (10, 20), segment_bytes=64)
    runtime = await _recover(tmp_path, 0)
    try:
        task = runtime.request_snapshot()
        assert task is not None
        await task
        assert runtime.journal is not None and runtime.journal.covers(0)
    finally:
        await runtime.stop()


async def test_a_journal_gap_with_no_snapshot_refuses_to_start(tmp_path: Path) -> None:
    _prepare(tmp_path, (), segment_bytes=64)
    journal = Journal.open(tmp_path / "engine" / "journal", segment_bytes=64, fsync=False)
    journal.delete_through(12)
    journal.close()
    with pytest.raises(RecoveryError):
        await _recover(tmp_path, 0)


async def test_a_recorded_seq_above_the_journal_refuses_to_serve(tmp_path: Path) -> None:
    _prepare(tmp_path, (10,))
    with pytest.raises(LostCommandsError) as refused:
        await _recover(tmp_path, COMMANDS + 5)
    message = str(refused.value)
    assert f"rebuild the state only to seq {COMMANDS}" in message
    assert f"the recorded history is at seq {COMMANDS + 5}" in message
    assert f"seqs {COMMANDS + 1}..{COMMANDS + 5} are lost" in message
    assert "cfd engine recover" in message


@pytest.mark.parametrize("witness", ["hint", "snapshot"])
async def test_a_hint_or_snapshot_file_above_the_journal_refuses_to_serve(
    tmp_path: Path, witness: str
) -> None:
    _prepare(tmp_path, ())
    root = tmp_path / "engine"
    if witness == "hint":
        (root / "recorded_seq").write_text(str(COMMANDS + 1))
        source = "the recorder's hint file"
    else:
        # Even a damaged snapshot file says its seq was committed once.
        (root / "snapshots" / f"{COMMANDS + 1:020d}.snapshot").write_bytes(b"damaged")
        source = "the newest snapshot file"
    with pytest.raises(LostCommandsError, match=f"{source} is at seq {COMMANDS + 1}"):
        await _recover(tmp_path, 0)


async def test_a_clean_stop_writes_a_snapshot_that_the_next_start_uses(tmp_path: Path) -> None:
    digest = _prepare(tmp_path, ())
    runtime = await _recover(tmp_path, 0)
    await runtime.stop()
    again = await _recover(tmp_path, COMMANDS)
    try:
        assert again.replayed == 0
        assert again.core.digest() == digest
        assert again.snapshot_info is not None and again.snapshot_info.seq == COMMANDS
    finally:
        await again.stop()


@pytest.mark.parametrize("digest_known", [True, False])
async def test_a_periodic_snapshot_digests_and_writes_off_the_writer(
    tmp_path: Path, digest_known: bool
) -> None:
    digest = _prepare(tmp_path, ())
    runtime = await _recover(tmp_path, COMMANDS)
    try:
        if not digest_known:
            runtime._digest = (-1, "")
        task = runtime.request_snapshot()
        assert task is not None
        # A second request while the first is being written returns the same task.
        assert runtime.request_snapshot() is task
        await task
        info = runtime.snapshot_info
        assert info is not None and info.seq == COMMANDS and info.digest == digest
        assert runtime.snapshot_stall_s > 0
        read, payload = SnapshotStore.read(info.path)
        assert read.digest == digest
        assert Core.restore(payload).digest() == digest
        # The digest computed on the thread is remembered for the same seq.
        assert runtime._digest == (COMMANDS, digest)
        assert runtime.state_digest() == digest
    finally:
        await runtime.stop()


async def test_a_rollover_missed_while_down_is_charged_once_at_start(tmp_path: Path) -> None:
    charges = make_charges(swap_long_bps="-10")
    instruments = {"BTCUSD": make_instrument("BTCUSD", "0.01", "0.0001", 100, "0", charges=charges)}
    # A position opened three days ago, and the engine down since.
    opened = time.time_ns() - 3 * NS_PER_DAY
    root = tmp_path / "engine"
    journal = Journal.open(root / "journal", fsync=False)
    for command in (
        CreateAccount(1, opened, "a", 10_000_000_000),
        ApplyQuote(2, opened, "BTCUSD", 5_999_900, 6_000_000),
        OpenPosition(3, opened, "a", "BTCUSD", Side.BUY, 10, quantity=1000),
    ):
        journal.append([(command.seq, encode_command(command))])
    journal.close()
    settings = Settings.from_env(mesh_env(tmp_path, CFD_MARKET_ADDR="127.0.0.1:9"))
    url = f"sqlite+aiosqlite:///{tmp_path / 'history.sqlite3'}"
    schedule = RolloverSchedule()
    for life in range(2):
        runtime = EngineRuntime(
            settings, EngineConfig(fsync=False), instruments=instruments, db_url=url
        )
        await runtime.start()
        try:
            day, _ = schedule.latest(time.time_ns())
            await until(lambda: runtime.core.last_rollover == day)  # noqa: B023
            # Only the latest rollover is charged, once: -10 bps of 6000 USD a day.
            position = runtime.core.get_position("a", "p-3")
            assert position is not None
            assert position.swap == -6_000_000 * schedule.multiplier(day), life
            assert runtime.core.last_seq == 4
        finally:
            await runtime.stop()
