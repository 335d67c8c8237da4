"""Prove email addresses and reset passwords with emailed one-time tokens.

Each change and the message or token use that goes with it share one transaction: a
verification message exists exactly when its token does, a password changes exactly when
its reset token is spent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from account_svc import email_tokens
from account_svc.email_tokens import RESET_PASSWORD, VERIFY_EMAIL, TokenSigner
from account_svc.mail import (
    MailConfig,
    OutgoingEmail,
    email_changed_notice,
    password_reset_email,
    verification_email,
)
from account_svc.outbox import enqueue
from account_svc.schema import email_verifications_table, users_table
from account_svc.users import EmailTakenError
from mesh.errors import ApiError

_log = logging.getLogger(__name__)

DEFAULT_VERIFY_TTL_S: Final = 48 * 3600
DEFAULT_RESET_TTL_S: Final = 3600
# The fragments of the web page's links (``#verify-email=<token>``).
VERIFY_LINK: Final = "verify-email"
RESET_LINK: Final = "reset-password"


class EmailIdentity:
    """Send verification and reset tokens through the outbox, and spend them."""

    def __init__(
        self,
        engine: AsyncEngine,
        signer: TokenSigner,
        mail: MailConfig,
        *,
        verify_ttl_s: int = DEFAULT_VERIFY_TTL_S,
        reset_ttl_s: int = DEFAULT_RESET_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._signer = signer
        self._mail = mail
        self._verify_ttl_s = verify_ttl_s
        self._reset_ttl_s = reset_ttl_s
        self._clock = clock

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def _send_token(
        self,
        conn: AsyncConnection,
        purpose: str,
        user_id: str,
        email: str,
        compose: Callable[[str], OutgoingEmail],
        ttl_s: int,
    ) -> None:
        now_ms = self._now_ms()
        expire_s = now_ms // 1000 + ttl_s
        token, token_id = self._signer.issue(purpose, expire_s)
        await email_tokens.record(
            conn,
            token_id=token_id,
            user_id=user_id,
            purpose=purpose,
            email=email,
            now_ms=now_ms,
            expire_ms=expire_s * 1000,
        )
        await enqueue(conn, compose(token), now_ms)

    async def send_verification(self, conn: AsyncConnection, user_id: str, email: str) -> None:
        """Within the caller's transaction, queue a verification message for ``email``.

        Earlier unused verification tokens of the user stop working: only the newest link
        does.
        """
        await email_tokens.withdraw(conn, user_id, VERIFY_EMAIL, self._now_ms())

        def compose(token: str) -> OutgoingEmail:
            link = self._mail.link(VERIFY_LINK, token)
            return verification_email(email, link, token, self._verify_ttl_s)

        await self._send_token(conn, VERIFY_EMAIL, user_id, email, compose, self._verify_ttl_s)

    async def resend_verification(self, user_id: str, email: str) -> None:
        """Queue a new verification message in a transaction of its own."""
        async with self._engine.begin() as conn:
            await self.send_verification(conn, user_id, email)
        _log.info("verification email queued", extra={"fields": {"user_id": user_id}})

    async def send_password_reset(self, user_id: str, email: str) -> None:
        """Queue a password reset message for the user."""

        def compose(token: str) -> OutgoingEmail:
            link = self._mail.link(RESET_LINK, token)
            return password_reset_email(email, link, token, self._reset_ttl_s)

        async with self._engine.begin() as conn:
            await self._send_token(conn, RESET_PASSWORD, user_id, email, compose, self._reset_ttl_s)
        _log.info("password reset email queued", extra={"fields": {"user_id": user_id}})

    async def change_email(self, user_id: str, old: str, new: str) -> None:
        """Move the user to ``new`` and mail it a verification link, in one transaction.

        The old address is told; the reset links mailed to it stop working (a verification
        link to it no longer counts, as it proves an address the user left). Raise
        ``EmailTakenError`` when another user has ``new``.
        """
        now_ms = self._now_ms()
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    update(users_table).where(users_table.c.id == user_id).values(email=new)
                )
                await email_tokens.withdraw(conn, user_id, RESET_PASSWORD, now_ms)
                await enqueue(conn, email_changed_notice(old, new), now_ms)
                await self.send_verification(conn, user_id, new)
        except IntegrityError:
            raise EmailTakenError(new) from None
        _log.info("email changed", extra={"fields": {"user_id": user_id}})

    def check(self, purpose: str, token: str) -> str:
        """Return the id of a genuine, unexpired token (see ``TokenSigner.check``)."""
        return self._signer.check(purpose, token, self._clock())

    async def verify(self, token_id: str) -> str:
        """Spend a verification token and mark its address verified; return the user id."""
        async with self._engine.begin() as conn:
            spent = await email_tokens.spend(conn, token_id, VERIFY_EMAIL, self._now_ms())
            await self._mark_verified(conn, spent.user_id, spent.email)
        _log.info("email verified", extra={"fields": {"user_id": spent.user_id}})
        return spent.user_id

    async def reset_password(self, token_id: str, password_hash: str) -> str:
        """Spend a reset token and set the new password hash; return the user id.

        The other reset tokens of the user stop working, and the address the token reached
        counts as verified: the user proved it is theirs.
        """
        now_ms = self._now_ms()
        async with self._engine.begin() as conn:
            spent = await email_tokens.spend(conn, token_id, RESET_PASSWORD, now_ms)
            await conn.execute(
                update(users_table)
                .where(users_table.c.id == spent.user_id)
                .values(password_hash=password_hash)
            )
            await email_tokens.withdraw(conn, spent.user_id, RESET_PASSWORD, now_ms)
            await self._mark_verified(conn, spent.user_id, spent.email)
        _log.info("password reset", extra={"fields": {"user_id": spent.user_id}})
        return spent.user_id

    async def reset_owner(self, token_id: str) -> str:
        """Return the user of an unused reset token; EMAIL_TOKEN_USED or _INVALID otherwise."""
        async with self._engine.connect() as conn:
            return (await email_tokens.owner(conn, token_id, RESET_PASSWORD)).user_id

    async def _mark_verified(self, conn: AsyncConnection, user_id: str, email: str) -> None:
        current = await conn.scalar(select(users_table.c.email).where(users_table.c.id == user_id))
        if current is None:
            raise ApiError("USER_NOT_FOUND", "the user of this link no longer exists")
        if current != email:
            # The user changed their email since: this link proved an address they left.
            return
        v = email_verifications_table.c
        await conn.execute(delete(email_verifications_table).where(v.user_id == user_id))
        await conn.execute(
            email_verifications_table.insert().values(
                user_id=user_id, email=email, verify_time_ms=self._now_ms()
            )
        )
