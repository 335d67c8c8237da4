"""Tests for the accounts use cases, on a real database with a fake engine."""

from __future__ import annotations

import dataclasses
import logging
import re
import statistics
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from account_svc.accounts import Accounts, SecondFactor, Session
from account_svc.config import Limit, RateLimits
from account_svc.email_identity import EmailIdentity
from account_svc.email_tokens import TokenSigner
from account_svc.issuer import TokenIssuer
from account_svc.mail import MailConfig
from account_svc.main import quiet_parameter_logging
from account_svc.notifications import NotificationSettings
from account_svc.passwords import TEST_COST, HashCost, PasswordHasher
from account_svc.provisioning import EngineUnavailableError, Provisioner
from account_svc.schema import users_table
from account_svc.sessions import RedisRefreshTokenStore, RefreshTokenStore, SqlRefreshTokenStore
from account_svc.totp import SecretBox, TotpStore
from account_svc.users import UserStore
from mesh.auth import shard_claim
from mesh.errors import ApiError
from mesh.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from mesh.revocation import IssuedToken, RevokedTokens, issued_token
from mesh.tokens import JwtVerifier, SigningKey

PASSWORD = "correct horse battery"


class FakeEngine:
    def __init__(self) -> None:
        self.up = True
        self.accounts: dict[str, str] = {}
        self.shards: dict[str, int] = {}
        self.modes: dict[str, str] = {}
        self.position_modes: dict[str, str] = {}

    async def create_account(
        self,
        user_id: str,
        initial_balance: str,
        margin_mode: str,
        position_mode: str,
        shard: int = 0,
    ) -> None:
        if not self.up:
            raise EngineUnavailableError("CreateAccount failed: UNAVAILABLE")
        self.accounts.setdefault(user_id, initial_balance)
        self.shards.setdefault(user_id, shard)
        self.modes.setdefault(user_id, margin_mode)
        self.position_modes.setdefault(user_id, position_mode)


class CountingHasher(PasswordHasher):
    """A real hasher that counts verifications."""

    def __init__(self, cost: HashCost) -> None:
        super().__init__(cost)
        self.verifications = 0

    async def verify(self, encoded_hash: str | None, password: str) -> bool:
        self.verifications += 1
        return await super().verify(encoded_hash, password)


class MemoryRevocationStore:
    """A revocation list store in a dict: what every process would read."""

    def __init__(self) -> None:
        self.tokens: dict[str, int] = {}

    async def add(self, tokens: Iterable[IssuedToken], now_s: float) -> dict[str, int]:
        self.tokens.update((t.token_id, t.expire_time_s) for t in tokens)
        return dict(self.tokens)

    async def load(self, now_s: float) -> dict[str, int] | None:
        return dict(self.tokens)

    async def aclose(self) -> None:
        pass


@dataclass
class World:
    accounts: Accounts
    engine: FakeEngine
    hasher: CountingHasher
    users: UserStore
    verifier: JwtVerifier
    db: AsyncEngine
    revoked: MemoryRevocationStore


GENEROUS = Limit(1000, 60)


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def build(
    db: AsyncEngine,
    limits: RateLimits | None = None,
    cost: HashCost = TEST_COST,
    *,
    clock: FakeClock | None = None,
    sessions: RefreshTokenStore | None = None,
    limiter: RateLimiter | None = None,
    shards: int = 1,
) -> World:
    key = SigningKey.generate()
    engine, hasher = FakeEngine(), CountingHasher(cost)
    users = UserStore(db, shards=shards)
    store = MemoryRevocationStore()
    revoked = RevokedTokens(store)
    accounts = Accounts(
        users=users,
        hasher=hasher,
        sessions=SqlRefreshTokenStore(db) if sessions is None else sessions,
        issuer=TokenIssuer(key, ttl_s=600),
        provisioner=Provisioner(users, engine),
        limiter=(
            MemoryRateLimiter(clock=clock or time.monotonic) if limiter is None else limiter
        ),
        limits=limits or RateLimits(*([GENEROUS] * 6)),
        demo_balance="5000",
        revoked=revoked,
        totp=TotpStore(db),
        secret_box=SecretBox(bytes(range(32))),
        email=EmailIdentity(
            db, TokenSigner(bytes(range(32, 64))), MailConfig(), clock=clock or time.time
        ),
        notifications=NotificationSettings(db),
    )
    verifier = JwtVerifier(key.public_keys, revoked=revoked)
    return World(accounts, engine, hasher, users, verifier, db, store)


@pytest.fixture
def world(db: AsyncEngine) -> World:
    return build(db)


async def fails(awaitable: Awaitable[object]) -> ApiError:
    with pytest.raises(ApiError) as info:
        await awaitable
    return info.value


async def reason(awaitable: Awaitable[object]) -> str:
    return (await fails(awaitable)).reason


