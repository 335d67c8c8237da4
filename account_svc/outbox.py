"""The email outbox: messages written with the change that causes them, sent afterwards.

A use case inserts its message with ``enqueue`` inside its own transaction, so the message
exists exactly when the change does. The ``Postman`` then sends what is due:

- Before sending, it claims the row with a compare-and-set on its due time, which moves the
  due time a lease ahead. Two replicas never both claim a row; a process that dies while
  sending leaves a row that becomes due again when the lease ends.
- Once the mail server accepted the message, the row is marked sent (and its body, which
  may carry a one-time link, emptied); a sent row is never claimed again.
- A server that cannot be reached, times out or refuses for a reason of its own leaves the
  row pending, due again after a backoff (1 s doubling, at most 5 min): nothing is lost
  while SMTP is down. A refusal of the message itself (5xx for the recipient or the data)
  marks it failed, kept for the operator.

Every attempt of a message carries the same ``Message-ID`` (its id), so in the one case that
can repeat it (the process dies after the server accepted the message but before the row
was marked) receivers recognize the copy.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Final

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from account_svc import metrics
from account_svc.mail import (
    MailTransport,
    OutgoingEmail,
    PermanentMailError,
    QueuedEmail,
    TransientMailError,
    build_message,
)
from account_svc.provisioning import backoff_s
from account_svc.schema import email_outbox_table

_log = logging.getLogger(__name__)

PENDING: Final = "pending"
SENT: Final = "sent"
FAILED: Final = "failed"
# Longer than one SMTP exchange may take, so a live sender is never overtaken.
DEFAULT_LEASE_S: Final = 120.0
_MAX_ERROR_LENGTH: Final = 200


def _now_ms(clock: Callable[[], float]) -> int:
    return int(clock() * 1000)


async def enqueue(conn: AsyncConnection, email: OutgoingEmail, now_ms: int) -> str:
    """Insert ``email`` into the outbox within the caller's transaction; return its id."""
    email_id = secrets.token_hex(16)
    await conn.execute(
        email_outbox_table.insert().values(
            id=email_id,
            recipient=email.recipient,
            subject=email.subject,
            body=email.body,
            state=PENDING,
            create_time_ms=now_ms,
            attempts=0,
            next_attempt_ms=now_ms,
        )
    )
    return email_id


class EmailOutbox:
    """Read and update ``account_email_outbox`` rows (see the module doc)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        lease_s: float = DEFAULT_LEASE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._lease_ms = int(lease_s * 1000)
        self._clock = clock

    async def due(self, limit: int) -> list[tuple[QueuedEmail, int]]:
        """Return up to ``limit`` due pending messages, oldest due first, with their due time."""
        c = email_outbox_table.c
        stmt = (
            select(
                c.id,
                c.recipient,
                c.subject,
                c.body,
                c.create_time_ms,
                c.attempts,
                c.next_attempt_ms,
            )
            .where(c.state == PENDING, c.next_attempt_ms <= _now_ms(self._clock))
            .order_by(c.next_attempt_ms, c.id)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            (
                QueuedEmail(r.id, r.recipient, r.subject, r.body, r.create_time_ms, r.attempts),
                r.next_attempt_ms,
            )
            for r in rows
        ]

    async def claim(self, email_id: str, due_ms: int) -> bool:
        """Take the message for one attempt if nobody took it since it was read as due."""
        c = email_outbox_table.c
        stmt = (
            update(email_outbox_table)
            .where(c.id == email_id, c.state == PENDING, c.next_attempt_ms == due_ms)
            .values(next_attempt_ms=_now_ms(self._clock) + self._lease_ms, attempts=c.attempts + 1)
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount == 1

    async def mark_sent(self, email_id: str) -> None:
        """Record that the mail server accepted the message, and drop its body."""
        c = email_outbox_table.c
        stmt = (
            update(email_outbox_table)
            .where(c.id == email_id, c.state == PENDING)
            .values(state=SENT, sent_time_ms=_now_ms(self._clock), body="", last_error=None)
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt)

    async def postpone(self, email_id: str, error: str, delay_s: float) -> None:
        """Record a failed attempt and when to try again."""
        c = email_outbox_table.c
        stmt = (
            update(email_outbox_table)
            .where(c.id == email_id, c.state == PENDING)
            .values(
                next_attempt_ms=_now_ms(self._clock) + int(delay_s * 1000),
                last_error=error[:_MAX_ERROR_LENGTH],
            )
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt)

    async def mark_failed(self, email_id: str, error: str) -> None:
        """Record that the mail server refused the message for good."""
        c = email_outbox_table.c
        stmt = (
            update(email_outbox_table)
            .where(c.id == email_id, c.state == PENDING)
            .values(state=FAILED, body="", last_error=error[:_MAX_ERROR_LENGTH])
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt)

    async def depth(self) -> int:
        """Return how many messages wait to be sent."""
        c = email_outbox_table.c
        stmt = select(func.count()).select_from(email_outbox_table).where(c.state == PENDING)
        async with self._engine.connect() as conn:
            return int(await conn.scalar(stmt) or 0)


class Postman:
    """Send the outbox's due messages through a transport (see the module doc)."""

    def __init__(self, outbox: EmailOutbox, transport: MailTransport, sender: str) -> None:
        self._outbox = outbox
        self._transport = transport
        self._sender = sender

    async def run_due(self, limit: int = 100) -> int:
        """Attempt every due message once; return how many were sent."""
        sent = 0
        for email, due_ms in await self._outbox.due(limit):
            if await self._outbox.claim(email.id, due_ms) and await self._attempt(email):
                sent += 1
        metrics.OUTBOX_DEPTH.labels("email").set(await self._outbox.depth())
        return sent

    async def _attempt(self, email: QueuedEmail) -> bool:
        fields = {"email_id": email.id, "attempt": email.attempts + 1}
        try:
            await self._transport.deliver(build_message(email, self._sender))
        except PermanentMailError as exc:
            _log.error("email refused by the mail server: %s", exc, extra={"fields": fields})
            await self._outbox.mark_failed(email.id, str(exc))
            return False
        except TransientMailError as exc:
            delay = backoff_s(email.attempts)
            _log.warning(
                "email not sent; retrying in %.0f s: %s", delay, exc, extra={"fields": fields}
            )
            await self._outbox.postpone(email.id, str(exc), delay)
            return False
        await self._outbox.mark_sent(email.id)
        metrics.EMAILS_SENT.inc()
        _log.info("email sent", extra={"fields": fields})
        return True
