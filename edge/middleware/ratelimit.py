"""Per-address and per-user REST rate limits, answered with 429, RATE_LIMITED and Retry-After."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from edge.auth import JwksKeys, bearer
from edge.errors import api_error_response
from mesh.errors import ApiError
from mesh.ratelimit import RateLimiter

WINDOW_S = 60


class RateLimitMiddleware:
    """Count each API request against its client address and, with a valid token, its user."""

    def __init__(
        self,
        app: ASGIApp,
        limiter: RateLimiter,
        keys: JwksKeys,
        per_ip: int,
        per_user: int,
        prefix: str = "/v1/",
    ) -> None:
        self.app = app
        self._limiter = limiter
        self._keys = keys
        self._per_ip = per_ip
        self._per_user = per_user
        self._prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") == "OPTIONS"
            or not str(scope.get("path", "")).startswith(self._prefix)
        ):
            await self.app(scope, receive, send)
            return
        client = scope.get("client") or ("unknown", 0)
        checks = [(f"rest:ip:{client[0]}", self._per_ip)]
        user = self._user(scope)
        if user is not None:
            checks.append((f"rest:user:{user}", self._per_user))
        for key, limit in checks:
            decision = await self._limiter.hit(key, limit, WINDOW_S)
            if not decision.allowed:
                error = ApiError(
                    "RATE_LIMITED",
                    "too many requests; retry later",
                    retry_after_s=decision.retry_after_s,
                )
                await api_error_response(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _user(self, scope: Scope) -> str | None:
        header = dict(scope.get("headers", ())).get(b"authorization")
        token = bearer(header.decode("latin-1") if header else None)
        if token is None:
            return None
        try:
            return self._keys.verify(token).subject
        except ApiError:
            # An invalid token is the upstream's to reject; only the address limit applies.
            return None
