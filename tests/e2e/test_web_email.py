"""Emailed links in Chromium: confirming the address from the banner's message, and
resetting a forgotten password; the messages are the `.eml` files the mesh writes without
a mail server."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path

from playwright.sync_api import Page, expect

from e2e.browser_support import PASSWORD, Mesh, sign_up
from smtp_support import body_of
from support import wait_for

NEW_PASSWORD = "a brand new passphrase"


def mailed_link(mesh: Mesh, recipient: str, action: str) -> str:
    """Wait for the message to ``recipient`` with an ``action`` link; return the link."""
    mail_dir = Path(mesh.env["CFD_DATA_DIR"]) / "mail"

    def find() -> str | None:
        for path in sorted(mail_dir.glob("*.eml")) if mail_dir.is_dir() else []:
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            if message["To"] != recipient:
                continue
            match = re.search(rf"http://\S+/#{action}=[A-Za-z0-9_-]+", body_of(message))
            if match is not None:
                return match.group(0)
        return None

    return wait_for(find, timeout=20)


def test_confirm_the_email_from_the_banner_message(mesh: Mesh, page: Page) -> None:
    address = sign_up(page)
    banner = page.get_by_test_id("verify-email-banner")
    expect(banner).to_contain_text(address)
    link = mailed_link(mesh, address, "verify-email")
    page.goto(link.replace(f"http://localhost:{mesh.env['CFD_EDGE_PORT']}", mesh.base_url))
    outcome = page.get_by_test_id("email-link-outcome")
    expect(outcome).to_have_text("Your email address is confirmed.")
    page.get_by_test_id("email-link-done").click()
    expect(page.get_by_test_id("trading-screen")).to_be_visible()
    expect(banner).to_have_count(0)
    assert "#" not in page.url

    # The link works once.
    page.goto(link.replace(f"http://localhost:{mesh.env['CFD_EDGE_PORT']}", mesh.base_url))
    expect(outcome).to_have_attribute("data-ok", "false")
    expect(outcome).to_contain_text("already used")


def test_reset_a_forgotten_password_from_the_message(mesh: Mesh, page: Page) -> None:
    address = sign_up(page)
    page.get_by_test_id("signout").click()
    page.get_by_test_id("auth-forgot").click()
    page.get_by_test_id("auth-email").fill(address)
    page.get_by_test_id("auth-submit").click()
    expect(page.get_by_test_id("auth-reset-sent")).to_be_visible()

    link = mailed_link(mesh, address, "reset-password")
    page.goto(link.replace(f"http://localhost:{mesh.env['CFD_EDGE_PORT']}", mesh.base_url))
    page.get_by_test_id("reset-password").fill("password")
    page.get_by_test_id("reset-submit").click()
    expect(page.get_by_test_id("reset-password-error")).to_contain_text("too common")
    page.get_by_test_id("reset-password").fill(NEW_PASSWORD)
    page.get_by_test_id("reset-submit").click()
    expect(page.get_by_test_id("email-link-outcome")).to_have_attribute("data-ok", "true")
    page.get_by_test_id("email-link-done").click()

    page.get_by_test_id("auth-email").fill(address)
    page.get_by_test_id("auth-password").fill(PASSWORD)
    page.get_by_test_id("auth-submit").click()
    expect(page.get_by_test_id("auth-error")).to_be_visible()
    page.get_by_test_id("auth-password").fill(NEW_PASSWORD)
    page.get_by_test_id("auth-submit").click()
    expect(page.get_by_test_id("trading-screen")).to_be_visible()
    # Receiving the reset link proved the address.
    expect(page.get_by_test_id("verify-email-banner")).to_have_count(0)


def test_switch_a_kind_of_notification_off_in_the_security_dialog(mesh: Mesh, page: Page) -> None:
    sign_up(page)
    page.get_by_test_id("user-email").click()
    section = page.get_by_test_id("security-dialog").get_by_test_id("security-notifications")
    boxes = section.get_by_role("checkbox")
    expect(boxes).to_have_count(6)
    stop_loss = section.get_by_test_id("notify-NOTIFICATION_KIND_STOP_LOSS")
    expect(stop_loss).to_be_checked()
    stop_loss.uncheck()
    expect(stop_loss).not_to_be_checked()
    page.keyboard.press("Escape")
    page.reload()
    page.get_by_test_id("user-email").click()
    expect(stop_loss).not_to_be_checked()
    expect(section.get_by_test_id("notify-NOTIFICATION_KIND_LIQUIDATION")).to_be_checked()
