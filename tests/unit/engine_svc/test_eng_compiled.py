"""Choosing the compiled or the interpreted core at start: only a build of these very sources."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine_svc.compiled import DIGEST_FILE, SOURCE_DIR, activate, source_digest

# Activates in a fresh interpreter (the core is imported once per process) and reports.
PROBE = """
import json, sys
from pathlib import Path
from engine_svc.compiled import activate
chosen = activate(Path(sys.argv[1]))
import engine_svc.core
from engine_svc.core import Core
print(json.dumps({"chosen": chosen, "file": engine_svc.core.__file__, "core": Core.__module__}))
"""


def _probe(build_dir: Path) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(build_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result: dict[str, str] = json.loads(done.stdout.splitlines()[-1])
    return result


def _build_like(build_dir: Path, digest: str) -> Path:
    """Lay out a build as mypyc_build does (here, the sources themselves) with `digest`."""
    package = build_dir / "engine_svc"
    shutil.copytree(SOURCE_DIR, package / "core")
    (package / "__init__.py").write_text("")
    (build_dir / DIGEST_FILE).write_text(digest + "\n")
    return package / "core"


def test_without_a_build_the_interpreted_core_runs(tmp_path: Path) -> None:
    result = _probe(tmp_path / "missing")
    assert result["chosen"] == "interpreted"
    assert Path(result["file"]).parent == SOURCE_DIR


def test_a_build_of_these_sources_runs_ahead_of_them(tmp_path: Path) -> None:
    built = _build_like(tmp_path, source_digest())
    result = _probe(tmp_path)
    assert result["chosen"] == "compiled"
    assert Path(result["file"]).parent == built


def test_a_build_of_other_sources_is_not_used(tmp_path: Path) -> None:
    _build_like(tmp_path, "0" * 64)
    result = _probe(tmp_path)
    assert result["chosen"] == "interpreted"
    assert Path(result["file"]).parent == SOURCE_DIR


def test_a_build_that_does_not_load_falls_back_to_the_sources(tmp_path: Path) -> None:
    built = _build_like(tmp_path, source_digest())
    (built / "__init__.py").write_text("raise ImportError('built for another interpreter')\n")
    result = _probe(tmp_path)
    assert result["chosen"] == "interpreted"
    assert Path(result["file"]).parent == SOURCE_DIR
    assert result["core"].startswith("engine_svc.core")


def test_the_digest_follows_every_source_file(tmp_path: Path) -> None:
    copy = tmp_path / "core"
    shutil.copytree(SOURCE_DIR, copy)
    assert source_digest(copy) == source_digest()
    first = sorted(copy.rglob("*.py"))[0]
    first.write_text(first.read_text() + "\n")
    assert source_digest(copy) != source_digest()


def test_activating_after_the_core_was_imported_is_refused(tmp_path: Path) -> None:
    import engine_svc.core  # noqa: F401

    with pytest.raises(RuntimeError, match="already imported"):
        activate(tmp_path)
