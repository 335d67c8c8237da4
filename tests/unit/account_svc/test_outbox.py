"""Tests for the email outbox: sent through a real SMTP server, never lost, at most once."""

from __future__ import annotations

import email
import email.policy
import logging
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from account_svc.mail import (
    FileTransport,
    MailConfig,
    OutgoingEmail,
    QueuedEmail,
    Security,
    SmtpConfig,
    SmtpTransport,
    TransientMailError,
    build_message,
    open_transport,
)
from account_svc.outbox import FAILED, PENDING, SENT, EmailOutbox, Postman, enqueue
from account_svc.schema import email_outbox_table
from smtp_support import (
    SmtpServer,
    body_of,
    loopback_certificate,
    password_check,
    smtp_server,
)

SENDER = "CFD Mesh <no-reply@cfd.example>"


class Clock:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


def transport(server: SmtpServer) -> SmtpTransport:
    return SmtpTransport(SmtpConfig("127.0.0.1", server.port, Security.NONE), timeout_s=5)


async def queue(db: AsyncEngine, recipient: str, body: str = "hello", now_ms: int = 0) -> str:
    async with db.begin() as conn:
        return await enqueue(conn, OutgoingEmail(recipient, "Greetings", body), now_ms)


async def row(db: AsyncEngine, email_id: str) -> dict[str, object]:
    async with db.connect() as conn:
        found = (
            await conn.execute(
                select(email_outbox_table).where(email_outbox_table.c.id == email_id)
            )
        ).one()
    return dict(found._mapping)


def depth_gauge() -> float | None:
    return REGISTRY.get_sample_value("cfd_accounts_outbox_depth", {"outbox": "email"})


async def test_a_queued_message_reaches_the_server_once_with_its_id(
    db: AsyncEngine, smtp: SmtpServer
) -> None:
    clock = Clock()
    outbox = EmailOutbox(db, clock=clock)
    email_id = await queue(db, "ann@example.com", "the body")
    postman = Postman(outbox, transport(smtp), SENDER)

    assert await postman.run_due() == 1
    assert await postman.run_due() == 0

    [message] = smtp.mailbox.messages
    assert message["Message-ID"] == f"<{email_id}@cfd.example>"
    assert message["To"] == "ann@example.com"
    assert message["Subject"] == "Greetings"
    assert "no-reply@cfd.example" in str(message["From"])
    assert body_of(message).strip() == "the body"
    stored = await row(db, email_id)
    assert stored["state"] == SENT and stored["attempts"] == 1
    # A sent message keeps no body: it may have carried a one-time link.
    assert stored["body"] == ""
    assert await outbox.depth() == 0 and depth_gauge() == 0


