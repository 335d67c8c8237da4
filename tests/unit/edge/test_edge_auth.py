"""Token verification at the edge from the published JWKS document."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from account_svc.issuer import TokenIssuer
from edge.auth import JwksKeys, bearer, parse_jwks
from mesh.errors import ApiError
from mesh.tokens import SigningKey, jwks_document, write_jwks_file


def test_tokens_verify_against_the_file_and_new_keys_are_picked_up(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    keys = JwksKeys(path)
    first, second = SigningKey.generate(), SigningKey.generate()
    with pytest.raises(ApiError) as info:
        keys.verify(TokenIssuer(first).issue("u1")[0])
    assert info.value.reason == "TOKEN_INVALID"
    assert keys.document() == {"keys": []}
    write_jwks_file(path, first.public_keys)
    keys = JwksKeys(path)
    identity = keys.verify(TokenIssuer(first, ttl_s=60).issue("u1")[0])
    assert identity.subject == "u1"
    assert keys.document() == jwks_document(first.public_keys)
    write_jwks_file(path, second.public_keys)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000))
    reloaded = JwksKeys(path)
    assert reloaded.verify(TokenIssuer(second).issue("u2")[0]).subject == "u2"
    with pytest.raises(ApiError):
        reloaded.verify(TokenIssuer(first).issue("u1")[0])


def test_expired_tokens_are_token_expired(tmp_path: Path) -> None:
    key = SigningKey.generate()
    write_jwks_file(tmp_path / "jwks.json", key.public_keys)
    old = TokenIssuer(key, ttl_s=10, clock=lambda: 1000.0).issue("u1")[0]
    with pytest.raises(ApiError) as info:
        JwksKeys(tmp_path / "jwks.json").verify(old)
    assert info.value.reason == "TOKEN_EXPIRED"


@pytest.mark.parametrize(
    "document",
    [[], {"keys": "x"}, {"keys": [1]}, {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": 1}]}],
)
def test_malformed_documents_are_rejected(document: object) -> None:
    with pytest.raises(ValueError):
        parse_jwks(json.loads(json.dumps(document)))


def test_other_key_types_are_skipped() -> None:
    assert parse_jwks({"keys": [{"kty": "RSA", "kid": "r", "n": "x", "e": "AQAB"}]}) == {}


def test_bearer_headers() -> None:
    assert bearer("Bearer abc") == "abc"
    assert bearer("bearer  abc ") == "abc"
    assert bearer("Basic abc") is None
    assert bearer("Bearer ") is None
    assert bearer(None) is None


def test_a_remembered_token_still_expires(tmp_path: Path) -> None:
    key = SigningKey.generate()
    write_jwks_file(tmp_path / "jwks.json", key.public_keys)
    now = [1005.0]
    keys = JwksKeys(tmp_path / "jwks.json", clock=lambda: now[0])
    token = TokenIssuer(key, ttl_s=10, clock=lambda: 1000.0).issue("u1")[0]
    assert keys.verify(token).expires_at == 1010.0
    assert keys.verify(token).subject == "u1"
    now[0] = 1010.0
    with pytest.raises(ApiError) as info:
        keys.verify(token)
    assert info.value.reason == "TOKEN_EXPIRED"


class RevokedIds(set[str]):
    """A revocation list in a set."""

    def is_revoked(self, token_id: str) -> bool:
        return token_id in self


def test_a_revoked_token_is_refused_even_when_remembered(tmp_path: Path) -> None:
    key = SigningKey.generate()
    write_jwks_file(tmp_path / "jwks.json", key.public_keys)
    revoked = RevokedIds()
    keys = JwksKeys.in_data_dir(tmp_path, revoked=revoked)
    token = TokenIssuer(key, ttl_s=60).issue("u1")[0]
    identity = keys.verify(token)
    assert not keys.is_revoked(identity)
    revoked.add(identity.token_id)
    assert keys.is_revoked(identity)
    with pytest.raises(ApiError) as info:
        keys.verify(token)
    assert info.value.reason == "TOKEN_INVALID"
    with pytest.raises(ApiError) as again:
        JwksKeys.in_data_dir(tmp_path, revoked=revoked).verify(token)
    assert again.value.reason == "TOKEN_INVALID"
