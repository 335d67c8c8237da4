"""The committed generated code matches what the contracts generate."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from support import REPO


def test_generated_code_is_fresh() -> None:
    spec = importlib.util.spec_from_file_location("protogen", REPO / "tools" / "protogen.py")
    assert spec is not None and spec.loader is not None
    protogen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(protogen)
    assert protogen.stale_files(Path(REPO / "gen")) == []
