"""The recorder process: following the journal files and replaying them into the history."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from engine_svc.config import EngineConfig
from engine_svc.core import Deposit, default_instruments
from engine_svc.core.codec import encode_command
from engine_svc.history import HistoryStore, ledger
from engine_svc.instrument_set import INSTRUMENTS_FILE, write_recorded
from engine_svc.journal import Journal, JournalError, JournalTail, frame
from engine_svc.recorder import read_hint
from engine_svc.recorder_runtime import RecorderRuntime
from mesh.config import Settings
from mesh.db import create_engine
from support import mesh_env, until
from unit.engine_svc.test_eng_runtime import (
    COMMANDS,
    _commands,
    _prepare,
    _set_recorded,
)


def _records(first: int, last: int) -> list[tuple[int, bytes]]:
    return [(c.seq, encode_command(c)) for c in _commands() if first <= c.seq <= last]


def test_a_tail_follows_appends_across_segments(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path, segment_bytes=128, fsync=False)
    tail = JournalTail(tmp_path, 0)
    assert tail.poll() == []
    journal.append(_records(1, 4))
    assert [seq for seq, _ in tail.poll()] == [1, 2, 3, 4]
    for seq in range(5, COMMANDS + 1):
        journal.append(_records(seq, seq))
    assert journal.segment_count > 3
    read = tail.poll()
    assert [seq for seq, _ in read] == list(range(5, COMMANDS + 1))
    assert read == _records(5, COMMANDS)
    assert tail.poll() == []
    journal.close()


def test_a_record_still_being_written_is_read_once_complete(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path, fsync=False)
    journal.append(_records(1, 3))
    journal.close()
    tail = JournalTail(tmp_path, 0)
    assert [seq for seq, _ in tail.poll()] == [1, 2, 3]
    segment = next(tmp_path.glob("*.journal"))
    record = frame(4, encode_command(Deposit(4, 4, "a", 4)))
    with segment.open("ab") as handle:
        handle.write(record[:10])
    assert tail.poll() == []
    with segment.open("ab") as handle:
        # The payload's first bytes are there, the rest is not: the CRC does not match yet.
        handle.write(record[10:-3])
    assert tail.poll() == []
    with segment.open("ab") as handle:
        handle.write(record[-3:])
    assert [seq for seq, _ in tail.poll()] == [4]


def test_a_tail_starting_before_the_journal_refuses(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path, segment_bytes=64, fsync=False)
    for seq in range(1, COMMANDS + 1):
        journal.append(_records(seq, seq))
    journal.delete_through(12)
    journal.close()
    assert not JournalTail(tmp_path, 0).covers()
    with pytest.raises(JournalError, match="records after seq 0 are gone"):
        JournalTail(tmp_path, 0).poll()
    assert JournalTail(tmp_path, 12).covers()
    assert JournalTail(tmp_path, 12).poll()[0][0] == 13


def _engine_files(data_dir: Path, snapshots: tuple[int, ...]) -> None:
    """Write what an engine leaves: the journal, snapshots and the recorded instruments."""
    _prepare(data_dir, snapshots, segment_bytes=256)
    write_recorded(data_dir / "engine" / INSTRUMENTS_FILE, default_instruments(), fsync=False)


async def _record(
    data_dir: Path, recorded: int, config: EngineConfig | None = None
) -> tuple[RecorderRuntime, int]:
    """Run a recorder until it wrote everything; return it and the ledger rows written."""
    url = f"sqlite+aiosqlite:///{data_dir / 'history.sqlite3'}"
    if recorded >= 0:
        await _set_recorded(url, recorded)
    settings = Settings.from_env(mesh_env(data_dir, CFD_MARKET_ADDR="127.0.0.1:9"))
    config = config or EngineConfig(fsync=False)
    runtime = RecorderRuntime(settings, config, db_url=url, poll_s=0.005)
    task = asyncio.create_task(runtime.run())
    try:
        await until(lambda: runtime.recorded_seq == COMMANDS or task.done())
        assert not task.done(), task
    finally:
        runtime.stopping.set()
        await asyncio.wait_for(task, 10)
    store = HistoryStore(create_engine(url))
    try:
        return runtime, await store.count(ledger)
    finally:
        await store.engine.dispose()
        await runtime.close()


@pytest.mark.parametrize(("recorded", "base"), [(0, 0), (5, 0), (15, 10), (25, 20), (30, 20)])
async def test_the_recorder_replays_from_a_snapshot_at_or_before_its_seq(
    tmp_path: Path, recorded: int, base: int
) -> None:
    _engine_files(tmp_path, (10, 20))
    runtime, rows = await _record(tmp_path, recorded)
    assert runtime.base_seq == base
    # The opening deposit (seq 1) and one deposit from seq 3 on, each exactly once.
    assert rows == len([seq for seq in [1, *range(3, COMMANDS + 1)] if seq > recorded])
    assert read_hint(tmp_path / "engine" / "recorded_seq") == COMMANDS


async def test_a_recorder_restarted_writes_nothing_twice(tmp_path: Path) -> None:
    _engine_files(tmp_path, (10, 20))
    _, rows = await _record(tmp_path, 0)
    url = f"sqlite+aiosqlite:///{tmp_path / 'history.sqlite3'}"
    settings = Settings.from_env(mesh_env(tmp_path, CFD_MARKET_ADDR="127.0.0.1:9"))
    again = RecorderRuntime(settings, EngineConfig(fsync=False), db_url=url, poll_s=0.005)
    task = asyncio.create_task(again.run())
    await until(again.ready.is_set)
    again.stopping.set()
    await asyncio.wait_for(task, 10)
    assert again.base_seq == 20
    store = HistoryStore(create_engine(url))
    try:
        assert await store.count(ledger) == rows == COMMANDS - 1
    finally:
        await store.engine.dispose()
        await again.close()


async def test_without_the_journal_after_its_seq_the_recorder_skips_ahead_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _engine_files(tmp_path, (10, 20))
    journal = Journal.open(tmp_path / "engine" / "journal", segment_bytes=256, fsync=False)
    journal.delete_through(12)
    journal.close()
    with caplog.at_level(logging.WARNING, logger="engine.recorder"):
        runtime, rows = await _record(tmp_path, 5)
    assert runtime.base_seq == 10 or runtime.base_seq == 20
    assert "cannot be rebuilt" in caplog.text
    assert rows == COMMANDS - runtime.base_seq


async def test_the_recorder_restarts_from_a_snapshot_of_its_own(tmp_path: Path) -> None:
    _engine_files(tmp_path, ())
    config = EngineConfig(fsync=False, snapshot_every=7)
    _, rows = await _record(tmp_path, 0, config)
    own = [int(p.name[:20]) for p in (tmp_path / "recorder" / "snapshots").glob("*.snapshot")]
    # The newest one at or before the recorded seq, and none older.
    assert own == [COMMANDS]
    again, more = await _record(tmp_path, -1, config)
    assert again.base_seq == COMMANDS
    assert more == rows == COMMANDS - 1
