"""A real SMTP server (aiosmtpd) on a loopback port that keeps what it receives."""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from support import free_port


class Mailbox:
    """The messages an SMTP server accepted, in order; it can refuse recipients."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[EmailMessage] = []
        self.refused: set[str] = set()

    @property
    def messages(self) -> list[EmailMessage]:
        """Return a copy of the accepted messages."""
        with self._lock:
            return list(self._messages)

    def to(self, recipient: str) -> list[EmailMessage]:
        """Return the accepted messages addressed to ``recipient``."""
        return [m for m in self.messages if m["To"] == recipient]

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refused:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self._messages.append(message)
        return "250 OK"


class SmtpServer:
    """An aiosmtpd server on 127.0.0.1:``port`` that can be stopped and started again."""

    def __init__(self, mailbox: Mailbox, port: int) -> None:
        self.mailbox = mailbox
        self.port = port
        self._controller: Controller | None = None

    def start(self) -> None:
        """Listen (again) on the same port."""
        self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        """Stop listening: connections are refused until ``start``."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    """Run an SMTP server on a free loopback port for the duration of the block."""
    server = SmtpServer(Mailbox(), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def body_of(message: EmailMessage) -> str:
    """Return the plain text body of ``message``."""
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())
