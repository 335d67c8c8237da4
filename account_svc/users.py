"""Users and the signup outbox in SQL."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Select, and_, delete, false, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from account_svc.schema import (
    email_verifications_table,
    provisioning_table,
    totp_table,
    users_table,
)

_MAX_ERROR_LENGTH = 200
# The password hash of a user who signs in only through an identity provider.
NO_PASSWORD = ""


class EmailTakenError(Exception):
    """Another user already has this email."""


@dataclass(frozen=True)
class User:
    """A user as the API shows it."""

    id: str
    email: str
    create_time_ms: int
    totp_enabled: bool = False
    email_verified: bool = False
    # The CFD engine shard holding the user's trading account.
    shard: int = 0


@dataclass(frozen=True)
class StoredCredentials:
    """A user with the hash of their password."""

    user: User
    password_hash: str

    def __repr__(self) -> str:
        # Keep the hash out of logs and tracebacks.
        return f"StoredCredentials(user={self.user!r})"


@dataclass(frozen=True)
class PendingAccount:
    """A user whose trading account may not exist in the engine yet."""

    user_id: str
    initial_balance: str
    attempts: int
    # A cfd.v1.MarginMode name, or "" for the engine's default.
    margin_mode: str = ""
    # A cfd.v1.PositionMode name, or "" for the engine's default.
    position_mode: str = ""
    # The CFD engine shard that holds the account.
    shard: int = 0


def _user_select() -> Select[Any]:
    c, t, v = users_table.c, totp_table.c, email_verifications_table.c
    return (
        select(
            c.id,
            c.email,
            c.create_time_ms,
            c.password_hash,
            func.coalesce(t.enabled, false()).label("totp_enabled"),
            v.user_id.is_not(None).label("email_verified"),
            c.shard,
        )
        .join_from(users_table, totp_table, isouter=True)
        # Only the current address counts: a verification of an earlier one does not.
        .join(
            email_verifications_table,
            and_(v.user_id == c.id, v.email == c.email),
            isouter=True,
        )
    )


def _pending_select() -> Select[Any]:
    c = provisioning_table.c
    return select(
        c.user_id,
        c.initial_balance,
        c.attempts,
        c.margin_mode,
        c.position_mode,
        users_table.c.shard,
    ).join_from(provisioning_table, users_table, users_table.c.id == c.user_id)


def _pending(row: Row[Any]) -> PendingAccount:
    return PendingAccount(
        row.user_id,
        row.initial_balance,
        row.attempts,
        row.margin_mode or "",
        row.position_mode or "",
        row.shard,
    )


def assign_shard(user_id: str, shards: int) -> int:
    """Return the shard of a new user: spread evenly by a hash of the id, stable once stored."""
    digest = hashlib.sha256(user_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


def _now_ms(clock: Callable[[], float]) -> int:
    return int(clock() * 1000)


class UserStore:
    """Read and write ``account_users`` and the ``account_provisioning`` outbox."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Callable[[], float] = time.time,
        shards: int = 1,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._shards = shards

    async def create(
        self,
        email: str,
        password_hash: str,
        initial_balance: str,
        margin_mode: str = "",
        also: Callable[[AsyncConnection, User], Awaitable[None]] | None = None,
        position_mode: str = "",
    ) -> User:
        """Insert a user and, in the same transaction, its pending trading account (in
        `margin_mode` and `position_mode`, "" for the engine's defaults) and whatever ``also``
        writes (the verification email).

        Raise ``EmailTakenError`` when the (normalized) email is in use.
        """
        user_id = str(uuid.uuid4())
        user = User(
            id=user_id,
            email=email,
            create_time_ms=_now_ms(self._clock),
            shard=assign_shard(user_id, self._shards),
        )
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    users_table.insert().values(
                        id=user.id,
                        email=user.email,
                        password_hash=password_hash,
                        create_time_ms=user.create_time_ms,
                        shard=user.shard,
                    )
                )
                await conn.execute(
                    provisioning_table.insert().values(
                        user_id=user.id,
                        initial_balance=initial_balance,
                        margin_mode=margin_mode or None,
                        position_mode=position_mode or None,
                        attempts=0,
                        next_attempt_ms=user.create_time_ms,
                    )
                )
                if also is not None:
                    await also(conn, user)
        except IntegrityError:
            raise EmailTakenError(email) from None
        return user

    async def get(self, user_id: str) -> User | None:
        """Return the user with this id, if any."""
        stored = await self._find(_user_select().where(users_table.c.id == user_id))
        return None if stored is None else stored.user

    async def shard_of(self, user_id: str) -> int:
        """Return the CFD engine shard of the user's account (0 for an unknown user)."""
        async with self._engine.connect() as conn:
            shard = await conn.scalar(
                select(users_table.c.shard).where(users_table.c.id == user_id)
            )
        return int(shard or 0)

    async def find_by_email(self, email: str) -> StoredCredentials | None:
        """Return the user with this normalized email and their password hash, if any."""
        return await self._find(_user_select().where(users_table.c.email == email))

    async def _find(self, stmt: Select[Any]) -> StoredCredentials | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        if row is None:
            return None
        user = User(
            row.id,
            row.email,
            row.create_time_ms,
            bool(row.totp_enabled),
            bool(row.email_verified),
            row.shard,
        )
        return StoredCredentials(user, row.password_hash)

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        """Replace the stored hash (after a rehash with new cost parameters)."""
        stmt = (
            update(users_table)
            .where(users_table.c.id == user_id)
            .values(password_hash=password_hash)
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt)

    async def pending_account(self, user_id: str) -> PendingAccount | None:
        """Return the outbox entry of this user, if their account is not confirmed yet."""
        c = provisioning_table.c
        stmt = _pending_select().where(c.user_id == user_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        if row is None:
            return None
        return _pending(row)

    async def due_accounts(self, limit: int) -> list[PendingAccount]:
        """Return up to ``limit`` outbox entries whose next attempt is due, oldest first."""
        c = provisioning_table.c
        stmt = (
            _pending_select()
            .where(c.next_attempt_ms <= _now_ms(self._clock))
            .order_by(c.next_attempt_ms, c.user_id)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_pending(r) for r in rows]

    async def count_pending_accounts(self) -> int:
        """Return how many users still wait for their trading account."""
        async with self._engine.connect() as conn:
            count = await conn.scalar(select(func.count()).select_from(provisioning_table))
        return int(count or 0)

    async def complete_account(self, user_id: str) -> None:
        """Remove the outbox entry: the engine confirmed the trading account."""
        stmt = delete(provisioning_table).where(provisioning_table.c.user_id == user_id)
        async with self._engine.begin() as conn:
            await conn.execute(stmt)

    async def postpone_account(self, user_id: str, error: str, delay_s: float) -> None:
        """Record a failed attempt and when to try again."""
        c = provisioning_table.c
        stmt = (
            update(provisioning_table)
            .where(c.user_id == user_id)
            .values(
                attempts=c.attempts + 1,
                next_attempt_ms=_now_ms(self._clock) + int(delay_s * 1000),
                last_error=error[:_MAX_ERROR_LENGTH],
            )
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt)
