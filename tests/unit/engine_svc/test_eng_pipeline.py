"""Committed batches to their consumers: in order, once numbered, and a failure stops the engine."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from engine_svc.config import EngineConfig
from engine_svc.core import Core, CreateAccount, Deposit
from engine_svc.pipeline import CommittedBatch, CommittedBatches
from engine_svc.runtime import EngineRuntime
from engine_svc.sequencer import Applied
from mesh.config import Settings
from support import mesh_env


def _applied(*commands: CreateAccount | Deposit) -> list[Applied]:
    core = Core()
    return [(command, core.apply(command)) for command in commands]


def test_every_consumer_gets_the_batch_in_order_with_its_events_numbered_once() -> None:
    seen: list[tuple[str, CommittedBatch]] = []
    failures: list[BaseException] = []
    committed = CommittedBatches(
        [
            ("first", lambda b: seen.append(("first", b))),
            ("second", lambda b: seen.append(("second", b))),
        ],
        failures.append,
    )
    committed(_applied(CreateAccount(1, 10, "a", 1_000), Deposit(2, 20, "a", 5)))
    assert [name for name, _ in seen] == ["first", "second"]
    assert seen[0][1] is seen[1][1]
    batch = seen[0][1]
    assert batch.last_seq == 2
    assert [(account, item.seq, item.idx) for account, item in batch.events] == [
        ("a", 1, 0),
        ("a", 2, 0),
    ]
    committed([])
    assert len(seen) == 2
    assert failures == [] and committed.broken == {}


def test_a_consumer_that_raises_is_reported_and_stops_the_engine_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    after: list[int] = []
    failures: list[BaseException] = []

    def broken(_batch: CommittedBatch) -> None:
        raise ValueError("no such column")

    committed = CommittedBatches(
        [("market hub", broken), ("stream hub", lambda b: after.append(b.last_seq))],
        failures.append,
    )
    with caplog.at_level(logging.CRITICAL, logger="engine.pipeline"):
        committed(_applied(CreateAccount(1, 10, "a", 1_000)))
        committed(_applied(CreateAccount(1, 10, "b", 1_000)))
    # The others still get every batch while the engine drains; the broken one no more.
    assert after == [1, 1]
    assert caplog.text.count("stopping the engine") == 1
    assert committed.broken == {"market hub": "ValueError: no such column"}
    assert [str(exc) for exc in failures] == ["the market hub failed: no such column"]
    assert "the market hub failed on the batch up to seq 1; stopping the engine" in caplog.text


async def test_a_failing_consumer_fails_the_runtime_like_a_failing_journal(tmp_path: Path) -> None:
    settings = Settings.from_env(mesh_env(tmp_path, CFD_MARKET_ADDR="127.0.0.1:9"))
    url = f"sqlite+aiosqlite:///{tmp_path / 'history.sqlite3'}"
    runtime = EngineRuntime(settings, EngineConfig(fsync=False), db_url=url)
    await runtime.start()
    try:
        # The SQL history is not among them: `cfd recorder` writes it from the journal.
        assert [name for name, _ in runtime.committed.consumers] == [
            "stream hub",
            "market hub",
            "snapshot trigger",
        ]
        assert runtime.failing_consumers() == []

        def broken(_batch: CommittedBatch) -> None:
            raise RuntimeError("disk full")

        runtime.committed.consumers[0] = ("stream hub", broken)
        assert runtime.sequencer is not None
        result = await runtime.sequencer.submit(CreateAccount(0, 0, "a", 1_000))
        # The batch is committed (journalled and applied) before any consumer sees it.
        assert result.ok
        assert runtime.failed.is_set()
        assert runtime.failure == "the stream hub failed: disk full"
        assert runtime.failing_consumers() == ["stream hub"]
    finally:
        await runtime.stop()
