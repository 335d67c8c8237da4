"""The dependency rule: the project keeps its import contracts, and a broken one fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support import REPO

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), str(REPO)])}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_project_keeps_its_import_contracts() -> None:
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_core_that_imports_beyond_the_standard_library_breaks_the_contract(
    tmp_path: Path,
) -> None:
    (tmp_path / "pure").mkdir()
    (tmp_path / "pure" / "__init__.py").write_text("import json\nfrom pure import rules\n")
    (tmp_path / "pure" / "rules.py").write_text("import decimal\n\nimport grpc\n")
    (tmp_path / "pure" / "leak.py").write_text("from other import thing\n")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "__init__.py").write_text("")
    (tmp_path / "other" / "thing.py").write_text("")
    (tmp_path / ".importlinter").write_text(
        "[importlinter]\n"
        "root_packages =\n    pure\n    other\n"
        "include_external_packages = True\n"
        "contract_types =\n"
        "    standard_library_only: tools.import_contracts.StandardLibraryOnlyContract\n"
        "[importlinter:contract:pure]\n"
        "name = pure imports only the standard library\n"
        "type = standard_library_only\n"
        "source_modules =\n    pure\n"
    )
    result = _lint(tmp_path, "--config", str(tmp_path / ".importlinter"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "pure.rules -> grpc (l.3)" in result.stdout
    assert "pure.leak -> other.thing (l.1)" in result.stdout
    assert "json" not in result.stdout.split("BROKEN", 1)[1]
