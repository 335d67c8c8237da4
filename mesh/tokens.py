"""Access tokens: the signing key pair, JWT verification, and JWKS (accounts issue them).

Access tokens are JWTs signed with Ed25519 (JWS algorithm ``EdDSA``). The key pair lives
in ``<data_dir>/keys/`` (generated on first start, loaded afterwards) unless
``CFD_JWT_PRIVATE_KEY_FILE`` names a PEM file. The public half is published as a JWKS
document, written to ``<data_dir>/jwks.json`` for Envoy and served by the edge, so every
service verifies tokens without sharing a secret.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from mesh.errors import ApiError

__all__ = [
    "ALGORITHM",
    "DEFAULT_ACCESS_TOKEN_TTL_S",
    "DEFAULT_AUDIENCE",
    "DEFAULT_ISSUER",
    "JwtVerifier",
    "RevocationList",
    "SigningKey",
    "TokenConfig",
    "TokenKeyError",
    "jwk_thumbprint",
    "jwks_document",
    "load_or_create_signing_key",
    "load_signing_key",
    "load_verifier",
    "public_jwk",
    "revoked_token_error",
    "write_jwks_file",
]

_log = logging.getLogger(__name__)

ALGORITHM: Final = "EdDSA"
DEFAULT_ISSUER: Final = "cfd-mesh"
DEFAULT_AUDIENCE: Final = "cfd-mesh-api"
DEFAULT_ACCESS_TOKEN_TTL_S: Final = 15 * 60
MAX_ACCESS_TOKEN_TTL_S: Final = 24 * 60 * 60
# A well-formed access token is a few hundred bytes; refuse to parse anything far larger.
MAX_TOKEN_LENGTH: Final = 4096

KEYS_DIR_NAME: Final = "keys"
PRIVATE_KEY_FILE_NAME: Final = "jwt_ed25519.pem"
JWKS_FILE_NAME: Final = "jwks.json"

_REQUIRED_CLAIMS: Final = ("sub", "exp", "iat", "jti", "iss", "aud")


class TokenKeyError(Exception):
    """A signing key or token configuration cannot be loaded or used."""


class HasDataDir(Protocol):
    """Anything that names the data directory (the settings of every service)."""

    @property
    def data_dir(self) -> Path: ...


class RevocationList(Protocol):
    """The ids of access tokens that were revoked before they expired (signed out)."""

    def is_revoked(self, token_id: str) -> bool:
        """Say whether the token with this id was revoked."""
        ...


def revoked_token_error() -> ApiError:
    """Return the error every verifier answers for a revoked access token."""
    return ApiError("TOKEN_INVALID", "access token revoked (signed out); sign in again")


@dataclass(frozen=True)
class TokenConfig:
    """Token settings shared by the issuer (accounts) and every verifier."""

    issuer: str = DEFAULT_ISSUER
    audience: str = DEFAULT_AUDIENCE
    access_token_ttl_s: int = DEFAULT_ACCESS_TOKEN_TTL_S
    private_key_file: Path | None = None

    def __post_init__(self) -> None:
        if not self.issuer.strip():
            raise TokenKeyError("the JWT issuer must not be empty")
        if not self.audience.strip():
            raise TokenKeyError("the JWT audience must not be empty")
        if not 1 <= self.access_token_ttl_s <= MAX_ACCESS_TOKEN_TTL_S:
            raise TokenKeyError(
                f"the access token lifetime must be between 1 and {MAX_ACCESS_TOKEN_TTL_S} "
                f"seconds, got {self.access_token_ttl_s}"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TokenConfig:
        """Read ``CFD_JWT_ISSUER``, ``CFD_JWT_AUDIENCE``, ``CFD_ACCESS_TOKEN_TTL`` and
        ``CFD_JWT_PRIVATE_KEY_FILE``; unset variables keep the defaults."""
        source = os.environ if env is None else env
        ttl_text = source.get("CFD_ACCESS_TOKEN_TTL", "").strip()
        ttl = DEFAULT_ACCESS_TOKEN_TTL_S
        if ttl_text:
            try:
                ttl = int(ttl_text)
            except ValueError:
                raise TokenKeyError(
                    f"CFD_ACCESS_TOKEN_TTL must be a whole number of seconds, got {ttl_text!r}"
                ) from None
        key_file = source.get("CFD_JWT_PRIVATE_KEY_FILE", "").strip()
        return cls(
            issuer=source.get("CFD_JWT_ISSUER", "").strip() or DEFAULT_ISSUER,
            audience=source.get("CFD_JWT_AUDIENCE", "").strip() or DEFAULT_AUDIENCE,
            access_token_ttl_s=ttl,
            private_key_file=Path(key_file) if key_file else None,
        )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _raw_public_bytes(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def jwk_thumbprint(public_key: Ed25519PublicKey) -> str:
    """Return the RFC 7638 SHA-256 thumbprint of the key, used as its ``kid``."""
    # RFC 7638: the required members only, lexicographic order, no whitespace.
    canonical = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": _b64url(_raw_public_bytes(public_key))},
        separators=(",", ":"),
        sort_keys=True,
    )
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def public_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    """Return the public key as a JWK (RFC 8037 OKP key)."""
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": _b64url(_raw_public_bytes(public_key)),
        "kid": jwk_thumbprint(public_key),
        "use": "sig",
        "alg": ALGORITHM,
    }


def jwks_document(public_keys: Mapping[str, Ed25519PublicKey]) -> dict[str, list[dict[str, str]]]:
    """Return the JWKS document (``{"keys": [...]}``) publishing the given keys."""
    return {"keys": [public_jwk(key) for _, key in sorted(public_keys.items())]}


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key with its key id."""

    kid: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        """Generate a fresh key pair."""
        key = Ed25519PrivateKey.generate()
        return cls(kid=jwk_thumbprint(key.public_key()), private_key=key)

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        """Load an unencrypted PKCS#8 PEM Ed25519 private key."""
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise TokenKeyError(f"not an unencrypted PEM private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise TokenKeyError("the JWT signing key must be an Ed25519 key")
        return cls(kid=jwk_thumbprint(key.public_key()), private_key=key)

    @property
    def public_key(self) -> Ed25519PublicKey:
        """Return the public half."""
        return self.private_key.public_key()

    @property
    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        """Return ``{kid: public key}``, the shape verifiers and JWKS take."""
        return {self.kid: self.public_key}

    def private_pem(self) -> bytes:
        """Return the private key as unencrypted PKCS#8 PEM."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def __repr__(self) -> str:
        # Keep key material out of logs and tracebacks.
        return f"SigningKey(kid={self.kid!r})"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(directory: Path, stem: str, data: bytes, mode: int) -> Path:
    tmp = directory / f".{stem}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def load_or_create_signing_key(keys_dir: Path) -> SigningKey:
    """Load the signing key from ``keys_dir``, generating it there on first use.

    Safe when several processes start at once: the key file appears complete or not at
    all (written to a temporary file, fsync'd, then hard-linked into place), and a
    process that loses the race loads the winner's key.
    """
    path = keys_dir / PRIVATE_KEY_FILE_NAME
    if path.exists():
        return _read_private_key_file(path)
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    candidate = SigningKey.generate()
    tmp = _write_temp(keys_dir, PRIVATE_KEY_FILE_NAME, candidate.private_pem(), 0o600)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return _read_private_key_file(path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(keys_dir)
    _log.info("generated a new JWT signing key", extra={"fields": {"kid": candidate.kid}})
    return candidate


def _read_private_key_file(path: Path) -> SigningKey:
    try:
        pem = path.read_bytes()
        mode = path.stat().st_mode
    except OSError as exc:
        raise TokenKeyError(f"cannot read the JWT signing key {path}: {exc.strerror}") from None
    if mode & 0o077:
        _log.warning(
            "the JWT signing key file is readable by other users; restrict it to mode 0600",
            extra={"fields": {"path": str(path)}},
        )
    try:
        return SigningKey.from_pem(pem)
    except TokenKeyError as exc:
        raise TokenKeyError(f"{path}: {exc}") from None


def write_jwks_file(path: Path, public_keys: Mapping[str, Ed25519PublicKey]) -> None:
    """Write the JWKS document to ``path`` atomically (readers never see a partial file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(jwks_document(public_keys), indent=2, sort_keys=True) + "\n").encode()
    tmp = _write_temp(path.parent, path.name, data, 0o644)
    try:
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def load_signing_key(settings: HasDataDir, config: TokenConfig | None = None) -> SigningKey:
    """Return the mesh's signing key and (re)write ``<data_dir>/jwks.json`` for it.

    The key comes from ``config.private_key_file`` when configured, else from
    ``<data_dir>/keys/``, generated there on first start.
    """
    config = TokenConfig.from_env() if config is None else config
    if config.private_key_file is not None:
        key = _read_private_key_file(config.private_key_file)
    else:
        key = load_or_create_signing_key(settings.data_dir / KEYS_DIR_NAME)
    jwks_path = settings.data_dir / JWKS_FILE_NAME
    expected = jwks_document(key.public_keys)
    with contextlib.suppress(OSError, ValueError):
        if json.loads(jwks_path.read_text()) == expected:
            return key
    write_jwks_file(jwks_path, key.public_keys)
    return key


def _claim_int(payload: Mapping[str, Any], name: str) -> int:
    value = payload.get(name)
    # bool is an int subclass; a JSON true is not a time.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError("TOKEN_INVALID", f"the {name} claim must be an integer")
    return value


class JwtVerifier:
    """Verify access tokens: signature, algorithm, expiry, issuer and audience.

    Satisfies ``mesh.auth.TokenVerifier``.
    """

    def __init__(
        self,
        public_keys: Mapping[str, Ed25519PublicKey],
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        *,
        leeway_s: int = 0,
        clock: Callable[[], float] = time.time,
        revoked: RevocationList | None = None,
    ) -> None:
        if not public_keys:
            raise TokenKeyError("a verifier needs at least one public key")
        self._keys = dict(public_keys)
        self._issuer = issuer
        self._audience = audience
        self._leeway_s = leeway_s
        self._clock = clock
        self._revoked = revoked

    @property
    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        """Return the trusted keys by ``kid``."""
        return dict(self._keys)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """Return the JWKS document of the trusted keys."""
        return jwks_document(self._keys)

    def verify(self, token: str) -> str:
        """Return the token's subject; raise ``ApiError`` TOKEN_INVALID or TOKEN_EXPIRED."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise ApiError("TOKEN_INVALID", "malformed access token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise ApiError("TOKEN_INVALID", "malformed access token") from None
        # Decide the algorithm from our allow-list, never from the token alone.
        if header.get("alg") != ALGORITHM:
            raise ApiError("TOKEN_INVALID", "access token algorithm not accepted")
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise ApiError("TOKEN_INVALID", "access token signed by an unknown key")
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                options={
                    "require": list(_REQUIRED_CLAIMS),
                    # Time claims are checked below against the injectable clock.
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidTokenError:
            raise ApiError("TOKEN_INVALID", "access token rejected") from None
        exp = _claim_int(payload, "exp")
        iat = _claim_int(payload, "iat")
        subject = payload.get("sub")
        jti = payload.get("jti")
        if not isinstance(subject, str) or not subject:
            raise ApiError("TOKEN_INVALID", "access token has no subject")
        if not isinstance(jti, str) or not jti:
            raise ApiError("TOKEN_INVALID", "access token has no id")
        now = self._clock()
        if iat > now + self._leeway_s:
            raise ApiError("TOKEN_INVALID", "access token issued in the future")
        if now >= exp + self._leeway_s:
            raise ApiError("TOKEN_EXPIRED", "access token expired")
        if self._revoked is not None and self._revoked.is_revoked(jti):
            raise revoked_token_error()
        return subject


def load_verifier(
    settings: HasDataDir,
    config: TokenConfig | None = None,
    revoked: RevocationList | None = None,
) -> JwtVerifier:
    """Build the verifier every service installs in its auth interceptor at start."""
    config = TokenConfig.from_env() if config is None else config
    key = load_signing_key(settings, config)
    return JwtVerifier(key.public_keys, config.issuer, config.audience, revoked=revoked)
