"""Remember verified access tokens so a client's calls do not each pay a signature check.

A token is the same bytes on every call of a session; once the full verifier accepted it,
only its expiry can change the answer. The cache keeps (subject, exp) per token, checks the
expiry on every hit and falls back to the full verifier on a miss.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections import OrderedDict
from collections.abc import Callable

from mesh.auth import TokenVerifier
from mesh.errors import ApiError

DEFAULT_CAPACITY = 10_000


def _expiry(token: str) -> int | None:
    """Return the exp claim of a token the full verifier has already accepted."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    segment = parts[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return exp if isinstance(exp, int) and not isinstance(exp, bool) else None


class CachedVerifier:
    """A `TokenVerifier` that remembers what `inner` accepted until the token expires."""

    def __init__(
        self,
        inner: TokenVerifier,
        capacity: int = DEFAULT_CAPACITY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._inner = inner
        self._capacity = capacity
        self._clock = clock
        self._known: OrderedDict[str, tuple[str, int]] = OrderedDict()

    def verify(self, token: str) -> str:
        """Return the token's subject; raise ApiError TOKEN_INVALID / TOKEN_EXPIRED."""
        known = self._known.get(token)
        if known is not None:
            subject, exp = known
            if self._clock() < exp:
                self._known.move_to_end(token)
                return subject
            del self._known[token]
            raise ApiError("TOKEN_EXPIRED", "access token expired")
        subject = self._inner.verify(token)
        expiry = _expiry(token)
        if expiry is not None:
            self._known[token] = (subject, expiry)
            if len(self._known) > self._capacity:
                self._known.popitem(last=False)
        return subject
