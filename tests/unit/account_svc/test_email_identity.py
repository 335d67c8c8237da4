"""Tests for email verification and password reset, on a real database with a fake engine."""

from __future__ import annotations

import dataclasses
import logging
import re

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from account_svc.config import Limit, RateLimits
from account_svc.main import quiet_parameter_logging
from account_svc.schema import email_outbox_table, email_tokens_table, users_table
from mesh.auth import EMAIL_VERIFIED_CLAIM
from mesh.errors import ApiError
from mesh.revocation import issued_token, read_claims
from unit.account_svc.test_accounts import GENEROUS, PASSWORD, FakeClock, World, build, fails

CLIENT = "198.51.100.7"
UNLIMITED = RateLimits(**{f.name: GENEROUS for f in dataclasses.fields(RateLimits)})
NEW_PASSWORD = "a brand new passphrase"


async def outbox_bodies(db: AsyncEngine, recipient: str) -> list[str]:
    c = email_outbox_table.c
    async with db.connect() as conn:
        rows = await conn.execute(
            select(c.body).where(c.recipient == recipient).order_by(c.create_time_ms, c.id)
        )
        return [r.body for r in rows]


def link_token(body: str, action: str) -> str:
    match = re.search(rf"#{action}=([A-Za-z0-9_-]+)", body)
    assert match is not None, body
    return match.group(1)


async def mailed_tokens(db: AsyncEngine, recipient: str, action: str) -> list[str]:
    """Return the tokens of the ``action`` links mailed to ``recipient``, oldest first."""
    bodies = await outbox_bodies(db, recipient)
    return [link_token(body, action) for body in bodies if f"#{action}=" in body]


async def only_token(db: AsyncEngine, recipient: str, action: str) -> str:
    [token] = await mailed_tokens(db, recipient, action)
    return token


async def password_hash(db: AsyncEngine, email: str) -> str:
    async with db.connect() as conn:
        return str(
            await conn.scalar(
                select(users_table.c.password_hash).where(users_table.c.email == email)
            )
        )


async def token_rows(db: AsyncEngine) -> list[tuple[str, int | None]]:
    c = email_tokens_table.c
    async with db.connect() as conn:
        return [
            (r.purpose, r.use_time_ms) for r in await conn.execute(select(c.purpose, c.use_time_ms))
        ]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_000_000.0)


@pytest.fixture
def world(db: AsyncEngine, clock: FakeClock) -> World:
    return build(db, clock=clock)


async def test_signup_queues_a_verification_link_in_its_transaction(world: World) -> None:
    session = await world.accounts.signup("ann@example.com", PASSWORD, CLIENT)
    assert not session.user.email_verified
    [body] = await outbox_bodies(world.db, "ann@example.com")
    token = link_token(body, "verify-email")
    assert f"http://localhost:8000/#verify-email={token}" in body
    # The same token is the code to type in.
    assert f"\n{token}\n" in body


async def test_a_signup_that_fails_queues_nothing(world: World) -> None:
    await world.accounts.signup("ann@example.com", PASSWORD, CLIENT)
    await fails(world.accounts.signup("ann@example.com", "another password", CLIENT))
    assert len(await outbox_bodies(world.db, "ann@example.com")) == 1


async def test_verifying_marks_the_user_and_the_next_tokens(world: World) -> None:
    session = await world.accounts.signup("ann@example.com", PASSWORD, CLIENT)
    token = await only_token(world.db, "ann@example.com", "verify-email")

    await world.accounts.verify_email(token, CLIENT)

    user = await world.accounts.get_user(session.user.id)
    assert user.email_verified
    refreshed = await world.accounts.refresh(session.refresh_token, CLIENT)
    assert refreshed.user.email_verified
    assert claim(session.access_token) is False
    assert claim(refreshed.access_token) is True


def claim(token: str) -> object:
    claims = read_claims(token)
    assert claims is not None
    return claims.get(EMAIL_VERIFIED_CLAIM)


