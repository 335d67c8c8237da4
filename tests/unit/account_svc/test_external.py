"""Tests for sign-in through a provider when the user has two-factor authentication.

A fake provider vouches for whoever the test names; everything else (accounts, TOTP,
identities, sign-in tickets, rate limits) is real, on each SQL backend.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from account_svc.accounts import SecondFactor
from account_svc.config import Limit, RateLimits
from account_svc.external import ExternalSignin
from account_svc.identities import TICKET_TTL_S, IdentityStore
from account_svc.oidc import FlowSecrets, Identity, OidcConfig, ProviderConfig
from account_svc.schema import signin_tickets_table
from account_svc.sessions import Origin
from mesh.errors import ApiError
from unit.account_svc.test_accounts import (
    GENEROUS,
    PASSWORD,
    World,
    build,
    enabled_totp,
    fails,
    later_code,
    reason,
)
from unit.account_svc.test_users import FakeClock

ORIGIN = Origin("10.0.0.1", "test browser")


class FakeProvider:
    """A provider that signs in ``signed_in`` for any code."""

    def __init__(self) -> None:
        self.config = ProviderConfig("local", "Local", "oidc", "client", "secret")
        self.signed_in = Identity("sub-1", "two@example.com", True)

    async def authorization_url(self, secrets: FlowSecrets, redirect_url: str) -> str:
        return f"https://id.example/authorize?state={secrets.state}"

    async def identity(self, code: str, secrets: FlowSecrets, redirect_url: str) -> Identity:
        return self.signed_in


@dataclass
class Flows:
    world: World
    external: ExternalSignin
    identities: IdentityStore
    provider: FakeProvider
    clock: FakeClock


def flows(db: AsyncEngine, limits: RateLimits | None = None) -> Flows:
    world = build(db, limits)
    clock = FakeClock(time.time())
    identities = IdentityStore(db, clock=clock)
    provider = FakeProvider()
    external = ExternalSignin(
        accounts=world.accounts,
        identities=identities,
        providers={"local": provider},
        config=OidcConfig(),
        limits=limits or RateLimits(*([GENEROUS] * 6)),
    )
    return Flows(world, external, identities, provider, clock)


async def callback(f: Flows, return_url: str = "/#/security") -> ApiError:
    """Go through a provider sign-in; return the callback's error (the challenge)."""
    url = await f.external.start_signin("local", return_url, ORIGIN)
    state = parse_qs(urlsplit(url).query)["state"][0]
    return await fails(f.external.complete_signin("the-code", state, ORIGIN))


async def challenged(f: Flows) -> str:
    """Go through a provider sign-in that stops at the second factor; return the ticket."""
    error = await callback(f)
    assert (error.reason, error.code.name) == ("TOTP_REQUIRED", "UNAUTHENTICATED")
    return error.metadata["signinTicket"]


async def with_two_factor(f: Flows) -> tuple[str, pyotp.TOTP, list[str]]:
    """Sign up two@example.com, link the fake provider's identity, turn on 2FA."""
    session, totp, codes = await enabled_totp(f.world, "two@example.com")
    await f.identities.link(session.user.id, "local", "sub-1", "two@example.com")
    return session.user.id, totp, codes


async def ticket_rows(db: AsyncEngine) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(signin_tickets_table)) or 0)


