"""Tests for the signed, expiring tokens of verification and reset links."""

from __future__ import annotations

import base64

import pytest

from account_svc.email_tokens import RESET_PASSWORD, VERIFY_EMAIL, TokenSigner
from mesh.errors import ApiError

KEY = bytes(range(32))


def reason(signer: TokenSigner, purpose: str, token: str, now_s: float) -> str:
    with pytest.raises(ApiError) as info:
        signer.check(purpose, token, now_s)
    return info.value.reason


def test_a_token_checks_until_it_expires() -> None:
    signer = TokenSigner(KEY)
    token, token_id = signer.issue(VERIFY_EMAIL, 2000)
    assert len(token) == 54 and len(token_id) == 32
    assert signer.check(VERIFY_EMAIL, token, 1999.9) == token_id
    assert reason(signer, VERIFY_EMAIL, token, 2000) == "EMAIL_TOKEN_EXPIRED"


def test_each_token_is_new() -> None:
    signer = TokenSigner(KEY)
    assert signer.issue(VERIFY_EMAIL, 2000) != signer.issue(VERIFY_EMAIL, 2000)


def test_a_token_is_bound_to_its_purpose_and_key() -> None:
    token, _ = TokenSigner(KEY).issue(VERIFY_EMAIL, 2000)
    assert reason(TokenSigner(KEY), RESET_PASSWORD, token, 1000) == "EMAIL_TOKEN_INVALID"
    assert reason(TokenSigner(bytes(32)), VERIFY_EMAIL, token, 1000) == "EMAIL_TOKEN_INVALID"


def test_a_token_with_a_later_expiry_written_in_is_forged() -> None:
    signer = TokenSigner(KEY)
    token, _ = signer.issue(VERIFY_EMAIL, 2000)
    raw = bytearray(base64.urlsafe_b64decode(token + "=="))
    raw[16:24] = (10**9).to_bytes(8, "big")
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    assert reason(signer, VERIFY_EMAIL, forged, 3000) == "EMAIL_TOKEN_INVALID"


@pytest.mark.parametrize(
    "token",
    ["not a token", "!!!!", "A" * 53, "A" * 55, "é" * 10, "Zm9v"],
)
def test_malformed_tokens_are_invalid(token: str) -> None:
    assert reason(TokenSigner(KEY), VERIFY_EMAIL, token, 1000) == "EMAIL_TOKEN_INVALID"


@pytest.mark.parametrize("token", ["", "A" * 129])
def test_empty_or_oversized_tokens_are_validation_errors(token: str) -> None:
    assert reason(TokenSigner(KEY), VERIFY_EMAIL, token, 1000) == "VALIDATION_FAILED"