async def test_smtp_down_keeps_the_message_and_delivers_it_later_exactly_once(
    db: AsyncEngine, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    outbox = EmailOutbox(db, clock=clock)
    postman = Postman(outbox, transport(smtp), SENDER)
    email_id = await queue(db, "bob@example.com", now_ms=int(clock() * 1000))
    smtp.stop()

    with caplog.at_level(logging.WARNING):
        assert await postman.run_due() == 0
    assert "retrying in 1 s" in caplog.text
    stored = await row(db, email_id)
    assert stored["state"] == PENDING and stored["attempts"] == 1 and stored["last_error"]
    assert await outbox.depth() == 1 and depth_gauge() == 1
    # Not due again before its backoff.
    assert await postman.run_due() == 0
    assert (await row(db, email_id))["attempts"] == 1

    clock.now += 1
    assert await postman.run_due() == 0
    assert (await row(db, email_id))["attempts"] == 2
    # The backoff doubles.
    clock.now += 1
    assert await postman.run_due() == 0
    assert (await row(db, email_id))["attempts"] == 2

    smtp.start()
    clock.now += 1
    assert await postman.run_due() == 1
    clock.now += 3600
    assert await postman.run_due() == 0
    assert [m["Message-ID"] for m in smtp.mailbox.messages] == [f"<{email_id}@cfd.example>"]
    assert await outbox.depth() == 0


async def test_two_postmen_never_send_the_same_message_twice(
    db: AsyncEngine, smtp: SmtpServer
) -> None:
    clock = Clock()
    ids = {await queue(db, f"user{n}@example.com") for n in range(5)}
    first = Postman(EmailOutbox(db, clock=clock), transport(smtp), SENDER)
    second = Postman(EmailOutbox(db, clock=clock), transport(smtp), SENDER)
    outbox = EmailOutbox(db, clock=clock)
    stale = await outbox.due(10)
    assert await first.run_due() == 5
    # The second read the rows as due before the first claimed them: its claims fail.
    for queued, due_ms in stale:
        assert not await outbox.claim(queued.id, due_ms)
    assert await second.run_due() == 0
    received = [str(m["Message-ID"]).strip("<>").partition("@")[0] for m in smtp.mailbox.messages]
    assert sorted(received) == sorted(ids)


async def test_a_claim_whose_sender_died_is_taken_over_after_its_lease(
    db: AsyncEngine, smtp: SmtpServer
) -> None:
    clock = Clock()
    outbox = EmailOutbox(db, lease_s=120, clock=clock)
    email_id = await queue(db, "cid@example.com")
    [(email, due_ms)] = await outbox.due(10)
    # A process claims the message and dies before sending it.
    assert await outbox.claim(email.id, due_ms)
    postman = Postman(outbox, transport(smtp), SENDER)
    assert await postman.run_due() == 0
    clock.now += 121
    assert await postman.run_due() == 1
    assert len(smtp.mailbox.messages) == 1
    assert (await row(db, email_id))["attempts"] == 2


async def test_a_refused_recipient_fails_the_message_for_good(
    db: AsyncEngine, smtp: SmtpServer
) -> None:
    clock = Clock()
    smtp.mailbox.refused.add("gone@example.com")
    outbox = EmailOutbox(db, clock=clock)
    email_id = await queue(db, "gone@example.com")
    kept_id = await queue(db, "here@example.com")
    postman = Postman(outbox, transport(smtp), SENDER)
    assert await postman.run_due() == 1
    stored = await row(db, email_id)
    assert stored["state"] == FAILED and stored["body"] == ""
    assert "550" in str(stored["last_error"])
    clock.now += 3600
    assert await postman.run_due() == 0
    assert [m["To"] for m in smtp.mailbox.messages] == ["here@example.com"]
    assert (await row(db, kept_id))["state"] == SENT
    assert await outbox.depth() == 0


async def test_a_message_is_written_in_the_callers_transaction_only(db: AsyncEngine) -> None:
    outbox = EmailOutbox(db)
    with pytest.raises(RuntimeError):
        async with db.begin() as conn:
            await enqueue(conn, OutgoingEmail("dan@example.com", "s", "b"), 0)
            raise RuntimeError("the change failed")
    assert await outbox.depth() == 0


async def test_without_smtp_messages_are_files_in_the_data_dir(
    db: AsyncEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        sink = open_transport(MailConfig(), tmp_path)
    assert isinstance(sink, FileTransport)
    assert f"emails are written to {tmp_path / 'mail'}" in caplog.text
    email_id = await queue(db, "eve@example.com", "file body")
    with caplog.at_level(logging.INFO):
        assert await Postman(EmailOutbox(db), sink, SENDER).run_due() == 1
    path = tmp_path / "mail" / f"{email_id}.eml"
    assert f"email written to {path}" in caplog.text
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message["Message-ID"] == f"<{email_id}@cfd.example>"
    assert body_of(message).strip() == "file body"
    assert [p.name for p in (tmp_path / "mail").iterdir()] == [f"{email_id}.eml"]


async def test_an_unwritable_mail_dir_keeps_the_message(db: AsyncEngine, tmp_path: Path) -> None:
    blocker = tmp_path / "mail"
    blocker.write_text("a file where the directory should be")
    email_id = await queue(db, "fay@example.com")
    assert await Postman(EmailOutbox(db), FileTransport(blocker), SENDER).run_due() == 0
    assert (await row(db, email_id))["state"] == PENDING


# The test server warns about the implicit-TLS case below, which is TLS all the same.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
@pytest.mark.parametrize("security", [Security.STARTTLS, Security.TLS])
async def test_tls_and_credentials_reach_a_server_that_requires_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, security: Security
) -> None:
    server_tls, ca_file = loopback_certificate(tmp_path)
    # The client trusts the test certificate as it would a public one.
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    options: dict[str, object] = (
        {"tls_context": server_tls, "require_starttls": True}
        if security is Security.STARTTLS
        # aiosmtpd sees only STARTTLS as TLS: over implicit TLS it must be told AUTH is safe.
        else {"ssl_context": server_tls, "auth_require_tls": False}
    )
    email_id = "00112233445566778899aabbccddeeff"
    queued = QueuedEmail(email_id, "tls@example.com", "Secure", "over TLS\n", 0, 0)
    with smtp_server(
        auth_required=True, authenticator=password_check("mesh", "s3cret-pw"), **options
    ) as server:
        wrong = SmtpTransport(SmtpConfig("127.0.0.1", server.port, security, "mesh", "guess"))
        with pytest.raises(TransientMailError, match="SMTPAuthenticationError"):
            await wrong.deliver(build_message(queued, SENDER))
        right = SmtpTransport(SmtpConfig("127.0.0.1", server.port, security, "mesh", "s3cret-pw"))
        await right.deliver(build_message(queued, SENDER))
        [message] = server.mailbox.messages
    assert message["Message-ID"] == f"<{email_id}@cfd.example>"
