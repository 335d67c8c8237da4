"""`cfd engine recover`: the report, the refusal to lose data unasked, and repaired files the
engine starts on without handing out a seq twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine_svc.config import EngineConfig
from engine_svc.core import Core
from engine_svc.history import HistoryStore, Rows, events
from engine_svc.journal import SUFFIX, Journal, JournalCorruptError
from engine_svc.recovery import recover
from engine_svc.runtime import EngineRuntime
from engine_svc.witnesses import LostCommandsError
from mesh.config import Settings
from mesh.db import create_engine
from support import mesh_env
from unit.engine_svc.test_eng_runtime import COMMANDS, _commands, _prepare

CONFIG = EngineConfig(fsync=False)


def _settings(tmp_path: Path, url: str | None = None) -> tuple[Settings, str]:
    settings = Settings.from_env(mesh_env(tmp_path, CFD_MARKET_ADDR="127.0.0.1:9"))
    return settings, url or f"sqlite+aiosqlite:///{tmp_path / 'history.sqlite3'}"


async def _record(url: str, seqs: range) -> None:
    """Write one event row per seq and advance the recorded seq to the last one."""
    store = HistoryStore(create_engine(url))
    await store.create_schema()
    rows = [
        {"account_id": "a", "seq": seq, "idx": 0, "event_type": 1, "time_ns": seq, "data": b"x"}
        for seq in seqs
    ]
    await store.write(Rows(seqs[-1], rows, [], [], []))
    await store.engine.dispose()


async def _history(url: str) -> tuple[int, list[int]]:
    store = HistoryStore(create_engine(url))
    try:
        async with store.engine.connect() as conn:
            seqs = [row.seq for row in await conn.execute(events.select())]
        return await store.recorded_seq(), sorted(seqs)
    finally:
        await store.engine.dispose()


def _flip(path: Path, byte: int) -> bytes:
    data = bytearray(path.read_bytes())
    data[byte] ^= 0x10
    path.write_bytes(bytes(data))
    return bytes(data)


def _digest_through(seq: int) -> str:
    core = Core()
    for command in _commands()[:seq]:
        core.apply(command)
    return core.digest()


async def _start(settings: Settings, url: str) -> EngineRuntime:
    runtime = EngineRuntime(settings, CONFIG, db_url=url)
    try:
        await runtime.start()
    except BaseException:
        await runtime.stop()
        raise
    return runtime


async def test_a_corrupt_tail_is_reported_and_repaired_only_when_the_loss_is_accepted(
    tmp_path: Path, database_url: str
) -> None:
    settings, url = _settings(tmp_path, database_url)
    _prepare(tmp_path, (10,))
    await _record(url, range(COMMANDS - 2, COMMANDS + 1))
    segment = next((tmp_path / "engine" / "journal").glob(f"*{SUFFIX}"))
    damaged = _flip(segment, -2)
    with pytest.raises(JournalCorruptError):
        await _start(settings, url)

    report: list[str] = []
    assert await recover(settings, CONFIG, accept_loss=False, db_url=url, out=report.append) == 1
    text = "\n".join(report)
    assert f"journal: valid through seq {COMMANDS - 1}" in text
    assert "damage: CRC mismatch" in text
    assert f"the recorded history: seq {COMMANDS}" in text
    assert f"lost: the acknowledged commands of seq {COMMANDS}" in text
    assert "nothing changed" in text
    assert segment.read_bytes() == damaged
    assert await _history(url) == (COMMANDS, [COMMANDS - 2, COMMANDS - 1, COMMANDS])

    report.clear()
    assert await recover(settings, CONFIG, accept_loss=True, db_url=url, out=report.append) == 0
    (quarantine,) = (tmp_path / "engine").glob("recovery-*")
    assert (quarantine / "journal" / segment.name).read_bytes() == damaged
    exported = (quarantine / f"history-after-{COMMANDS - 1}.jsonl").read_text().splitlines()
    assert [json.loads(line)["row"]["seq"] for line in exported] == [COMMANDS]
    assert await _history(url) == (COMMANDS - 1, [COMMANDS - 2, COMMANDS - 1])

    runtime = await _start(settings, url)
    try:
        # The state lost the last command, but its seq stays spent.
        assert runtime.core.last_seq == COMMANDS
        assert runtime.core.digest() == _digest_through(COMMANDS - 1)
    finally:
        await runtime.stop()
    report.clear()
    assert await recover(settings, CONFIG, accept_loss=False, db_url=url, out=report.append) == 0
    assert "nothing to recover" in report[-1]


async def test_a_repair_waits_for_the_engine_to_stop(tmp_path: Path) -> None:
    settings, url = _settings(tmp_path)
    _prepare(tmp_path, ())
    await _record(url, range(COMMANDS + 1, COMMANDS + 2))
    journal_dir = tmp_path / "engine" / "journal"
    held = Journal.open(journal_dir, fsync=False)
    report: list[str] = []
    try:
        code = await recover(settings, CONFIG, accept_loss=True, db_url=url, out=report.append)
    finally:
        held.close()
    assert code == 1
    assert "stop the engine first; nothing changed" in report[-1]
    assert await _history(url) == (COMMANDS + 1, [COMMANDS + 1])


async def test_a_valid_snapshot_past_the_damage_recovers_without_loss(tmp_path: Path) -> None:
    settings, url = _settings(tmp_path)
    digest = _prepare(tmp_path, (COMMANDS,))
    await _record(url, range(COMMANDS, COMMANDS + 1))
    journal_dir = tmp_path / "engine" / "journal"
    segment = next(journal_dir.glob(f"*{SUFFIX}"))
    _flip(segment, 100)
    with pytest.raises(JournalCorruptError):
        await _start(settings, url)

    report: list[str] = []
    assert await recover(settings, CONFIG, accept_loss=False, db_url=url, out=report.append) == 0
    assert f"from the snapshot at seq {COMMANDS}" in "\n".join(report)
    assert not any(line.startswith("lost") for line in report)
    assert list(journal_dir.glob(f"*{SUFFIX}")) == []
    runtime = await _start(settings, url)
    try:
        assert runtime.core.last_seq == COMMANDS
        assert runtime.core.digest() == digest
    finally:
        await runtime.stop()


async def test_a_lost_range_past_a_valid_snapshot_is_spent_after_it(tmp_path: Path) -> None:
    settings, url = _settings(tmp_path)
    _prepare(tmp_path, (20,))
    # The journal went; the history and a snapshot saw further than what is left.
    await _record(url, range(COMMANDS, COMMANDS + 1))
    journal_dir = tmp_path / "engine" / "journal"
    for path in journal_dir.iterdir():
        path.unlink()
    with pytest.raises(LostCommandsError, match=f"seqs 21..{COMMANDS} are lost"):
        await _start(settings, url)
    report: list[str] = []
    assert await recover(settings, CONFIG, accept_loss=True, db_url=url, out=report.append) == 0
    assert f"lost: the acknowledged commands of seqs 21..{COMMANDS}" in report
    runtime = await _start(settings, url)
    try:
        assert runtime.core.last_seq == COMMANDS
        assert runtime.core.digest() == _digest_through(20)
    finally:
        await runtime.stop()
    journal = Journal.open(journal_dir, fsync=False)
    assert journal.segments[0].first_seq == 21
    journal.close()


async def test_missing_segments_under_the_mark_are_repaired_from_a_snapshot_that_holds_them(
    tmp_path: Path,
) -> None:
    settings, url = _settings(tmp_path)
    digest = _prepare(tmp_path, (COMMANDS,))
    await _record(url, range(COMMANDS, COMMANDS + 1))
    journal_dir = tmp_path / "engine" / "journal"
    for path in journal_dir.glob(f"*{SUFFIX}"):
        path.unlink()
    with pytest.raises(JournalCorruptError, match=f"seqs 1..{COMMANDS} are missing"):
        await _start(settings, url)
    report: list[str] = []
    assert await recover(settings, CONFIG, accept_loss=False, db_url=url, out=report.append) == 0
    runtime = await _start(settings, url)
    try:
        assert runtime.core.last_seq == COMMANDS
        assert runtime.core.digest() == digest
    finally:
        await runtime.stop()