async def test_signup_creates_user_account_and_session(world: World) -> None:
    session = await world.accounts.signup(" New.User@Example.com ", PASSWORD, "10.0.0.1")
    assert session.user.email == "new.user@example.com"
    assert world.engine.accounts == {session.user.id: "5000"}
    assert world.verifier.verify(session.access_token) == session.user.id
    assert session.expires_in == 600
    assert await world.users.pending_account(session.user.id) is None
    assert session.access_token not in repr(session) and session.refresh_token not in repr(session)


async def test_tokens_name_the_shard_of_the_users_account(db: AsyncEngine) -> None:
    world = build(db, shards=4)
    shards = set()
    for n in range(12):
        session = await world.accounts.signup(f"s{n}@example.com", PASSWORD, "10.0.0.1")
        assert shard_claim(session.access_token) == session.user.shard
        assert world.engine.shards[session.user.id] == session.user.shard
        again = await world.accounts.signin(f"s{n}@example.com", PASSWORD, "10.0.0.1")
        assert shard_claim(again.access_token) == session.user.shard
        shards.add(session.user.shard)
    assert len(shards) > 1


async def test_signup_passes_the_chosen_margin_mode_to_the_engine(world: World) -> None:
    cross = await world.accounts.signup("x@example.com", PASSWORD, "ip", "", "MARGIN_MODE_CROSS")
    default = await world.accounts.signup("d@example.com", PASSWORD, "ip")
    assert world.engine.modes == {cross.user.id: "MARGIN_MODE_CROSS", default.user.id: ""}


async def test_a_resumed_signup_keeps_the_margin_mode_it_was_made_with(world: World) -> None:
    world.engine.up = False
    await reason(world.accounts.signup("r@example.com", PASSWORD, "ip", "", "MARGIN_MODE_CROSS"))
    world.engine.up = True
    session = await world.accounts.signup("r@example.com", PASSWORD, "ip")
    assert world.engine.modes == {session.user.id: "MARGIN_MODE_CROSS"}


async def test_signup_passes_the_chosen_position_mode_to_the_engine(world: World) -> None:
    netting = await world.accounts.signup(
        "n@example.com", PASSWORD, "ip", "", "", "POSITION_MODE_NETTING"
    )
    default = await world.accounts.signup("d@example.com", PASSWORD, "ip")
    assert world.engine.position_modes == {
        netting.user.id: "POSITION_MODE_NETTING",
        default.user.id: "",
    }
    assert world.engine.modes == {netting.user.id: "", default.user.id: ""}


async def test_a_resumed_signup_keeps_the_position_mode_it_was_made_with(world: World) -> None:
    world.engine.up = False
    await reason(
        world.accounts.signup(
            "r@example.com", PASSWORD, "ip", "", "MARGIN_MODE_CROSS", "POSITION_MODE_NETTING"
        )
    )
    world.engine.up = True
    session = await world.accounts.signup("r@example.com", PASSWORD, "ip")
    assert world.engine.modes == {session.user.id: "MARGIN_MODE_CROSS"}
    assert world.engine.position_modes == {session.user.id: "POSITION_MODE_NETTING"}


async def test_signup_stores_an_argon2id_hash_not_the_password(world: World) -> None:
    await world.accounts.signup("hash@example.com", PASSWORD, "10.0.0.1")
    async with world.db.connect() as conn:
        stored = (await conn.execute(select(users_table.c.password_hash))).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


async def test_signup_twice_is_email_taken(world: World) -> None:
    await world.accounts.signup("dup@example.com", PASSWORD, "10.0.0.1")
    assert await reason(world.accounts.signup("DUP@example.com", PASSWORD, "10.0.0.2")) == (
        "EMAIL_TAKEN"
    )
    assert len(world.engine.accounts) == 1


async def test_signup_validates_before_touching_anything(world: World) -> None:
    with pytest.raises(ApiError) as info:
        await world.accounts.signup("bad", "short", "10.0.0.1")
    assert info.value.reason == "VALIDATION_FAILED"
    assert {field for field, _ in info.value.violations} == {"email", "password"}
    assert await world.users.count_pending_accounts() == 0
    assert world.engine.accounts == {}


async def test_signup_during_engine_outage_is_unavailable_then_resumable(world: World) -> None:
    world.engine.up = False
    assert await reason(world.accounts.signup("late@example.com", PASSWORD, "ip")) == (
        "SERVICE_UNAVAILABLE"
    )
    assert world.engine.accounts == {}
    world.engine.up = True
    # Repeating the signup with the same password completes it.
    session = await world.accounts.signup("late@example.com", PASSWORD, "ip")
    assert world.engine.accounts == {session.user.id: "5000"}
    # Once complete, it is an ordinary duplicate.
    assert await reason(world.accounts.signup("late@example.com", PASSWORD, "ip")) == (
        "EMAIL_TAKEN"
    )


