"""Tests for access token verification, the key pair and JWKS (issuing: accounts)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import stat
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from account_svc.issuer import TokenIssuer, load_issuer
from mesh.errors import ApiError
from mesh.tokens import (
    DEFAULT_ACCESS_TOKEN_TTL_S,
    DEFAULT_AUDIENCE,
    DEFAULT_ISSUER,
    JWKS_FILE_NAME,
    KEYS_DIR_NAME,
    PRIVATE_KEY_FILE_NAME,
    JwtVerifier,
    SigningKey,
    TokenConfig,
    TokenKeyError,
    jwk_thumbprint,
    jwks_document,
    load_or_create_signing_key,
    load_signing_key,
    load_verifier,
    write_jwks_file,
)

NOW = 1_800_000_000


@dataclass(frozen=True)
class FakeSettings:
    data_dir: Path


def fixed_clock(value: float) -> Callable[[], float]:
    return lambda: value


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


def make_verifier(key: SigningKey, now: float = NOW, **kwargs: Any) -> JwtVerifier:
    return JwtVerifier(
        key.public_keys, DEFAULT_ISSUER, DEFAULT_AUDIENCE, clock=fixed_clock(now), **kwargs
    )


def sign(key: SigningKey, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
    return jwt.encode(
        claims,
        key.private_key,
        algorithm="EdDSA",
        headers={"kid": key.kid} if headers is None else headers,
    )


def good_claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": DEFAULT_ISSUER,
        "aud": DEFAULT_AUDIENCE,
        "sub": "user-1",
        "iat": NOW,
        "exp": NOW + 60,
        "jti": "abc",
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def reason_of(verifier: JwtVerifier, token: str) -> str:
    with pytest.raises(ApiError) as info:
        verifier.verify(token)
    return info.value.reason


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_issued_token_verifies_to_its_subject(key: SigningKey) -> None:
    issuer = TokenIssuer(key, clock=fixed_clock(NOW))
    token, expires_in = issuer.issue("user-42")
    assert expires_in == DEFAULT_ACCESS_TOKEN_TTL_S == 900
    assert make_verifier(key, NOW + 10).verify(token) == "user-42"


def test_token_expires_exactly_at_exp(key: SigningKey) -> None:
    token, ttl = TokenIssuer(key, ttl_s=60, clock=fixed_clock(NOW)).issue("u")
    assert make_verifier(key, NOW + ttl - 1).verify(token) == "u"
    assert reason_of(make_verifier(key, NOW + ttl), token) == "TOKEN_EXPIRED"
    assert reason_of(make_verifier(key, NOW + 10 * ttl), token) == "TOKEN_EXPIRED"


def test_leeway_tolerates_small_clock_skew(key: SigningKey) -> None:
    token, ttl = TokenIssuer(key, ttl_s=60, clock=fixed_clock(NOW)).issue("u")
    assert make_verifier(key, NOW + ttl + 4, leeway_s=5).verify(token) == "u"
    assert reason_of(make_verifier(key, NOW + ttl + 5, leeway_s=5), token) == "TOKEN_EXPIRED"


def test_token_issued_in_the_future_is_invalid(key: SigningKey) -> None:
    token = sign(key, good_claims(iat=NOW + 30, exp=NOW + 90))
    assert reason_of(make_verifier(key), token) == "TOKEN_INVALID"


def test_token_signed_by_another_key_under_our_kid_is_invalid(key: SigningKey) -> None:
    forger = SigningKey.generate()
    token = jwt.encode(
        good_claims(), forger.private_key, algorithm="EdDSA", headers={"kid": key.kid}
    )
    assert reason_of(make_verifier(key), token) == "TOKEN_INVALID"


def test_expired_forged_token_is_invalid_not_expired(key: SigningKey) -> None:
    forger = SigningKey.generate()
    token = jwt.encode(
        good_claims(exp=NOW - 100, iat=NOW - 200),
        forger.private_key,
        algorithm="EdDSA",
        headers={"kid": key.kid},
    )
    assert reason_of(make_verifier(key), token) == "TOKEN_INVALID"


def test_tampered_payload_is_invalid(key: SigningKey) -> None:
    header, _, signature = sign(key, good_claims()).split(".")
    payload = b64url(json.dumps(good_claims(sub="someone-else")).encode())
    assert reason_of(make_verifier(key), f"{header}.{payload}.{signature}") == "TOKEN_INVALID"


def test_unknown_or_missing_kid_is_invalid(key: SigningKey) -> None:
    verifier = make_verifier(key)
    assert reason_of(verifier, sign(key, good_claims(), {"kid": "other"})) == "TOKEN_INVALID"
    assert reason_of(verifier, sign(key, good_claims(), {})) == "TOKEN_INVALID"


def test_alg_none_is_invalid(key: SigningKey) -> None:
    header = b64url(json.dumps({"alg": "none", "typ": "JWT", "kid": key.kid}).encode())
    payload = b64url(json.dumps(good_claims()).encode())
    verifier = make_verifier(key)
    assert reason_of(verifier, f"{header}.{payload}.") == "TOKEN_INVALID"
    assert reason_of(verifier, f"{header}.{payload}") == "TOKEN_INVALID"


def test_hmac_with_the_public_key_as_secret_is_invalid(key: SigningKey) -> None:
    # The classic algorithm-confusion forgery: HS256 keyed with the public key bytes.
    public_pem = key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    payload = b64url(json.dumps(good_claims()).encode())
    signature = b64url(
        hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    )
    assert reason_of(make_verifier(key), f"{header}.{payload}.{signature}") == "TOKEN_INVALID"


def test_es256_token_is_not_accepted(key: SigningKey) -> None:
    ec_key = generate_private_key(SECP256R1())
    token = jwt.encode(good_claims(), ec_key, algorithm="ES256", headers={"kid": key.kid})
    assert reason_of(make_verifier(key), token) == "TOKEN_INVALID"


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "someone-else"},
        {"aud": None},
        {"iss": "evil"},
        {"iss": None},
        {"sub": None},
        {"sub": ""},
        {"sub": 42},
        {"jti": None},
        {"jti": ""},
        {"exp": None},
        {"exp": "soon"},
        {"exp": True},
        {"iat": None},
        {"iat": 1.5e9 + 0.5},
    ],
    ids=repr,
)
def test_wrong_or_missing_claims_are_invalid(key: SigningKey, overrides: dict[str, Any]) -> None:
    assert reason_of(make_verifier(key), sign(key, good_claims(**overrides))) == "TOKEN_INVALID"


def test_audience_list_containing_ours_is_accepted(key: SigningKey) -> None:
    token = sign(key, good_claims(aud=["other", DEFAULT_AUDIENCE]))
    assert make_verifier(key).verify(token) == "user-1"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b.c",
        "....",
        "eyJhbGciOiJFZERTQSJ9.e30.",
        "x" * 5000,
        "\u00e9.\u00e9.\u00e9",
    ],
    ids=lambda token: token[:20],
)
def test_malformed_tokens_are_invalid(key: SigningKey, token: str) -> None:
    assert reason_of(make_verifier(key), token) == "TOKEN_INVALID"


def test_verifier_accepts_any_of_several_keys(key: SigningKey) -> None:
    previous = SigningKey.generate()
    verifier = JwtVerifier(
        {**key.public_keys, **previous.public_keys},
        DEFAULT_ISSUER,
        DEFAULT_AUDIENCE,
        clock=fixed_clock(NOW),
    )
    assert verifier.verify(sign(previous, good_claims(sub="old"))) == "old"
    assert verifier.verify(sign(key, good_claims(sub="new"))) == "new"


def test_verifier_needs_a_key() -> None:
    with pytest.raises(TokenKeyError):
        JwtVerifier({}, DEFAULT_ISSUER, DEFAULT_AUDIENCE)


def test_custom_issuer_and_audience(key: SigningKey) -> None:
    issuer = TokenIssuer(key, issuer="corp", audience="trading", clock=fixed_clock(NOW))
    token, _ = issuer.issue("u")
    assert (
        JwtVerifier(key.public_keys, "corp", "trading", clock=fixed_clock(NOW)).verify(token) == "u"
    )
    assert reason_of(make_verifier(key), token) == "TOKEN_INVALID"


def test_thumbprint_matches_rfc_8037_example() -> None:
    # RFC 8037 appendix A.2/A.3: the Ed25519 example key and its RFC 7638 thumbprint.
    raw = base64.urlsafe_b64decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
    public_key = Ed25519PublicKey.from_public_bytes(raw)
    assert jwk_thumbprint(public_key) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_jwks_document_publishes_the_public_key_only(key: SigningKey) -> None:
    document = jwks_document(key.public_keys)
    (jwk,) = document["keys"]
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and jwk["alg"] == "EdDSA"
    assert jwk["kid"] == key.kid and jwk["use"] == "sig"
    assert "d" not in jwk
    token, _ = TokenIssuer(key).issue("u")
    # A third-party JWKS consumer (as Envoy's jwt_authn is) verifies our tokens.
    client_key = jwt.PyJWKSet.from_dict(document)[key.kid]
    claims = jwt.decode(token, client_key, algorithms=["EdDSA"], audience=DEFAULT_AUDIENCE)
    assert claims["sub"] == "u"


def test_signing_key_pem_round_trip_and_repr_hides_material(key: SigningKey) -> None:
    loaded = SigningKey.from_pem(key.private_pem())
    assert loaded.kid == key.kid
    assert "PRIVATE" not in repr(key) and key.kid in repr(key)


@pytest.mark.parametrize(
    "pem", [b"", b"not a key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"]
)
def test_bad_pem_is_a_clear_error(pem: bytes) -> None:
    with pytest.raises(TokenKeyError):
        SigningKey.from_pem(pem)


def test_non_ed25519_pem_is_refused() -> None:
    ec_pem = generate_private_key(SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(TokenKeyError, match="Ed25519"):
        SigningKey.from_pem(ec_pem)


def test_key_pair_is_generated_once_with_private_permissions(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    first = load_or_create_signing_key(keys_dir)
    path = keys_dir / PRIVATE_KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700
    assert load_or_create_signing_key(keys_dir).kid == first.kid
    assert sorted(p.name for p in keys_dir.iterdir()) == [PRIVATE_KEY_FILE_NAME]


def test_concurrent_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    with ThreadPoolExecutor(max_workers=8) as pool:
        kids = set(pool.map(lambda _: load_or_create_signing_key(keys_dir).kid, range(16)))
    assert kids == {load_or_create_signing_key(keys_dir).kid}
    assert [p.name for p in keys_dir.iterdir()] == [PRIVATE_KEY_FILE_NAME]


def test_corrupt_key_file_is_a_clear_error_and_is_kept(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    (keys_dir / PRIVATE_KEY_FILE_NAME).write_bytes(b"truncated")
    with pytest.raises(TokenKeyError, match=re.escape(PRIVATE_KEY_FILE_NAME)):
        load_or_create_signing_key(keys_dir)
    assert (keys_dir / PRIVATE_KEY_FILE_NAME).read_bytes() == b"truncated"


def test_write_jwks_file_replaces_content(tmp_path: Path, key: SigningKey) -> None:
    path = tmp_path / "jwks.json"
    write_jwks_file(path, SigningKey.generate().public_keys)
    write_jwks_file(path, key.public_keys)
    assert json.loads(path.read_text()) == jwks_document(key.public_keys)
    assert [p.name for p in tmp_path.iterdir()] == ["jwks.json"]


def test_load_signing_key_writes_jwks_into_data_dir(tmp_path: Path) -> None:
    settings = FakeSettings(tmp_path)
    key = load_signing_key(settings, TokenConfig())
    assert (tmp_path / KEYS_DIR_NAME / PRIVATE_KEY_FILE_NAME).exists()
    assert json.loads((tmp_path / JWKS_FILE_NAME).read_text()) == jwks_document(key.public_keys)
    (tmp_path / JWKS_FILE_NAME).write_text("{}")
    assert load_signing_key(settings, TokenConfig()).kid == key.kid
    assert json.loads((tmp_path / JWKS_FILE_NAME).read_text()) == jwks_document(key.public_keys)


def test_configured_private_key_file_is_used(tmp_path: Path, key: SigningKey) -> None:
    pem_path = tmp_path / "configured.pem"
    pem_path.write_bytes(key.private_pem())
    pem_path.chmod(0o600)
    data_dir = tmp_path / "data"
    config = TokenConfig(private_key_file=pem_path)
    assert load_signing_key(FakeSettings(data_dir), config).kid == key.kid
    assert not (data_dir / KEYS_DIR_NAME).exists()


def test_missing_configured_key_file_is_a_clear_error(tmp_path: Path) -> None:
    config = TokenConfig(private_key_file=tmp_path / "absent.pem")
    with pytest.raises(TokenKeyError, match=r"absent\.pem"):
        load_signing_key(FakeSettings(tmp_path), config)


def test_loaded_issuer_and_verifier_work_together(tmp_path: Path) -> None:
    settings = FakeSettings(tmp_path)
    config = TokenConfig(issuer="cfd-test", audience="cfd-test-api", access_token_ttl_s=30)
    token, expires_in = load_issuer(settings, config).issue("user-7")
    assert expires_in == 30
    assert load_verifier(settings, config).verify(token) == "user-7"
    assert reason_of(load_verifier(settings, TokenConfig()), token) == "TOKEN_INVALID"


def test_token_config_from_env_defaults() -> None:
    assert TokenConfig.from_env({}) == TokenConfig(DEFAULT_ISSUER, DEFAULT_AUDIENCE, 900, None)


def test_token_config_from_env_reads_variables() -> None:
    config = TokenConfig.from_env(
        {
            "CFD_JWT_ISSUER": "iss",
            "CFD_JWT_AUDIENCE": "aud",
            "CFD_ACCESS_TOKEN_TTL": "60",
            "CFD_JWT_PRIVATE_KEY_FILE": "/etc/cfd/key.pem",
        }
    )
    assert config == TokenConfig("iss", "aud", 60, Path("/etc/cfd/key.pem"))


@pytest.mark.parametrize("ttl", ["abc", "1.5", "0", "-1", "999999999"])
def test_token_config_rejects_bad_lifetime(ttl: str) -> None:
    with pytest.raises(TokenKeyError, match=r"lifetime|CFD_ACCESS_TOKEN_TTL"):
        TokenConfig.from_env({"CFD_ACCESS_TOKEN_TTL": ttl})
