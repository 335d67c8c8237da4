"""The accounts use cases: sign up, sign in, refresh, sign out, who am I.

Plain values in, plain values out; the gRPC servicer translates. Every failure is an
``ApiError`` with an API.md reason. Nothing here logs a password, a token or a hash.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from account_svc import metrics
from account_svc.config import Limit, RateLimits
from account_svc.issuer import TokenIssuer
from account_svc.passwords import PasswordHasher
from account_svc.provisioning import Provisioner
from account_svc.sessions import MAX_TOKEN_LENGTH, RefreshTokenStore
from account_svc.users import EmailTakenError, User, UserStore
from account_svc.validation import check_password, normalize_email, require_credentials
from mesh.errors import ApiError, validation_error
from mesh.ratelimit import RateLimiter

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
    ) -> None:
        self._users = users
        self._hasher = hasher
        self._sessions = sessions
        self._issuer = issuer
        self._provisioner = provisioner
        self._limiter = limiter
        self._limits = limits
        self._demo_balance = demo_balance

    async def _limit(self, key: str, limit: Limit) -> None:
        decision = await self._limiter.hit(key, limit.count, limit.window_s)
        if not decision.allowed:
            metrics.refused(key)
            raise ApiError(
                "RATE_LIMITED",
                f"too many attempts; retry in {decision.retry_after_s} s",
                retry_after_s=decision.retry_after_s,
            )

    async def _open_session(self, user: User) -> Session:
        refresh_token = await self._sessions.create(user.id)
        access_token, expires_in = self._issuer.issue(user.id)
        return Session(user, access_token, refresh_token, expires_in)

    async def signup(self, email: str, password: str, client: str) -> Session:
        """Create the user and their trading account (with the demo balance), and sign in."""
        await self._limit(f"signup:address:{client}", self._limits.signup_per_address)
        email, password = require_credentials(email, password)
        await self._limit(f"signup:email:{email}", self._limits.signup_per_email)
        password_hash = await self._hasher.hash(password)
        try:
            user = await self._users.create(email, password_hash, self._demo_balance)
            _log.info("user signed up", extra={"fields": {"user_id": user.id}})
            metrics.SIGNUPS.inc()
        except EmailTakenError:
            user = await self._resumable_signup(email, password)
        await self._provisioner.ensure(user.id)
        return await self._open_session(user)

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

    async def signin(self, email: str, password: str, client: str) -> Session:
        """Check the credentials and open a session.

        A wrong password and an unknown email cost the same (one argon2id verification)
        and get the same answer.
        """
        await self._limit(f"signin:address:{client}", self._limits.signin_per_address)
        email = normalize_email(email)
        check_password(password)
        await self._limit(f"signin:email:{email}", self._limits.signin_per_email)
        stored = await self._users.find_by_email(email)
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
        await self._provisioner.ensure(user.id)
        return await self._open_session(user)

    async def refresh(self, refresh_token: str, client: str) -> Session:
        """Spend the refresh token and return a new access and refresh token."""
        await self._limit(f"refresh:address:{client}", self._limits.refresh_per_address)
        _require_token(refresh_token)
        rotation = await self._sessions.rotate(refresh_token)
        user = await self._users.get(rotation.user_id)
        if user is None:
            raise ApiError("TOKEN_INVALID", "refresh token not recognized")
        access_token, expires_in = self._issuer.issue(user.id)
        return Session(user, access_token, rotation.refresh_token, expires_in)

    async def signout(self, refresh_token: str) -> None:
        """Revoke the session of the refresh token; unknown tokens are ignored."""
        _require_token(refresh_token)
        await self._sessions.revoke(refresh_token)

    async def get_user(self, user_id: str) -> User:
        """Return the user with this id (the subject of a verified access token)."""
        user = await self._users.get(user_id)
        if user is None:
            raise ApiError("USER_NOT_FOUND", "the user of this token no longer exists")
        return user


def _require_token(refresh_token: str) -> None:
    if not refresh_token:
        raise validation_error("refresh_token", "is required")
    if len(refresh_token) > MAX_TOKEN_LENGTH:
        raise validation_error("refresh_token", f"must be at most {MAX_TOKEN_LENGTH} characters")
