"""Emails: their settings, their text, and the two ways they leave the service.

With ``CFD_SMTP_HOST`` set, messages go to that mail server through aiosmtplib (implicit TLS,
STARTTLS or plain, with optional credentials). Without it (the embedded default) each message
is written as an ``.eml`` file under ``<CFD_DATA_DIR>/mail``, where a developer opens it.

Either way a message is identified by its outbox id, which is also its ``Message-ID``: a
repeat of the same message carries the same one.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Final, Protocol
from urllib.parse import urlsplit

import aiosmtplib

from mesh.tokens import _fsync_dir, _write_temp

_log = logging.getLogger(__name__)

MAIL_DIR_NAME: Final = "mail"
DEFAULT_SENDER: Final = "CFD Mesh <no-reply@localhost>"
SMTP_TIMEOUT_S: Final = 30.0
_DEFAULT_PORTS: Final = {"tls": 465, "starttls": 587, "none": 25}


class MailConfigError(ValueError):
    """A CFD_SMTP_* or CFD_PUBLIC_URL variable has an unusable value."""


class Security(enum.Enum):
    """How the connection to the mail server is protected."""

    TLS = "tls"
    STARTTLS = "starttls"
    NONE = "none"


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to hand messages to the mail server."""

    host: str
    port: int
    security: Security = Security.STARTTLS
    username: str = ""
    password: str = ""

    def __repr__(self) -> str:
        # Keep the password out of logs and tracebacks.
        return f"SmtpConfig(host={self.host!r}, port={self.port}, security={self.security.value})"


@dataclass(frozen=True)
class MailConfig:
    """The email settings: the mail server (None = files), the sender and the site's URL."""

    smtp: SmtpConfig | None = None
    sender: str = DEFAULT_SENDER
    # Where the web page is, for the links in messages.
    public_url: str = "http://localhost:8000"

    @classmethod
    def from_env(cls, env: Mapping[str, str], edge_port: int = 8000) -> MailConfig:
        """Read ``CFD_SMTP_HOST``, ``_PORT``, ``_SECURITY``, ``_USERNAME``, ``_PASSWORD``,
        ``CFD_MAIL_FROM`` and ``CFD_PUBLIC_URL``."""
        sender = env.get("CFD_MAIL_FROM", "").strip() or DEFAULT_SENDER
        if "@" not in parseaddr(sender)[1] or any(c in sender for c in "\r\n"):
            raise MailConfigError(
                f"CFD_MAIL_FROM={sender!r} must be an address like {DEFAULT_SENDER!r}"
            )
        public_url = env.get("CFD_PUBLIC_URL", "").strip() or f"http://localhost:{edge_port}"
        parts = urlsplit(public_url)
        if (
            parts.scheme not in ("http", "https")
            or not parts.netloc
            or parts.query
            or parts.fragment
        ):
            raise MailConfigError(
                f"CFD_PUBLIC_URL={public_url!r} must be an http(s) URL without query or fragment"
            )
        host = env.get("CFD_SMTP_HOST", "").strip()
        if not host:
            return cls(None, sender, public_url.rstrip("/"))
        raw_security = env.get("CFD_SMTP_SECURITY", "").strip().lower() or "starttls"
        try:
            security = Security(raw_security)
        except ValueError:
            raise MailConfigError(
                f"CFD_SMTP_SECURITY={raw_security!r} must be one of tls, starttls, none"
            ) from None
        raw_port = env.get("CFD_SMTP_PORT", "").strip()
        if not raw_port:
            port = _DEFAULT_PORTS[security.value]
        elif raw_port.isascii() and raw_port.isdigit() and 1 <= int(raw_port) <= 65535:
            port = int(raw_port)
        else:
            raise MailConfigError(f"CFD_SMTP_PORT={raw_port!r} must be a port number")
        username = env.get("CFD_SMTP_USERNAME", "")
        password = env.get("CFD_SMTP_PASSWORD", "")
        if bool(username) != bool(password):
            raise MailConfigError("CFD_SMTP_USERNAME and CFD_SMTP_PASSWORD go together")
        smtp = SmtpConfig(host, port, security, username, password)
        return cls(smtp, sender, public_url.rstrip("/"))

    def link(self, action: str, token: str) -> str:
        """Return the web page's link for ``action`` with ``token`` in the fragment.

        A fragment never reaches a server, so the token stays out of access logs and
        Referer headers.
        """
        return f"{self.public_url}/#{action}={token}"


@dataclass(frozen=True)
class OutgoingEmail:
    """A message to write to the outbox: one recipient, plain text."""

    recipient: str
    subject: str
    body: str

    def __repr__(self) -> str:
        # The body may carry a one-time link.
        return f"OutgoingEmail(subject={self.subject!r})"


@dataclass(frozen=True)
class QueuedEmail:
    """A message taken from the outbox to send."""

    id: str
    recipient: str
    subject: str
    body: str
    create_time_ms: int
    attempts: int

    def __repr__(self) -> str:
        return f"QueuedEmail(id={self.id!r}, subject={self.subject!r})"