async def test_resuming_someone_elses_pending_signup_needs_their_password(world: World) -> None:
    world.engine.up = False
    await reason(world.accounts.signup("victim@example.com", PASSWORD, "ip"))
    world.engine.up = True
    assert await reason(world.accounts.signup("victim@example.com", "other password", "ip")) == (
        "EMAIL_TAKEN"
    )
    assert world.engine.accounts == {}


async def test_signin_after_an_outage_opens_the_missing_account(world: World) -> None:
    world.engine.up = False
    await reason(world.accounts.signup("out@example.com", PASSWORD, "ip"))
    assert await reason(world.accounts.signin("out@example.com", PASSWORD, "ip")) == (
        "SERVICE_UNAVAILABLE"
    )
    world.engine.up = True
    session = await world.accounts.signin("out@example.com", PASSWORD, "ip")
    assert world.engine.accounts == {session.user.id: "5000"}


async def test_signin_checks_the_password(world: World) -> None:
    created = await world.accounts.signup("sign@example.com", PASSWORD, "ip")
    session = await world.accounts.signin("SIGN@example.com", PASSWORD, "ip")
    assert session.user == created.user
    assert world.verifier.verify(session.access_token) == created.user.id
    assert await reason(world.accounts.signin("sign@example.com", PASSWORD + "x", "ip")) == (
        "INVALID_CREDENTIALS"
    )


async def test_unknown_email_costs_one_verification_like_a_wrong_password(world: World) -> None:
    await world.accounts.signup("known@example.com", PASSWORD, "ip")
    world.hasher.verifications = 0
    unknown = await reason(world.accounts.signin("unknown@example.com", PASSWORD, "ip"))
    assert world.hasher.verifications == 1
    wrong = await reason(world.accounts.signin("known@example.com", "wrong password", "ip"))
    assert world.hasher.verifications == 2
    assert unknown == wrong == "INVALID_CREDENTIALS"


async def test_signin_rehashes_after_a_cost_change(db: AsyncEngine) -> None:
    old = build(db)
    await old.accounts.signup("rehash@example.com", PASSWORD, "ip")
    new = build(db, cost=HashCost(time_cost=2, memory_kib=2048, parallelism=1))
    await new.accounts.signin("rehash@example.com", PASSWORD, "ip")
    stored = await new.users.find_by_email("rehash@example.com")
    assert stored is not None and "m=2048,t=2,p=1" in stored.password_hash
    await new.accounts.signin("rehash@example.com", PASSWORD, "ip")


async def test_refresh_rotates_and_detects_reuse(world: World) -> None:
    first = await world.accounts.signup("ref@example.com", PASSWORD, "ip")
    second = await world.accounts.refresh(first.refresh_token, "ip")
    assert second.user == first.user
    assert world.verifier.verify(second.access_token) == first.user.id
    assert second.refresh_token != first.refresh_token
    assert await reason(world.accounts.refresh(first.refresh_token, "ip")) == "TOKEN_INVALID"
    assert await reason(world.accounts.refresh(second.refresh_token, "ip")) == "TOKEN_INVALID"


async def test_signout_revokes_the_session(world: World) -> None:
    session = await world.accounts.signup("out2@example.com", PASSWORD, "ip")
    await world.accounts.signout(session.refresh_token)
    assert await reason(world.accounts.refresh(session.refresh_token, "ip")) == "TOKEN_INVALID"
    await world.accounts.signout(session.refresh_token)
    await world.accounts.signout("never-issued")


async def test_a_reused_refresh_token_revokes_the_sessions_access_tokens(world: World) -> None:
    first = await world.accounts.signup("copied@example.com", PASSWORD, "ip")
    second = await world.accounts.refresh(first.refresh_token, "ip")
    # The copy is presented after the owner refreshed: the whole session ends.
    assert await reason(world.accounts.refresh(first.refresh_token, "ip")) == "TOKEN_INVALID"
    for session in (first, second):
        with pytest.raises(ApiError) as info:
            world.verifier.verify(session.access_token)
        assert info.value.reason == "TOKEN_INVALID"


async def test_signout_revokes_every_access_token_of_the_session(world: World) -> None:
    first = await world.accounts.signup("out3@example.com", PASSWORD, "ip")
    second = await world.accounts.refresh(first.refresh_token, "ip")
    elsewhere = await world.accounts.signin("out3@example.com", PASSWORD, "ip")
    for session in (first, second, elsewhere):
        assert world.verifier.verify(session.access_token) == first.user.id
    await world.accounts.signout(second.refresh_token)
    for session in (first, second):
        with pytest.raises(ApiError) as info:
            world.verifier.verify(session.access_token)
        assert (info.value.reason, info.value.message) == (
            "TOKEN_INVALID",
            "access token revoked (signed out); sign in again",
        )
    # Another session of the same user goes on, and only live token ids are listed.
    assert world.verifier.verify(elsewhere.access_token) == first.user.id
    assert len(world.revoked.tokens) == 2
    assert all(exp > time.time() for exp in world.revoked.tokens.values())


