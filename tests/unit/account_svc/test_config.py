"""Tests for the accounts configuration."""

from __future__ import annotations

import pytest

from account_svc.config import AccountConfig, AccountConfigError, Limit, RateLimits
from account_svc.passwords import HashCost
from mesh.tokens import TokenConfig


def test_defaults() -> None:
    config = AccountConfig.from_env({})
    assert config == AccountConfig()
    assert config.tokens == TokenConfig()
    assert config.refresh_ttl_s == 30 * 24 * 3600
    assert config.limits == RateLimits()
    assert config.hash_cost == HashCost()


def test_variables_are_read() -> None:
    config = AccountConfig.from_env(
        {
            "CFD_ACCESS_TOKEN_TTL": "60",
            "CFD_REFRESH_TOKEN_TTL": "3600",
            "CFD_LIMIT_SIGNIN_PER_EMAIL_AND_ADDRESS": "3/30",
            "CFD_LIMIT_SIGNUP_PER_ADDRESS": " 7 / 70 ",
            "CFD_ARGON2_TIME_COST": "1",
            "CFD_ARGON2_MEMORY_KIB": "2048",
            "CFD_ARGON2_PARALLELISM": "2",
        }
    )
    assert config.tokens.access_token_ttl_s == 60
    assert config.refresh_ttl_s == 3600
    assert config.limits.signin_per_email_and_address == Limit(3, 30)
    assert config.limits.signup_per_address == Limit(7, 70)
    assert config.limits.signin_per_address == RateLimits().signin_per_address
    assert config.hash_cost == HashCost(1, 2048, 2)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CFD_LIMIT_SIGNIN_PER_EMAIL_AND_ADDRESS", "10"),
        ("CFD_LIMIT_SIGNIN_PER_EMAIL_AND_ADDRESS", "0/10"),
        ("CFD_LIMIT_SIGNIN_PER_EMAIL_AND_ADDRESS", "10/0"),
        ("CFD_LIMIT_SIGNIN_PER_EMAIL_AND_ADDRESS", "10/9999999"),
        ("CFD_LIMIT_REFRESH_PER_ADDRESS", "a/b"),
        ("CFD_LIMIT_REFRESH_PER_ADDRESS", "\u0661/10"),
        ("CFD_REFRESH_TOKEN_TTL", "59"),
        ("CFD_REFRESH_TOKEN_TTL", "-5"),
        ("CFD_ARGON2_MEMORY_KIB", "8"),
        ("CFD_ARGON2_TIME_COST", "\u00b2"),
        ("CFD_ACCESS_TOKEN_TTL", "forever"),
    ],
)
def test_bad_values_are_clear_errors(variable: str, value: str) -> None:
    with pytest.raises(AccountConfigError, match=variable.removeprefix("CFD_").split("_")[0]):
        AccountConfig.from_env({variable: value})