async def test_a_verification_token_works_once(world: World) -> None:
    await world.accounts.signup("ann@example.com", PASSWORD, CLIENT)
    token = await only_token(world.db, "ann@example.com", "verify-email")
    await world.accounts.verify_email(token, CLIENT)
    assert (await fails(world.accounts.verify_email(token, CLIENT))).reason == "EMAIL_TOKEN_USED"


async def test_an_expired_verification_token_changes_nothing(
    world: World, clock: FakeClock
) -> None:
    session = await world.accounts.signup("ann@example.com", PASSWORD, CLIENT)
    token = await only_token(world.db, "ann@example.com", "verify-email")
    clock.now += 48 * 3600
    error = await fails(world.accounts.verify_email(token, CLIENT))
    assert error.reason == "EMAIL_TOKEN_EXPIRED" and error.code.name == "FAILED_PRECONDITION"
    assert not (await world.accounts.get_user(session.user.id)).email_verified
    assert await token_rows(world.db) == [("verify_email", None)]


async def test_a_reset_token_does_not_verify_and_a_verify_token_does_not_reset(
    world: World,
) -> None:
    await world.accounts.signup("ann@example.com", PASSWORD, CLIENT)
    verify = await only_token(world.db, "ann@example.com", "verify-email")
    error = await fails(world.accounts.reset_password(verify, NEW_PASSWORD, CLIENT))
    assert error.reason == "EMAIL_TOKEN_INVALID" and error.code.name == "INVALID_ARGUMENT"


async def test_resending_replaces_the_earlier_link(world: World, clock: FakeClock) -> None:
    session = await world.accounts.signup("ann@example.com", PASSWORD, CLIENT)
    clock.now += 1
    await world.accounts.resend_verification(session.user.id)
    first, second = await mailed_tokens(world.db, "ann@example.com", "verify-email")
    assert (await fails(world.accounts.verify_email(first, CLIENT))).reason == "EMAIL_TOKEN_USED"
    await world.accounts.verify_email(second, CLIENT)
    error = await fails(world.accounts.resend_verification(session.user.id))
    assert error.reason == "EMAIL_ALREADY_VERIFIED"


async def test_resending_is_limited_per_address(db: AsyncEngine) -> None:
    world = build(db, dataclasses.replace(UNLIMITED, mail_per_email=Limit(2, 3600)))
    session = await world.accounts.signup("ann@example.com", PASSWORD, CLIENT)
    for _ in range(2):
        await world.accounts.resend_verification(session.user.id)
    error = await fails(world.accounts.resend_verification(session.user.id))
    assert error.reason == "RATE_LIMITED"
    assert len(await outbox_bodies(db, "ann@example.com")) == 3


async def test_a_reset_request_answers_alike_for_an_unknown_address(world: World) -> None:
    await world.accounts.signup("ann@example.com", PASSWORD, CLIENT)
    await world.accounts.request_password_reset("nobody@example.com", CLIENT)
    await world.accounts.request_password_reset(" Ann@Example.com ", CLIENT)
    assert await outbox_bodies(world.db, "nobody@example.com") == []
    assert len(await outbox_bodies(world.db, "ann@example.com")) == 2
    assert len(await mailed_tokens(world.db, "ann@example.com", "reset-password")) == 1


async def test_reset_requests_are_limited_for_known_and_unknown_addresses_alike(
    db: AsyncEngine,
) -> None:
    world = build(db, dataclasses.replace(UNLIMITED, mail_per_email=Limit(2, 3600)))
    await world.accounts.signup("ann@example.com", PASSWORD, CLIENT)
    for email in ("ann@example.com", "nobody@example.com"):
        for _ in range(2):
            await world.accounts.request_password_reset(email, CLIENT)
        error = await fails(world.accounts.request_password_reset(email, CLIENT))
        assert error.reason == "RATE_LIMITED"


