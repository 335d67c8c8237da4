"""Rate limiting shared by the accounts service and the edge.

Both implementations run the generic cell rate algorithm (GCRA), a token bucket kept as
one timestamp per key: ``limit`` requests may come in a burst, after which one more is
allowed every ``window_s / limit`` seconds. The in-memory limiter serves one process; the
Redis limiter shares the budget between processes and uses the Redis clock, so servers
with skewed clocks still agree.

A limit never lapses because its store is down: while Redis cannot be reached, the Redis
limiter counts in an in-memory limiter of its own process (so each process enforces the
full limit by itself), and returns to the shared budget as soon as Redis answers again.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

import redis.asyncio
import redis.exceptions

__all__ = [
    "MemoryRateLimiter",
    "RateDecision",
    "RateLimiter",
    "RedisRateLimiter",
    "create_rate_limiter",
]

_log = logging.getLogger(__name__)

_MAX_LIMIT: Final = 1_000_000
_MAX_WINDOW_S: Final = 7 * 24 * 3600
_MAX_KEY_LENGTH: Final = 1024
_SWEEP_EVERY_US: Final = 10_000_000
# A Redis that hangs must not hang the request: past this, the hit counts in the process.
_REDIS_TIMEOUT_S: Final = 1.0


@dataclass(frozen=True)
class RateDecision:
    """The outcome of one hit: whether it is allowed, and if not, when to retry."""

    allowed: bool
    retry_after_s: int = 0


class RateLimiter(Protocol):
    """Count hits per key against ``limit`` per ``window_s`` seconds."""

    async def hit(self, key: str, limit: int, window_s: int) -> RateDecision:
        """Record one hit on ``key`` and say whether it is within the limit."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def _check(key: str, limit: int, window_s: int) -> None:
    if not key or len(key) > _MAX_KEY_LENGTH:
        raise ValueError(f"a rate limit key must have 1..{_MAX_KEY_LENGTH} characters")
    if not 1 <= limit <= _MAX_LIMIT:
        raise ValueError(f"a rate limit must be between 1 and {_MAX_LIMIT}, got {limit}")
    if not 1 <= window_s <= _MAX_WINDOW_S:
        raise ValueError(
            f"a rate limit window must be between 1 and {_MAX_WINDOW_S} s, got {window_s}"
        )


def _window_and_interval_us(limit: int, window_s: int) -> tuple[int, int]:
    window_us = window_s * 1_000_000
    # Rounded down so that ``limit`` hits at one instant always fit in the window.
    return window_us, max(1, window_us // limit)


def _retry_after_s(wait_us: int) -> int:
    # Whole seconds, rounded up, so a client that waits that long is allowed.
    return max(1, -(-wait_us // 1_000_000))


class MemoryRateLimiter:
    """An in-process limiter (the default when no Redis is configured)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tat_us: dict[str, int] = {}
        self._next_sweep_us = 0

    def __len__(self) -> int:
        return len(self._tat_us)

    async def hit(self, key: str, limit: int, window_s: int) -> RateDecision:
        """Record one hit on ``key`` and say whether it is within the limit."""
        _check(key, limit, window_s)
        now_us = math.floor(self._clock() * 1_000_000)
        self._sweep(now_us)
        window_us, interval_us = _window_and_interval_us(limit, window_s)
        tat_us = max(self._tat_us.get(key, now_us), now_us)
        new_tat_us = tat_us + interval_us
        earliest_us = new_tat_us - window_us
        if now_us < earliest_us:
            return RateDecision(False, _retry_after_s(earliest_us - now_us))
        self._tat_us[key] = new_tat_us
        return RateDecision(True)

    def _sweep(self, now_us: int) -> None:
        # Entries whose timestamp has passed are equivalent to absent ones; dropping them
        # now and then bounds memory by the keys active within one window.
        if now_us < self._next_sweep_us:
            return
        self._tat_us = {k: t for k, t in self._tat_us.items() if t > now_us}
        self._next_sweep_us = now_us + _SWEEP_EVERY_US

    async def aclose(self) -> None:
        """Forget all state."""
        self._tat_us.clear()


# KEYS[1] the bucket; ARGV: interval in microseconds, window in microseconds.
# Returns 0 when allowed, else the wait in microseconds.
_GCRA_LUA: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local earliest = new_tat - window
if now < earliest then
  return earliest - now
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return 0
"""


class RedisRateLimiter:
    """A limiter shared through Redis by every process of the mesh.

    When Redis cannot be reached the hit is counted by a per-process in-memory limiter
    instead: an outage neither lifts the limits nor locks every user out.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        prefix: str = "cfd:ratelimit:",
        fallback: MemoryRateLimiter | None = None,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_GCRA_LUA)
        self._fallback = MemoryRateLimiter() if fallback is None else fallback
        self._store_down = False

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "cfd:ratelimit:") -> RedisRateLimiter:
        """Connect lazily to the Redis server at ``url``."""
        client = redis.asyncio.Redis.from_url(
            url, socket_timeout=_REDIS_TIMEOUT_S, socket_connect_timeout=_REDIS_TIMEOUT_S
        )
        return cls(client, prefix=prefix)

    def _redis_key(self, key: str) -> str:
        # Hashed so that emails and addresses are not stored in clear and keys stay short.
        return self._prefix + hashlib.blake2b(key.encode(), digest_size=16).hexdigest()

    async def hit(self, key: str, limit: int, window_s: int) -> RateDecision:
        """Record one hit on ``key`` and say whether it is within the limit."""
        _check(key, limit, window_s)
        window_us, interval_us = _window_and_interval_us(limit, window_s)
        try:
            wait_us = await self._script(keys=[self._redis_key(key)], args=[interval_us, window_us])
        except (TimeoutError, redis.exceptions.RedisError, OSError) as exc:
            if not self._store_down:
                # Once per outage: every request of the outage takes this path.
                _log.warning(
                    "rate limit store unavailable; counting in this process until it is back: %s",
                    type(exc).__name__,
                )
                self._store_down = True
            return await self._fallback.hit(key, limit, window_s)
        if self._store_down:
            _log.info("rate limit store reachable again; counting in it")
            self._store_down = False
        wait = int(wait_us)
        if wait > 0:
            return RateDecision(False, _retry_after_s(wait))
        return RateDecision(True)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._fallback.aclose()
        await self._client.aclose()


def create_rate_limiter(redis_url: str | None, *, prefix: str = "cfd:ratelimit:") -> RateLimiter:
    """Return a Redis limiter when ``redis_url`` is set, else an in-memory one."""
    if redis_url:
        return RedisRateLimiter.from_url(redis_url, prefix=prefix)
    return MemoryRateLimiter()
