"""One suite for both journals: the local segment files and the replicated JetStream stream
must append, read back, refuse and recover to the same state and digest."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from nats_support import NatsCluster

from engine_svc.config import EngineConfig
from engine_svc.core import ApplyQuote, Command, Core, CreateAccount, Deposit, PlaceOrder
from engine_svc.core.codec import encode_command
from engine_svc.core.enums import OrderType, Side
from engine_svc.jetstream import JetStreamJournal
from engine_svc.journal import CommandLog, Journal, JournalError
from engine_svc.recorder_runtime import RecorderRuntime, run_recorder
from engine_svc.runtime import EngineRuntime
from engine_svc.snapshots import SnapshotStore
from mesh.config import Settings
from support import mesh_env

OpenJournal = Callable[[], CommandLog]


@pytest.fixture(params=["file", pytest.param("jetstream", marks=pytest.mark.nats)])
def journal_kind(request: pytest.FixtureRequest) -> str:
    """Return each journal implementation's name in turn."""
    kind: str = request.param
    return kind


@pytest.fixture
def stream() -> str:
    """Return a stream name of its own for each test."""
    return f"T_{uuid.uuid4().hex[:10].upper()}"


@pytest.fixture
def config(journal_kind: str, stream: str, request: pytest.FixtureRequest) -> EngineConfig:
    """Return an engine configuration selecting the journal under test."""
    if journal_kind == "file":
        return EngineConfig(fsync=False)
    cluster: NatsCluster = request.getfixturevalue("nats_cluster")
    return EngineConfig(journal_url=cluster.url, journal_stream=stream, journal_replicas=3)


@pytest.fixture
def open_journal(config: EngineConfig, tmp_path: Path) -> OpenJournal:
    """Return a function opening (again) the same journal of the kind under test."""

    def opener() -> CommandLog:
        if config.journal_url:
            return JetStreamJournal.open(config.journal_url, config.journal_stream, 3)
        return Journal.open(tmp_path / "engine" / "journal", fsync=False)

    return opener


def _records(first: int, count: int) -> list[tuple[int, bytes]]:
    return [(seq, f"command {seq}".encode()) for seq in range(first, first + count)]


def _commands(count: int) -> list[Command]:
    commands: list[Command] = [
        CreateAccount(1, 1, "a", 1_000_000),
        ApplyQuote(2, 2, "BTCUSD", 6_425_000, 6_425_100),
    ]
    for seq in range(3, count + 1):
        if seq % 3:
            commands.append(Deposit(seq, seq, "a", seq))
        else:
            price = 6_000_000 + seq
            order = PlaceOrder(seq, seq, "a", "BTCUSD", Side.BUY, OrderType.LIMIT, price, 10, 1)
            commands.append(order)
    return commands


def test_appended_records_read_back_in_order_after_reopening(open_journal: OpenJournal) -> None:
    journal = open_journal()
    journal.append(_records(1, 3))
    journal.append(_records(4, 2))
    assert journal.last_seq == 5
    journal.close()
    reopened = open_journal()
    try:
        assert list(reopened.read()) == _records(1, 5)
        assert list(reopened.read(3)) == _records(4, 2)
        assert reopened.last_seq == 5
        assert reopened.mark is not None and reopened.mark.seq == 5
        assert reopened.covers(0) and reopened.segment_count == 1
        reopened.append(_records(6, 1))
        assert [seq for seq, _ in reopened.read(5)] == [6]
    finally:
        reopened.close()


def test_a_read_from_the_middle_of_many_batches_starts_at_the_right_record(
    open_journal: OpenJournal,
) -> None:
    journal = open_journal()
    try:
        for first in range(1, 400, 7):
            journal.append(_records(first, 7))
        last = journal.last_seq
        for after in (0, 1, 6, 7, 200, 203, last - 1, last):
            assert [seq for seq, _ in journal.read(after)] == list(range(after + 1, last + 1))
    finally:
        journal.close()


def test_a_seq_that_does_not_follow_is_refused_and_changes_nothing(
    open_journal: OpenJournal,
) -> None:
    journal = open_journal()
    try:
        journal.append(_records(1, 2))
        with pytest.raises(JournalError, match="does not follow"):
            journal.append(_records(2, 1))
        assert journal.last_seq == 2
        assert list(journal.read()) == _records(1, 2)
    finally:
        journal.close()


def _write(journal: CommandLog, commands: list[Command], snapshots: SnapshotStore) -> str:
    core = Core()
    for command in commands:
        core.apply(command)
        journal.append([(command.seq, encode_command(command))])
        if command.seq == 20:
            snapshots.write(command.seq, command.seq, core.digest(), core.snapshot())
    journal.close()
    return core.digest()


async def test_recovery_replays_to_the_same_digest_on_either_journal(
    open_journal: OpenJournal,
    config: EngineConfig,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    commands = _commands(60)
    snapshots = SnapshotStore(tmp_path / "engine" / "snapshots", fsync=False)
    digest = _write(open_journal(), commands, snapshots)
    expected = Core()
    for command in commands:
        expected.apply(command)
    assert digest == expected.digest()
    settings = Settings.from_env(mesh_env(tmp_path, CFD_MARKET_ADDR="127.0.0.1:9"))
    url = f"sqlite+aiosqlite:///{tmp_path / 'history.sqlite3'}"
    runtime = EngineRuntime(settings, config, db_url=url)
    try:
        with caplog.at_level(logging.INFO, logger="engine"):
            await runtime.start()
        # The replicated journal's new leader appends one batch at once (its fence).
        assert runtime.core.last_seq == (61 if config.journal_url else 60)
        # The newest snapshot: the engine no longer replays for the recorder.
        assert "recovered to seq 60 from snapshot 20: replayed 40 commands" in caplog.text
        assert f"digest {digest}" in caplog.text
        # The recorder process follows either journal to the end and writes the history.
        recorder = RecorderRuntime(settings, config, db_url=url, poll_s=0.005)
        recording = asyncio.create_task(run_recorder(recorder))
        try:
            assert await runtime.progress.wait_recorded(runtime.core.last_seq, 20)
            assert recorder.journal_seq == runtime.core.last_seq
            # It replayed from the start: it had recorded nothing.
            assert recorder.base_seq == 0
        finally:
            recorder.stopping.set()
            await asyncio.wait_for(recording, 30)
    finally:
        # Bounded: a stop waiting on a task that never ends must fail the test, not hang it.
        await asyncio.wait_for(runtime.stop(), 30)
