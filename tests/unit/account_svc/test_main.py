"""Tests for the accounts service wiring."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

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
