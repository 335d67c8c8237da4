"""Settings of the edge alone, read from the environment next to the shared `Settings`."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from mesh.config import ConfigError

_ORIGIN = re.compile(r"^(\*|https?://[A-Za-z0-9.-]+(:\d{1,5})?)$")


@dataclass(frozen=True, slots=True)
class EdgeConfig:
    """Limits and policies of the edge; every field has a documented environment variable."""

    # CFD_CORS_ORIGINS: comma-separated origins allowed to call the API from a browser.
    cors_origins: tuple[str, ...] = ()
    # CFD_MAX_BODY_BYTES: largest accepted REST request body.
    max_body_bytes: int = 64 * 1024
    # CFD_UPSTREAM_TIMEOUT: deadline of each unary upstream call, in seconds.
    upstream_timeout_s: float = 10.0
    # CFD_RATE_LIMIT_IP / CFD_RATE_LIMIT_USER: REST requests per minute per address / per user.
    rate_limit_ip: int = 1200
    rate_limit_user: int = 600
    # CFD_WS_RATE_LIMIT: WebSocket messages per minute per address and per user.
    ws_rate_limit: int = 600
    # CFD_WS_MAX_FRAME_BYTES: largest accepted WebSocket frame from a client.
    ws_max_frame_bytes: int = 16 * 1024
    # CFD_WS_MAX_SUBSCRIPTIONS: channel keys one connection may subscribe to.
    ws_max_subscriptions: int = 64
    # CFD_WS_EVENT_BACKLOG: events queued for one slow connection before it must resume.
    ws_event_backlog: int = 1000
    # CFD_WS_SEND_TIMEOUT: seconds a connection may stay blocked on one frame before it is closed.
    ws_send_timeout_s: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EdgeConfig:
        """Read the edge settings; unset variables keep their defaults."""
        env = os.environ if env is None else env
        default = cls()
        return cls(
            cors_origins=_origins(env.get("CFD_CORS_ORIGINS", "")),
            max_body_bytes=_int(env, "CFD_MAX_BODY_BYTES", default.max_body_bytes, 64, 16 << 20),
            upstream_timeout_s=_seconds(env, "CFD_UPSTREAM_TIMEOUT", default.upstream_timeout_s),
            rate_limit_ip=_int(env, "CFD_RATE_LIMIT_IP", default.rate_limit_ip, 1, 1_000_000),
            rate_limit_user=_int(env, "CFD_RATE_LIMIT_USER", default.rate_limit_user, 1, 1_000_000),
            ws_rate_limit=_int(env, "CFD_WS_RATE_LIMIT", default.ws_rate_limit, 1, 1_000_000),
            ws_max_frame_bytes=_int(
                env, "CFD_WS_MAX_FRAME_BYTES", default.ws_max_frame_bytes, 256, 1 << 20
            ),
            ws_max_subscriptions=_int(
                env, "CFD_WS_MAX_SUBSCRIPTIONS", default.ws_max_subscriptions, 1, 10_000
            ),
            ws_event_backlog=_int(
                env, "CFD_WS_EVENT_BACKLOG", default.ws_event_backlog, 1, 1_000_000
            ),
            ws_send_timeout_s=_seconds(env, "CFD_WS_SEND_TIMEOUT", default.ws_send_timeout_s),
        )


def _origins(raw: str) -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        if not _ORIGIN.match(origin):
            raise ConfigError(
                f"CFD_CORS_ORIGINS: {origin!r} is not '*' or an origin like http://host:port"
            )
    return origins


def _int(env: Mapping[str, str], var: str, default: int, low: int, high: int) -> int:
    raw = env.get(var, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ConfigError(f"{var}={raw!r} is not a whole number between {low} and {high}")
    return int(raw)


def _seconds(env: Mapping[str, str], var: str, default: float) -> float:
    raw = env.get(var, "").strip()
    if not raw:
        return default
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ConfigError(f"{var}={raw!r} is not a number of seconds") from None
    if not value.is_finite() or not Decimal("0.01") <= value <= Decimal(3600):
        raise ConfigError(f"{var}={raw!r} must be between 0.01 and 3600 seconds")
    # A duration for asyncio, not money: float is what the timers take.
    return float(value)
