"""Who is calling: bearer tokens for public RPCs, the internal token for admin services."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from typing import Protocol

from mesh.errors import ApiError
from mesh.revocation import read_claims

AUTHORIZATION = "authorization"
INTERNAL_TOKEN_HEADER = "x-cfd-internal-token"

INTERNAL_SERVICES = frozenset({"cfd.v1.EngineAdminService", "cfd.v1.MarketDataAdminService"})
# Methods anyone may call without a token.
PUBLIC_METHODS = frozenset(
    {
        "/cfd.v1.AccountService/Signup",
        "/cfd.v1.AccountService/Signin",
        "/cfd.v1.AccountService/RefreshToken",
        "/cfd.v1.AccountService/Signout",
        "/cfd.v1.AccountService/VerifyEmail",
        "/cfd.v1.AccountService/RequestPasswordReset",
        "/cfd.v1.AccountService/ResetPassword",
        "/cfd.v1.AccountService/ListIdentityProviders",
        "/cfd.v1.AccountService/StartProviderSignin",
        "/cfd.v1.AccountService/CompleteProviderSignin",
        "/cfd.v1.AccountService/VerifyProviderSignin",
        "/cfd.v1.ExchangeService/ListMarkets",
        "/cfd.v1.ExchangeService/GetOrderBook",
        "/cfd.v1.ExchangeService/ListMarketTrades",
        "/cfd.v1.ExchangeService/StreamOrderBook",
        "/cfd.v1.ExchangeService/StreamMarketTrades",
    }
)
# User methods an internal caller may call without a user token: the edge reads the quote
# stream, the same for every user, once for all its WebSocket clients. A user token, when
# present (Envoy forwards it beside the internal token), still names the caller.
SHARED_METHODS = frozenset({"/cfd.v1.TradingService/StreamPrices"})
# The calls that take on new exposure. With CFD_REQUIRE_EMAIL_VERIFICATION they need a token
# whose user had verified their email; closing, cancelling and reading stay open to all, so
# that turning the requirement on never traps anyone in a position.
VERIFIED_EMAIL_METHODS = frozenset(
    {
        "/cfd.v1.TradingService/OpenPosition",
        "/cfd.v1.TradingService/PlaceOrder",
        "/cfd.v1.ExchangeService/PlaceSpotOrder",
        "/cfd.v1.ExchangeService/TransferFunds",
    }
)
# The access token claim the accounts service sets (as OpenID Connect names it).
EMAIL_VERIFIED_CLAIM = "email_verified"
# The access token claim naming the CFD engine shard that holds the user's account (absent in
# tokens of a single-shard platform: shard 0).
SHARD_CLAIM = "shard"
PUBLIC_SERVICES = frozenset(
    {
        "cfd.v1.MarketDataService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)

_SUBJECT: ContextVar[str | None] = ContextVar("subject", default=None)
_SHARD: ContextVar[int] = ContextVar("shard", default=0)


class TokenVerifier(Protocol):
    """Checks an access token."""

    def verify(self, token: str) -> str:
        """Return the token's subject, or raise ApiError TOKEN_INVALID / TOKEN_EXPIRED."""
        ...


class CallerPolicy:
    """Decides, per method, what a caller must present and who the caller is."""

    def __init__(
        self,
        verifier: TokenVerifier | None,
        internal_token: str,
        *,
        require_email_verification: bool = False,
    ) -> None:
        self._verifier = verifier
        self._internal_token = internal_token.encode()
        self._require_email_verification = require_email_verification

    def authenticate(self, method: str, metadata: Sequence[tuple[str, str | bytes]]) -> str | None:
        """Return the subject for user RPCs, None for public and internal ones; raise ApiError."""
        service = method.lstrip("/").split("/", 1)[0]
        if service in INTERNAL_SERVICES:
            if not self._is_internal(metadata):
                raise ApiError("TOKEN_INVALID", "this service accepts internal callers only")
            return None
        if service in PUBLIC_SERVICES or method in PUBLIC_METHODS:
            return None
        header = _first(metadata, AUTHORIZATION)
        if header is None and method in SHARED_METHODS and self._is_internal(metadata):
            return None
        if header is None:
            raise ApiError("TOKEN_INVALID", "missing authorization: Bearer <access token>")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError("TOKEN_INVALID", "authorization must be 'Bearer <access token>'")
        if self._verifier is None:
            raise ApiError("TOKEN_INVALID", "this service cannot verify access tokens")
        caller = self._verifier.verify(token.strip())
        if self._require_email_verification and method in VERIFIED_EMAIL_METHODS:
            # The signature was just checked: the claim is the issuer's.
            claims = read_claims(token.strip()) or {}
            if claims.get(EMAIL_VERIFIED_CLAIM) is not True:
                raise ApiError(
                    "EMAIL_NOT_VERIFIED",
                    "verify your email address before trading (then refresh your token)",
                )
        return caller

    def _is_internal(self, metadata: Sequence[tuple[str, str | bytes]]) -> bool:
        presented = _first(metadata, INTERNAL_TOKEN_HEADER)
        return presented is not None and hmac.compare_digest(
            presented.encode(), self._internal_token
        )


def _first(metadata: Iterable[tuple[str, str | bytes]], key: str) -> str | None:
    for name, value in metadata:
        if name == key:
            return value.decode() if isinstance(value, bytes) else value
    return None


def shard_claim(token: str) -> int:
    """Return the shard claim of a verified access token; 0 when absent or not a number."""
    value = (read_claims(token) or {}).get(SHARD_CLAIM, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def bearer_shard(metadata: Sequence[tuple[str, str | bytes]]) -> int:
    """Return the shard claim of the call's bearer token (verified by `authenticate`), 0 when
    the call has none."""
    header = _first(metadata, AUTHORIZATION)
    if header is None:
        return 0
    scheme, _, token = header.partition(" ")
    return shard_claim(token.strip()) if scheme.lower() == "bearer" else 0


def caller_shard() -> int:
    """Return the shard claim of the current RPC's caller (0 without one)."""
    return _SHARD.get()


def bind_caller_shard(value: int) -> None:
    """Set the caller's shard claim for the current task."""
    _SHARD.set(value)


def subject() -> str:
    """Return the authenticated caller of the current RPC."""
    value = _SUBJECT.get()
    if value is None:
        raise ApiError("TOKEN_INVALID", "this call has no authenticated caller")
    return value


def bind_subject(value: str | None) -> Callable[[], None]:
    """Set the caller for the current task; return a function that restores the previous one."""
    token = _SUBJECT.set(value)
    return lambda: _SUBJECT.reset(token)
