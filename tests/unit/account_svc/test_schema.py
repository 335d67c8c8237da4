"""Tests for the versioned accounts schema."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import inspect, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from account_svc.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    migrate,
    provisioning_table,
    refresh_families_table,
    schema_version_table,
    users_table,
)
from account_svc.sessions import SqlRefreshTokenStore
from account_svc.users import UserStore, assign_shard
from mesh.db import SchemaVersionError


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def stored_version(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(schema_version_table.c.version))).scalar_one())


async def test_migrate_creates_every_table_from_scratch(bare_db: AsyncEngine) -> None:
    assert await migrate(bare_db) == 0
    assert await table_names(bare_db) == {
        "account_schema_version",
        "account_users",
        "account_provisioning",
        "account_refresh_families",
        "account_refresh_tokens",
        "account_access_tokens",
        "account_session_details",
        "account_totp",
        "account_recovery_codes",
        "account_email_verifications",
        "account_email_tokens",
        "account_email_outbox",
        "account_notification_settings",
        "account_notification_cursors",
        "account_identities",
        "account_oidc_requests",
        "account_signin_tickets",
    }
    assert await stored_version(bare_db) == SCHEMA_VERSION


async def test_migrate_is_idempotent(bare_db: AsyncEngine) -> None:
    await migrate(bare_db)
    assert await migrate(bare_db) == SCHEMA_VERSION
    assert await stored_version(bare_db) == SCHEMA_VERSION


async def test_newer_database_is_refused(bare_db: AsyncEngine) -> None:
    await migrate(bare_db)
    async with bare_db.begin() as conn:
        await conn.execute(update(schema_version_table).values(version=SCHEMA_VERSION + 1))
    with pytest.raises(SchemaVersionError, match="newer"):
        await migrate(bare_db)
    assert await stored_version(bare_db) == SCHEMA_VERSION + 1


async def test_concurrent_first_starts_migrate_once(bare_db: AsyncEngine) -> None:
    if bare_db.dialect.name != "postgresql":
        pytest.skip("one accounts process per SQLite file")
    found = await asyncio.gather(*(migrate(bare_db) for _ in range(4)))
    assert sorted(found) == [0] + [SCHEMA_VERSION] * 3
    assert await stored_version(bare_db) == SCHEMA_VERSION


async def test_a_version_1_database_gains_the_access_tokens_table(bare_db: AsyncEngine) -> None:
    async with bare_db.begin() as conn:
        await conn.run_sync(MIGRATIONS[0])
        await conn.run_sync(schema_version_table.create)
        await conn.execute(schema_version_table.insert().values(id=1, version=1))
        user = {"id": "u1", "email": "a@b.cd", "password_hash": "h", "create_time_ms": 1}
        await conn.execute(users_table.insert().values(**user))
    assert await migrate(bare_db) == 1
    assert "account_access_tokens" in await table_names(bare_db)
    async with bare_db.connect() as conn:
        assert (await conn.execute(select(users_table.c.email))).scalars().all() == ["a@b.cd"]


async def test_sessions_opened_before_version_3_are_listed(bare_db: AsyncEngine) -> None:
    async with bare_db.begin() as conn:
        for step in MIGRATIONS[:2]:
            await conn.run_sync(step)
        await conn.run_sync(schema_version_table.create)
        await conn.execute(schema_version_table.insert().values(id=1, version=2))
        user = {"id": "u1", "email": "a@b.cd", "password_hash": "h", "create_time_ms": 1}
        await conn.execute(users_table.insert().values(**user))
        family = {
            "id": "f1",
            "user_id": "u1",
            "revoked": False,
            "create_time_ms": 5_000,
            "expire_time_ms": 2**62,
        }
        await conn.execute(refresh_families_table.insert().values(**family))
    assert await migrate(bare_db) == 2
    (listed,) = await SqlRefreshTokenStore(bare_db).list_sessions("u1")
    assert (listed.id, listed.last_use_ms, listed.client_address) == ("f1", 5_000, "")


async def _database_at(
    engine: AsyncEngine,
    version: int,
    missing_column: str,
    pending: dict[str, object],
    table: str = "account_provisioning",
) -> None:
    """Build the accounts schema as `version` created it, before `table` had
    `missing_column`, with user u1 and its outbox row `pending`."""
    async with engine.begin() as conn:
        for step in MIGRATIONS[:version]:
            await conn.run_sync(step)
        await conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {missing_column}"))
        await conn.run_sync(schema_version_table.create)
        await conn.execute(schema_version_table.insert().values(id=1, version=version))
        user = {"id": "u1", "email": "a@b.cd", "password_hash": "h", "create_time_ms": 1}
        await conn.execute(users_table.insert().values(**user))
        row = {"user_id": "u1", "initial_balance": "5000", "attempts": 0, "next_attempt_ms": 1}
        await conn.execute(provisioning_table.insert().values(**row, **pending))


async def test_a_version_4_database_gains_the_margin_mode_column(bare_db: AsyncEngine) -> None:
    await _database_at(bare_db, 4, "margin_mode", {})
    assert await migrate(bare_db) == 4
    users = UserStore(bare_db)
    old = await users.pending_account("u1")
    assert old is not None and old.margin_mode == ""
    created = await users.create("e@f.gh", "h", "5000", "MARGIN_MODE_CROSS")
    new = await users.pending_account(created.id)
    assert new is not None and new.margin_mode == "MARGIN_MODE_CROSS"


async def test_a_version_7_database_gains_the_signin_tickets_table(bare_db: AsyncEngine) -> None:
    async with bare_db.begin() as conn:
        for step in MIGRATIONS[:7]:
            await conn.run_sync(step)
        await conn.run_sync(schema_version_table.create)
        await conn.execute(schema_version_table.insert().values(id=1, version=7))
    assert "account_signin_tickets" not in await table_names(bare_db)
    assert await migrate(bare_db) == 7
    assert "account_signin_tickets" in await table_names(bare_db)
    assert await stored_version(bare_db) == SCHEMA_VERSION == 10


async def test_a_version_8_database_gains_the_position_mode_column(bare_db: AsyncEngine) -> None:
    await _database_at(bare_db, 8, "position_mode", {"margin_mode": "MARGIN_MODE_CROSS"})
    assert await migrate(bare_db) == 8
    users = UserStore(bare_db)
    old = await users.pending_account("u1")
    assert old is not None and (old.margin_mode, old.position_mode) == ("MARGIN_MODE_CROSS", "")
    created = await users.create("e@f.gh", "h", "5000", "", position_mode="POSITION_MODE_NETTING")
    new = await users.pending_account(created.id)
    assert new is not None and new.position_mode == "POSITION_MODE_NETTING"
    (due,) = [p for p in await users.due_accounts(10) if p.user_id == created.id]
    assert due.position_mode == "POSITION_MODE_NETTING"
    assert await stored_version(bare_db) == SCHEMA_VERSION


async def test_a_version_9_database_gains_the_shard_column(bare_db: AsyncEngine) -> None:
    await _database_at(bare_db, 9, "shard", {}, table="account_users")
    assert await migrate(bare_db) == 9
    users = UserStore(bare_db, shards=4)
    old = await users.get("u1")
    assert old is not None and old.shard == 0
    assert await users.shard_of("u1") == 0
    created = await users.create("e@f.gh", "h", "5000")
    assert created.shard == assign_shard(created.id, 4)
    assert await users.shard_of(created.id) == created.shard
    (due,) = [p for p in await users.due_accounts(10) if p.user_id == created.id]
    assert due.shard == created.shard
    assert await stored_version(bare_db) == SCHEMA_VERSION
