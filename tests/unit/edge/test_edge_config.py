"""Edge settings from the environment."""

from __future__ import annotations

import os

import pytest

from edge.config import EdgeConfig
from mesh.config import ConfigError


def test_defaults_when_unset() -> None:
    assert EdgeConfig.from_env({}) == EdgeConfig()


def test_every_variable_is_read() -> None:
    config = EdgeConfig.from_env(
        {
            "CFD_CORS_ORIGINS": "http://localhost:5173, https://cfd.example.com/",
            "CFD_MAX_BODY_BYTES": "1024",
            "CFD_UPSTREAM_TIMEOUT": "2.5",
            "CFD_RATE_LIMIT_IP": "10",
            "CFD_RATE_LIMIT_USER": "5",
            "CFD_WS_RATE_LIMIT": "7",
            "CFD_WS_MAX_FRAME_BYTES": "2048",
            "CFD_WS_MAX_SUBSCRIPTIONS": "3",
            "CFD_WS_EVENT_BACKLOG": "20",
            "CFD_WS_SEND_TIMEOUT": "0.5",
            "CFD_EDGE_WORKERS": "3",
        }
    )
    assert config == EdgeConfig(
        cors_origins=("http://localhost:5173", "https://cfd.example.com"),
        max_body_bytes=1024,
        upstream_timeout_s=2.5,
        rate_limit_ip=10,
        rate_limit_user=5,
        ws_rate_limit=7,
        ws_max_frame_bytes=2048,
        ws_max_subscriptions=3,
        ws_event_backlog=20,
        ws_send_timeout_s=0.5,
        workers=3,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CFD_CORS_ORIGINS", "localhost:5173"),
        ("CFD_CORS_ORIGINS", "http://a.example/path"),
        ("CFD_MAX_BODY_BYTES", "-1"),
        ("CFD_MAX_BODY_BYTES", "10"),
        ("CFD_UPSTREAM_TIMEOUT", "soon"),
        ("CFD_UPSTREAM_TIMEOUT", "0"),
        ("CFD_UPSTREAM_TIMEOUT", "NaN"),
        ("CFD_RATE_LIMIT_IP", "0"),
        ("CFD_WS_SEND_TIMEOUT", "99999"),
        ("CFD_EDGE_WORKERS", "0"),
        ("CFD_EDGE_WORKERS", "many"),
    ],
)
def test_bad_values_are_clear_errors(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        EdgeConfig.from_env({variable: value})


def test_the_edge_runs_one_worker_per_usable_core_by_default() -> None:
    assert EdgeConfig().workers == len(os.sched_getaffinity(0))