@pytest.mark.parametrize("token", ["", "x" * 129])
async def test_refresh_and_signout_validate_the_token(world: World, token: str) -> None:
    assert await reason(world.accounts.refresh(token, "ip")) == "VALIDATION_FAILED"
    assert await reason(world.accounts.signout(token)) == "VALIDATION_FAILED"


async def test_get_user(world: World) -> None:
    session = await world.accounts.signup("me@example.com", PASSWORD, "ip")
    assert await world.accounts.get_user(session.user.id) == session.user
    assert await reason(world.accounts.get_user("gone")) == "USER_NOT_FOUND"


async def test_wrong_passwords_elsewhere_never_lock_the_owner_out(db: AsyncEngine) -> None:
    limits = RateLimits(Limit(3, 60), GENEROUS, GENEROUS, GENEROUS, GENEROUS)
    world = build(db, limits)
    await world.accounts.signup("target@example.com", PASSWORD, "1.1.1.1")
    # Guessers on many addresses, each up to its pair's limit and beyond.
    for address in ("2.2.2.2", "2.2.2.3", "2.2.2.4"):
        for n in range(4):
            await reason(world.accounts.signin("target@example.com", f"wrong guess {n}", address))
    with pytest.raises(ApiError) as info:
        await world.accounts.signin("Target@example.com", PASSWORD, "2.2.2.2")
    assert info.value.reason == "RATE_LIMITED"
    assert info.value.retry_after_s is not None and info.value.retry_after_s >= 1
    # The owner, signing in from their own address, is not denied.
    session = await world.accounts.signin("target@example.com", PASSWORD, "1.1.1.1")
    assert session.user.email == "target@example.com"


async def test_a_throttled_pair_gets_one_more_attempt_per_interval(db: AsyncEngine) -> None:
    # Limit(2, 60): two at once, then one every 30 s: the backoff after a burst of guesses.
    clock = FakeClock()
    world = build(db, RateLimits(Limit(2, 60), GENEROUS, GENEROUS, GENEROUS, GENEROUS), clock=clock)
    await world.accounts.signup("slow@example.com", PASSWORD, "1.1.1.1")
    outcomes = [
        await reason(world.accounts.signin("slow@example.com", "not it at all", "5.5.5.5"))
        for _ in range(3)
    ]
    assert outcomes == ["INVALID_CREDENTIALS", "INVALID_CREDENTIALS", "RATE_LIMITED"]
    clock.now += 29
    assert await reason(world.accounts.signin("slow@example.com", PASSWORD, "5.5.5.5")) == (
        "RATE_LIMITED"
    )
    clock.now += 1
    session = await world.accounts.signin("slow@example.com", PASSWORD, "5.5.5.5")
    assert session.user.email == "slow@example.com"


async def test_signin_is_limited_per_address_across_emails(db: AsyncEngine) -> None:
    limits = RateLimits(GENEROUS, Limit(2, 60), GENEROUS, GENEROUS, GENEROUS)
    world = build(db, limits)
    for n in range(2):
        await reason(world.accounts.signin(f"u{n}@example.com", PASSWORD, "6.6.6.6"))
    assert await reason(world.accounts.signin("u9@example.com", PASSWORD, "6.6.6.6")) == (
        "RATE_LIMITED"
    )
    await reason(world.accounts.signin("u9@example.com", PASSWORD, "7.7.7.7"))
    assert world.hasher.verifications == 3, "a limited attempt costs no hashing"


async def test_signup_is_limited_per_address_and_email(db: AsyncEngine) -> None:
    limits = RateLimits(GENEROUS, GENEROUS, Limit(1, 60), Limit(2, 60), GENEROUS)
    world = build(db, limits)
    await world.accounts.signup("a@example.com", PASSWORD, "8.8.8.8")
    assert await reason(world.accounts.signup("a@example.com", PASSWORD, "9.9.9.9")) == (
        "RATE_LIMITED"
    )
    await world.accounts.signup("b@example.com", PASSWORD, "8.8.8.8")
    assert await reason(world.accounts.signup("c@example.com", PASSWORD, "8.8.8.8")) == (
        "RATE_LIMITED"
    )


async def test_refresh_is_limited_per_address(db: AsyncEngine) -> None:
    limits = RateLimits(GENEROUS, GENEROUS, GENEROUS, GENEROUS, Limit(1, 60))
    world = build(db, limits)
    session = await world.accounts.signup("r@example.com", PASSWORD, "ip")
    session = await world.accounts.refresh(session.refresh_token, "ip")
    assert await reason(world.accounts.refresh(session.refresh_token, "ip")) == "RATE_LIMITED"


