"""Tests for the email settings and the messages' form."""

from __future__ import annotations

import pytest

from account_svc.config import AccountConfig, AccountConfigError
from account_svc.mail import (
    MailConfig,
    MailConfigError,
    QueuedEmail,
    Security,
    SmtpConfig,
    build_message,
)


def test_without_a_host_messages_go_to_files_and_links_to_the_local_edge() -> None:
    config = MailConfig.from_env({}, edge_port=8123)
    assert config.smtp is None
    assert config.link("verify-email", "abc") == "http://localhost:8123/#verify-email=abc"


@pytest.mark.parametrize(
    ("security", "port"), [("", 587), ("starttls", 587), ("TLS", 465), ("none", 25)]
)
def test_the_default_port_follows_the_security(security: str, port: int) -> None:
    config = MailConfig.from_env({"CFD_SMTP_HOST": "mail.example", "CFD_SMTP_SECURITY": security})
    assert config.smtp is not None and config.smtp.port == port


def test_every_smtp_setting_is_read() -> None:
    config = MailConfig.from_env(
        {
            "CFD_SMTP_HOST": "mail.example",
            "CFD_SMTP_PORT": "2525",
            "CFD_SMTP_SECURITY": "tls",
            "CFD_SMTP_USERNAME": "mesh",
            "CFD_SMTP_PASSWORD": "s3cret-pw",
            "CFD_MAIL_FROM": "Desk <desk@broker.example>",
            "CFD_PUBLIC_URL": "https://trade.broker.example/",
        }
    )
    assert config.smtp == SmtpConfig("mail.example", 2525, Security.TLS, "mesh", "s3cret-pw")
    assert "s3cret-pw" not in repr(config)
    assert config.sender == "Desk <desk@broker.example>"
    assert config.link("reset-password", "t") == "https://trade.broker.example/#reset-password=t"


@pytest.mark.parametrize(
    "env",
    [
        {"CFD_SMTP_HOST": "m", "CFD_SMTP_SECURITY": "ssl"},
        {"CFD_SMTP_HOST": "m", "CFD_SMTP_PORT": "0"},
        {"CFD_SMTP_HOST": "m", "CFD_SMTP_PORT": "smtp"},
        {"CFD_SMTP_HOST": "m", "CFD_SMTP_USERNAME": "only-the-name"},
        {"CFD_MAIL_FROM": "nobody"},
        {"CFD_MAIL_FROM": "a@b.example\r\nBcc: x@y.example"},
        {"CFD_PUBLIC_URL": "ftp://x.example"},
        {"CFD_PUBLIC_URL": "https://x.example/#frag"},
    ],
)
def test_bad_mail_settings_are_refused_with_the_variable_named(env: dict[str, str]) -> None:
    with pytest.raises(MailConfigError, match="CFD_"):
        MailConfig.from_env(env)
    with pytest.raises(AccountConfigError, match="CFD_"):
        AccountConfig.from_env(env)


def test_token_lifetimes_are_read_and_bounded() -> None:
    config = AccountConfig.from_env(
        {"CFD_VERIFY_EMAIL_TTL": "600", "CFD_PASSWORD_RESET_TTL": "900"}
    )
    assert (config.verify_email_ttl_s, config.password_reset_ttl_s) == (600, 900)
    with pytest.raises(AccountConfigError, match="CFD_PASSWORD_RESET_TTL"):
        AccountConfig.from_env({"CFD_PASSWORD_RESET_TTL": "5"})


def test_a_message_carries_its_id_as_message_id_and_the_same_bytes_each_time() -> None:
    email = QueuedEmail("0123abcd", "ann@example.com", "Hello", "Body text\n", 1_700_000_000_000, 0)
    first = build_message(email, "CFD Mesh <no-reply@broker.example>")
    again = build_message(email, "CFD Mesh <no-reply@broker.example>")
    assert first["Message-ID"] == "<0123abcd@broker.example>"
    assert first["Date"] == "Tue, 14 Nov 2023 22:13:20 +0000"
    assert bytes(first) == bytes(again)
