"""Settings of the edge alone, read from the environment next to the shared `Settings`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from mesh.config import FrontLimits, env_duration_ms, env_int

MAX_WORKERS = 256


def default_workers() -> int:
    """Return one worker process per core this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


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
    # CFD_EDGE_WORKERS: worker processes sharing the listening socket.
    workers: int = field(default_factory=default_workers)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EdgeConfig:
        """Read the edge settings; unset variables keep their defaults."""
        env = os.environ if env is None else env
        default = cls()
        limits = FrontLimits.from_env(env)
        send_timeout_ms = env_duration_ms(
            env, "CFD_WS_SEND_TIMEOUT", int(default.ws_send_timeout_s * 1000)
        )
        return cls(
            cors_origins=limits.cors_origins,
            max_body_bytes=limits.max_body_bytes,
            # Durations for asyncio, not money: float is what the timers take.
            upstream_timeout_s=limits.upstream_timeout_ms / 1000,
            rate_limit_ip=limits.rate_limit_ip,
            rate_limit_user=limits.rate_limit_user,
            ws_rate_limit=env_int(env, "CFD_WS_RATE_LIMIT", default.ws_rate_limit, 1, 1_000_000),
            ws_max_frame_bytes=env_int(
                env, "CFD_WS_MAX_FRAME_BYTES", default.ws_max_frame_bytes, 256, 1 << 20
            ),
            ws_max_subscriptions=env_int(
                env, "CFD_WS_MAX_SUBSCRIPTIONS", default.ws_max_subscriptions, 1, 10_000
            ),
            ws_event_backlog=env_int(
                env, "CFD_WS_EVENT_BACKLOG", default.ws_event_backlog, 1, 1_000_000
            ),
            ws_send_timeout_s=send_timeout_ms / 1000,
            workers=env_int(env, "CFD_EDGE_WORKERS", default.workers, 1, MAX_WORKERS),
        )
