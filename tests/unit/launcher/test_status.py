"""`cfd status`: the market maker's row comes from its metrics, as it serves no health check."""

from __future__ import annotations

from pathlib import Path

from launcher.status import SERVING, UNREACHABLE, Samples, collect, maker_health
from mesh.config import Settings
from support import mesh_env


def test_the_maker_is_serving_while_it_reaches_the_exchange() -> None:
    connected: Samples = {"cfd_maker_connected": [({}, 1.0)]}
    reconnecting: Samples = {"cfd_maker_connected": [({}, 0.0)]}
    assert maker_health(connected) == SERVING
    assert maker_health(reconnecting) == "NOT_SERVING"
    assert maker_health({}) == UNREACHABLE


def test_a_mesh_that_is_down_lists_the_maker_unreachable_too(tmp_path: Path) -> None:
    env = mesh_env(tmp_path)
    rows = collect(Settings.from_env(env), env)
    assert [(row.service, row.health) for row in rows] == [
        ("engine", UNREACHABLE),
        ("market", UNREACHABLE),
        ("accounts", UNREACHABLE),
        ("edge", UNREACHABLE),
        ("maker", UNREACHABLE),
    ]
