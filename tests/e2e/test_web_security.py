"""The Security dialog in Chromium: sessions, two-factor enrolment, sign-in with the code."""

from __future__ import annotations

import time

import pyotp
from playwright.sync_api import Page, expect

from e2e.browser_support import PASSWORD, Mesh, sign_up


def test_enable_two_factor_then_sign_in_with_the_code(mesh: Mesh, page: Page) -> None:
    email = sign_up(page)
    page.get_by_test_id("user-email").click()
    dialog = page.get_by_test_id("security-dialog")
    expect(dialog.get_by_test_id("security-session")).to_have_count(1)
    expect(dialog.get_by_test_id("security-session")).to_contain_text("This session")
    dialog.get_by_test_id("security-totp-enrol").click()
    secret = dialog.get_by_test_id("security-totp-secret").inner_text()
    expect(dialog.get_by_test_id("security-totp-uri")).to_contain_text("otpauth://totp/")
    totp = pyotp.TOTP(secret)
    dialog.get_by_test_id("security-totp-code").fill(totp.now())
    dialog.get_by_test_id("security-totp-confirm").click()
    expect(dialog.get_by_test_id("security-recovery-codes").locator("li")).to_have_count(10)
    expect(dialog.get_by_test_id("security-totp-state")).to_have_text("On")
    page.keyboard.press("Escape")

    page.get_by_test_id("signout").click()
    page.get_by_test_id("auth-email").fill(email)
    page.get_by_test_id("auth-password").fill(PASSWORD)
    page.get_by_test_id("auth-submit").click()
    expect(page.get_by_test_id("auth-totp-code")).to_be_visible()
    # The confirming code is spent; the next step's code is accepted.
    page.get_by_test_id("auth-totp-code").fill(totp.at(time.time() + 30))
    page.get_by_test_id("auth-submit").click()
    expect(page.get_by_test_id("trading-screen")).to_be_visible()
