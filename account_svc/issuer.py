"""Access token issuing: the accounts service signs a JWT for each signed-in user."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import jwt

from mesh.auth import EMAIL_VERIFIED_CLAIM, SHARD_CLAIM
from mesh.tokens import (
    ALGORITHM,
    DEFAULT_ACCESS_TOKEN_TTL_S,
    DEFAULT_AUDIENCE,
    DEFAULT_ISSUER,
    MAX_ACCESS_TOKEN_TTL_S,
    HasDataDir,
    SigningKey,
    TokenConfig,
    TokenKeyError,
    load_signing_key,
)


class TokenIssuer:
    """Sign access tokens for a subject (user id)."""

    def __init__(
        self,
        key: SigningKey,
        *,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        ttl_s: int = DEFAULT_ACCESS_TOKEN_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 1 <= ttl_s <= MAX_ACCESS_TOKEN_TTL_S:
            raise TokenKeyError(f"access token lifetime out of range: {ttl_s} s")
        self._key = key
        self._issuer = issuer
        self._audience = audience
        self._ttl_s = ttl_s
        self._clock = clock

    @property
    def ttl_s(self) -> int:
        """Return the lifetime of issued tokens in seconds."""
        return self._ttl_s

    def issue(
        self, subject: str, *, email_verified: bool = False, shard: int = 0
    ) -> tuple[str, int]:
        """Return a signed access token for ``subject`` and its lifetime in seconds.

        ``email_verified`` says whether the user had verified their email at issue time; the
        services read it where trading requires it (``CFD_REQUIRE_EMAIL_VERIFICATION``).
        ``shard`` is the CFD engine shard holding the user's account: the edge and Envoy route
        the user's trading calls by it.
        """
        if not subject:
            raise ValueError("an access token needs a non-empty subject")
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": subject,
            "iat": now,
            "exp": now + self._ttl_s,
            "jti": secrets.token_urlsafe(16),
            EMAIL_VERIFIED_CLAIM: email_verified,
            SHARD_CLAIM: shard,
        }
        token = jwt.encode(
            claims,
            self._key.private_key,
            algorithm=ALGORITHM,
            headers={"kid": self._key.kid, "typ": "JWT"},
        )
        return token, self._ttl_s


def load_issuer(settings: HasDataDir, config: TokenConfig | None = None) -> TokenIssuer:
    """Build the access token issuer from configuration (the accounts service calls it)."""
    config = TokenConfig.from_env() if config is None else config
    key = load_signing_key(settings, config)
    return TokenIssuer(
        key,
        issuer=config.issuer,
        audience=config.audience,
        ttl_s=config.access_token_ttl_s,
    )
