"""Tests for refresh token stores: one suite for SQL (SQLite, PostgreSQL) and Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from account_svc.schema import migrate, refresh_tokens_table
from account_svc.sessions import (
    Origin,
    RedisRefreshTokenStore,
    RefreshTokenStore,
    SqlRefreshTokenStore,
    token_hash,
)
from account_svc.users import UserStore
from mesh.db import create_engine
from mesh.errors import ApiError
from mesh.revocation import IssuedToken
from support import until

StoreFactory = Callable[[int], RefreshTokenStore]


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@dataclass
class Backend:
    """Stores on one backend, a user to own the sessions, and a way to let time pass."""

    make_store: StoreFactory
    user_id: str
    advance: Callable[[float], Awaitable[None]]


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Return the URL of each store backend in turn."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'accounts.sqlite3'}"
    url: str = request.getfixturevalue(
        "postgres_url" if request.param == "postgres" else "redis_url"
    )
    return url


@pytest.fixture
async def backend(backend_url: str) -> AsyncIterator[Backend]:
    stores: list[RefreshTokenStore] = []
    if not backend_url.startswith("redis"):
        clock = FakeClock()
        db = create_engine(backend_url)
        try:
            await migrate(db)
            user = await UserStore(db).create("owner@example.com", "h", "5000")

            def make_sql(ttl_s: int) -> RefreshTokenStore:
                stores.append(SqlRefreshTokenStore(db, ttl_s=ttl_s, clock=clock))
                return stores[-1]

            async def advance_clock(seconds: float) -> None:
                clock.now += seconds

            yield Backend(make_sql, user.id, advance_clock)
            for store in stores:
                await store.aclose()
        finally:
            await db.dispose()
        return
    url = backend_url
    prefix = f"test:{uuid.uuid4().hex}:"
    client = redis.asyncio.Redis.from_url(url)

    def make_redis(ttl_s: int) -> RefreshTokenStore:
        stores.append(RedisRefreshTokenStore.from_url(url, ttl_s=ttl_s, prefix=prefix))
        return stores[-1]

    async def wait_redis_clock(seconds: float) -> None:
        # The Redis store judges expiry by the server clock: poll it until it moved on.
        start = await redis_time(client)

        async def advanced() -> bool:
            return await redis_time(client) >= start + seconds

        await until(advanced, within=seconds + 5, interval=0.02)

    yield Backend(make_redis, str(uuid.uuid4()), wait_redis_clock)
    for store in stores:
        await store.aclose()
    await client.aclose()


async def redis_time(client: redis.asyncio.Redis) -> float:
    seconds, micros = await client.time()
    return seconds + micros / 1e6


@pytest.fixture
async def user_id(db: AsyncEngine) -> str:
    """Return the id of a stored user (SQL families reference their user)."""
    return (await UserStore(db).create("owner@example.com", "h", "5000")).id


async def reason(awaitable: object) -> str:
    with pytest.raises(ApiError) as info:
        await awaitable  # type: ignore[misc]
    return info.value.reason


async def test_rotation_returns_the_user_and_a_new_token(backend: Backend) -> None:
    store = backend.make_store(3600)
    first = await store.create(backend.user_id)
    rotation = await store.rotate(first)
    assert rotation.user_id == backend.user_id
    assert rotation.refresh_token != first
    assert len(rotation.refresh_token) >= 43
    assert first not in repr(rotation) and rotation.refresh_token not in repr(rotation)
    again = await store.rotate(rotation.refresh_token)
    assert again.user_id == backend.user_id


async def test_reusing_a_spent_token_revokes_the_family(backend: Backend) -> None:
    store = backend.make_store(3600)
    first = await store.create(backend.user_id)
    second = (await store.rotate(first)).refresh_token
    assert await reason(store.rotate(first)) == "TOKEN_INVALID"
    # The legitimate holder's newer token died with the family.
    assert await reason(store.rotate(second)) == "TOKEN_INVALID"


async def test_other_families_survive_a_reuse(backend: Backend) -> None:
    store = backend.make_store(3600)
    stolen = await store.create(backend.user_id)
    other_device = await store.create(backend.user_id)
    await store.rotate(stolen)
    await reason(store.rotate(stolen))
    assert (await store.rotate(other_device)).user_id == backend.user_id


async def test_revoke_ends_the_session(backend: Backend) -> None:
    store = backend.make_store(3600)
    first = await store.create(backend.user_id)
    second = (await store.rotate(first)).refresh_token
    await store.revoke(second)
    assert await reason(store.rotate(second)) == "TOKEN_INVALID"


async def test_revoking_a_spent_token_revokes_its_family(backend: Backend) -> None:
    store = backend.make_store(3600)
    first = await store.create(backend.user_id)
    second = (await store.rotate(first)).refresh_token
    await store.revoke(first)
    assert await reason(store.rotate(second)) == "TOKEN_INVALID"


async def test_revoking_unknown_tokens_is_harmless(backend: Backend) -> None:
    store = backend.make_store(3600)
    token = await store.create(backend.user_id)
    for garbage in ["", "nope", "x" * 1000]:
        await store.revoke(garbage)
    assert (await store.rotate(token)).user_id == backend.user_id


# Expiry times in Unix seconds past and beyond both the SQL fake clock and the real one.
LIVE_S, EXPIRED_S = 2_000_000_000, 1_000_000_000


async def test_revoking_a_session_returns_its_live_access_tokens(backend: Backend) -> None:
    store = backend.make_store(3600)
    first = await store.create(backend.user_id)
    await store.add_access_token(first, IssuedToken("a-1", LIVE_S))
    await store.add_access_token(first, IssuedToken("a-old", EXPIRED_S))
    second = (await store.rotate(first)).refresh_token
    await store.add_access_token(second, IssuedToken("a-2", LIVE_S + 1))
    other = await store.create(backend.user_id)
    await store.add_access_token(other, IssuedToken("b-1", LIVE_S))
    revoked = await store.revoke(second)
    assert sorted(revoked, key=lambda t: t.token_id) == [
        IssuedToken("a-1", LIVE_S),
        IssuedToken("a-2", LIVE_S + 1),
    ]
    # Revoking again returns them again, so a failed publication can be retried.
    assert sorted(await store.revoke(first), key=lambda t: t.token_id) == sorted(
        revoked, key=lambda t: t.token_id
    )
    assert await store.revoke("never-issued") == []
    assert await store.revoke(other) == [IssuedToken("b-1", LIVE_S)]


async def test_no_access_token_joins_a_revoked_or_unknown_session(backend: Backend) -> None:
    store = backend.make_store(3600)
    token = await store.create(backend.user_id)
    await store.revoke(token)
    for refresh in (token, "never-issued"):
        assert await reason(store.add_access_token(refresh, IssuedToken("late", LIVE_S))) == (
            "TOKEN_INVALID"
        )
    assert await store.revoke(token) == []


@pytest.mark.parametrize("garbage", ["", "nope", "x" * 1000, "\u00e9" * 10])
async def test_unknown_tokens_are_invalid(backend: Backend, garbage: str) -> None:
    store = backend.make_store(3600)
    await store.create(backend.user_id)
    assert await reason(store.rotate(garbage)) == "TOKEN_INVALID"


async def test_concurrent_refreshes_with_one_token_let_at_most_one_through(
    backend: Backend,
) -> None:
    store = backend.make_store(3600)
    token = await store.create(backend.user_id)
    results = await asyncio.gather(*(store.rotate(token) for _ in range(5)), return_exceptions=True)
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, ApiError)]
    assert len(winners) <= 1
    assert len(winners) + len(losers) == 5
    assert all(e.reason == "TOKEN_INVALID" for e in losers)
    # Any loser is a reuse, which revokes the family, the winner's token included.
    for winner in winners:
        assert await reason(store.rotate(winner.refresh_token)) == "TOKEN_INVALID"


async def test_expired_token_is_reported_expired(backend: Backend) -> None:
    store = backend.make_store(1)
    token = await store.create(backend.user_id)
    await backend.advance(1.01)
    assert await reason(store.rotate(token)) == "TOKEN_EXPIRED"


async def test_rotation_renews_the_lifetime(backend: Backend) -> None:
    store = backend.make_store(2)
    token = await store.create(backend.user_id)
    await backend.advance(1.2)
    token = (await store.rotate(token)).refresh_token
    await backend.advance(1.2)
    assert (await store.rotate(token)).user_id == backend.user_id


async def test_a_store_shares_state_with_another_instance(backend: Backend) -> None:
    one, two = backend.make_store(3600), backend.make_store(3600)
    first = await one.create(backend.user_id)
    second = (await two.rotate(first)).refresh_token
    assert await reason(one.rotate(first)) == "TOKEN_INVALID"
    assert await reason(two.rotate(second)) == "TOKEN_INVALID"


async def test_sql_tokens_are_stored_hashed(db: AsyncEngine, user_id: str) -> None:
    store = SqlRefreshTokenStore(db)
    token = await store.create(user_id)
    async with db.connect() as conn:
        stored = (await conn.execute(select(refresh_tokens_table.c.token_hash))).scalars().all()
    assert stored == [token_hash(token)]
    assert token not in stored


async def test_sql_expiry_is_exact(db: AsyncEngine, user_id: str) -> None:
    clock = FakeClock()
    store = SqlRefreshTokenStore(db, ttl_s=100, clock=clock)
    token = await store.create(user_id)
    clock.now += 99.999
    token = (await store.rotate(token)).refresh_token
    clock.now += 100
    assert await reason(store.rotate(token)) == "TOKEN_EXPIRED"


async def test_sql_purge_forgets_only_long_expired_tokens(db: AsyncEngine, user_id: str) -> None:
    clock = FakeClock()
    store = SqlRefreshTokenStore(db, ttl_s=100, retention_s=50, clock=clock)
    old = await store.create(user_id)
    clock.now += 120
    fresh = await store.create(user_id)
    assert await store.purge() == 0
    clock.now += 31
    assert await store.purge() == 1
    assert await reason(store.rotate(old)) == "TOKEN_INVALID"
    assert (await store.rotate(fresh)).user_id == user_id


async def test_redis_keys_expire_and_hold_no_raw_token(redis_url: str) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    store = RedisRefreshTokenStore.from_url(redis_url, ttl_s=60, retention_s=30, prefix=prefix)
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    try:
        token = await store.create(str(uuid.uuid4()))
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        # The token, its family, the family's details and the user's set of families.
        assert len(keys) == 4
        for key in keys:
            assert token not in key
            assert 80_000 < await client.pttl(key) <= 90_000
        values = await client.hgetall(f"{prefix}token:{token_hash(token)}")
        assert token not in str(values)
    finally:
        await store.aclose()
        await client.aclose()


async def test_stores_refuse_nonsense_lifetimes(db: AsyncEngine) -> None:
    with pytest.raises(ValueError):
        SqlRefreshTokenStore(db, ttl_s=0)
    with pytest.raises(ValueError):
        SqlRefreshTokenStore(db, retention_s=-1)


async def test_redis_outage_is_service_unavailable() -> None:
    # Port 1 on loopback refuses connections: the store is down.
    store = RedisRefreshTokenStore.from_url("redis://127.0.0.1:1/0")
    try:
        assert await reason(store.create("u")) == "SERVICE_UNAVAILABLE"
        assert await reason(store.rotate("some-token")) == "SERVICE_UNAVAILABLE"
        assert await reason(store.revoke("some-token")) == "SERVICE_UNAVAILABLE"
    finally:
        await store.aclose()


async def test_sessions_are_listed_newest_first_with_their_origin(backend: Backend) -> None:
    store = backend.make_store(3600)
    older = await store.create(backend.user_id, Origin("203.0.113.9", "Firefox/140"))
    await backend.advance(0.01)
    newer = await store.create(backend.user_id, Origin("198.51.100.7", "x" * 1000))
    listed = await store.list_sessions(backend.user_id)
    assert [(s.client_address, s.user_agent) for s in listed] == [
        ("198.51.100.7", "x" * 256),
        ("203.0.113.9", "Firefox/140"),
    ]
    assert listed[0].create_time_ms >= listed[1].create_time_ms
    assert all(s.last_use_ms == s.create_time_ms for s in listed)
    assert await store.list_sessions("someone-else") == []
    await store.revoke(newer)
    assert [s.client_address for s in await store.list_sessions(backend.user_id)] == [
        "203.0.113.9"
    ]
    await store.revoke(older)
    assert await store.list_sessions(backend.user_id) == []


async def test_a_refresh_records_the_last_use(backend: Backend) -> None:
    store = backend.make_store(3600)
    token = await store.create(backend.user_id)
    await backend.advance(0.05)
    await store.rotate(token)
    (listed,) = await store.list_sessions(backend.user_id)
    assert listed.last_use_ms >= listed.create_time_ms + 50


async def test_expired_sessions_are_not_listed(backend: Backend) -> None:
    store = backend.make_store(1)
    await store.create(backend.user_id)
    await backend.advance(1.01)
    assert await store.list_sessions(backend.user_id) == []


async def test_an_access_token_names_its_session(backend: Backend) -> None:
    store = backend.make_store(3600)
    token = await store.create(backend.user_id)
    await store.add_access_token(token, IssuedToken("jti-1", LIVE_S))
    (listed,) = await store.list_sessions(backend.user_id)
    assert await store.session_of_access_token("jti-1") == listed.id
    assert await store.session_of_access_token("jti-unknown") is None


async def test_a_session_is_revoked_by_id_only_by_its_owner(backend: Backend) -> None:
    store = backend.make_store(3600)
    token = await store.create(backend.user_id)
    await store.add_access_token(token, IssuedToken("jti-1", LIVE_S))
    other = await store.create(backend.user_id)
    mine = {s.id for s in await store.list_sessions(backend.user_id)}
    (session_id,) = {
        s for s in mine if s == await store.session_of_access_token("jti-1")
    }
    assert await store.revoke_session("someone-else", session_id) is None
    assert await store.revoke_session(backend.user_id, "no-such-session") is None
    assert (await store.rotate(token)).user_id == backend.user_id
    assert await store.revoke_session(backend.user_id, session_id) == [
        IssuedToken("jti-1", LIVE_S)
    ]
    assert await store.revoke_session(backend.user_id, session_id) is None
    assert [s.id for s in await store.list_sessions(backend.user_id)] == sorted(
        mine - {session_id}
    )
    assert (await store.rotate(other)).user_id == backend.user_id
