"""Mailed links in a real browser: verifying the address, and resetting a forgotten password."""

from __future__ import annotations

import email
import re
from email.message import Message
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from e2e.browser_support import PASSWORD, Mesh, sign_up, unique_email
from support import wait_for

NEW_PASSWORD = "a fresh passphrase 2026"


def mailed_link(mesh: Mesh, recipient: str, action: str) -> str:
    """Wait for a message to `recipient` holding an `action` link; return the newest such link."""
    mail_dir = Path(mesh.env["CFD_DATA_DIR"]) / "mail"
    pattern = re.compile(rf"https?://\S+/#{action}=[A-Za-z0-9_.~-]+")

    def find() -> str | None:
        files = mail_dir.glob("*.eml") if mail_dir.exists() else iter(())
        for path in sorted(files, key=lambda path: path.stat().st_mtime_ns, reverse=True):
            message: Message = email.message_from_bytes(path.read_bytes())
            if message["To"] != recipient:
                continue
            payload = message.get_payload(decode=True)
            body = payload.decode() if isinstance(payload, bytes) else str(message.get_payload())
            found = pattern.search(body)
            if found:
                return found.group(0)
        return None

    link: str = wait_for(find, timeout=30, interval=0.2)
    return link


def test_the_mailed_link_verifies_the_address(mesh: Mesh, page: Page) -> None:
    address = sign_up(page)
    banner = page.get_by_test_id("verify-email-banner")
    expect(banner).to_contain_text(address)
    page.get_by_test_id("verify-email-resend").click()
    expect(page.get_by_test_id("verify-email-text")).to_contain_text("A new link is on its way")
    # Two messages: the newest link is the one that works (asking again retired the first).
    mail_dir = Path(mesh.env["CFD_DATA_DIR"]) / "mail"
    wait_for(lambda: sum(address in p.read_text() for p in mail_dir.glob("*.eml")) == 2, 30, 0.2)
    link = mailed_link(mesh, address, "verify-email")
    page.goto(link)
    expect(page.get_by_test_id("link-notice")).to_contain_text("Your email address is verified")
    expect(page.get_by_test_id("trading-screen")).to_be_visible()
    expect(banner).to_be_hidden()
    # The token left the address bar, and the link works once.
    assert "#" not in page.url
    page.goto(link)
    expect(page.get_by_test_id("link-notice")).to_contain_text("already used")


def test_a_forgotten_password_is_reset_from_the_mailed_link(mesh: Mesh, page: Page) -> None:
    address = unique_email()
    httpx.post(
        f"{mesh.base_url}/v1/auth/signup", json={"email": address, "password": PASSWORD}, timeout=10
    ).raise_for_status()
    page.goto("/")
    page.get_by_test_id("auth-forgot").click()
    page.get_by_test_id("forgot-email").fill(address)
    page.get_by_test_id("forgot-submit").click()
    expect(page.get_by_test_id("forgot-sent")).to_be_visible()
    link = mailed_link(mesh, address, "reset-password")

    page.goto(link)
    page.get_by_test_id("reset-password").fill(NEW_PASSWORD)
    page.get_by_test_id("reset-password-again").fill(NEW_PASSWORD + "!")
    page.get_by_test_id("reset-submit").click()
    expect(page.get_by_test_id("reset-error")).to_have_text("The two passwords differ.")
    page.get_by_test_id("reset-password-again").fill(NEW_PASSWORD)
    page.get_by_test_id("reset-submit").click()
    expect(page.get_by_test_id("link-notice")).to_contain_text("Your password is changed")

    page.get_by_test_id("auth-email").fill(address)
    page.get_by_test_id("auth-password").fill(PASSWORD)
    page.get_by_test_id("auth-submit").click()
    expect(page.get_by_test_id("auth-error")).to_be_visible()
    page.get_by_test_id("auth-password").fill(NEW_PASSWORD)
    page.get_by_test_id("auth-submit").click()
    expect(page.get_by_test_id("trading-screen")).to_be_visible()

    # The link works once.
    page.goto(link)
    page.get_by_test_id("reset-password").fill("yet another passphrase")
    page.get_by_test_id("reset-password-again").fill("yet another passphrase")
    page.get_by_test_id("reset-submit").click()
    expect(page.get_by_test_id("reset-error")).to_have_text("This link was already used.")


def test_the_email_is_changed_from_the_security_dialog_and_verified_there(
    mesh: Mesh, page: Page
) -> None:
    sign_up(page)
    page.get_by_test_id("user-email").click()
    dialog = page.get_by_test_id("security-dialog")
    moved = unique_email()
    dialog.get_by_test_id("security-new-email").fill(moved)
    dialog.get_by_test_id("security-email-password").fill("wrong password")
    dialog.get_by_test_id("security-change-email").click()
    expect(dialog.get_by_test_id("security-email-message")).not_to_contain_text(moved)
    dialog.get_by_test_id("security-email-password").fill(PASSWORD)
    dialog.get_by_test_id("security-change-email").click()
    expect(dialog.get_by_test_id("security-email-message")).to_contain_text(moved)
    page.goto(mailed_link(mesh, moved, "verify-email"))
    expect(page.get_by_test_id("link-notice")).to_contain_text("Your email address is verified")