async def test_reset_requests_are_limited_per_client_address(db: AsyncEngine) -> None:
    limits = dataclasses.replace(UNLIMITED, email_per_address=Limit(3, 300))
    world = build(db, limits)
    for n in range(3):
        await world.accounts.request_password_reset(f"u{n}@example.com", CLIENT)
    error = await fails(world.accounts.request_password_reset("u9@example.com", CLIENT))
    assert error.reason == "RATE_LIMITED"
    await world.accounts.request_password_reset("u9@example.com", "203.0.113.1")


async def test_a_malformed_reset_address_is_a_validation_error(world: World) -> None:
    error = await fails(world.accounts.request_password_reset("not an email", CLIENT))
    assert error.reason == "VALIDATION_FAILED"


async def test_resetting_sets_the_password_and_revokes_every_session(world: World) -> None:
    first = await world.accounts.signup("ann@example.com", PASSWORD, CLIENT)
    second = await world.accounts.signin("ann@example.com", PASSWORD, CLIENT)
    await world.accounts.request_password_reset("ann@example.com", CLIENT)
    token = await only_token(world.db, "ann@example.com", "reset-password")

    assert await world.accounts.reset_password(token, NEW_PASSWORD, CLIENT) == 2

    for session in (first, second):
        refresh = await fails(world.accounts.refresh(session.refresh_token, CLIENT))
        assert refresh.reason == "TOKEN_INVALID"
        access = issued_token(session.access_token)
        assert access is not None and access.token_id in world.revoked.tokens
    old = await fails(world.accounts.signin("ann@example.com", PASSWORD, CLIENT))
    assert old.reason == "INVALID_CREDENTIALS"
    signed_in = await world.accounts.signin("ann@example.com", NEW_PASSWORD, CLIENT)
    # The reset link proved the address, as a verification link would.
    assert signed_in.user.email_verified


async def test_a_reset_token_works_once_and_withdraws_the_others(world: World) -> None:
    await world.accounts.signup("ann@example.com", PASSWORD, CLIENT)
    await world.accounts.request_password_reset("ann@example.com", CLIENT)
    await world.accounts.request_password_reset("ann@example.com", CLIENT)
    first, second = await mailed_tokens(world.db, "ann@example.com", "reset-password")
    await world.accounts.reset_password(first, NEW_PASSWORD, CLIENT)
    hash_after = await password_hash(world.db, "ann@example.com")
    for token in (first, second):
        error = await fails(world.accounts.reset_password(token, "yet another passphrase", CLIENT))
        assert error.reason == "EMAIL_TOKEN_USED"
    assert await password_hash(world.db, "ann@example.com") == hash_after


async def test_an_expired_reset_token_changes_nothing(world: World, clock: FakeClock) -> None:
    session = await world.accounts.signup("ann@example.com", PASSWORD, CLIENT)
    await world.accounts.request_password_reset("ann@example.com", CLIENT)
    token = await only_token(world.db, "ann@example.com", "reset-password")
    hash_before = await password_hash(world.db, "ann@example.com")
    clock.now += 3600
    error = await fails(world.accounts.reset_password(token, NEW_PASSWORD, CLIENT))
    assert error.reason == "EMAIL_TOKEN_EXPIRED"
    assert await password_hash(world.db, "ann@example.com") == hash_before
    await world.accounts.refresh(session.refresh_token, CLIENT)


@pytest.mark.parametrize("bad", ["short", "ann@example.com", "password123", "with\ncontrol"])
async def test_a_reset_with_an_unfit_password_keeps_the_token_and_the_sessions(
    world: World, bad: str
) -> None:
    session = await world.accounts.signup("ann@example.com", PASSWORD, CLIENT)
    await world.accounts.request_password_reset("ann@example.com", CLIENT)
    token = await only_token(world.db, "ann@example.com", "reset-password")
    error = await fails(world.accounts.reset_password(token, bad, CLIENT))
    assert error.reason == "VALIDATION_FAILED"
    assert [field for field, _ in error.violations] == ["new_password"]
    session = await world.accounts.refresh(session.refresh_token, CLIENT)
    await world.accounts.reset_password(token, NEW_PASSWORD, CLIENT)


