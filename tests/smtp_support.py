"""A real SMTP server (aiosmtpd) on a loopback port that keeps what it receives."""

from __future__ import annotations

import datetime
import email
import email.policy
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

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
    """An aiosmtpd server on 127.0.0.1:``port`` that can be stopped and started again.

    ``options`` go to the controller: ``ssl_context`` (implicit TLS), ``tls_context`` and
    ``require_starttls``, ``auth_required`` and ``authenticator``.
    """

    def __init__(self, mailbox: Mailbox, port: int, **options: Any) -> None:
        self.mailbox = mailbox
        self.port = port
        self._options = options
        self._controller: Controller | None = None

    def start(self) -> None:
        """Listen (again) on the same port."""
        self._controller = Controller(
            self.mailbox, hostname="127.0.0.1", port=self.port, **self._options
        )
        self._controller.start()

    def stop(self) -> None:
        """Stop listening: connections are refused until ``start``."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@contextmanager
def smtp_server(**options: Any) -> Iterator[SmtpServer]:
    """Run an SMTP server on a free loopback port for the duration of the block."""
    server = SmtpServer(Mailbox(), free_port(), **options)
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


def loopback_certificate(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """Return a server TLS context for 127.0.0.1 with a new self-signed certificate, and the
    certificate's file, for clients to trust."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "smtp-cert.pem"
    key_path = directory / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context, cert_path


def password_check(login: str, password: str) -> Any:
    """Return an aiosmtpd authenticator accepting only ``login`` with ``password``."""

    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            login.encode(),
            password.encode(),
        )
        # Not handled: the server itself answers 235 or 535.
        return AuthResult(success=ok, handled=False)

    return authenticate
