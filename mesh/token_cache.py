"""Remember verified access tokens so a client's calls do not each pay a signature check.

A token is the same bytes on every call of a session; once the full verifier accepted it,
only its expiry or its revocation (sign-out) can change the answer. The cache keeps
(subject, exp, jti) per token, checks the expiry and the revocation list on every hit and
falls back to the full verifier on a miss.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from mesh.auth import TokenVerifier
from mesh.errors import ApiError
from mesh.revocation import IssuedToken, issued_token
from mesh.tokens import RevocationList, revoked_token_error

DEFAULT_CAPACITY = 10_000


class CachedVerifier:
    """A `TokenVerifier` that remembers what `inner` accepted until the token expires."""

    def __init__(
        self,
        inner: TokenVerifier,
        capacity: int = DEFAULT_CAPACITY,
        clock: Callable[[], float] = time.time,
        revoked: RevocationList | None = None,
    ) -> None:
        self._inner = inner
        self._capacity = capacity
        self._clock = clock
        self._revoked = revoked
        self._known: OrderedDict[str, tuple[str, IssuedToken]] = OrderedDict()

    def verify(self, token: str) -> str:
        """Return the token's subject; raise ApiError TOKEN_INVALID / TOKEN_EXPIRED."""
        known = self._known.get(token)
        if known is not None:
            subject, issued = known
            if self._clock() >= issued.expire_time_s:
                del self._known[token]
                raise ApiError("TOKEN_EXPIRED", "access token expired")
            if self._revoked is not None and self._revoked.is_revoked(issued.token_id):
                raise revoked_token_error()
            self._known.move_to_end(token)
            return subject
        subject = self._inner.verify(token)
        verified = issued_token(token)
        if verified is not None:
            self._known[token] = (subject, verified)
            if len(self._known) > self._capacity:
                self._known.popitem(last=False)
        return subject