async def test_no_token_reaches_the_logs(world: World, caplog: pytest.LogCaptureFixture) -> None:
    quiet_parameter_logging()
    with caplog.at_level(logging.DEBUG):
        await world.accounts.signup("ann@example.com", PASSWORD, CLIENT)
        await world.accounts.request_password_reset("ann@example.com", CLIENT)
        verify = await only_token(world.db, "ann@example.com", "verify-email")
        reset = await only_token(world.db, "ann@example.com", "reset-password")
        await world.accounts.verify_email(verify, CLIENT)
        await world.accounts.reset_password(reset, NEW_PASSWORD, CLIENT)
        await fails(world.accounts.reset_password(reset, NEW_PASSWORD, CLIENT))
    text = "\n".join(record.getMessage() + repr(record.__dict__) for record in caplog.records)
    assert "email verified" in text and "password reset" in text
    for secret in (verify, reset, NEW_PASSWORD):
        assert secret not in text


async def test_verification_errors_are_api_errors_with_reasons(world: World) -> None:
    for token, expected in (("", "VALIDATION_FAILED"), ("x" * 54, "EMAIL_TOKEN_INVALID")):
        error = await fails(world.accounts.verify_email(token, CLIENT))
        assert isinstance(error, ApiError) and error.reason == expected


async def test_changing_the_email_moves_sign_in_and_asks_to_verify_the_new_address(
    world: World,
) -> None:
    session = await world.accounts.signup("ann@example.com", PASSWORD, CLIENT)
    first_link = await only_token(world.db, "ann@example.com", "verify-email")
    await world.accounts.verify_email(first_link, CLIENT)
    await world.accounts.request_password_reset("ann@example.com", CLIENT)
    old_reset = await only_token(world.db, "ann@example.com", "reset-password")

    user = await world.accounts.change_email(session.user.id, PASSWORD, " Ann.New@Example.com ")

    assert (user.email, user.email_verified) == ("ann.new@example.com", False)
    [notice] = [b for b in await outbox_bodies(world.db, "ann@example.com") if "changed to" in b]
    assert "ann.new@example.com" in notice
    # The reset link mailed to the old address no longer works; sign-in uses the new one.
    assert (await fails(world.accounts.reset_password(old_reset, NEW_PASSWORD, CLIENT))).reason == (
        "EMAIL_TOKEN_USED"
    )
    assert (await fails(world.accounts.signin("ann@example.com", PASSWORD, CLIENT))).reason == (
        "INVALID_CREDENTIALS"
    )
    await world.accounts.signin("ann.new@example.com", PASSWORD, CLIENT)
    token = await only_token(world.db, "ann.new@example.com", "verify-email")
    await world.accounts.verify_email(token, CLIENT)
    assert (await world.accounts.get_user(session.user.id)).email_verified


async def test_a_bad_email_change_changes_nothing(world: World) -> None:
    ann = await world.accounts.signup("ann@example.com", PASSWORD, CLIENT)
    await world.accounts.signup("bob@example.com", PASSWORD, CLIENT)
    change = world.accounts.change_email
    wrong = await fails(change(ann.user.id, "not the password", "ann2@example.com"))
    assert wrong.reason == "INVALID_CREDENTIALS"
    taken = await fails(change(ann.user.id, PASSWORD, "bob@example.com"))
    assert (taken.reason, taken.violations) == ("EMAIL_TAKEN", (("new_email", "taken"),))
    for password, email, field in (
        ("", "ann2@example.com", "password"),
        (PASSWORD, "not an address", "new_email"),
        (PASSWORD, "ANN@example.com", "new_email"),
    ):
        error = await fails(change(ann.user.id, password, email))
        assert error.reason == "VALIDATION_FAILED" and error.violations[0][0] == field
    user = await world.accounts.get_user(ann.user.id)
    assert user.email == "ann@example.com"
    assert await outbox_bodies(world.db, "ann2@example.com") == []
    await world.accounts.signin("ann@example.com", PASSWORD, CLIENT)