async def test_no_secret_reaches_the_logs(world: World, caplog: pytest.LogCaptureFixture) -> None:
    quiet_parameter_logging()
    caplog.set_level(logging.DEBUG)
    sessions: list[Session] = [await world.accounts.signup("log@example.com", PASSWORD, "ip")]
    world.engine.up = False
    await reason(world.accounts.signup("log2@example.com", PASSWORD, "ip"))
    world.engine.up = True
    sessions.append(await world.accounts.signin("log@example.com", PASSWORD, "ip"))
    await reason(world.accounts.signin("log@example.com", "wrong password", "ip"))
    sessions.append(await world.accounts.refresh(sessions[-1].refresh_token, "ip"))
    await reason(world.accounts.refresh(sessions[-2].refresh_token, "ip"))
    stored = await world.users.find_by_email("log@example.com")
    assert stored is not None
    secrets = [PASSWORD, "wrong password", stored.password_hash.split("$")[-1]]
    for session in sessions:
        secrets += [session.access_token, session.refresh_token]
    text = "\n".join(record.getMessage() + repr(record.__dict__) for record in caplog.records)
    assert caplog.records, "the flows log something"
    for secret in secrets:
        assert secret not in text


async def test_failed_signin_takes_as_long_for_an_unknown_email(db: AsyncEngine) -> None:
    # A cost high enough that hashing dominates a database lookup by an order of magnitude,
    # so that skipping the hash for unknown emails would show.
    world = build(db, cost=HashCost(time_cost=2, memory_kib=16 * 1024, parallelism=1))
    await world.accounts.signup("timed@example.com", PASSWORD, "ip")

    # CPU time of the whole process (the hash runs on a worker thread): unlike wall time, it
    # does not swing with what else the machine runs.
    async def median_s(email: str) -> float:
        times = []
        for _ in range(7):
            started = time.process_time()
            await reason(world.accounts.signin(email, "wrong password", "ip"))
            times.append(time.process_time() - started)
        return statistics.median(times)

    known, unknown = await median_s("timed@example.com"), await median_s("nobody@example.com")
    assert 0.5 < unknown / known < 2.0, (known, unknown)


# Port 1 on loopback refuses connections: Redis is down.
REDIS_DOWN = "redis://127.0.0.1:1/0"


async def test_signin_while_redis_is_down_tells_no_password_apart(db: AsyncEngine) -> None:
    world = build(db, RateLimits(GENEROUS, Limit(4, 60), GENEROUS, GENEROUS, GENEROUS))
    await world.accounts.signup("owner@example.com", PASSWORD, "1.1.1.1")
    sessions = RedisRefreshTokenStore.from_url(REDIS_DOWN)
    limiter = RedisRateLimiter.from_url(REDIS_DOWN)
    limits = RateLimits(GENEROUS, Limit(4, 60), GENEROUS, GENEROUS, GENEROUS)
    down = build(db, limits, sessions=sessions, limiter=limiter)
    try:
        wrong = await fails(down.accounts.signin("owner@example.com", "not it at all", "6.6.6.6"))
        right = await fails(down.accounts.signin("owner@example.com", PASSWORD, "6.6.6.6"))
        assert (wrong.reason, wrong.message) == (right.reason, right.message)
        assert wrong.reason == "SERVICE_UNAVAILABLE"
        assert down.hasher.verifications == 0, "no password is checked when no session can follow"
        # The limit still counts, in this process, while its store is down.
        for _ in range(2):
            await fails(down.accounts.signin("owner@example.com", PASSWORD, "6.6.6.6"))
        limited = await fails(down.accounts.signin("owner@example.com", PASSWORD, "6.6.6.6"))
        assert limited.reason == "RATE_LIMITED"
    finally:
        await sessions.aclose()
        await limiter.aclose()


async def test_wrong_passwords_are_limited_while_the_limit_store_is_down(db: AsyncEngine) -> None:
    limiter = RedisRateLimiter.from_url(REDIS_DOWN)
    limits = RateLimits(Limit(3, 60), GENEROUS, GENEROUS, GENEROUS, GENEROUS)
    world = build(db, limits, limiter=limiter)
    try:
        await world.accounts.signup("owner@example.com", PASSWORD, "1.1.1.1")
        outcomes = [
            await reason(world.accounts.signin("owner@example.com", f"guess number {n}", "7.7.7.7"))
            for n in range(4)
        ]
        assert outcomes == ["INVALID_CREDENTIALS"] * 3 + ["RATE_LIMITED"]
    finally:
        await limiter.aclose()


def token_id(session: Session) -> str:
    issued = issued_token(session.access_token)
    assert issued is not None
    return issued.token_id


NEW_PASSWORD = "a fresh passphrase"


