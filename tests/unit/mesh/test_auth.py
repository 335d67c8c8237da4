"""Tests for the caller policy's email verification requirement on trading calls."""

from __future__ import annotations

import jwt
import pytest

from account_svc.issuer import TokenIssuer
from mesh.auth import SHARD_CLAIM, VERIFIED_EMAIL_METHODS, CallerPolicy, bearer_shard
from mesh.errors import ApiError
from mesh.tokens import JwtVerifier, SigningKey

INTERNAL = "internal-token-for-tests"
KEY = SigningKey.generate()
ISSUER = TokenIssuer(KEY)


def bearer(email_verified: bool) -> tuple[tuple[str, str]]:
    token, _ = ISSUER.issue("alice", email_verified=email_verified)
    return (("authorization", f"Bearer {token}"),)


def policy(required: bool) -> CallerPolicy:
    return CallerPolicy(JwtVerifier(KEY.public_keys), INTERNAL, require_email_verification=required)


@pytest.mark.parametrize("method", sorted(VERIFIED_EMAIL_METHODS))
def test_unverified_users_may_not_take_on_exposure_when_required(method: str) -> None:
    with pytest.raises(ApiError) as info:
        policy(True).authenticate(method, bearer(False))
    assert info.value.reason == "EMAIL_NOT_VERIFIED"
    assert info.value.code.name == "PERMISSION_DENIED"
    assert policy(True).authenticate(method, bearer(True)) == "alice"
    assert policy(False).authenticate(method, bearer(False)) == "alice"


@pytest.mark.parametrize(
    "method",
    [
        "/cfd.v1.TradingService/ClosePosition",
        "/cfd.v1.TradingService/CancelOrder",
        "/cfd.v1.TradingService/GetAccount",
        "/cfd.v1.ExchangeService/CancelSpotOrder",
        "/cfd.v1.AccountService/ResendVerification",
    ],
)
def test_unverified_users_may_still_close_cancel_and_read(method: str) -> None:
    assert policy(True).authenticate(method, bearer(False)) == "alice"


def test_a_token_without_the_claim_counts_as_unverified() -> None:
    token, _ = TokenIssuer(KEY).issue("alice")
    with pytest.raises(ApiError) as info:
        policy(True).authenticate(
            "/cfd.v1.TradingService/OpenPosition", (("authorization", f"Bearer {token}"),)
        )
    assert info.value.reason == "EMAIL_NOT_VERIFIED"


@pytest.mark.parametrize(
    "method",
    [
        "/cfd.v1.AccountService/VerifyEmail",
        "/cfd.v1.AccountService/RequestPasswordReset",
        "/cfd.v1.AccountService/ResetPassword",
    ],
)
def test_the_emailed_token_calls_need_no_access_token(method: str) -> None:
    assert policy(True).authenticate(method, ()) is None


def test_the_bearer_shard_is_the_token_claim_and_0_without_one() -> None:
    assert bearer_shard(bearer(True)) == 0
    assert bearer_shard(()) == 0
    claims = {"sub": "alice", SHARD_CLAIM: 3}
    token = jwt.encode(claims, KEY.private_key, algorithm="EdDSA")
    assert bearer_shard((("authorization", f"Bearer {token}"),)) == 3
    assert bearer_shard((("authorization", f"Basic {token}"),)) == 0
