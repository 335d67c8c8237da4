"""`cfd status`: the market maker's and the recorder's rows come from their metrics, as they
serve no health check."""

from __future__ import annotations

from pathlib import Path

from launcher.status import (
    SERVING,
    UNREACHABLE,
    Samples,
    collect,
    maker_health,
    recorder_health,
    render,
)
from mesh.config import Settings
from support import mesh_env


def test_the_maker_is_serving_while_it_reaches_the_exchange() -> None:
    connected: Samples = {"cfd_maker_connected": [({}, 1.0)]}
    reconnecting: Samples = {"cfd_maker_connected": [({}, 0.0)]}
    assert maker_health(connected) == SERVING
    assert maker_health(reconnecting) == "NOT_SERVING"
    assert maker_health({}) == UNREACHABLE


def test_the_recorder_is_serving_while_it_follows_the_journal_and_writes() -> None:
    writing: Samples = {"cfd_recorder_serving": [({}, 1.0)], "cfd_recorder_lag": [({}, 3.0)]}
    assert recorder_health(writing) == SERVING
    assert recorder_health({"cfd_recorder_serving": [({}, 0.0)]}) == "NOT_SERVING"
    assert recorder_health({}) == UNREACHABLE


def test_a_mesh_that_is_down_lists_the_maker_and_recorder_unreachable_too(tmp_path: Path) -> None:
    env = mesh_env(tmp_path)
    rows = collect(Settings.from_env(env), env)
    assert "recorder" in render(rows)
    assert [(row.service, row.health) for row in rows] == [
        ("engine", UNREACHABLE),
        ("recorder", UNREACHABLE),
        ("market", UNREACHABLE),
        ("accounts", UNREACHABLE),
        ("edge", UNREACHABLE),
        ("maker", UNREACHABLE),
    ]