async def test_change_password_keeps_this_session_and_revokes_the_others(world: World) -> None:
    here = await world.accounts.signup("chg@example.com", PASSWORD, "10.0.0.1", "Firefox")
    phone = await world.accounts.signin("chg@example.com", PASSWORD, "10.0.0.2", "Phone")
    laptop = await world.accounts.signin("chg@example.com", PASSWORD, "10.0.0.3", "Laptop")
    revoked = await world.accounts.change_password(
        here.user.id, token_id(here), PASSWORD, NEW_PASSWORD
    )
    assert revoked == 2
    for other in (phone, laptop):
        assert await reason(world.accounts.refresh(other.refresh_token, "ip")) == "TOKEN_INVALID"
        assert world.revoked.tokens.keys() >= {token_id(other)}
    assert token_id(here) not in world.revoked.tokens
    assert (await world.accounts.refresh(here.refresh_token, "ip")).user == here.user
    assert await reason(world.accounts.signin("chg@example.com", PASSWORD, "ip")) == (
        "INVALID_CREDENTIALS"
    )
    assert (await world.accounts.signin("chg@example.com", NEW_PASSWORD, "ip")).user == here.user


@pytest.mark.parametrize(
    ("current", "new", "fields"),
    [
        ("", NEW_PASSWORD, {"current_password"}),
        ("x" * 129, NEW_PASSWORD, {"current_password"}),
        (PASSWORD, "short", {"new_password"}),
        (PASSWORD, "password123", {"new_password"}),
        (PASSWORD, "bad@example.com", {"new_password"}),
        ("", "", {"current_password", "new_password"}),
    ],
)
async def test_change_password_refuses_bad_input_and_changes_nothing(
    world: World, current: str, new: str, fields: set[str]
) -> None:
    first = await world.accounts.signup("bad@example.com", PASSWORD, "ip")
    other = await world.accounts.signin("bad@example.com", PASSWORD, "ip")
    change = world.accounts.change_password(first.user.id, token_id(first), current, new)
    error = await fails(change)
    assert error.reason == "VALIDATION_FAILED"
    assert {field for field, _ in error.violations} == fields
    assert (await world.accounts.refresh(other.refresh_token, "ip")).user == first.user
    assert (await world.accounts.signin("bad@example.com", PASSWORD, "ip")).user == first.user


async def test_a_wrong_current_password_changes_nothing_and_is_limited(db: AsyncEngine) -> None:
    limits = dataclasses.replace(RateLimits(*([GENEROUS] * 6)), verify_per_user=Limit(2, 60))
    world = build(db, limits, clock=FakeClock())
    first = await world.accounts.signup("wrong@example.com", PASSWORD, "ip")
    other = await world.accounts.signin("wrong@example.com", PASSWORD, "ip")
    change = world.accounts.change_password
    for _ in range(2):
        assert await reason(change(first.user.id, token_id(first), "not it!", NEW_PASSWORD)) == (
            "INVALID_CREDENTIALS"
        )
    # Limited per user: even the right password waits now.
    assert await reason(change(first.user.id, token_id(first), PASSWORD, NEW_PASSWORD)) == (
        "RATE_LIMITED"
    )
    assert (await world.accounts.refresh(other.refresh_token, "ip")).user == first.user
    assert (await world.accounts.signin("wrong@example.com", PASSWORD, "ip")).user == first.user


async def test_sessions_are_listed_with_the_callers_own_marked(world: World) -> None:
    first = await world.accounts.signup("list@example.com", PASSWORD, "10.0.0.1", "Firefox")
    second = await world.accounts.signin("list@example.com", PASSWORD, "10.0.0.2", "Phone")
    listed = await world.accounts.list_sessions(first.user.id, token_id(second))
    assert [(s.info.client_address, s.info.user_agent, s.current) for s in listed] == [
        ("10.0.0.2", "Phone", True),
        ("10.0.0.1", "Firefox", False),
    ]
    # A refreshed access token still belongs to its session.
    refreshed = await world.accounts.refresh(first.refresh_token, "10.0.0.1")
    listed = await world.accounts.list_sessions(first.user.id, token_id(refreshed))
    assert [s.current for s in listed] == [False, True]


async def test_revoking_a_session_ends_it_and_its_access_tokens(world: World) -> None:
    first = await world.accounts.signup("rev@example.com", PASSWORD, "ip")
    second = await world.accounts.signin("rev@example.com", PASSWORD, "ip")
    listed = await world.accounts.list_sessions(first.user.id, token_id(first))
    (target,) = [s.info.id for s in listed if not s.current]
    await world.accounts.revoke_session(first.user.id, target)
    assert await reason(world.accounts.refresh(second.refresh_token, "ip")) == "TOKEN_INVALID"
    assert token_id(second) in world.revoked.tokens
    assert [s.current for s in await world.accounts.list_sessions(first.user.id, "")] == [False]
    assert await reason(world.accounts.revoke_session(first.user.id, target)) == (
        "SESSION_NOT_FOUND"
    )