def message_id(email_id: str, sender: str) -> str:
    """Return the ``Message-ID`` of outbox message ``email_id``: the id at the sender's domain."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    return f"<{email_id}@{domain}>"


def build_message(email: QueuedEmail, sender: str) -> EmailMessage:
    """Return the MIME message of ``email``; the same bytes however often it is built."""
    message = EmailMessage()
    name, address = parseaddr(sender)
    message["From"] = Address(display_name=name, addr_spec=address)
    message["To"] = email.recipient
    message["Subject"] = email.subject
    message["Message-ID"] = message_id(email.id, sender)
    message["Date"] = format_datetime(datetime.fromtimestamp(email.create_time_ms / 1000, UTC))
    message.set_content(email.body)
    return message


class TransientMailError(Exception):
    """The message was not delivered this time; trying again later may succeed."""


class PermanentMailError(Exception):
    """The mail server refused the message for good (for example: no such mailbox)."""


class MailTransport(Protocol):
    """Hand one message over; raise TransientMailError or PermanentMailError."""

    async def deliver(self, message: EmailMessage) -> None:
        """Deliver ``message``; return only once it was accepted."""
        ...


def _is_permanent(exc: aiosmtplib.SMTPException) -> bool:
    """Return whether the server refused this message itself (5xx on recipient or data).

    Refusals of the sender or of the credentials are the operator's to fix: the message
    waits for them rather than being dropped.
    """
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(500 <= refused.code < 600 for refused in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError):
        return 500 <= exc.code < 600
    return False


class SmtpTransport:
    """Send through a mail server with aiosmtplib, one connection per message."""

    def __init__(self, config: SmtpConfig, *, timeout_s: float = SMTP_TIMEOUT_S) -> None:
        self._config = config
        self._timeout_s = timeout_s

    async def deliver(self, message: EmailMessage) -> None:
        """Send ``message``; raise PermanentMailError or TransientMailError on failure."""
        config = self._config
        try:
            await aiosmtplib.send(
                message,
                hostname=config.host,
                port=config.port,
                username=config.username or None,
                password=config.password or None,
                use_tls=config.security is Security.TLS,
                start_tls=config.security is Security.STARTTLS,
                timeout=self._timeout_s,
            )
        except aiosmtplib.SMTPException as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
            if _is_permanent(exc):
                raise PermanentMailError(error) from None
            raise TransientMailError(error) from None
        except OSError as exc:
            raise TransientMailError(f"{type(exc).__name__}: {exc.strerror or exc}") from None


class FileTransport:
    """Write each message to ``<directory>/<id>.eml``: the embedded default, for development."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    @property
    def directory(self) -> Path:
        """Return where messages are written."""
        return self._directory

    async def deliver(self, message: EmailMessage) -> None:
        """Write ``message`` atomically; a repeat replaces the file with the same bytes."""
        email_id = str(message["Message-ID"]).strip("<>").partition("@")[0]
        path = self._directory / f"{email_id}.eml"
        try:
            self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            _write_temp(self._directory, email_id, bytes(message), 0o600).replace(path)
            _fsync_dir(self._directory)
        except OSError as exc:
            raise TransientMailError(f"cannot write {path}: {exc.strerror}") from None
        _log.info("email written to %s", path)


def open_transport(config: MailConfig, data_dir: Path) -> MailTransport:
    """Return the SMTP transport when a server is configured, else files under the data dir."""
    if config.smtp is not None:
        _log.info("emails go to %s:%d", config.smtp.host, config.smtp.port)
        return SmtpTransport(config.smtp)
    directory = data_dir / MAIL_DIR_NAME
    _log.info("no mail server configured (CFD_SMTP_HOST): emails are written to %s", directory)
    return FileTransport(directory)


def verification_email(recipient: str, link: str, token: str, ttl_s: int) -> OutgoingEmail:
    """Return the message asking the user to confirm ``recipient`` is theirs."""
    body = (
        "Welcome to CFD Mesh.\n\n"
        "Confirm that this email address is yours by opening this link:\n\n"
        f"{link}\n\n"
        f"or by entering this code in the app:\n\n{token}\n\n"
        f"The link works once, for {_duration(ttl_s)}. If you did not sign up, ignore this "
        "message.\n"
    )
    return OutgoingEmail(recipient, "Confirm your email address", body)


def password_reset_email(recipient: str, link: str, token: str, ttl_s: int) -> OutgoingEmail:
    """Return the message carrying a password reset link."""
    body = (
        "Someone asked to reset the password of your CFD Mesh account.\n\n"
        "To choose a new password, open this link:\n\n"
        f"{link}\n\n"
        f"or enter this code in the app:\n\n{token}\n\n"
        f"The link works once, for {_duration(ttl_s)}. Resetting signs out every session. "
        "If you did not ask for it, ignore this message: your password stays as it is.\n"
    )
    return OutgoingEmail(recipient, "Reset your password", body)


def email_changed_notice(recipient: str, new_email: str) -> OutgoingEmail:
    """Return the message telling the old address that the account moved to ``new_email``."""
    body = (
        f"The email address of your CFD Mesh account was changed to {new_email}.\n\n"
        "Sign-in, notifications and password reset now use that address. If you did not make "
        "this change, reset your password from the new address at once, or contact support.\n"
    )
    return OutgoingEmail(recipient, "Your email address was changed", body)


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''}"
    minutes = max(1, seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
