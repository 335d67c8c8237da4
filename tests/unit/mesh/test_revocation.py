"""The revocation list: one suite for the data-dir file and for Redis, plus each one's details."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from account_svc.issuer import TokenIssuer
from mesh.errors import ApiError
from mesh.revocation import (
    REVOKED_FILE_NAME,
    FileRevocationStore,
    IssuedToken,
    RedisRevocationStore,
    RevocationStore,
    RevokedTokens,
    issued_token,
    open_revoked_tokens,
)
from mesh.tokens import SigningKey
from support import running_redis

# Port 1 on loopback refuses connections: Redis is down.
REDIS_DOWN = "redis://127.0.0.1:1/0"

StoreFactory = Callable[[], RevocationStore]


@pytest.fixture(params=["file", "redis"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Return "" for the data-dir file, else the test Redis URL."""
    if request.param == "file":
        return ""
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture
async def make_store(store_url: str, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """Yield a factory of stores sharing one list, as separate processes would."""
    stores: list[RevocationStore] = []
    key = f"test:{uuid.uuid4().hex}"

    def make() -> RevocationStore:
        store: RevocationStore = (
            RedisRevocationStore.from_url(store_url, key=key)
            if store_url
            else FileRevocationStore(tmp_path / REVOKED_FILE_NAME)
        )
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.aclose()


def live(token_id: str, seconds: int = 600) -> IssuedToken:
    return IssuedToken(token_id, int(time.time()) + seconds)


async def test_a_revocation_reaches_every_process(make_store: StoreFactory) -> None:
    accounts, engine = RevokedTokens(make_store()), RevokedTokens(make_store())
    await engine.refresh()
    await accounts.revoke([live("t-1"), live("t-2")])
    # The writer knows at once; a reader at its next reload.
    assert accounts.is_revoked("t-1") and accounts.is_revoked("t-2")
    assert not engine.is_revoked("t-1")
    await engine.refresh()
    assert engine.is_revoked("t-1") and engine.is_revoked("t-2")
    assert not engine.is_revoked("t-3")


async def test_writers_never_lose_each_others_entries(make_store: StoreFactory) -> None:
    writers = [RevokedTokens(make_store()) for _ in range(4)]
    await asyncio.gather(
        *(writer.revoke([live(f"w{n}-{i}") for i in range(5)]) for n, writer in enumerate(writers))
    )
    reader = RevokedTokens(make_store())
    await reader.refresh()
    assert all(reader.is_revoked(f"w{n}-{i}") for n in range(4) for i in range(5))


async def test_entries_live_until_their_token_expires(make_store: StoreFactory) -> None:
    now = [time.time()]
    writer = RevokedTokens(make_store(), clock=lambda: now[0])
    await writer.revoke([live("short", 5), live("long", 600), live("gone", -1)])
    assert writer.is_revoked("short") and writer.is_revoked("long")
    assert not writer.is_revoked("gone")
    now[0] += 10
    assert not writer.is_revoked("short")
    # The next write drops what expired, so the list stays short.
    await writer.revoke([IssuedToken("new", int(now[0]) + 600)])
    reader = RevokedTokens(make_store(), clock=lambda: now[0])
    await reader.refresh()
    assert reader.is_revoked("new") and reader.is_revoked("long")


async def test_a_started_list_reloads_in_the_background(make_store: StoreFactory) -> None:
    reader = RevokedTokens(make_store(), interval_s=0.05)
    await reader.start()
    try:
        await RevokedTokens(make_store()).revoke([live("later")])
        deadline = time.monotonic() + 5
        while not reader.is_revoked("later"):
            assert time.monotonic() < deadline, "the revocation never arrived"
            await asyncio.sleep(0.02)
    finally:
        await reader.aclose()


async def test_an_unchanged_list_is_not_read_again(make_store: StoreFactory) -> None:
    store = make_store()
    await RevokedTokens(make_store()).revoke([live("x")])
    assert await store.load(time.time()) == {"x": live("x").expire_time_s}
    assert await store.load(time.time()) is None


async def test_the_file_holds_only_ids_and_expiries(tmp_path: Path) -> None:
    path = tmp_path / REVOKED_FILE_NAME
    revoked = RevokedTokens(FileRevocationStore(path))
    await revoked.revoke([IssuedToken("abc", 2_000_000_000)])
    assert json.loads(path.read_text()) == {"tokens": {"abc": 2_000_000_000}}


async def test_a_damaged_file_keeps_the_last_list(tmp_path: Path) -> None:
    path = tmp_path / REVOKED_FILE_NAME
    await RevokedTokens(FileRevocationStore(path)).revoke([live("kept")])
    reader = RevokedTokens(FileRevocationStore(path))
    await reader.refresh()
    path.write_text("{not json")
    await reader.refresh()
    assert reader.is_revoked("kept")
    # The next sign-out rewrites the file whole, and every reader takes it again.
    await RevokedTokens(FileRevocationStore(path)).revoke([live("next")])
    await reader.refresh()
    assert reader.is_revoked("next")


async def test_redis_going_down_keeps_the_last_list_and_refuses_writes(tmp_path: Path) -> None:
    with running_redis(tmp_path) as (url, server):
        writer = RevokedTokens(RedisRevocationStore.from_url(url))
        await writer.revoke([live("a")])
        await writer.aclose()
        reader = RevokedTokens(RedisRevocationStore.from_url(url))
        await reader.refresh()
        server.terminate()
        server.wait()
        await reader.refresh()
        assert reader.is_revoked("a")
        with pytest.raises(ApiError) as info:
            await reader.revoke([live("b")])
        assert info.value.reason == "SERVICE_UNAVAILABLE"
        await reader.aclose()


def test_issued_token_reads_id_and_expiry() -> None:
    token, _ = TokenIssuer(SigningKey.generate(), ttl_s=60, clock=lambda: 1_800_000_000).issue("u")
    issued = issued_token(token)
    assert issued is not None and issued.expire_time_s == 1_800_000_060
    assert len(issued.token_id) >= 16
    for garbage in ("", "a.b", "a.!!.c", "a.bnVsbA.c", "a.eyJleHAiOnRydWV9.c"):
        assert issued_token(garbage) is None


class Where:
    def __init__(self, data_dir: Path, redis_url: str | None) -> None:
        self.data_dir = data_dir
        self.redis_url = redis_url


async def test_open_revoked_tokens_picks_the_store(tmp_path: Path) -> None:
    in_data_dir = open_revoked_tokens(Where(tmp_path, None))
    await in_data_dir.revoke([live("here")])
    assert (tmp_path / REVOKED_FILE_NAME).is_file()
    in_redis = open_revoked_tokens(Where(tmp_path / "unused", REDIS_DOWN))
    with pytest.raises(ApiError):
        await in_redis.revoke([live("there")])
    await in_redis.aclose()
