"""Tests for the rate limiters: one suite for both, plus clock-exact in-memory checks."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from mesh.ratelimit import (
    MemoryRateLimiter,
    RateDecision,
    RateLimiter,
    RedisRateLimiter,
    create_rate_limiter,
)
from support import until


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
def limiter_url(request: pytest.FixtureRequest) -> str:
    """Return "" for the in-memory limiter, else the test Redis URL."""
    if request.param == "memory":
        return ""
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture
async def limiter(limiter_url: str) -> AsyncIterator[RateLimiter]:
    if not limiter_url:
        memory = MemoryRateLimiter()
        yield memory
        await memory.aclose()
        return
    shared = RedisRateLimiter.from_url(limiter_url, prefix=f"test:{uuid.uuid4().hex}:")
    yield shared
    await shared.aclose()


async def wait_until_allowed(limiter: RateLimiter, key: str, limit: int, window_s: int) -> float:
    """Poll until a hit is allowed; return how long that took."""
    start = time.monotonic()

    async def allowed() -> bool:
        return (await limiter.hit(key, limit, window_s)).allowed

    await until(allowed, within=window_s + 2, interval=0.02)
    return time.monotonic() - start


async def test_burst_up_to_the_limit_then_refused(limiter: RateLimiter) -> None:
    decisions = [await limiter.hit("k", 5, 60) for _ in range(7)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
    assert all(d.retry_after_s == 0 for d in decisions[:5])
    # One slot frees every 60 / 5 = 12 seconds.
    assert all(1 <= d.retry_after_s <= 12 for d in decisions[5:])


async def test_keys_are_independent(limiter: RateLimiter) -> None:
    assert (await limiter.hit("a", 1, 60)).allowed
    assert not (await limiter.hit("a", 1, 60)).allowed
    assert (await limiter.hit("b", 1, 60)).allowed


async def test_limit_that_does_not_divide_the_window(limiter: RateLimiter) -> None:
    decisions = [await limiter.hit("odd", 7, 60) for _ in range(8)]
    assert [d.allowed for d in decisions] == [True] * 7 + [False]


async def test_refused_hits_do_not_consume_budget(limiter: RateLimiter) -> None:
    assert (await limiter.hit("r", 2, 1)).allowed
    assert (await limiter.hit("r", 2, 1)).allowed
    for _ in range(5):
        refused = await limiter.hit("r", 2, 1)
        assert refused == RateDecision(False, 1)
    # Half a window frees one slot; refused hits did not push it further away.
    waited = await wait_until_allowed(limiter, "r", 2, 1)
    assert waited < 1.0


async def test_concurrent_hits_never_exceed_the_limit(limiter: RateLimiter) -> None:
    decisions = await asyncio.gather(*(limiter.hit("c", 10, 60) for _ in range(40)))
    assert sum(d.allowed for d in decisions) == 10


@pytest.mark.parametrize(
    ("key", "limit", "window_s"),
    [("", 1, 1), ("k", 0, 1), ("k", -1, 1), ("k", 1, 0), ("k", 1, 10**9), ("x" * 2000, 1, 1)],
)
async def test_bad_arguments_are_refused(
    limiter: RateLimiter, key: str, limit: int, window_s: int
) -> None:
    with pytest.raises(ValueError):
        await limiter.hit(key, limit, window_s)


async def test_memory_refills_one_slot_per_interval() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    for _ in range(3):
        assert (await limiter.hit("k", 3, 30)).allowed
    assert await limiter.hit("k", 3, 30) == RateDecision(False, 10)
    clock.now += 9.999
    assert await limiter.hit("k", 3, 30) == RateDecision(False, 1)
    clock.now += 0.001
    assert (await limiter.hit("k", 3, 30)).allowed
    assert not (await limiter.hit("k", 3, 30)).allowed


async def test_memory_full_window_restores_the_burst() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    for _ in range(4):
        await limiter.hit("k", 4, 60)
    clock.now += 60
    assert [(await limiter.hit("k", 4, 60)).allowed for _ in range(5)] == [True] * 4 + [False]


async def test_memory_retry_after_is_exact_when_waited() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    await limiter.hit("k", 1, 3600)
    refused = await limiter.hit("k", 1, 3600)
    assert refused == RateDecision(False, 3600)
    clock.now += refused.retry_after_s - 1
    assert not (await limiter.hit("k", 1, 3600)).allowed
    clock.now += 1
    assert (await limiter.hit("k", 1, 3600)).allowed


async def test_memory_forgets_idle_keys() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    for n in range(100):
        await limiter.hit(f"addr-{n}", 5, 10)
    assert len(limiter) == 100
    clock.now += 11
    await limiter.hit("fresh", 5, 10)
    assert len(limiter) == 1


async def test_redis_budget_is_shared_between_limiters(redis_url: str) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    first = RedisRateLimiter.from_url(redis_url, prefix=prefix)
    second = RedisRateLimiter.from_url(redis_url, prefix=prefix)
    try:
        assert (await first.hit("shared", 2, 60)).allowed
        assert (await second.hit("shared", 2, 60)).allowed
        assert not (await first.hit("shared", 2, 60)).allowed
        assert not (await second.hit("shared", 2, 60)).allowed
    finally:
        await first.aclose()
        await second.aclose()


async def test_redis_keys_expire_and_hide_the_raw_key(redis_url: str) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    limiter = RedisRateLimiter.from_url(redis_url, prefix=prefix)
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        await limiter.hit("alice@example.com", 5, 10)
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        assert len(keys) == 1
        assert b"alice" not in keys[0]
        ttl_ms = await client.pttl(keys[0])
        assert 0 < ttl_ms <= 2000
    finally:
        await limiter.aclose()
        await client.aclose()


# Port 1 on loopback refuses connections: the store is down.
REDIS_DOWN = "redis://127.0.0.1:1/0"


async def test_redis_outage_falls_back_to_a_per_process_limit() -> None:
    clock = FakeClock()
    limiter = RedisRateLimiter(
        redis.asyncio.Redis.from_url(REDIS_DOWN), fallback=MemoryRateLimiter(clock=clock)
    )
    try:
        assert [(await limiter.hit("k", 2, 60)).allowed for _ in range(3)] == [True, True, False]
        assert await limiter.hit("k", 2, 60) == RateDecision(False, 30)
        assert (await limiter.hit("other", 2, 60)).allowed
        clock.now += 30
        assert (await limiter.hit("k", 2, 60)).allowed
    finally:
        await limiter.aclose()


async def test_redis_limiter_returns_to_the_shared_budget_when_redis_is_back(
    redis_url: str,
) -> None:
    # The fallback counted while the store was down; once Redis answers, Redis decides again.
    fallback = MemoryRateLimiter()
    prefix = f"test:{uuid.uuid4().hex}:"
    down = RedisRateLimiter(redis.asyncio.Redis.from_url(REDIS_DOWN), fallback=fallback)
    up = RedisRateLimiter(redis.asyncio.Redis.from_url(redis_url), prefix=prefix, fallback=fallback)
    other = RedisRateLimiter.from_url(redis_url, prefix=prefix)
    try:
        assert (await down.hit("k", 1, 60)).allowed
        assert not (await down.hit("k", 1, 60)).allowed
        assert (await up.hit("k", 1, 60)).allowed
        assert not (await other.hit("k", 1, 60)).allowed
    finally:
        for limiter in (down, up, other):
            await limiter.aclose()


async def test_create_rate_limiter_picks_the_implementation() -> None:
    memory = create_rate_limiter(None)
    shared = create_rate_limiter("redis://127.0.0.1:1/0")
    assert isinstance(memory, MemoryRateLimiter)
    assert isinstance(shared, RedisRateLimiter)
    await memory.aclose()
    await shared.aclose()


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(1, 20),
    window_s=st.integers(1, 120),
    gaps_ms=st.lists(st.integers(0, 20_000), min_size=1, max_size=80),
)
async def test_memory_never_exceeds_burst_plus_rate(
    limit: int, window_s: int, gaps_ms: list[int]
) -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    allowed_at: list[float] = []
    for gap in gaps_ms:
        clock.now += gap / 1000
        if (await limiter.hit("k", limit, window_s)).allowed:
            allowed_at.append(clock.now)
    # GCRA: any interval of length d holds at most limit + d / (window / limit) hits.
    interval_s = window_s / limit
    for i, start in enumerate(allowed_at):
        for j in range(i, len(allowed_at)):
            assert j - i + 1 <= limit + (allowed_at[j] - start) / interval_s + 1e-9


@settings(max_examples=100, deadline=None)
@given(limit=st.integers(1, 20), window_s=st.integers(1, 120), idle_s=st.integers(0, 300))
async def test_memory_allows_a_full_burst_after_a_window_of_silence(
    limit: int, window_s: int, idle_s: int
) -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    for _ in range(limit * 3):
        await limiter.hit("k", limit, window_s)
    clock.now += window_s + idle_s
    burst = [(await limiter.hit("k", limit, window_s)).allowed for _ in range(limit + 1)]
    assert burst == [True] * limit + [False]
