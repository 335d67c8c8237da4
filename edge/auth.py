"""Access tokens at the edge: verified against the published JWKS, never with the private key."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from mesh.errors import ApiError
from mesh.revocation import issued_token
from mesh.tokens import (
    JWKS_FILE_NAME,
    JwtVerifier,
    RevocationList,
    TokenConfig,
    revoked_token_error,
)

RELOAD_EVERY_S = 1.0
CACHE_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a verified token belongs to, until when it is valid, and its id (``jti``)."""

    subject: str
    expires_at: float
    token_id: str


class JwksKeys:
    """The JWKS document the accounts service writes, reloaded when the file changes."""

    def __init__(
        self,
        path: Path,
        config: TokenConfig | None = None,
        clock: Callable[[], float] = time.time,
        revoked: RevocationList | None = None,
    ) -> None:
        self._path = path
        self._config = TokenConfig() if config is None else config
        self._clock = clock
        self._revoked = revoked
        self._document: dict[str, Any] = {"keys": []}
        self._verifier: JwtVerifier | None = None
        self._mtime_ns = -1
        self._checked = float("-inf")
        self._known: OrderedDict[str, Identity] = OrderedDict()

    @classmethod
    def in_data_dir(
        cls,
        data_dir: Path,
        config: TokenConfig | None = None,
        revoked: RevocationList | None = None,
    ) -> JwksKeys:
        """Return the keys published in `<data_dir>/jwks.json`."""
        return cls(data_dir / JWKS_FILE_NAME, config, revoked=revoked)

    def document(self) -> dict[str, Any]:
        """Return the JWKS document (`{"keys": []}` until the accounts service has written it)."""
        self._refresh()
        return self._document

    def verify(self, token: str) -> Identity:
        """Return the identity of an access token; raise ApiError TOKEN_INVALID / TOKEN_EXPIRED."""
        self._refresh()
        known = self._known.get(token)
        if known is not None:
            if self._clock() >= known.expires_at:
                del self._known[token]
                raise ApiError("TOKEN_EXPIRED", "access token expired")
            if self.is_revoked(known):
                raise revoked_token_error()
            self._known.move_to_end(token)
            return known
        if self._verifier is None:
            raise ApiError("TOKEN_INVALID", "no token signing key is published yet")
        subject = self._verifier.verify(token)
        # The signature, expiry and revocation were just checked; only exp and jti are read.
        issued = issued_token(token)
        if issued is None:
            raise ApiError("TOKEN_INVALID", "access token rejected")
        identity = Identity(subject, float(issued.expire_time_s), issued.token_id)
        # A session presents the same token on every request: remember the answer until expiry.
        self._known[token] = identity
        if len(self._known) > CACHE_SIZE:
            self._known.popitem(last=False)
        return identity

    def is_revoked(self, identity: Identity) -> bool:
        """Say whether the token of this identity was revoked since it was verified."""
        return self._revoked is not None and self._revoked.is_revoked(identity.token_id)

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < RELOAD_EVERY_S:
            return
        self._checked = now
        try:
            mtime_ns = self._path.stat().st_mtime_ns
        except OSError:
            return
        if mtime_ns == self._mtime_ns:
            return
        try:
            document = json.loads(self._path.read_text())
            keys = parse_jwks(document)
        except (OSError, ValueError):
            return
        self._mtime_ns = mtime_ns
        self._known.clear()
        self._document = {"keys": [k for k in document.get("keys", []) if isinstance(k, dict)]}
        self._verifier = (
            JwtVerifier(
                keys,
                self._config.issuer,
                self._config.audience,
                clock=self._clock,
                revoked=self._revoked,
            )
            if keys
            else None
        )


def parse_jwks(document: object) -> dict[str, Ed25519PublicKey]:
    """Return the Ed25519 keys of a JWKS document by key id; raise ValueError when malformed."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("a JWKS document is an object with a 'keys' list")
    keys: dict[str, Ed25519PublicKey] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict):
            raise ValueError("a JWK is an object")
        if entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519":
            continue
        kid, x = entry.get("kid"), entry.get("x")
        if not isinstance(kid, str) or not isinstance(x, str):
            raise ValueError("a JWK needs string 'kid' and 'x'")
        try:
            raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
        except binascii.Error as exc:
            raise ValueError(f"JWK {kid}: bad 'x'") from exc
        keys[kid] = Ed25519PublicKey.from_public_bytes(raw)
    return keys


def bearer(header: str | None) -> str | None:
    """Return the token of an `authorization: Bearer <token>` header, or None."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token
