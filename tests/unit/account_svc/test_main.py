"""Tests for the accounts service wiring."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from account_svc import main
from account_svc.main import open_database
from account_svc.schema import migrate, users_table
from mesh.config import Settings


async def test_database_errors_do_not_quote_hashes(tmp_path: Path) -> None:
    settings = Settings.from_env({"CFD_DATA_DIR": str(tmp_path)})
    engine = open_database(settings)
    try:
        await migrate(engine)
        row = {"id": "u1", "email": "a@example.com", "create_time_ms": 1}
        async with engine.begin() as conn:
            await conn.execute(users_table.insert().values(**row, password_hash="$argon2id$one"))
        with pytest.raises(IntegrityError) as info:
            async with engine.begin() as conn:
                await conn.execute(
                    users_table.insert().values(**row, password_hash="$argon2id$SECRET")
                )
        assert "SECRET" not in str(info.value)
        assert (tmp_path / "accounts.sqlite3").exists()
    finally:
        await engine.dispose()


async def test_a_close_that_hangs_is_left_behind_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(main, "CLOSE_TIMEOUT_S", 0.05)
    closed: list[str] = []

    async def hangs() -> None:
        await asyncio.Event().wait()

    async def closes() -> None:
        closed.append("yes")

    with caplog.at_level(logging.WARNING, logger="account_svc.main"):
        await asyncio.wait_for(main._close_within("stuck pool", hangs), 5)
        await main._close_within("quick pool", closes)
    assert closed == ["yes"]
    assert [r.getMessage() for r in caplog.records] == [
        "stuck pool did not close within 0s; exiting without it"
    ]