async def test_nobody_revokes_another_users_session(world: World) -> None:
    mine = await world.accounts.signup("mine@example.com", PASSWORD, "ip")
    theirs = await world.accounts.signup("theirs@example.com", PASSWORD, "ip")
    (session,) = await world.accounts.list_sessions(theirs.user.id, token_id(theirs))
    assert await reason(world.accounts.revoke_session(mine.user.id, session.info.id)) == (
        "SESSION_NOT_FOUND"
    )
    assert (await world.accounts.refresh(theirs.refresh_token, "ip")).user == theirs.user


@pytest.mark.parametrize("session_id", ["", "x" * 65])
async def test_revoke_session_validates_the_id(world: World, session_id: str) -> None:
    first = await world.accounts.signup("val@example.com", PASSWORD, "ip")
    assert await reason(world.accounts.revoke_session(first.user.id, session_id)) == (
        "VALIDATION_FAILED"
    )


async def test_change_password_with_redis_sessions(db: AsyncEngine, redis_url: str) -> None:
    sessions = RedisRefreshTokenStore.from_url(redis_url, prefix=f"test:{time.time_ns()}:")
    world = build(db, sessions=sessions)
    try:
        here = await world.accounts.signup("redis@example.com", PASSWORD, "ip")
        there = await world.accounts.signin("redis@example.com", PASSWORD, "ip")
        assert await world.accounts.change_password(
            here.user.id, token_id(here), PASSWORD, NEW_PASSWORD
        ) == 1
        assert await reason(world.accounts.refresh(there.refresh_token, "ip")) == (
            "TOKEN_INVALID"
        )
        assert token_id(there) in world.revoked.tokens
        listed = await world.accounts.list_sessions(here.user.id, token_id(here))
        assert [s.current for s in listed] == [True]
    finally:
        await sessions.aclose()


async def enabled_totp(world: World, email: str) -> tuple[Session, pyotp.TOTP, list[str]]:
    """Sign up and enable two-factor authentication; return the session, TOTP and codes."""
    session = await world.accounts.signup(email, PASSWORD, "ip")
    enrolment = await world.accounts.enrol_totp(session.user.id)
    totp = pyotp.TOTP(enrolment.secret)
    codes = await world.accounts.confirm_totp(session.user.id, totp.now())
    return session, totp, codes


def later_code(totp: pyotp.TOTP) -> str:
    """Return the next step's code: the current one was spent by the confirmation."""
    return totp.at(time.time() + 30)


async def test_enrol_returns_a_secret_and_its_uri_and_changes_nothing_yet(world: World) -> None:
    session = await world.accounts.signup("enrol@example.com", PASSWORD, "ip")
    enrolment = await world.accounts.enrol_totp(session.user.id)
    assert re.fullmatch(r"[A-Z2-7]{32}", enrolment.secret)
    assert enrolment.otpauth_uri.startswith("otpauth://totp/CFD%20Mesh:enrol%40example.com?")
    assert f"secret={enrolment.secret}" in enrolment.otpauth_uri
    assert enrolment.secret not in repr(enrolment)
    assert not (await world.accounts.get_user(session.user.id)).totp_enabled
    assert (await world.accounts.signin("enrol@example.com", PASSWORD, "ip")).user == session.user


async def test_confirm_needs_an_enrolment_and_the_right_code(world: World) -> None:
    session = await world.accounts.signup("confirm@example.com", PASSWORD, "ip")
    user_id = session.user.id
    assert await reason(world.accounts.confirm_totp(user_id, "123456")) == "TOTP_NOT_ENROLLED"
    enrolment = await world.accounts.enrol_totp(user_id)
    totp = pyotp.TOTP(enrolment.secret)
    assert await reason(world.accounts.confirm_totp(user_id, "12345")) == "VALIDATION_FAILED"
    wrong = f"{(int(totp.now()) + 1) % 1_000_000:06d}"
    assert await reason(world.accounts.confirm_totp(user_id, wrong)) == "INVALID_CREDENTIALS"
    assert not (await world.accounts.get_user(user_id)).totp_enabled
    codes = await world.accounts.confirm_totp(user_id, totp.now())
    assert len(set(codes)) == 10
    assert (await world.accounts.get_user(user_id)).totp_enabled
    assert await reason(world.accounts.confirm_totp(user_id, later_code(totp))) == (
        "TOTP_ALREADY_ENABLED"
    )
    assert await reason(world.accounts.enrol_totp(user_id)) == "TOTP_ALREADY_ENABLED"


