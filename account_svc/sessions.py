"""Refresh tokens: opaque, stored hashed, rotated on every use, revocable by family.

A sign-in starts a *family*. Each refresh spends the presented token and issues the next
one of the same family. Presenting a spent token again means it was copied: the whole
family is revoked, so neither the thief nor the user can continue that session. The
stores keep spent tokens (hashed) until well after they expire to recognize such reuse.

Each family also keeps what the session list shows (sign-in time, last use, client address
and user agent) and can be revoked by its id, by the user it belongs to.

Each family also remembers the ids of the access tokens issued in it until they expire:
revoking the family returns the ones still valid, for the revocation list
(``mesh.revocation``) that every verifier reads.

Two stores behind one protocol: SQL (the default) and Redis (when ``CFD_REDIS_URL`` is
set).
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Protocol

import redis.asyncio
import redis.exceptions
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from account_svc.schema import (
    access_tokens_table,
    refresh_families_table,
    refresh_tokens_table,
    session_details_table,
)
from mesh.errors import ApiError
from mesh.revocation import IssuedToken

DEFAULT_REFRESH_TTL_S: Final = 30 * 24 * 3600
# How long a spent or expired token is remembered after its expiry, to detect reuse and to
# answer TOKEN_EXPIRED rather than TOKEN_INVALID.
DEFAULT_RETENTION_S: Final = 7 * 24 * 3600
MAX_TOKEN_LENGTH: Final = 128
MAX_CLIENT_ADDRESS_LENGTH: Final = 64
MAX_USER_AGENT_LENGTH: Final = 256
# A Redis that hangs answers SERVICE_UNAVAILABLE after this, rather than at the caller's deadline.
_REDIS_TIMEOUT_S: Final = 2.0


@dataclass(frozen=True)
class Rotation:
    """The outcome of a refresh: whose session it is and the token to use next."""

    user_id: str
    refresh_token: str

    def __repr__(self) -> str:
        return f"Rotation(user_id={self.user_id!r})"


@dataclass(frozen=True)
class SessionInfo:
    """An active session (refresh token family) as the session list shows it."""

    id: str
    create_time_ms: int
    last_use_ms: int
    client_address: str
    user_agent: str


@dataclass(frozen=True)
class Origin:
    """Where a sign-in came from, as far as the service can tell (empty when unknown)."""

    client_address: str = ""
    user_agent: str = ""

    def clipped(self) -> Origin:
        """Return the origin cut to the stored lengths."""
        return Origin(
            self.client_address[:MAX_CLIENT_ADDRESS_LENGTH],
            self.user_agent[:MAX_USER_AGENT_LENGTH],
        )


class RefreshTokenStore(Protocol):
    """Issue, rotate and revoke refresh tokens."""

    async def create(self, user_id: str, origin: Origin = Origin()) -> str:
        """Start a session family for the user; return its first refresh token."""
        ...

    async def list_sessions(self, user_id: str) -> list[SessionInfo]:
        """Return the user's sessions that are neither revoked nor expired, newest first."""
        ...

    async def session_of_access_token(self, token_id: str) -> str | None:
        """Return the id of the session that issued the access token ``token_id``, if known."""
        ...

    async def revoke_session(self, user_id: str, session_id: str) -> list[IssuedToken] | None:
        """Revoke the user's active session ``session_id``; return its unexpired access tokens.

        Return None when it is not an active session of this user (nothing changes).
        """
        ...

    async def rotate(self, token: str) -> Rotation:
        """Spend ``token`` and return its successor.

        Raise ``ApiError`` TOKEN_INVALID (unknown, revoked or reused; reuse revokes the
        family) or TOKEN_EXPIRED.
        """
        ...

    async def add_access_token(self, token: str, access: IssuedToken) -> None:
        """Remember that ``access`` was issued in the session of refresh token ``token``.

        Raise ``ApiError`` TOKEN_INVALID when that session is unknown or revoked.
        """
        ...

    async def revoke(self, token: str) -> list[IssuedToken]:
        """Revoke the family of ``token``; return its access tokens not yet expired.

        Unknown tokens are ignored (nothing is returned); revoking again returns the
        same access tokens, so a caller may retry publishing them.
        """
        ...

    async def check(self) -> None:
        """Return when the store answers; raise SERVICE_UNAVAILABLE (or the driver's error)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def new_token() -> str:
    """Return a fresh opaque refresh token (256 random bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Return the stored form of a token: SHA-256 hex (the token has 256 bits of entropy)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _new_family_id() -> str:
    return secrets.token_hex(16)


def _check_shape(token: str) -> None:
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise ApiError("TOKEN_INVALID", "refresh token not recognized")


def _invalid() -> ApiError:
    return ApiError("TOKEN_INVALID", "refresh token not recognized")


class SessionReusedError(ApiError):
    """A spent refresh token came back: it was copied, and its session is now revoked."""

    def __init__(self) -> None:
        super().__init__("TOKEN_INVALID", "refresh token already used; the session is revoked")


def _reused() -> ApiError:
    return SessionReusedError()


def _expired() -> ApiError:
    return ApiError("TOKEN_EXPIRED", "refresh token expired; sign in again")


class SqlRefreshTokenStore:
    """Refresh tokens in ``account_refresh_tokens`` / ``account_refresh_families``."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        ttl_s: int = DEFAULT_REFRESH_TTL_S,
        retention_s: int = DEFAULT_RETENTION_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ttl_s < 1 or retention_s < 0:
            raise ValueError("refresh token lifetime must be positive and retention not negative")
        self._engine = engine
        self._ttl_ms = ttl_s * 1000
        self._retention_ms = retention_s * 1000
        self._clock = clock

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def create(self, user_id: str, origin: Origin = Origin()) -> str:
        """Start a session family for the user; return its first refresh token."""
        token = new_token()
        now = self._now_ms()
        family_id = _new_family_id()
        origin = origin.clipped()
        async with self._engine.begin() as conn:
            await conn.execute(
                refresh_families_table.insert().values(
                    id=family_id,
                    user_id=user_id,
                    revoked=False,
                    create_time_ms=now,
                    expire_time_ms=now + self._ttl_ms,
                )
            )
            await conn.execute(
                session_details_table.insert().values(
                    family_id=family_id,
                    last_use_ms=now,
                    client_address=origin.client_address,
                    user_agent=origin.user_agent,
                )
            )
            await self._insert_token(conn, token, family_id, now)
        return token

    async def _insert_token(
        self, conn: AsyncConnection, token: str, family_id: str, now: int
    ) -> None:
        await conn.execute(
            refresh_tokens_table.insert().values(
                token_hash=token_hash(token),
                family_id=family_id,
                used=False,
                expire_time_ms=now + self._ttl_ms,
            )
        )

    async def rotate(self, token: str) -> Rotation:
        """Spend ``token`` and return its successor (see ``RefreshTokenStore.rotate``)."""
        _check_shape(token)
        t, f = refresh_tokens_table.c, refresh_families_table.c
        hashed = token_hash(token)
        now = self._now_ms()
        live_families = select(f.id).where(f.revoked.is_(False))
        async with self._engine.begin() as conn:
            # Spend first: a write as the first statement takes SQLite's write lock before
            # anything is read, and on PostgreSQL the row lock makes exactly one of two
            # concurrent refreshes with the same token succeed; the other sees it spent.
            spent = await conn.execute(
                update(refresh_tokens_table)
                .where(
                    t.token_hash == hashed,
                    t.used.is_(False),
                    t.expire_time_ms > now,
                    t.family_id.in_(live_families),
                )
                .values(used=True)
            )
            row = (
                await conn.execute(
                    select(t.family_id, t.used, f.user_id, f.revoked)
                    .join_from(refresh_tokens_table, refresh_families_table)
                    .where(t.token_hash == hashed)
                )
            ).one_or_none()
            if row is None or row.revoked:
                raise _invalid()
            if spent.rowcount == 1:
                successor = new_token()
                await self._insert_token(conn, successor, row.family_id, now)
                await conn.execute(
                    update(refresh_families_table)
                    .where(f.id == row.family_id)
                    .values(expire_time_ms=now + self._ttl_ms)
                )
                await conn.execute(
                    update(session_details_table)
                    .where(session_details_table.c.family_id == row.family_id)
                    .values(last_use_ms=now)
                )
                return Rotation(row.user_id, successor)
            if not row.used:
                raise _expired()
            await conn.execute(
                update(refresh_families_table).where(f.id == row.family_id).values(revoked=True)
            )
        # Raised after the transaction committed, so the family stays revoked.
        raise _reused()

    def _family_of(self, token: str) -> Any:
        t = refresh_tokens_table.c
        return select(t.family_id).where(t.token_hash == token_hash(token)).scalar_subquery()

    async def add_access_token(self, token: str, access: IssuedToken) -> None:
        """Remember ``access`` in the session of ``token`` (see the protocol)."""
        _check_shape(token)
        f = refresh_families_table.c
        family = self._family_of(token)
        async with self._engine.begin() as conn:
            # Writing the family row first locks it: a concurrent revoke either sees this
            # token or makes this update find the family revoked.
            live = await conn.execute(
                update(refresh_families_table)
                .where(f.id == family, f.revoked.is_(False))
                .values(revoked=False)
            )
            if live.rowcount != 1:
                raise _invalid()
            await conn.execute(
                access_tokens_table.insert().values(
                    token_id=access.token_id,
                    family_id=family,
                    expire_time_ms=access.expire_time_s * 1000,
                )
            )

    async def revoke(self, token: str) -> list[IssuedToken]:
        """Revoke the family of ``token``; return its unexpired access tokens."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return []
        f = refresh_families_table.c
        family = self._family_of(token)
        async with self._engine.begin() as conn:
            await conn.execute(
                update(refresh_families_table).where(f.id == family).values(revoked=True)
            )
            return await self._live_access_tokens(conn, family)

    async def _live_access_tokens(self, conn: AsyncConnection, family: Any) -> list[IssuedToken]:
        a = access_tokens_table.c
        rows = await conn.execute(
            select(a.token_id, a.expire_time_ms).where(
                a.family_id == family, a.expire_time_ms > self._now_ms()
            )
        )
        return [IssuedToken(row.token_id, row.expire_time_ms // 1000) for row in rows]

    async def list_sessions(self, user_id: str) -> list[SessionInfo]:
        """Return the user's active sessions, newest first (see the protocol)."""
        f, d = refresh_families_table.c, session_details_table.c
        stmt = (
            select(f.id, f.create_time_ms, d.last_use_ms, d.client_address, d.user_agent)
            .join_from(refresh_families_table, session_details_table, isouter=True)
            .where(
                f.user_id == user_id, f.revoked.is_(False), f.expire_time_ms > self._now_ms()
            )
            .order_by(f.create_time_ms.desc(), f.id)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        # A family opened before session details were kept has none: its sign-in time stands
        # in for its last use.
        return [
            SessionInfo(
                row.id,
                row.create_time_ms,
                row.create_time_ms if row.last_use_ms is None else row.last_use_ms,
                row.client_address or "",
                row.user_agent or "",
            )
            for row in rows
        ]

    async def session_of_access_token(self, token_id: str) -> str | None:
        """Return the family that issued the access token, if it is remembered."""
        a = access_tokens_table.c
        async with self._engine.connect() as conn:
            family = await conn.scalar(select(a.family_id).where(a.token_id == token_id))
        return None if family is None else str(family)

    async def revoke_session(self, user_id: str, session_id: str) -> list[IssuedToken] | None:
        """Revoke the user's active session by id (see the protocol)."""
        f = refresh_families_table.c
        async with self._engine.begin() as conn:
            revoked = await conn.execute(
                update(refresh_families_table)
                .where(
                    f.id == session_id,
                    f.user_id == user_id,
                    f.revoked.is_(False),
                    f.expire_time_ms > self._now_ms(),
                )
                .values(revoked=True)
            )
            if revoked.rowcount != 1:
                return None
            return await self._live_access_tokens(conn, session_id)

    async def check(self) -> None:
        """Return when the database answers; a database error propagates."""
        async with self._engine.connect() as conn:
            await conn.execute(select(1))

    async def purge(self) -> int:
        """Delete tokens and families past expiry plus retention; return tokens deleted."""
        horizon = self._now_ms() - self._retention_ms
        t, f, a = refresh_tokens_table.c, refresh_families_table.c, access_tokens_table.c
        async with self._engine.begin() as conn:
            await conn.execute(delete(access_tokens_table).where(a.expire_time_ms < self._now_ms()))
            result = await conn.execute(
                delete(refresh_tokens_table).where(t.expire_time_ms < horizon)
            )
            orphaned = (
                ~select(t.token_hash).where(t.family_id == f.id).exists()
                & ~select(a.token_id).where(a.family_id == f.id).exists()
            )
            gone = select(f.id).where(f.expire_time_ms < horizon, orphaned)
            await conn.execute(
                delete(session_details_table).where(session_details_table.c.family_id.in_(gone))
            )
            await conn.execute(
                delete(refresh_families_table).where(f.expire_time_ms < horizon, orphaned)
            )
        return max(result.rowcount, 0)

    async def aclose(self) -> None:
        """Nothing to release: the engine belongs to the caller."""


# KEYS: old token, new token, family, session details, the user's sessions. ARGV: expected
# family id, new token lifetime (ms), retention (ms). Returns {status, user id}.
_ROTATE_LUA: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tok = redis.call('HMGET', KEYS[1], 'user', 'family', 'used', 'expire')
if not tok[1] or tok[2] ~= ARGV[1] then return {'invalid', ''} end
if redis.call('GET', KEYS[3]) ~= 'active' then return {'invalid', ''} end
if tok[3] == '1' then
  redis.call('SET', KEYS[3], 'revoked', 'KEEPTTL')
  return {'reused', ''}
end
if now >= tonumber(tok[4]) then return {'expired', ''} end
local ttl = tonumber(ARGV[2])
local keep = ttl + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'used', '1')
redis.call('HSET', KEYS[2], 'user', tok[1], 'family', tok[2], 'used', '0',
  'expire', string.format('%d', now + ttl))
redis.call('PEXPIRE', KEYS[2], keep)
redis.call('SET', KEYS[3], 'active', 'PX', keep)
redis.call('HSET', KEYS[4], 'last_use', string.format('%d', now))
redis.call('PEXPIRE', KEYS[4], keep)
if redis.call('PTTL', KEYS[5]) < keep then redis.call('PEXPIRE', KEYS[5], keep) end
return {'ok', tok[1]}
"""

# KEYS: token, family, session details, the user's sessions. ARGV: user id, lifetime (ms),
# retention (ms), family id, client address, user agent.
_CREATE_LUA: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local keep = ttl + tonumber(ARGV[3])
redis.call('SET', KEYS[2], 'active', 'PX', keep)
redis.call('HSET', KEYS[1], 'user', ARGV[1], 'family', ARGV[4], 'used', '0',
  'expire', string.format('%d', now + ttl))
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('HSET', KEYS[3], 'user', ARGV[1], 'create', string.format('%d', now),
  'last_use', string.format('%d', now), 'client', ARGV[5], 'agent', ARGV[6])
redis.call('PEXPIRE', KEYS[3], keep)
redis.call('SADD', KEYS[4], ARGV[4])
if redis.call('PTTL', KEYS[4]) < keep then redis.call('PEXPIRE', KEYS[4], keep) end
return 1
"""


# KEYS: token, family, the family's access tokens, the access token's session. ARGV: family
# id, access token id, its expiry (s). Returns 1, or 0 when the session is unknown or revoked.
_ADD_ACCESS_LUA: Final = """
if redis.call('HGET', KEYS[1], 'family') ~= ARGV[1] then return 0 end
if redis.call('GET', KEYS[2]) ~= 'active' then return 0 end
local now = tonumber(redis.call('TIME')[1])
local exp = tonumber(ARGV[3])
if exp <= now then return 1 end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
redis.call('SET', KEYS[4], ARGV[1], 'EXAT', exp)
local ttl = redis.call('TTL', KEYS[3])
if ttl < 0 or now + ttl < exp then redis.call('EXPIREAT', KEYS[3], exp) end
return 1
"""

# KEYS: family, the family's access tokens. Returns the access tokens {id, expiry, ...}.
_REVOKE_LUA: Final = """
redis.call('SET', KEYS[1], 'revoked', 'XX', 'KEEPTTL')
return redis.call('HGETALL', KEYS[2])
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@contextlib.contextmanager
def _redis_unavailable_as_api_error() -> Iterator[None]:
    try:
        yield
    except (redis.exceptions.RedisError, OSError):
        raise ApiError(
            "SERVICE_UNAVAILABLE", "the session store is unavailable; retry shortly"
        ) from None


class RedisRefreshTokenStore:
    """Refresh tokens in Redis: a hash per token, a status key per family, both expiring.

    When Redis cannot be reached, calls fail with SERVICE_UNAVAILABLE.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        ttl_s: int = DEFAULT_REFRESH_TTL_S,
        retention_s: int = DEFAULT_RETENTION_S,
        prefix: str = "cfd:refresh:",
    ) -> None:
        if ttl_s < 1 or retention_s < 0:
            raise ValueError("refresh token lifetime must be positive and retention not negative")
        self._client = client
        self._ttl_ms = ttl_s * 1000
        self._retention_ms = retention_s * 1000
        self._prefix = prefix
        self._rotate = client.register_script(_ROTATE_LUA)
        self._create = client.register_script(_CREATE_LUA)
        self._add_access = client.register_script(_ADD_ACCESS_LUA)
        self._revoke = client.register_script(_REVOKE_LUA)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisRefreshTokenStore:
        """Connect lazily to the Redis server at ``url``."""
        client = redis.asyncio.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=_REDIS_TIMEOUT_S,
            socket_connect_timeout=_REDIS_TIMEOUT_S,
        )
        return cls(client, **kwargs)

    def _token_key(self, token: str) -> str:
        return f"{self._prefix}token:{token_hash(token)}"

    def _family_key(self, family_id: str) -> str:
        return f"{self._prefix}family:{family_id}"

    def _access_key(self, family_id: str) -> str:
        return f"{self._prefix}access:{family_id}"

    def _details_key(self, family_id: str) -> str:
        return f"{self._prefix}session:{family_id}"

    def _user_key(self, user_id: str) -> str:
        return f"{self._prefix}user:{user_id}"

    def _issued_key(self, token_id: str) -> str:
        return f"{self._prefix}jti:{token_id}"

    async def create(self, user_id: str, origin: Origin = Origin()) -> str:
        """Start a session family for the user; return its first refresh token."""
        token = new_token()
        family_id = _new_family_id()
        origin = origin.clipped()
        with _redis_unavailable_as_api_error():
            await self._create(
                keys=[
                    self._token_key(token),
                    self._family_key(family_id),
                    self._details_key(family_id),
                    self._user_key(user_id),
                ],
                args=[
                    user_id,
                    self._ttl_ms,
                    self._retention_ms,
                    family_id,
                    origin.client_address,
                    origin.user_agent,
                ],
            )
        return token

    async def rotate(self, token: str) -> Rotation:
        """Spend ``token`` and return its successor (see ``RefreshTokenStore.rotate``)."""
        _check_shape(token)
        key = self._token_key(token)
        successor = new_token()
        with _redis_unavailable_as_api_error():
            family_id, owner = await self._client.hmget(key, ["family", "user"])
            if not isinstance(family_id, str) or not isinstance(owner, str):
                raise _invalid()
            status, user_id = await self._rotate(
                keys=[
                    key,
                    self._token_key(successor),
                    self._family_key(family_id),
                    self._details_key(family_id),
                    self._user_key(owner),
                ],
                args=[family_id, self._ttl_ms, self._retention_ms],
            )
        if status == "ok":
            return Rotation(str(user_id), successor)
        if status == "expired":
            raise _expired()
        if status == "reused":
            raise _reused()
        raise _invalid()

    async def add_access_token(self, token: str, access: IssuedToken) -> None:
        """Remember ``access`` in the session of ``token`` (see the protocol)."""
        _check_shape(token)
        key = self._token_key(token)
        with _redis_unavailable_as_api_error():
            family_id = await self._client.hget(key, "family")
            if not isinstance(family_id, str):
                raise _invalid()
            added = await self._add_access(
                keys=[
                    key,
                    self._family_key(family_id),
                    self._access_key(family_id),
                    self._issued_key(access.token_id),
                ],
                args=[family_id, access.token_id, access.expire_time_s],
            )
        if added != 1:
            raise _invalid()

    async def revoke(self, token: str) -> list[IssuedToken]:
        """Revoke the family of ``token``; return its unexpired access tokens."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return []
        with _redis_unavailable_as_api_error():
            family_id = await self._client.hget(self._token_key(token), "family")
            if not isinstance(family_id, str):
                return []
            return await self._revoke_family(family_id)

    async def _revoke_family(self, family_id: str) -> list[IssuedToken]:
        flat = await self._revoke(keys=[self._family_key(family_id), self._access_key(family_id)])
        now = time.time()
        pairs = zip(flat[::2], flat[1::2], strict=True)
        return [IssuedToken(str(i), int(e)) for i, e in pairs if int(e) > now]

    async def _active_details(self, family_id: str) -> dict[str, str] | None:
        """Return the details of an active, unexpired family, else None."""
        status = await self._client.get(self._family_key(family_id))
        raw = await self._client.hgetall(self._details_key(family_id))
        details = {_text(k): _text(v) for k, v in raw.items()}
        if status != "active" or not details:
            return None
        if int(details["last_use"]) + self._ttl_ms <= int(time.time() * 1000):
            return None
        return details

    async def list_sessions(self, user_id: str) -> list[SessionInfo]:
        """Return the user's active sessions, newest first (see the protocol)."""
        user_key = self._user_key(user_id)
        sessions: list[SessionInfo] = []
        with _redis_unavailable_as_api_error():
            for family_id in sorted(map(_text, await self._client.smembers(user_key))):
                details = await self._active_details(family_id)
                if details is None:
                    # Revoked or expired: forget it, so the set does not grow forever.
                    await self._client.srem(user_key, family_id)
                    continue
                sessions.append(
                    SessionInfo(
                        family_id,
                        int(details["create"]),
                        int(details["last_use"]),
                        details["client"],
                        details["agent"],
                    )
                )
        sessions.sort(key=lambda info: -info.create_time_ms)
        return sessions

    async def session_of_access_token(self, token_id: str) -> str | None:
        """Return the family that issued the access token, if it is remembered."""
        with _redis_unavailable_as_api_error():
            family_id = await self._client.get(self._issued_key(token_id))
        return family_id if isinstance(family_id, str) else None

    async def revoke_session(self, user_id: str, session_id: str) -> list[IssuedToken] | None:
        """Revoke the user's active session by id (see the protocol)."""
        with _redis_unavailable_as_api_error():
            details = await self._active_details(session_id)
            if details is None or details["user"] != user_id:
                return None
            access_tokens = await self._revoke_family(session_id)
            await self._client.srem(self._user_key(user_id), session_id)
        return access_tokens

    async def check(self) -> None:
        """Return when Redis answers; raise SERVICE_UNAVAILABLE otherwise."""
        with _redis_unavailable_as_api_error():
            await self._client.ping()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
