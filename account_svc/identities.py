"""Linked external identities and the authorization requests in flight, in SQL."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from account_svc.schema import identities_table, oidc_requests_table

# An authorization request must come back within this many seconds.
REQUEST_TTL_S = 600


class IdentityTakenError(Exception):
    """The identity, or another identity of the same provider, is linked already."""


@dataclass(frozen=True)
class AuthorizationRequest:
    """What the callback needs of the request it answers; ``user_id`` is set for a link."""

    provider: str
    user_id: str | None
    nonce: str
    code_verifier: str
    return_url: str

    def __repr__(self) -> str:
        # The nonce and the verifier stay out of logs.
        return f"AuthorizationRequest(provider={self.provider!r}, user_id={self.user_id!r})"


@dataclass(frozen=True)
class LinkedIdentity:
    """An identity as the user's list shows it."""

    provider: str
    subject: str
    email: str
    link_time_ms: int


def state_hash(state: str) -> str:
    """Return the key a state is stored under: its SHA-256, so the table holds no live state."""
    return hashlib.sha256(state.encode()).hexdigest()


class IdentityStore:
    """Read and write ``account_identities`` and ``account_oidc_requests``."""

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def save_request(self, state: str, request: AuthorizationRequest) -> None:
        """Remember an authorization request until its callback or its expiry."""
        async with self._engine.begin() as conn:
            await conn.execute(
                oidc_requests_table.insert().values(
                    state_hash=state_hash(state),
                    provider=request.provider,
                    user_id=request.user_id,
                    nonce=request.nonce,
                    code_verifier=request.code_verifier,
                    return_url=request.return_url,
                    expire_time_ms=self._now_ms() + REQUEST_TTL_S * 1000,
                )
            )

    async def take_request(self, state: str) -> AuthorizationRequest | None:
        """Return and forget the live request of ``state``; None when unknown, used or expired.

        The delete decides: of two callbacks with the same state, one deletes the row and
        the other finds nothing.
        """
        key = state_hash(state)
        c = oidc_requests_table.c
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(select(oidc_requests_table).where(c.state_hash == key))
            ).one_or_none()
            if row is None:
                return None
            deleted = await conn.execute(delete(oidc_requests_table).where(c.state_hash == key))
        if deleted.rowcount != 1 or row.expire_time_ms <= self._now_ms():
            return None
        return AuthorizationRequest(
            row.provider, row.user_id, row.nonce, row.code_verifier, row.return_url
        )

    async def purge_requests(self) -> int:
        """Delete the expired requests; return how many."""
        stmt = delete(oidc_requests_table).where(
            oidc_requests_table.c.expire_time_ms <= self._now_ms()
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount

    async def user_of(self, provider: str, subject: str) -> str | None:
        """Return the id of the user this identity is linked to, if any."""
        c = identities_table.c
        stmt = select(c.user_id).where(c.provider == provider, c.subject == subject)
        async with self._engine.connect() as conn:
            user_id: str | None = await conn.scalar(stmt)
        return user_id

    async def link(self, user_id: str, provider: str, subject: str, email: str) -> None:
        """Link the identity to the user; raise IdentityTakenError when either side has one."""
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    identities_table.insert().values(
                        provider=provider,
                        subject=subject,
                        user_id=user_id,
                        email=email,
                        link_time_ms=self._now_ms(),
                    )
                )
        except IntegrityError:
            raise IdentityTakenError(provider) from None

    async def unlink(self, user_id: str, provider: str) -> bool:
        """Remove the user's identity of this provider; return whether there was one."""
        c = identities_table.c
        stmt = delete(identities_table).where(c.user_id == user_id, c.provider == provider)
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount == 1

    async def list(self, user_id: str) -> list[LinkedIdentity]:
        """Return the user's linked identities, by provider name."""
        c = identities_table.c
        stmt = (
            select(c.provider, c.subject, c.email, c.link_time_ms)
            .where(c.user_id == user_id)
            .order_by(c.provider)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [LinkedIdentity(r.provider, r.subject, r.email, r.link_time_ms) for r in rows]
