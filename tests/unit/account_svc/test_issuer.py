"""The access token issuer: the claims it signs and what it refuses."""

from __future__ import annotations

from collections.abc import Callable

import jwt
import pytest

from account_svc.issuer import TokenIssuer
from mesh.auth import SHARD_CLAIM, shard_claim
from mesh.tokens import SigningKey, TokenKeyError

NOW = 1_800_000_000


def fixed_clock(value: float) -> Callable[[], float]:
    return lambda: value


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


def test_issued_token_carries_the_standard_claims(key: SigningKey) -> None:
    token, _ = TokenIssuer(key, ttl_s=120, clock=fixed_clock(NOW)).issue("u")
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert header["alg"] == "EdDSA"
    assert header["kid"] == key.kid
    assert claims["iss"] == "cfd-mesh"
    assert claims["aud"] == "cfd-mesh-api"
    assert claims["sub"] == "u"
    assert claims["iat"] == NOW
    assert claims["exp"] == NOW + 120
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16


def test_each_token_has_a_distinct_id(key: SigningKey) -> None:
    issuer = TokenIssuer(key, clock=fixed_clock(NOW))
    ids = {
        jwt.decode(issuer.issue("u")[0], options={"verify_signature": False})["jti"]
        for _ in range(20)
    }
    assert len(ids) == 20


def test_issuer_refuses_an_empty_subject(key: SigningKey) -> None:
    with pytest.raises(ValueError):
        TokenIssuer(key).issue("")


@pytest.mark.parametrize("ttl", [0, -5, 86_401])
def test_issuer_refuses_an_out_of_range_lifetime(key: SigningKey, ttl: int) -> None:
    with pytest.raises(TokenKeyError):
        TokenIssuer(key, ttl_s=ttl)


def test_token_names_the_shard_of_the_account(key: SigningKey) -> None:
    issuer = TokenIssuer(key, clock=fixed_clock(NOW))
    single, _ = issuer.issue("u")
    sharded, _ = issuer.issue("u", shard=3)
    assert shard_claim(single) == 0
    assert shard_claim(sharded) == 3
    assert jwt.decode(sharded, options={"verify_signature": False})[SHARD_CLAIM] == 3