async def test_the_callback_asks_for_the_code_instead_of_signing_in(
    db: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    f = flows(db)
    user_id, totp, _ = await with_two_factor(f)
    caplog.set_level(logging.DEBUG)

    error = await callback(f)
    assert (error.code.name, error.reason) == ("UNAUTHENTICATED", "TOTP_REQUIRED")
    assert set(error.metadata) == {"signinTicket", "expireTime"}
    ticket = error.metadata["signinTicket"]
    assert len(ticket) >= 43
    status = error.to_status()
    assert status.code == 16
    # No session was opened by the callback (the one listed is the sign-up's).
    assert len(await f.world.accounts.list_sessions(user_id, "none")) == 1

    signed_in = await f.external.verify_signin(ticket, SecondFactor(later_code(totp)), ORIGIN)
    assert (signed_in.session.user.id, signed_in.return_url, signed_in.new_user) == (
        user_id,
        "/#/security",
        False,
    )
    assert f.world.verifier.verify(signed_in.session.access_token) == user_id
    refreshed = await f.world.accounts.refresh(signed_in.session.refresh_token, "10.0.0.1")
    assert refreshed.user.id == user_id
    for secret in (ticket, signed_in.session.access_token, signed_in.session.refresh_token):
        assert secret not in caplog.text
    assert "provider sign-in waits for the second factor" in caplog.text


async def test_a_user_without_two_factor_still_signs_in_at_the_callback(db: AsyncEngine) -> None:
    f = flows(db)
    session = await f.world.accounts.signup("two@example.com", PASSWORD, "ip")
    await f.identities.link(session.user.id, "local", "sub-1", "two@example.com")
    url = await f.external.start_signin("local", "", ORIGIN)
    state = parse_qs(urlsplit(url).query)["state"][0]
    signed_in = await f.external.complete_signin("the-code", state, ORIGIN)
    assert signed_in.session.user.id == session.user.id
    assert await ticket_rows(db) == 0


async def test_a_wrong_code_changes_nothing_and_the_ticket_stays_usable(db: AsyncEngine) -> None:
    f = flows(db)
    user_id, totp, _ = await with_two_factor(f)
    ticket = await challenged(f)
    right = later_code(totp)
    wrong = SecondFactor(f"{(int(right) + 500_000) % 1_000_000:06d}")

    assert await reason(f.external.verify_signin(ticket, wrong, ORIGIN)) == "INVALID_CREDENTIALS"
    assert await reason(f.external.verify_signin(ticket, SecondFactor(), ORIGIN)) == (
        "VALIDATION_FAILED"
    )
    assert await reason(f.external.verify_signin(ticket, SecondFactor("12a456"), ORIGIN)) == (
        "VALIDATION_FAILED"
    )
    assert len(await f.world.accounts.list_sessions(user_id, "none")) == 1
    assert await ticket_rows(db) == 1

    signed_in = await f.external.verify_signin(ticket, SecondFactor(right), ORIGIN)
    assert signed_in.session.user.id == user_id
    assert len(await f.world.accounts.list_sessions(user_id, "none")) == 2


async def test_wrong_codes_count_against_the_same_limit_as_password_signin(
    db: AsyncEngine,
) -> None:
    limits = dataclasses.replace(RateLimits(*([GENEROUS] * 6)), verify_per_user=Limit(4, 60))
    f = flows(db, limits)
    _, totp, _ = await with_two_factor(f)
    wrong = SecondFactor(f"{(int(later_code(totp)) + 500_000) % 1_000_000:06d}")
    # The confirmation took one attempt of the four; a password sign-in's wrong code another.
    assert await reason(
        f.world.accounts.signin("two@example.com", PASSWORD, "10.0.0.9", second_factor=wrong)
    ) == "INVALID_CREDENTIALS"
    ticket = await challenged(f)
    for address in ("10.0.0.1", "10.0.0.2"):
        assert await reason(
            f.external.verify_signin(ticket, wrong, Origin(address))
        ) == "INVALID_CREDENTIALS"
    limited = await fails(
        f.external.verify_signin(ticket, SecondFactor(later_code(totp)), Origin("10.0.0.3"))
    )
    assert (limited.reason, limited.code.name) == ("RATE_LIMITED", "RESOURCE_EXHAUSTED")
    assert limited.retry_after_s is not None and limited.retry_after_s > 0
    # The refusal spent nothing: the ticket waits.
    assert await ticket_rows(db) == 1


async def test_a_recovery_code_completes_once(db: AsyncEngine) -> None:
    f = flows(db)
    user_id, _, codes = await with_two_factor(f)
    ticket = await challenged(f)
    recovery = SecondFactor(recovery_code=codes[0])
    signed_in = await f.external.verify_signin(ticket, recovery, ORIGIN)
    assert signed_in.session.user.id == user_id

    again = await challenged(f)
    assert await reason(f.external.verify_signin(again, recovery, ORIGIN)) == (
        "INVALID_CREDENTIALS"
    )
    both = SecondFactor("123456", codes[1])
    assert await reason(f.external.verify_signin(again, both, ORIGIN)) == "VALIDATION_FAILED"
    second = await f.external.verify_signin(again, SecondFactor(recovery_code=codes[1]), ORIGIN)
    assert second.session.user.id == user_id


async def test_a_reused_ticket_is_refused(db: AsyncEngine) -> None:
    f = flows(db)
    _, totp, _ = await with_two_factor(f)
    ticket = await challenged(f)
    await f.external.verify_signin(ticket, SecondFactor(totp.at(f.clock.now + 30)), ORIGIN)
    reused = await fails(
        f.external.verify_signin(ticket, SecondFactor(totp.at(f.clock.now + 60)), ORIGIN)
    )
    assert (reused.reason, reused.code.name) == ("SIGNIN_TICKET_INVALID", "INVALID_ARGUMENT")


async def test_an_expired_ticket_is_refused_and_purged(db: AsyncEngine) -> None:
    f = flows(db)
    user_id, totp, _ = await with_two_factor(f)
    ticket = await challenged(f)
    expire_time = f.clock.now + TICKET_TTL_S
    f.clock.now = expire_time
    assert await reason(
        f.external.verify_signin(ticket, SecondFactor(later_code(totp)), ORIGIN)
    ) == "SIGNIN_TICKET_INVALID"
    assert len(await f.world.accounts.list_sessions(user_id, "none")) == 1
    assert await f.identities.purge_requests() == 1
    assert await ticket_rows(db) == 0


async def test_a_forged_or_malformed_ticket_is_refused(db: AsyncEngine) -> None:
    f = flows(db)
    user_id, totp, _ = await with_two_factor(f)
    ticket = await challenged(f)
    code = SecondFactor(later_code(totp))
    for forged in (ticket[:-1], ticket + "A", "made-up"):
        assert await reason(f.external.verify_signin(forged, code, ORIGIN)) == (
            "SIGNIN_TICKET_INVALID"
        )
    for malformed in ("", "x" * 129):
        assert await reason(f.external.verify_signin(malformed, code, ORIGIN)) == (
            "VALIDATION_FAILED"
        )
    # Only the ticket's hash is stored.
    async with db.connect() as conn:
        stored = (await conn.execute(select(signin_tickets_table.c.ticket_hash))).scalars().all()
    assert len(stored) == 1 and ticket not in stored[0]
    assert len(await f.world.accounts.list_sessions(user_id, "none")) == 1
    # The forgeries spent nothing either.
    assert (await f.external.verify_signin(ticket, code, ORIGIN)).session.user.id == user_id


async def test_linking_by_a_signed_in_user_with_two_factor_is_unaffected(
    db: AsyncEngine,
) -> None:
    f = flows(db)
    session, _, _ = await enabled_totp(f.world, "two@example.com")
    url = await f.external.start_link(session.user.id, "local", "/#/security")
    state = parse_qs(urlsplit(url).query)["state"][0]
    linked, return_url = await f.external.complete_link(session.user.id, "the-code", state)
    assert (linked.provider, linked.subject, return_url) == ("local", "sub-1", "/#/security")
    assert await ticket_rows(db) == 0
    # Signing in with it now asks for the code.
    assert (await callback(f)).reason == "TOTP_REQUIRED"
