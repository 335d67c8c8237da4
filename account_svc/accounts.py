"""The accounts use cases: sign up, sign in, refresh, sign out, who am I, account security.

Plain values in, plain values out; the gRPC servicer translates. Every failure is an
``ApiError`` with an API.md reason. Nothing here logs a password, a token or a hash.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from account_svc import metrics
from account_svc.config import Limit, RateLimits
from account_svc.email_identity import EmailIdentity
from account_svc.email_tokens import RESET_PASSWORD, VERIFY_EMAIL
from account_svc.issuer import TokenIssuer
from account_svc.notifications import Kind, NotificationSettings, start_following
from account_svc.passwords import PasswordHasher
from account_svc.provisioning import Provisioner
from account_svc.sessions import (
    MAX_TOKEN_LENGTH,
    Origin,
    RefreshTokenStore,
    SessionInfo,
    SessionReusedError,
)
from account_svc.totp import (
    MAX_RECOVERY_CODE_LENGTH,
    EnrolmentRefusedError,
    SecretBox,
    TotpStore,
    check_code,
    matching_step,
    new_recovery_codes,
    new_secret,
    otpauth_uri,
    recovery_code_hash,
)
from account_svc.users import NO_PASSWORD, EmailTakenError, User, UserStore
from account_svc.validation import (
    MAX_PASSWORD_LENGTH,
    check_new_password,
    check_password,
    normalize_email,
    require_credentials,
)
from mesh.errors import ApiError, validation_error
from mesh.ratelimit import RateLimiter
from mesh.revocation import IssuedToken, RevokedTokens, issued_token

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Session:
    """What a successful sign-up, sign-in or refresh returns."""

    user: User
    access_token: str
    refresh_token: str
    expires_in: int

    def __repr__(self) -> str:
        # Keep tokens out of logs and tracebacks.
        return f"Session(user={self.user!r}, expires_in={self.expires_in})"


@dataclass(frozen=True)
class SecondFactor:
    """A TOTP code or a recovery code, as a sign-in or a disable presents it."""

    totp_code: str = ""
    recovery_code: str = ""

    def __repr__(self) -> str:
        return "SecondFactor(...)"

    @property
    def given(self) -> bool:
        """Return whether either code was presented."""
        return bool(self.totp_code or self.recovery_code)

    def check_shape(self) -> None:
        """Raise VALIDATION_FAILED for a malformed code or for both codes at once."""
        if self.totp_code and self.recovery_code:
            raise validation_error("recovery_code", "give either totp_code or recovery_code")
        if self.totp_code:
            check_code("totp_code", self.totp_code)
        if len(self.recovery_code) > MAX_RECOVERY_CODE_LENGTH:
            raise validation_error(
                "recovery_code", f"must be at most {MAX_RECOVERY_CODE_LENGTH} characters"
            )


@dataclass(frozen=True)
class Enrolment:
    """A new TOTP secret and its otpauth URI, returned once by ``enrol_totp``."""

    secret: str
    otpauth_uri: str

    def __repr__(self) -> str:
        return "Enrolment(...)"


@dataclass(frozen=True)
class ActiveSession:
    """A session in the user's list, marked when it is the caller's own."""

    info: SessionInfo
    current: bool


class Accounts:
    """Users, credentials and sessions."""

    def __init__(
        self,
        *,
        users: UserStore,
        hasher: PasswordHasher,
        sessions: RefreshTokenStore,
        issuer: TokenIssuer,
        provisioner: Provisioner,
        limiter: RateLimiter,
        limits: RateLimits,
        demo_balance: str,
        revoked: RevokedTokens,
        totp: TotpStore,
        secret_box: SecretBox,
        email: EmailIdentity,
        notifications: NotificationSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._users = users
        self._hasher = hasher
        self._sessions = sessions
        self._issuer = issuer
        self._provisioner = provisioner
        self._limiter = limiter
        self._limits = limits
        self._demo_balance = demo_balance
        self._revoked = revoked
        self._totp = totp
        self._secret_box = secret_box
        self._email = email
        self._notifications = notifications
        self._clock = clock

    async def _limit(self, key: str, limit: Limit) -> None:
        decision = await self._limiter.hit(key, limit.count, limit.window_s)
        if not decision.allowed:
            metrics.refused(key)
            raise ApiError(
                "RATE_LIMITED",
                f"too many attempts; retry in {decision.retry_after_s} s",
                retry_after_s=decision.retry_after_s,
            )

    async def _open_session(self, user: User, origin: Origin) -> Session:
        return await self._session(user, await self._sessions.create(user.id, origin))

    async def _session(self, user: User, refresh_token: str) -> Session:
        """Issue an access token in the session of ``refresh_token``, remembered for sign-out."""
        access_token, expires_in = self._issuer.issue(
            user.id, email_verified=user.email_verified, shard=user.shard
        )
        issued = issued_token(access_token)
        if issued is None:
            raise RuntimeError("the issuer signed a token without an id or expiry")
        await self._sessions.add_access_token(refresh_token, issued)
        return Session(user, access_token, refresh_token, expires_in)

    async def signup(
        self,
        email: str,
        password: str,
        client: str,
        user_agent: str = "",
        margin_mode: str = "",
        position_mode: str = "",
    ) -> Session:
        """Create the user and their trading account (with the demo balance, in `margin_mode`
        and `position_mode`, a cfd.v1.MarginMode and a cfd.v1.PositionMode name or "" for the
        engine's defaults), and sign in."""
        await self._limit(f"signup:address:{client}", self._limits.signup_per_address)
        email, password = require_credentials(email, password)
        await self._limit(f"signup:email:{email}", self._limits.signup_per_email)
        password_hash = await self._hasher.hash(password)
        try:
            user = await self._create_user(email, password_hash, margin_mode, position_mode)
        except EmailTakenError:
            user = await self._resumable_signup(email, password)
        await self._provisioner.ensure(user.id)
        return await self._open_session(user, Origin(client, user_agent))

    async def _create_user(
        self, email: str, password_hash: str, margin_mode: str = "", position_mode: str = ""
    ) -> User:
        """Create the user and queue their trading account; raise ``EmailTakenError``.

        The verification message is queued, and trading notifications start, in the
        transaction that creates the user.
        """

        async def on_created(conn: AsyncConnection, user: User) -> None:
            await self._email.send_verification(conn, user.id, user.email)
            await start_following(conn, user.id, user.create_time_ms)

        user = await self._users.create(
            email, password_hash, self._demo_balance, margin_mode, on_created, position_mode
        )
        _log.info("user signed up", extra={"fields": {"user_id": user.id}})
        metrics.SIGNUPS.inc()
        return user

    async def create_passwordless_user(self, email: str) -> User:
        """Create a user who signs in through an identity provider, as sign-up does.

        The user and their trading account are created by the same steps as ``signup``;
        the empty password hash matches no password. Raise ``EmailTakenError``.
        """
        user = await self._create_user(email, NO_PASSWORD)
        await self._provisioner.ensure(user.id)
        return user

    async def open_session(self, user: User, origin: Origin) -> Session:
        """Sign the user in (their identity proven elsewhere) once their account exists."""
        await self._provisioner.ensure(user.id)
        return await self._open_session(user, origin)

    async def has_password(self, user: User) -> bool:
        """Return whether the user can sign in with a password."""
        stored = await self._users.find_by_email(user.email)
        return stored is not None and stored.password_hash != NO_PASSWORD

    async def find_user(self, email: str) -> User | None:
        """Return the user with this normalized email, if any."""
        stored = await self._users.find_by_email(email)
        return None if stored is None else stored.user

    async def limit(self, key: str, limit: Limit) -> None:
        """Count an attempt under ``key``; raise RATE_LIMITED beyond ``limit``."""
        await self._limit(key, limit)

    async def _resumable_signup(self, email: str, password: str) -> User:
        """Return the user of an earlier signup that never got its trading account.

        A signup answered UNAVAILABLE (engine down) left the user behind; repeating it with
        the same password completes it instead of answering EMAIL_TAKEN.
        """
        stored = await self._users.find_by_email(email)
        if (
            stored is not None
            and await self._users.pending_account(stored.user.id) is not None
            and await self._hasher.verify(stored.password_hash, password)
        ):
            return stored.user
        raise ApiError("EMAIL_TAKEN", "this email is already registered", [("email", "taken")])

    async def signin(
        self,
        email: str,
        password: str,
        client: str,
        user_agent: str = "",
        second_factor: SecondFactor = SecondFactor(),
    ) -> Session:
        """Check the credentials (and the second factor, when enabled) and open a session.

        A user with two-factor authentication who gave neither code gets TOTP_REQUIRED
        once the password is right; a wrong or reused code is INVALID_CREDENTIALS and
        counts against the user's verification limit.

        A wrong password and an unknown email cost the same (one argon2id verification)
        and get the same answer. Everything a session needs (the limits, the session store,
        the trading account) is checked before the password, so an outage answers every
        attempt alike and never tells a guesser that a password was right.
        """
        await self._limit(f"signin:address:{client}", self._limits.signin_per_address)
        email = normalize_email(email)
        check_password(password)
        second_factor.check_shape()
        await self._limit(
            f"signin:email-address:{email} {client}", self._limits.signin_per_email_and_address
        )
        await self._sessions.check()
        stored = await self._users.find_by_email(email)
        if stored is not None:
            await self._provisioner.ensure(stored.user.id)
        matches = await self._hasher.verify(
            None if stored is None else stored.password_hash, password
        )
        if stored is None or not matches:
            metrics.SIGNINS.labels("invalid_credentials").inc()
            raise ApiError("INVALID_CREDENTIALS", "wrong email or password")
        metrics.SIGNINS.labels("ok").inc()
        user = stored.user
        if self._hasher.needs_rehash(stored.password_hash):
            await self._users.set_password_hash(user.id, await self._hasher.hash(password))
        if user.totp_enabled:
            if not second_factor.given:
                raise ApiError(
                    "TOTP_REQUIRED", "two-factor authentication is on: give totp_code"
                )
            await self.verify_second_factor(user, second_factor)
        return await self._open_session(user, Origin(client, user_agent))

    async def refresh(self, refresh_token: str, client: str) -> Session:
        """Spend the refresh token and return a new access and refresh token."""
        await self._limit(f"refresh:address:{client}", self._limits.refresh_per_address)
        _require_token(refresh_token)
        try:
            rotation = await self._sessions.rotate(refresh_token)
        except SessionReusedError:
            # A copied refresh token: the store revoked the session; its access tokens go too.
            await self._revoke_access_tokens(refresh_token)
            raise
        user = await self._users.get(rotation.user_id)
        if user is None:
            raise ApiError("TOKEN_INVALID", "refresh token not recognized")
        return await self._session(user, rotation.refresh_token)

    async def signout(self, refresh_token: str) -> None:
        """Revoke the session of the refresh token and its access tokens; ignore unknown ones.

        The access tokens go on the revocation list every verifier reads; if that write
        fails the call fails, and repeating it publishes them again.
        """
        _require_token(refresh_token)
        await self._revoke_access_tokens(refresh_token)

    async def _revoke_access_tokens(self, refresh_token: str) -> None:
        """Revoke the session of ``refresh_token`` and list its live access tokens as revoked."""
        access_tokens = await self._sessions.revoke(refresh_token)
        if access_tokens:
            await self._revoked.revoke(access_tokens)

    async def change_password(
        self, user_id: str, access_token_id: str, current: str, new: str
    ) -> int:
        """Check the current password, set the new one and revoke every other session.

        ``access_token_id`` names the caller's access token: its session stays signed in.
        Return how many other sessions were revoked. Bad input changes nothing; a wrong
        current password counts against the user's verification limit.
        """
        user = await self.get_user(user_id)
        violations: list[tuple[str, str]] = []
        if not current:
            violations.append(("current_password", "is required"))
        elif len(current) > MAX_PASSWORD_LENGTH:
            violations.append(
                ("current_password", f"must be at most {MAX_PASSWORD_LENGTH} characters")
            )
        violations.extend(_new_password_violations(new, user.email))
        if violations:
            raise _validation_failed(violations)
        await self._verify_password(user, current)
        await self._users.set_password_hash(user.id, await self._hasher.hash(new))
        current_session = await self._sessions.session_of_access_token(access_token_id)
        revoked = await self._revoke_sessions(
            user.id,
            [s.id for s in await self._sessions.list_sessions(user.id) if s.id != current_session],
        )
        _log.info(
            "password changed",
            extra={"fields": {"user_id": user.id, "revoked_sessions": revoked}},
        )
        return revoked

    async def change_email(self, user_id: str, password: str, new_email: str) -> User:
        """Check the password and move the user to ``new_email`` (unverified until the mailed
        link is opened); return the user at the new address. Bad input changes nothing."""
        user = await self.get_user(user_id)
        violations: list[tuple[str, str]] = []
        if not password:
            violations.append(("password", "is required"))
        elif len(password) > MAX_PASSWORD_LENGTH:
            violations.append(("password", f"must be at most {MAX_PASSWORD_LENGTH} characters"))
        try:
            email = normalize_email(new_email)
        except ApiError as exc:
            violations.extend(("new_email", description) for _, description in exc.violations)
        else:
            if email == user.email:
                violations.append(("new_email", "is the current email address"))
        if violations:
            raise _validation_failed(violations)
        await self._verify_password(user, password)
        try:
            await self._email.change_email(user.id, user.email, email)
        except EmailTakenError:
            raise ApiError(
                "EMAIL_TAKEN", "this email is already registered", [("new_email", "taken")]
            ) from None
        return await self.get_user(user.id)

    async def _verify_password(self, user: User, password: str) -> None:
        """Raise INVALID_CREDENTIALS unless ``password`` is the user's; count the attempt."""
        await self._limit(f"verify:user:{user.id}", self._limits.verify_per_user)
        stored = await self._users.find_by_email(user.email)
        if stored is None or not await self._hasher.verify(stored.password_hash, password):
            raise ApiError("INVALID_CREDENTIALS", "wrong password")

    async def verify_second_factor(self, user: User, second_factor: SecondFactor) -> None:
        """Check a sign-in's second factor: every attempt counts against the user's
        verification limit, and a wrong or reused code is INVALID_CREDENTIALS."""
        await self._limit(f"verify:user:{user.id}", self._limits.verify_per_user)
        await self._check_second_factor(user, second_factor)

    async def _check_second_factor(self, user: User, second_factor: SecondFactor) -> None:
        """Spend the TOTP code's step or the recovery code; raise INVALID_CREDENTIALS."""
        record = await self._totp.get(user.id)
        if record is None or not record.enabled:
            raise ApiError("TOTP_NOT_ENABLED", "two-factor authentication is not enabled")
        if second_factor.totp_code:
            secret = self._secret_box.decrypt(record.secret_ciphertext, user.id)
            step = matching_step(secret, second_factor.totp_code, self._clock())
            accepted = step is not None and await self._totp.use_step(user.id, step)
        else:
            code_hash = recovery_code_hash(user.id, second_factor.recovery_code)
            accepted = await self._totp.use_recovery_code(user.id, code_hash)
            if accepted:
                _log.info("recovery code used", extra={"fields": {"user_id": user.id}})
        if not accepted:
            raise ApiError("INVALID_CREDENTIALS", "wrong or already used code")

    async def enrol_totp(self, user_id: str) -> Enrolment:
        """Store a new unconfirmed TOTP secret for the user; return it and its URI."""
        user = await self.get_user(user_id)
        secret = new_secret()
        try:
            await self._totp.enrol(user.id, self._secret_box.encrypt(secret, user.id))
        except EnrolmentRefusedError:
            raise ApiError(
                "TOTP_ALREADY_ENABLED", "two-factor authentication is already enabled"
            ) from None
        return Enrolment(secret, otpauth_uri(secret, user.email))

    async def confirm_totp(self, user_id: str, code: str) -> list[str]:
        """Enable two-factor authentication with a first code; return the recovery codes."""
        user = await self.get_user(user_id)
        check_code("totp_code", code)
        record = await self._totp.get(user.id)
        if record is None:
            raise ApiError("TOTP_NOT_ENROLLED", "enrol before confirming")
        if record.enabled:
            raise ApiError("TOTP_ALREADY_ENABLED", "two-factor authentication is already enabled")
        await self._limit(f"verify:user:{user.id}", self._limits.verify_per_user)
        secret = self._secret_box.decrypt(record.secret_ciphertext, user.id)
        step = matching_step(secret, code, self._clock())
        codes = new_recovery_codes()
        hashes = [recovery_code_hash(user.id, c) for c in codes]
        if step is None or not await self._totp.enable(user.id, step, hashes):
            raise ApiError("INVALID_CREDENTIALS", "wrong or already used code")
        _log.info("two-factor authentication enabled", extra={"fields": {"user_id": user.id}})
        return codes

    async def disable_totp(
        self, user_id: str, password: str, second_factor: SecondFactor
    ) -> None:
        """Turn two-factor authentication off, given the password and a code."""
        user = await self.get_user(user_id)
        if not password:
            raise validation_error("password", "is required")
        check_password(password)
        if not second_factor.given:
            raise validation_error("totp_code", "give totp_code or recovery_code")
        second_factor.check_shape()
        if not user.totp_enabled:
            raise ApiError("TOTP_NOT_ENABLED", "two-factor authentication is not enabled")
        await self._verify_password(user, password)
        await self._check_second_factor(user, second_factor)
        await self._totp.disable(user.id)
        _log.info("two-factor authentication disabled", extra={"fields": {"user_id": user.id}})

    async def _revoke_sessions(self, user_id: str, session_ids: list[str]) -> int:
        """Revoke these sessions of the user and list their access tokens; return how many."""
        access_tokens: list[IssuedToken] = []
        count = 0
        for session_id in session_ids:
            revoked = await self._sessions.revoke_session(user_id, session_id)
            if revoked is not None:
                count += 1
                access_tokens.extend(revoked)
        if access_tokens:
            await self._revoked.revoke(access_tokens)
        return count

    async def list_sessions(self, user_id: str, access_token_id: str) -> list[ActiveSession]:
        """Return the user's active sessions, newest first, the caller's own marked."""
        current = await self._sessions.session_of_access_token(access_token_id)
        return [
            ActiveSession(info, info.id == current)
            for info in await self._sessions.list_sessions(user_id)
        ]

    async def revoke_session(self, user_id: str, session_id: str) -> None:
        """Revoke one of the user's active sessions and its access tokens."""
        if not session_id:
            raise validation_error("session_id", "is required")
        if len(session_id) > MAX_SESSION_ID_LENGTH:
            raise validation_error(
                "session_id", f"must be at most {MAX_SESSION_ID_LENGTH} characters"
            )
        access_tokens = await self._sessions.revoke_session(user_id, session_id)
        if access_tokens is None:
            raise ApiError("SESSION_NOT_FOUND", "no active session of yours has this id")
        if access_tokens:
            await self._revoked.revoke(access_tokens)

    async def verify_email(self, token: str, client: str) -> None:
        """Spend an emailed verification token: the user's address is verified."""
        await self._limit(f"email:address:{client}", self._limits.email_per_address)
        await self._email.verify(self._email.check(VERIFY_EMAIL, token))

    async def resend_verification(self, user_id: str) -> None:
        """Queue a new verification message for the user's address."""
        user = await self.get_user(user_id)
        if user.email_verified:
            raise ApiError("EMAIL_ALREADY_VERIFIED", "this email address is verified already")
        await self._limit(f"mail:email:{user.email}", self._limits.mail_per_email)
        await self._email.resend_verification(user.id, user.email)

    async def request_password_reset(self, email: str, client: str) -> None:
        """Queue a reset message if a user has this address; answer alike either way.

        The limits count every request, for known and unknown addresses alike, so that
        neither the answer nor a refusal tells whether the address has an account.
        """
        await self._limit(f"email:address:{client}", self._limits.email_per_address)
        email = normalize_email(email)
        await self._limit(f"mail:email:{email}", self._limits.mail_per_email)
        stored = await self._users.find_by_email(email)
        if stored is not None:
            await self._email.send_password_reset(stored.user.id, stored.user.email)

    async def reset_password(self, token: str, new_password: str, client: str) -> int:
        """Set a new password with an emailed reset token; revoke every session of the user.

        Return how many sessions were revoked. Sessions are revoked before the token is
        spent, so a failure leaves the token usable for a retry, and again after, for a
        sign-in with the old password that slipped in between.
        """
        await self._limit(f"email:address:{client}", self._limits.email_per_address)
        token_id = self._email.check(RESET_PASSWORD, token)
        user = await self.get_user(await self._email.reset_owner(token_id))
        violations = _new_password_violations(new_password, user.email)
        if violations:
            raise _validation_failed(violations)
        password_hash = await self._hasher.hash(new_password)
        revoked = await self._revoke_all_sessions(user.id)
        await self._email.reset_password(token_id, password_hash)
        revoked += await self._revoke_all_sessions(user.id)
        _log.info(
            "password reset by email",
            extra={"fields": {"user_id": user.id, "revoked_sessions": revoked}},
        )
        return revoked

    async def _revoke_all_sessions(self, user_id: str) -> int:
        sessions = await self._sessions.list_sessions(user_id)
        return await self._revoke_sessions(user_id, [s.id for s in sessions])

    async def notification_settings(self, user_id: str) -> dict[Kind, bool]:
        """Return the user's switch of each kind of trading notification."""
        return await self._notifications.get((await self.get_user(user_id)).id)

    async def update_notification_settings(
        self, user_id: str, changes: list[tuple[Kind, bool]]
    ) -> dict[Kind, bool]:
        """Switch kinds of trading notification on or off; return every kind's switch."""
        return await self._notifications.update((await self.get_user(user_id)).id, changes)

    async def get_user(self, user_id: str) -> User:
        """Return the user with this id (the subject of a verified access token)."""
        user = await self._users.get(user_id)
        if user is None:
            raise ApiError("USER_NOT_FOUND", "the user of this token no longer exists")
        return user


MAX_SESSION_ID_LENGTH = 64


def _new_password_violations(new_password: str, email: str) -> list[tuple[str, str]]:
    """Return what makes ``new_password`` unfit to be set, on field ``new_password``."""
    try:
        check_new_password(new_password, email)
    except ApiError as exc:
        return [("new_password", description) for _, description in exc.violations]
    return []


def _validation_failed(violations: list[tuple[str, str]]) -> ApiError:
    message = "; ".join(f"{field}: {description}" for field, description in violations)
    return ApiError("VALIDATION_FAILED", message, violations)


def _require_token(refresh_token: str) -> None:
    if not refresh_token:
        raise validation_error("refresh_token", "is required")
    if len(refresh_token) > MAX_TOKEN_LENGTH:
        raise validation_error("refresh_token", f"must be at most {MAX_TOKEN_LENGTH} characters")
