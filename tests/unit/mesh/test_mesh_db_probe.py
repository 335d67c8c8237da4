"""The database probe behind the health of the accounts service and the engine's history."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mesh.db import DatabaseProbe, create_engine
from support import free_port


async def test_a_database_that_answers_is_reachable(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'probe.db'}")
    try:
        assert await DatabaseProbe(engine).check()
    finally:
        await engine.dispose()


async def test_a_database_that_refuses_is_reported_once_and_probed_again_when_due(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = create_engine(f"postgresql+psycopg://cfd:cfd@127.0.0.1:{free_port()}/cfd")
    probe = DatabaseProbe(engine, interval_s=0.0, timeout_s=5.0)
    try:
        with caplog.at_level(logging.WARNING, logger="mesh.db"):
            assert not await probe.check()
            assert not await probe.check()
    finally:
        await engine.dispose()
    warnings = [r for r in caplog.records if r.getMessage().startswith("the database does not")]
    assert len(warnings) == 1


async def test_between_probes_the_last_answer_stands(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'probe.db'}")
    probe = DatabaseProbe(engine, interval_s=3600.0)
    try:
        assert await probe.check()
        await engine.dispose()
        probe.reachable = False
        assert not await probe.check()
    finally:
        await engine.dispose()
