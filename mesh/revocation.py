"""The list of revoked access tokens: ids (``jti``) of signed-out sessions' tokens.

An access token is a signed JWT that every service verifies by itself, so signing out
cannot take it back; instead the accounts service adds the ids of the session's unexpired
access tokens to this list, each kept until its token's own expiry, and every verifier
refuses a listed id. Verifiers never ask across the network per request: each process
keeps the list in memory and reloads it every ``REFRESH_INTERVAL_S`` seconds, which
bounds how long a signed-out token still works.

Two stores behind one class: with ``CFD_REDIS_URL`` a Redis sorted set (shared by every
process on every machine), otherwise a JSON file in the data dir (shared by every process
on the machine, like ``jwks.json`` beside it), rewritten atomically under a lock.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import redis.asyncio
import redis.exceptions

from mesh.errors import ApiError

__all__ = [
    "REFRESH_INTERVAL_S",
    "REVOKED_FILE_NAME",
    "FileRevocationStore",
    "IssuedToken",
    "RedisRevocationStore",
    "RevokedTokens",
    "issued_token",
    "open_revoked_tokens",
]

_log = logging.getLogger(__name__)

REVOKED_FILE_NAME: Final = "revoked_tokens.json"
REFRESH_INTERVAL_S: Final = 1.0
_REDIS_KEY: Final = "cfd:revoked-tokens"
_REDIS_TIMEOUT_S: Final = 2.0


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """The id and expiry (Unix seconds) of an access token."""

    token_id: str
    expire_time_s: int


def read_claims(token: str) -> dict[str, Any] | None:
    """Return the claims of a JWT without checking its signature, or None when malformed.

    Only for tokens whose signature was checked (or that this process signed).
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    segment = parts[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def issued_token(token: str) -> IssuedToken | None:
    """Return the id and expiry of a token already verified or just issued, else None.

    Reads the claims without checking the signature: only for tokens whose signature was
    checked (or that this process signed).
    """
    claims = read_claims(token)
    if claims is None:
        return None
    exp, jti = claims.get("exp"), claims.get("jti")
    if not isinstance(exp, int) or isinstance(exp, bool) or not isinstance(jti, str) or not jti:
        return None
    return IssuedToken(jti, exp)


class RevocationStore(Protocol):
    """Where the list lives; every read returns the unexpired entries ``{id: expiry}``."""

    async def add(self, tokens: Iterable[IssuedToken], now_s: float) -> dict[str, int]:
        """Add ``tokens`` (dropping expired entries); return the whole list after the write."""
        ...

    async def load(self, now_s: float) -> dict[str, int] | None:
        """Return the list, or None when it has not changed since the previous load."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class RevokedTokens:
    """This process's copy of the revocation list, reloaded in the background.

    ``is_revoked`` is a dictionary lookup; ``start`` begins the reloading task and
    ``revoke`` (the accounts service) writes to the store and to this copy at once.
    """

    def __init__(
        self,
        store: RevocationStore,
        *,
        interval_s: float = REFRESH_INTERVAL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._interval_s = interval_s
        self._clock = clock
        self._revoked: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def is_revoked(self, token_id: str) -> bool:
        """Say whether the token with this id was revoked (and has not expired since)."""
        expiry = self._revoked.get(token_id)
        return expiry is not None and self._clock() < expiry

    async def revoke(self, tokens: Iterable[IssuedToken]) -> None:
        """Add the tokens to the list every verifier reads; raise SERVICE_UNAVAILABLE."""
        self._revoked = await self._store.add(tokens, self._clock())

    async def refresh(self) -> None:
        """Reload the list from the store when it changed; a failure keeps the last copy."""
        try:
            loaded = await self._store.load(self._clock())
        except ApiError as exc:
            if not self._failing:
                _log.warning("cannot reload the revoked tokens; keeping the last list: %s", exc)
                self._failing = True
            return
        if self._failing:
            _log.info("revoked tokens reloaded again")
            self._failing = False
        if loaded is not None:
            self._revoked = loaded

    async def start(self) -> None:
        """Load the list now, then keep reloading it in the background."""
        await self.refresh()
        self._task = asyncio.create_task(self._reload_forever())

    async def _reload_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self.refresh()

    async def aclose(self) -> None:
        """Stop reloading and release the store."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._store.aclose()


def _unexpired(entries: Mapping[str, Any], now_s: float) -> dict[str, int]:
    return {
        token_id: expiry
        for token_id, expiry in entries.items()
        if isinstance(token_id, str)
        and isinstance(expiry, int)
        and not isinstance(expiry, bool)
        and expiry > now_s
    }


class FileRevocationStore:
    """The list as ``{"tokens": {id: expiry}}`` in one file, for every process on a machine.

    Writers take an exclusive lock on a sibling lock file, read, merge, write a temporary
    file, fsync it and rename it into place: concurrent writers never lose an entry and
    readers never see a partial file. Readers reload only when the file's stamp changes.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock_path = path.with_name(path.name + ".lock")
        self._stamp: tuple[int, int, int] | None = None

    def _read(self, now_s: float) -> dict[str, int]:
        try:
            document = json.loads(self._path.read_text())
        except FileNotFoundError:
            return {}
        tokens = document.get("tokens") if isinstance(document, dict) else None
        return _unexpired(tokens, now_s) if isinstance(tokens, dict) else {}

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _add(self, tokens: Iterable[IssuedToken], now_s: float) -> dict[str, int]:
        with self._locked():
            try:
                entries = self._read(now_s)
            except ValueError:
                # Damaged by something else than this class (it replaces the file whole):
                # start again rather than refuse every sign-out.
                _log.warning("the revoked tokens file is not valid JSON; rewriting it")
                entries = {}
            entries.update(
                (token.token_id, token.expire_time_s)
                for token in tokens
                if token.expire_time_s > now_s
            )
            data = json.dumps({"tokens": entries}, sort_keys=True).encode()
            tmp = self._path.with_name(f".{self._path.name}.{os.getpid()}.tmp")
            with tmp.open("wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(self._path)
            return entries

    async def add(self, tokens: Iterable[IssuedToken], now_s: float) -> dict[str, int]:
        """Add ``tokens`` to the file; return the whole list after the write."""
        listed = list(tokens)
        try:
            return await asyncio.to_thread(self._add, listed, now_s)
        except OSError as exc:
            raise ApiError(
                "SERVICE_UNAVAILABLE", f"cannot write the revoked tokens: {exc.strerror}"
            ) from None

    async def load(self, now_s: float) -> dict[str, int] | None:
        """Return the list when the file changed since the previous load, else None."""
        try:
            status = self._path.stat()
        except FileNotFoundError:
            return None if self._stamp is None else {}
        except OSError as exc:
            raise ApiError(
                "SERVICE_UNAVAILABLE", f"cannot read the revoked tokens: {exc.strerror}"
            ) from None
        stamp = (status.st_ino, status.st_mtime_ns, status.st_size)
        if stamp == self._stamp:
            return None
        try:
            entries = self._read(now_s)
        except (OSError, ValueError):
            # Caught between writes or damaged: keep the last list and retry next round.
            return None
        self._stamp = stamp
        return entries

    async def aclose(self) -> None:
        """Nothing to release."""


# KEYS: the sorted set, its version counter. ARGV: now (s), then id, expiry pairs.
_ADD_LUA: Final = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for i = 2, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], ARGV[i + 1], ARGV[i])
end
redis.call('INCR', KEYS[2])
return 1
"""


class RedisRevocationStore:
    """The list as a Redis sorted set (id scored by expiry) and a version counter.

    Readers fetch the set only when the counter moved, so a quiet list costs one GET per
    reload.
    """

    def __init__(self, client: redis.asyncio.Redis, *, key: str = _REDIS_KEY) -> None:
        self._client = client
        self._key = key
        self._version_key = key + ":version"
        self._add = client.register_script(_ADD_LUA)
        self._version: object = None
        self._loaded = False

    @classmethod
    def from_url(cls, url: str, *, key: str = _REDIS_KEY) -> RedisRevocationStore:
        """Connect lazily to the Redis server at ``url``."""
        client = redis.asyncio.Redis.from_url(
            url, socket_timeout=_REDIS_TIMEOUT_S, socket_connect_timeout=_REDIS_TIMEOUT_S
        )
        return cls(client, key=key)

    async def _members(self, now_s: float) -> dict[str, int]:
        pairs = await self._client.zrangebyscore(self._key, f"({now_s}", "+inf", withscores=True)
        return {_text(pair[0]): int(pair[1]) for pair in pairs}

    async def add(self, tokens: Iterable[IssuedToken], now_s: float) -> dict[str, int]:
        """Add ``tokens`` to the set; return the whole list after the write."""
        args: list[str | int] = [int(now_s)]
        for token in tokens:
            args += [token.token_id, token.expire_time_s]
        with _redis_unavailable():
            await self._add(keys=[self._key, self._version_key], args=args)
            return await self._members(now_s)

    async def load(self, now_s: float) -> dict[str, int] | None:
        """Return the list when its version moved since the previous load, else None."""
        with _redis_unavailable():
            version = await self._client.get(self._version_key)
            if self._loaded and version == self._version:
                return None
            members = await self._members(now_s)
        self._version, self._loaded = version, True
        return members

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@contextlib.contextmanager
def _redis_unavailable() -> Iterator[None]:
    try:
        yield
    except (TimeoutError, redis.exceptions.RedisError, OSError) as exc:
        raise ApiError(
            "SERVICE_UNAVAILABLE", f"the revoked tokens store is unavailable: {type(exc).__name__}"
        ) from None


class _HasStores(Protocol):
    @property
    def data_dir(self) -> Path: ...

    @property
    def redis_url(self) -> str | None: ...


def open_revoked_tokens(settings: _HasStores) -> RevokedTokens:
    """Return the revocation list of these settings: Redis when configured, else the data dir."""
    store: RevocationStore = (
        RedisRevocationStore.from_url(settings.redis_url)
        if settings.redis_url
        else FileRevocationStore(settings.data_dir / REVOKED_FILE_NAME)
    )
    return RevokedTokens(store)
