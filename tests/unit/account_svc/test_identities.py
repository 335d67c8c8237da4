"""Tests for the linked identities and the authorization requests in flight."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from account_svc.identities import (
    REQUEST_TTL_S,
    AuthorizationRequest,
    IdentityStore,
    IdentityTakenError,
    LinkedIdentity,
)
from account_svc.schema import oidc_requests_table
from account_svc.users import UserStore
from unit.account_svc.test_users import FakeClock

REQUEST = AuthorizationRequest("google", None, "nonce-1", "verifier-1", "/#/security")


async def test_a_state_is_taken_once(db: AsyncEngine) -> None:
    store = IdentityStore(db)
    await store.save_request("state-1", REQUEST)

    assert await store.take_request("state-1") == REQUEST
    assert await store.take_request("state-1") is None
    assert await store.take_request("never-issued") is None
    assert "nonce-1" not in repr(REQUEST) and "verifier-1" not in repr(REQUEST)


async def test_only_the_states_hash_is_stored(db: AsyncEngine) -> None:
    await IdentityStore(db).save_request("state-in-the-url", REQUEST)

    async with db.connect() as conn:
        keys = (await conn.execute(select(oidc_requests_table.c.state_hash))).scalars().all()
    assert len(keys) == 1 and "state-in-the-url" not in keys[0]


async def test_an_expired_state_is_refused_and_purged(db: AsyncEngine) -> None:
    clock = FakeClock()
    store = IdentityStore(db, clock=clock)
    await store.save_request("late", REQUEST)
    await store.save_request("purged", REQUEST)
    clock.now += REQUEST_TTL_S

    assert await store.take_request("late") is None
    assert await store.purge_requests() == 1
    assert await store.take_request("purged") is None


async def test_one_identity_per_provider_and_user(db: AsyncEngine) -> None:
    clock = FakeClock()
    users = UserStore(db, clock=clock)
    alice = await users.create("alice@example.com", "", "5000")
    bob = await users.create("bob@example.com", "", "5000")
    store = IdentityStore(db, clock=clock)
    await store.link(alice.id, "github", "42", "alice@example.org")

    with pytest.raises(IdentityTakenError):
        await store.link(bob.id, "github", "42", "bob@example.org")
    with pytest.raises(IdentityTakenError):
        await store.link(alice.id, "github", "43", "alice@example.net")
    await store.link(alice.id, "google", "g-1", "alice@example.com")

    assert await store.user_of("github", "42") == alice.id
    assert await store.user_of("github", "43") is None
    assert await store.list(alice.id) == [
        LinkedIdentity("github", "42", "alice@example.org", 1_800_000_000_000),
        LinkedIdentity("google", "g-1", "alice@example.com", 1_800_000_000_000),
    ]
    assert await store.unlink(alice.id, "github")
    assert not await store.unlink(alice.id, "github")
    assert await store.list(bob.id) == []
