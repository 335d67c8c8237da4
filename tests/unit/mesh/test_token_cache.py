"""The verified-token cache in front of the JWT verifier."""

from __future__ import annotations

import pytest

from account_svc.issuer import TokenIssuer
from mesh.errors import ApiError
from mesh.revocation import issued_token
from mesh.token_cache import CachedVerifier
from mesh.tokens import JwtVerifier, SigningKey


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingVerifier:
    """Counts full verifications."""

    def __init__(self, inner: JwtVerifier) -> None:
        self.inner = inner
        self.calls = 0

    def verify(self, token: str) -> str:
        self.calls += 1
        return self.inner.verify(token)


def _setup(ttl: int = 60) -> tuple[TokenIssuer, CountingVerifier, CachedVerifier, Clock]:
    clock = Clock(1_800_000_000.0)
    key = SigningKey.generate()
    issuer = TokenIssuer(key, ttl_s=ttl, clock=clock)
    counting = CountingVerifier(JwtVerifier(key.public_keys, clock=clock))
    return issuer, counting, CachedVerifier(counting, clock=clock), clock


def test_a_token_is_verified_once_then_served_from_the_cache() -> None:
    issuer, counting, cached, _ = _setup()
    token, _ = issuer.issue("user-1")
    assert cached.verify(token) == "user-1"
    assert cached.verify(token) == "user-1"
    assert counting.calls == 1


def test_a_cached_token_expires_at_its_exp() -> None:
    issuer, _, cached, clock = _setup(ttl=60)
    token, _ = issuer.issue("user-1")
    assert cached.verify(token) == "user-1"
    clock.now += 60
    with pytest.raises(ApiError) as caught:
        cached.verify(token)
    assert caught.value.reason == "TOKEN_EXPIRED"
    with pytest.raises(ApiError) as again:
        cached.verify(token)
    assert again.value.reason == "TOKEN_EXPIRED"


def test_invalid_tokens_are_never_cached() -> None:
    issuer, counting, cached, _ = _setup()
    token, _ = issuer.issue("user-1")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for _ in range(2):
        with pytest.raises(ApiError) as caught:
            cached.verify(forged)
        assert caught.value.reason == "TOKEN_INVALID"
    assert counting.calls == 2


def test_the_cache_is_bounded() -> None:
    issuer, counting, _, clock = _setup()
    cached = CachedVerifier(counting, capacity=2, clock=clock)
    tokens = [issuer.issue(f"user-{n}")[0] for n in range(3)]
    for token in tokens:
        cached.verify(token)
    cached.verify(tokens[0])
    assert counting.calls == 4


class RevokedIds(set[str]):
    """A revocation list in a set."""

    def is_revoked(self, token_id: str) -> bool:
        return token_id in self


def test_a_cached_token_is_refused_once_revoked() -> None:
    clock = Clock(1_800_000_000.0)
    key = SigningKey.generate()
    issuer = TokenIssuer(key, ttl_s=60, clock=clock)
    revoked = RevokedIds()
    counting = CountingVerifier(JwtVerifier(key.public_keys, clock=clock, revoked=revoked))
    cached = CachedVerifier(counting, clock=clock, revoked=revoked)
    token, _ = issuer.issue("user-1")
    other, _ = issuer.issue("user-1")
    assert cached.verify(token) == cached.verify(other) == "user-1"
    issued = issued_token(token)
    assert issued is not None
    revoked.add(issued.token_id)
    for _ in range(2):
        with pytest.raises(ApiError) as caught:
            cached.verify(token)
        assert caught.value.reason == "TOKEN_INVALID"
    assert cached.verify(other) == "user-1"
    assert counting.calls == 2
    # A revoked token that was never cached is refused by the full verifier.
    fresh = CachedVerifier(counting, clock=clock, revoked=revoked)
    with pytest.raises(ApiError):
        fresh.verify(token)
