"""Signing in with an OpenID provider in Chromium: the local oidc-provider, a full round trip."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pyotp
import pytest
from playwright.sync_api import Page, expect

from e2e.browser_support import Mesh, sign_up
from oidc_support import local_openid_provider
from support import free_port

ACCOUNTS = {
    "olivia": {"email": "olivia@example.com", "email_verified": True},
    "peter": {"email": "peter@example.org", "email_verified": True},
    "rosa": {"email": "rosa@example.net", "email_verified": True},
}


@pytest.fixture(scope="module")
def mesh_overrides(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Run the provider, sending browsers back to the edge's page, and configure the mesh."""
    edge_port = str(free_port())
    redirect_url = f"http://127.0.0.1:{edge_port}/"
    work = tmp_path_factory.mktemp("oidc-provider")
    with local_openid_provider(work, redirect_url, ACCOUNTS) as provider:
        yield {
            "CFD_EDGE_PORT": edge_port,
            "CFD_OIDC_REDIRECT_URL": redirect_url,
            "CFD_OIDC_PROVIDERS": "local",
            "CFD_OIDC_LOCAL_ISSUER": provider.issuer,
            "CFD_OIDC_LOCAL_CLIENT_ID": provider.client_id,
            "CFD_OIDC_LOCAL_CLIENT_SECRET": provider.client_secret,
            "CFD_OIDC_LOCAL_DISPLAY_NAME": "Local ID",
        }


def test_continue_with_the_provider_signs_in_and_lists_it(mesh: Mesh, page: Page) -> None:
    page.goto("/")
    page.get_by_test_id("auth-provider-local").click()
    # The provider's own login page: choose the account.
    page.get_by_role("button", name="olivia").click()
    expect(page.get_by_test_id("trading-screen")).to_be_visible()
    expect(page.get_by_test_id("user-email")).to_have_text("olivia@example.com")
    # The code and state are gone from the address once used.
    assert "code=" not in page.url and "state=" not in page.url

    page.get_by_test_id("user-email").click()
    linked = page.get_by_test_id("security-dialog").get_by_test_id("security-linked-provider")
    expect(linked).to_have_count(1)
    expect(linked).to_contain_text("Local ID")
    expect(linked).to_contain_text("olivia@example.com")

    # The provider's answer replayed in the page is not a second sign-in.
    page.keyboard.press("Escape")
    page.get_by_test_id("signout").click()
    page.goto("/?code=replayed&state=not-from-this-tab")
    expect(page.get_by_test_id("auth-error")).to_contain_text("not started in this browser")


def test_link_the_provider_from_the_security_dialog_then_unlink_it(
    mesh: Mesh, page: Page
) -> None:
    sign_up(page)
    page.get_by_test_id("user-email").click()
    dialog = page.get_by_test_id("security-dialog")
    expect(dialog.get_by_test_id("security-linked-provider")).to_have_count(0)
    dialog.get_by_test_id("security-link-local").click()
    page.get_by_role("button", name="peter").click()
    # Back on the page, still signed in, with the provider linked.
    expect(page.get_by_test_id("trading-screen")).to_be_visible()
    page.get_by_test_id("user-email").click()
    linked = dialog.get_by_test_id("security-linked-provider")
    expect(linked).to_have_count(1)
    expect(linked).to_contain_text("peter@example.org")
    dialog.get_by_test_id("security-unlink-local").click()
    expect(linked).to_have_count(0)
    expect(dialog.get_by_test_id("security-link-local")).to_be_visible()


def test_a_two_factor_user_gives_the_code_after_the_provider(mesh: Mesh, page: Page) -> None:
    # Rosa's first sign-in creates her account; she turns two-factor authentication on.
    page.goto("/")
    page.get_by_test_id("auth-provider-local").click()
    page.get_by_role("button", name="rosa").click()
    expect(page.get_by_test_id("user-email")).to_have_text("rosa@example.net")
    page.get_by_test_id("user-email").click()
    dialog = page.get_by_test_id("security-dialog")
    dialog.get_by_test_id("security-totp-enrol").click()
    totp = pyotp.TOTP(dialog.get_by_test_id("security-totp-secret").inner_text())
    dialog.get_by_test_id("security-totp-code").fill(totp.now())
    dialog.get_by_test_id("security-totp-confirm").click()
    expect(dialog.get_by_test_id("security-totp-state")).to_have_text("On")
    page.keyboard.press("Escape")
    page.get_by_test_id("signout").click()

    # Through the provider again (it remembers rosa, so it sends the browser straight back):
    # the page asks for the code before signing in.
    page.get_by_test_id("auth-provider-local").click()
    expect(page.get_by_test_id("auth-provider-challenge")).to_be_visible()
    expect(page.get_by_test_id("trading-screen")).to_have_count(0)
    assert "code=" not in page.url and "state=" not in page.url
    right = totp.at(time.time() + 30)
    page.get_by_test_id("auth-totp-code").fill(f"{(int(right) + 500_000) % 1_000_000:06d}")
    page.get_by_test_id("auth-submit").click()
    expect(page.get_by_test_id("auth-error")).to_contain_text("code is wrong")
    expect(page.get_by_test_id("auth-provider-challenge")).to_be_visible()
    page.get_by_test_id("auth-totp-code").fill(right)
    page.get_by_test_id("auth-submit").click()
    expect(page.get_by_test_id("trading-screen")).to_be_visible()
    expect(page.get_by_test_id("user-email")).to_have_text("rosa@example.net")
