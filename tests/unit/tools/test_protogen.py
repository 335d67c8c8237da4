"""The committed generated code matches what the contracts generate."""

from __future__ import annotations

from pathlib import Path

from support import REPO, load_tool


def test_generated_code_is_fresh() -> None:
    protogen = load_tool("protogen")
    assert protogen.stale_files(Path(REPO / "gen")) == []
