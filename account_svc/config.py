"""Settings specific to the accounts service, read from the environment.

``mesh.config.Settings`` holds what every service shares; this adds the token lifetimes,
the abuse limits and the password hashing cost, each with a safe default.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from account_svc.email_identity import DEFAULT_RESET_TTL_S, DEFAULT_VERIFY_TTL_S
from account_svc.mail import MailConfig, MailConfigError
from account_svc.passwords import HashCost
from account_svc.sessions import DEFAULT_REFRESH_TTL_S
from mesh.tokens import TokenConfig, TokenKeyError

_LIMIT = re.compile(r"^\s*(\d{1,7})\s*/\s*(\d{1,7})\s*$", re.ASCII)
_MAX_COUNT = 1_000_000
_MAX_WINDOW_S = 7 * 24 * 3600


class AccountConfigError(ValueError):
    """An accounts environment variable has an unusable value."""


@dataclass(frozen=True)
class Limit:
    """At most ``count`` attempts per ``window_s`` seconds."""

    count: int
    window_s: int


@dataclass(frozen=True)
class RateLimits:
    """Abuse limits of the credential endpoints, per email and per client address.

    Sign-in is throttled per (email, address) pair (``CFD_LIMIT_SIGNIN_PER_EMAIL_AND_ADDRESS``)
    and per address (``CFD_LIMIT_SIGNIN_PER_ADDRESS``), never per email alone: a guesser
    elsewhere cannot lock the owner out. Sign-up is limited per email
    (``CFD_LIMIT_SIGNUP_PER_EMAIL``) and per address (``CFD_LIMIT_SIGNUP_PER_ADDRESS``),
    refresh per address (``CFD_LIMIT_REFRESH_PER_ADDRESS``). The checks that prove a
    signed-in user, or a user past their password, is who they claim (the current password
    when changing it, TOTP and recovery codes) are limited per user
    (``CFD_LIMIT_VERIFY_PER_USER``): a guesser holding a password or a stolen access token
    meets it from any number of addresses. Each limit lets ``count``
    attempts through at once, then one more every ``window_s / count`` seconds: the
    backoff a guesser meets after the burst.

    The emailed-token endpoints (asking for a password reset, resetting, verifying an
    email) are limited per address (``CFD_LIMIT_EMAIL_PER_ADDRESS``), and the messages a
    caller can have sent to one address (password resets, repeated verification messages)
    per address mailed (``CFD_LIMIT_MAIL_PER_EMAIL``), whether a user has it or not.
    """

    signin_per_email_and_address: Limit = Limit(10, 300)
    signin_per_address: Limit = Limit(60, 300)
    signup_per_email: Limit = Limit(5, 3600)
    signup_per_address: Limit = Limit(20, 3600)
    refresh_per_address: Limit = Limit(120, 60)
    verify_per_user: Limit = Limit(10, 300)
    email_per_address: Limit = Limit(30, 300)
    mail_per_email: Limit = Limit(5, 3600)


_LIMIT_VARIABLES = {
    "signin_per_email_and_address": "CFD_LIMIT_SIGNIN_PER_EMAIL_AND_ADDRESS",
    "signin_per_address": "CFD_LIMIT_SIGNIN_PER_ADDRESS",
    "signup_per_email": "CFD_LIMIT_SIGNUP_PER_EMAIL",
    "signup_per_address": "CFD_LIMIT_SIGNUP_PER_ADDRESS",
    "refresh_per_address": "CFD_LIMIT_REFRESH_PER_ADDRESS",
    "verify_per_user": "CFD_LIMIT_VERIFY_PER_USER",
    "email_per_address": "CFD_LIMIT_EMAIL_PER_ADDRESS",
    "mail_per_email": "CFD_LIMIT_MAIL_PER_EMAIL",
}


@dataclass(frozen=True)
class AccountConfig:
    """Everything the accounts service reads beyond the shared settings."""

    tokens: TokenConfig = field(default_factory=TokenConfig)
    refresh_ttl_s: int = DEFAULT_REFRESH_TTL_S
    limits: RateLimits = field(default_factory=RateLimits)
    hash_cost: HashCost = field(default_factory=HashCost)
    mail: MailConfig = field(default_factory=MailConfig)
    verify_email_ttl_s: int = DEFAULT_VERIFY_TTL_S
    password_reset_ttl_s: int = DEFAULT_RESET_TTL_S

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, edge_port: int = 8000) -> AccountConfig:
        """Read ``CFD_ACCESS_TOKEN_TTL``, ``CFD_REFRESH_TOKEN_TTL``, ``CFD_JWT_*``,
        ``CFD_LIMIT_*`` (``"count/seconds"``), ``CFD_ARGON2_*``, the email settings
        (``CFD_SMTP_*``, ``CFD_MAIL_FROM``, ``CFD_PUBLIC_URL``, whose default is the edge on
        localhost at ``edge_port``) and the emailed tokens' lifetimes
        (``CFD_VERIFY_EMAIL_TTL``, ``CFD_PASSWORD_RESET_TTL``)."""
        source = os.environ if env is None else env
        try:
            tokens = TokenConfig.from_env(source)
            mail = MailConfig.from_env(source, edge_port)
        except (TokenKeyError, MailConfigError) as exc:
            raise AccountConfigError(str(exc)) from None
        defaults = RateLimits()
        limits = RateLimits(
            **{
                name: _limit(source, variable, getattr(defaults, name))
                for name, variable in _LIMIT_VARIABLES.items()
            }
        )
        default_cost = HashCost()
        cost = HashCost(
            time_cost=_int(source, "CFD_ARGON2_TIME_COST", default_cost.time_cost, 1, 20),
            memory_kib=_int(
                source, "CFD_ARGON2_MEMORY_KIB", default_cost.memory_kib, 1024, 4 * 1024 * 1024
            ),
            parallelism=_int(source, "CFD_ARGON2_PARALLELISM", default_cost.parallelism, 1, 64),
        )
        refresh_ttl = _int(
            source, "CFD_REFRESH_TOKEN_TTL", DEFAULT_REFRESH_TTL_S, 60, 365 * 24 * 3600
        )
        return cls(
            tokens=tokens,
            refresh_ttl_s=refresh_ttl,
            limits=limits,
            hash_cost=cost,
            mail=mail,
            verify_email_ttl_s=_int(
                source, "CFD_VERIFY_EMAIL_TTL", DEFAULT_VERIFY_TTL_S, 60, 30 * 24 * 3600
            ),
            password_reset_ttl_s=_int(
                source, "CFD_PASSWORD_RESET_TTL", DEFAULT_RESET_TTL_S, 60, 24 * 3600
            ),
        )


def _int(env: Mapping[str, str], variable: str, default: int, low: int, high: int) -> int:
    raw = env.get(variable, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise AccountConfigError(f"{variable}={raw!r} must be a whole number in {low}..{high}")
    return int(raw)


def _limit(env: Mapping[str, str], variable: str, default: Limit) -> Limit:
    raw = env.get(variable, "").strip()
    if not raw:
        return default
    match = _LIMIT.match(raw)
    if (
        match is None
        or not 1 <= int(match.group(1)) <= _MAX_COUNT
        or not 1 <= int(match.group(2)) <= _MAX_WINDOW_S
    ):
        raise AccountConfigError(
            f"{variable}={raw!r} must be 'count/seconds' (count 1..{_MAX_COUNT}, seconds "
            f"1..{_MAX_WINDOW_S}), e.g. '10/300'"
        )
    return Limit(int(match.group(1)), int(match.group(2)))