async def test_signin_asks_for_the_code_and_takes_each_code_once(world: World) -> None:
    session, totp, _ = await enabled_totp(world, "two@example.com")
    signin = world.accounts.signin
    assert await reason(signin("two@example.com", PASSWORD, "ip")) == "TOTP_REQUIRED"
    # A wrong password is still just INVALID_CREDENTIALS: nothing tells about the second factor.
    assert await reason(signin("two@example.com", "wrong password", "ip")) == (
        "INVALID_CREDENTIALS"
    )
    # The code that confirmed the enrolment is spent.
    assert await reason(
        signin("two@example.com", PASSWORD, "ip", second_factor=SecondFactor(totp.now()))
    ) == "INVALID_CREDENTIALS"
    code = SecondFactor(later_code(totp))
    signed_in = await signin("two@example.com", PASSWORD, "ip", second_factor=code)
    assert signed_in.user.id == session.user.id and signed_in.user.totp_enabled
    assert await reason(signin("two@example.com", PASSWORD, "ip", second_factor=code)) == (
        "INVALID_CREDENTIALS"
    )
    assert await reason(
        signin("two@example.com", PASSWORD, "ip", second_factor=SecondFactor("12a456"))
    ) == "VALIDATION_FAILED"


async def test_a_recovery_code_signs_in_once(world: World) -> None:
    _, _, codes = await enabled_totp(world, "recover@example.com")
    signin = world.accounts.signin
    first = SecondFactor(recovery_code=codes[0].lower())
    await signin("recover@example.com", PASSWORD, "ip", second_factor=first)
    assert await reason(signin("recover@example.com", PASSWORD, "ip", second_factor=first)) == (
        "INVALID_CREDENTIALS"
    )
    other = SecondFactor(recovery_code="AAAA-BBBB-CCCC-DDDD")
    assert await reason(signin("recover@example.com", PASSWORD, "ip", second_factor=other)) == (
        "INVALID_CREDENTIALS"
    )
    second = SecondFactor(recovery_code=codes[1])
    await signin("recover@example.com", PASSWORD, "ip", second_factor=second)


async def test_wrong_codes_are_limited_per_user(db: AsyncEngine) -> None:
    limits = dataclasses.replace(RateLimits(*([GENEROUS] * 6)), verify_per_user=Limit(3, 60))
    world = build(db, limits, clock=FakeClock())
    _, totp, _ = await enabled_totp(world, "brute@example.com")
    wrong = SecondFactor(f"{(int(later_code(totp)) + 500_000) % 1_000_000:06d}")
    # The confirmation took one attempt of the three.
    for address in ("10.0.0.1", "10.0.0.2"):
        assert await reason(
            world.accounts.signin("brute@example.com", PASSWORD, address, second_factor=wrong)
        ) == "INVALID_CREDENTIALS"
    right = SecondFactor(later_code(totp))
    assert await reason(
        world.accounts.signin("brute@example.com", PASSWORD, "10.0.0.3", second_factor=right)
    ) == "RATE_LIMITED"


async def test_disable_needs_the_password_and_a_code(world: World) -> None:
    session, totp, codes = await enabled_totp(world, "off@example.com")
    user_id = session.user.id
    disable = world.accounts.disable_totp
    assert await reason(disable(user_id, PASSWORD, SecondFactor())) == "VALIDATION_FAILED"
    assert await reason(disable(user_id, "", SecondFactor(later_code(totp)))) == (
        "VALIDATION_FAILED"
    )
    assert await reason(disable(user_id, "wrong password", SecondFactor(later_code(totp)))) == (
        "INVALID_CREDENTIALS"
    )
    assert await reason(disable(user_id, PASSWORD, SecondFactor(recovery_code="nope"))) == (
        "INVALID_CREDENTIALS"
    )
    assert (await world.accounts.get_user(user_id)).totp_enabled
    await disable(user_id, PASSWORD, SecondFactor(recovery_code=codes[0]))
    assert not (await world.accounts.get_user(user_id)).totp_enabled
    assert await reason(disable(user_id, PASSWORD, SecondFactor(recovery_code=codes[1]))) == (
        "TOTP_NOT_ENABLED"
    )
    assert (await world.accounts.signin("off@example.com", PASSWORD, "ip")).user.id == user_id


async def test_no_totp_secret_or_code_reaches_the_logs(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    session = await world.accounts.signup("quiet@example.com", PASSWORD, "ip")
    enrolment = await world.accounts.enrol_totp(session.user.id)
    totp = pyotp.TOTP(enrolment.secret)
    first = totp.now()
    codes = await world.accounts.confirm_totp(session.user.id, first)
    second = later_code(totp)
    code = SecondFactor(second)
    await world.accounts.signin("quiet@example.com", PASSWORD, "ip", second_factor=code)
    await reason(world.accounts.signin("quiet@example.com", PASSWORD, "ip", second_factor=code))
    recovery = SecondFactor(recovery_code=codes[0])
    await world.accounts.disable_totp(session.user.id, PASSWORD, recovery)
    text = "\n".join(record.getMessage() + repr(record.__dict__) for record in caplog.records)
    assert "two-factor authentication enabled" in text
    for secret in [enrolment.secret, first, second, *codes]:
        assert secret not in text
