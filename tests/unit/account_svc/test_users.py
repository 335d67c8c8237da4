"""Tests for the user store and the signup outbox."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from account_svc.schema import users_table
from account_svc.users import EmailTakenError, PendingAccount, UserStore


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


async def count_users(db: AsyncEngine) -> int:
    async with db.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(users_table))).scalar_one())


async def test_create_then_read_back(db: AsyncEngine) -> None:
    clock = FakeClock()
    store = UserStore(db, clock=clock)
    user = await store.create("alice@example.com", "$argon2id$hash", "5000")
    assert user.email == "alice@example.com"
    assert user.create_time_ms == 1_800_000_000_000
    assert await store.get(user.id) == user
    found = await store.find_by_email("alice@example.com")
    assert found is not None
    assert found.user == user and found.password_hash == "$argon2id$hash"
    assert "argon2" not in repr(found)


async def test_unknown_user_is_none(db: AsyncEngine) -> None:
    store = UserStore(db)
    assert await store.get("no-such-id") is None
    assert await store.find_by_email("nobody@example.com") is None


async def test_duplicate_email_is_refused_and_changes_nothing(db: AsyncEngine) -> None:
    store = UserStore(db)
    first = await store.create("bob@example.com", "h1", "5000")
    with pytest.raises(EmailTakenError):
        await store.create("bob@example.com", "h2", "5000")
    assert await count_users(db) == 1
    assert await store.count_pending_accounts() == 1
    found = await store.find_by_email("bob@example.com")
    assert found is not None and found.user == first and found.password_hash == "h1"


async def test_ids_are_distinct(db: AsyncEngine) -> None:
    store = UserStore(db)
    ids = {(await store.create(f"u{n}@example.com", "h", "1")).id for n in range(5)}
    assert len(ids) == 5


async def test_set_password_hash(db: AsyncEngine) -> None:
    store = UserStore(db)
    user = await store.create("carol@example.com", "old", "5000")
    await store.set_password_hash(user.id, "new")
    found = await store.find_by_email("carol@example.com")
    assert found is not None and found.password_hash == "new"


async def test_signup_writes_an_outbox_entry_until_completed(db: AsyncEngine) -> None:
    store = UserStore(db)
    user = await store.create("dave@example.com", "h", "5000.5")
    assert await store.pending_account(user.id) == PendingAccount(user.id, "5000.5", 0)
    assert await store.due_accounts(10) == [PendingAccount(user.id, "5000.5", 0)]
    await store.complete_account(user.id)
    assert await store.pending_account(user.id) is None
    assert await store.due_accounts(10) == []
    await store.complete_account(user.id)


async def test_postponed_entry_is_due_again_after_the_delay(db: AsyncEngine) -> None:
    clock = FakeClock()
    store = UserStore(db, clock=clock)
    user = await store.create("erin@example.com", "h", "5000")
    await store.postpone_account(user.id, "engine down " * 50, 4.0)
    assert await store.due_accounts(10) == []
    clock.now += 3.999
    assert await store.due_accounts(10) == []
    clock.now += 0.001
    assert await store.due_accounts(10) == [PendingAccount(user.id, "5000", 1)]


async def test_due_accounts_are_oldest_first_and_limited(db: AsyncEngine) -> None:
    clock = FakeClock()
    store = UserStore(db, clock=clock)
    users = []
    for n in range(3):
        users.append(await store.create(f"f{n}@example.com", "h", "5000"))
        clock.now += 1
    due = await store.due_accounts(2)
    assert [p.user_id for p in due] == [users[0].id, users[1].id]
