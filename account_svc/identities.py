"""Linked external identities, the authorization requests in flight and the sign-in tickets
waiting for a second factor, in SQL."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from account_svc.schema import identities_table, oidc_requests_table, signin_tickets_table

# An authorization request must come back within this many seconds.
REQUEST_TTL_S = 600
# A sign-in ticket must be completed with the second factor within this many seconds.
TICKET_TTL_S = 300
# Tickets are 256 random bits, URL-safe base64 (43 characters).
_TICKET_BYTES = 32
MAX_TICKET_LENGTH = 128


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


@dataclass(frozen=True)
class SigninTicket:
    """A provider sign-in that waits for the user's second factor."""

    user_id: str
    provider: str
    return_url: str
    expire_time_ms: int


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
        """Delete the expired requests and sign-in tickets; return how many."""
        now_ms = self._now_ms()
        async with self._engine.begin() as conn:
            requests = await conn.execute(
                delete(oidc_requests_table).where(oidc_requests_table.c.expire_time_ms <= now_ms)
            )
            tickets = await conn.execute(
                delete(signin_tickets_table).where(
                    signin_tickets_table.c.expire_time_ms <= now_ms
                )
            )
        return requests.rowcount + tickets.rowcount

    async def save_ticket(self, user_id: str, provider: str, return_url: str) -> tuple[str, int]:
        """Store a new sign-in ticket for the user; return it and its expiry (ms).

        Only the ticket's SHA-256 is stored, as for a state.
        """
        ticket = secrets.token_urlsafe(_TICKET_BYTES)
        expire_time_ms = self._now_ms() + TICKET_TTL_S * 1000
        async with self._engine.begin() as conn:
            await conn.execute(
                signin_tickets_table.insert().values(
                    ticket_hash=state_hash(ticket),
                    user_id=user_id,
                    provider=provider,
                    return_url=return_url,
                    expire_time_ms=expire_time_ms,
                )
            )
        return ticket, expire_time_ms

    async def find_ticket(self, ticket: str) -> SigninTicket | None:
        """Return the live sign-in of ``ticket``; None when unknown, used or expired."""
        c = signin_tickets_table.c
        stmt = select(c.user_id, c.provider, c.return_url, c.expire_time_ms).where(
            c.ticket_hash == state_hash(ticket), c.expire_time_ms > self._now_ms()
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        if row is None:
            return None
        return SigninTicket(row.user_id, row.provider, row.return_url, row.expire_time_ms)

    async def take_ticket(self, ticket: str) -> bool:
        """Spend a live ticket; return False when it is unknown, used or expired.

        The delete decides: of two completions with the same ticket, one deletes the row.
        """
        c = signin_tickets_table.c
        stmt = delete(signin_tickets_table).where(
            c.ticket_hash == state_hash(ticket), c.expire_time_ms > self._now_ms()
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount == 1

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
