"""Compile the engine core with mypyc into build/mypyc, outside the source tree.

Usage: ``python bench/mypyc_build.py`` (prints the build directory). `cfd engine` runs the
compiled package when the digest of the sources recorded beside it still matches
(`engine_svc.compiled`); the benchmarks put the build directory first on ``sys.path`` in a
separate process. The source tree stays pure Python and everything works without this build.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from engine_svc.compiled import BUILD_DIR, DIGEST_FILE, source_digest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path("engine_svc") / "core"


def build(build_dir: Path = BUILD_DIR) -> Path:
    """Copy the core's sources into `build_dir`, compile them there, return `build_dir`."""
    if build_dir.exists():
        shutil.rmtree(build_dir)
    digest = source_digest()
    (build_dir / PACKAGE).mkdir(parents=True)
    shutil.copy2(ROOT / "engine_svc" / "__init__.py", build_dir / "engine_svc" / "__init__.py")
    sources = sorted(path.relative_to(ROOT) for path in (ROOT / PACKAGE).rglob("*.py"))
    for source in sources:
        (build_dir / source).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / source, build_dir / source)
    command = [sys.executable, "-m", "mypyc", *(str(source) for source in sources)]
    subprocess.run(command, cwd=build_dir, check=True, stdout=subprocess.DEVNULL)
    compiled = list((build_dir / PACKAGE).rglob("*.so"))
    if len(compiled) != len(sources):
        raise RuntimeError(f"mypyc built {len(compiled)} of {len(sources)} modules")
    # Written last: only a complete build of these very sources is ever used.
    (build_dir / DIGEST_FILE).write_text(digest + "\n")
    return build_dir


def is_stale(build_dir: Path = BUILD_DIR) -> bool:
    """Return True when `build_dir` lacks a core source or holds another version of one."""
    for source in (ROOT / PACKAGE).rglob("*.py"):
        copy = build_dir / source.relative_to(ROOT)
        if not copy.exists() or copy.read_bytes() != source.read_bytes():
            return True
    return False


def run_variants(script: Path, arguments: list[str]) -> dict[str, int]:
    """Run a benchmark script interpreted and then compiled, each in its own process.

    The script is called with ``--variant interpreted|mypyc`` and `arguments`; the core is
    built first when the build is stale. Print the JSON figure lines of both runs and return
    their ``throughput`` figures by bench name.
    """
    if is_stale():
        build()
    throughputs: dict[str, int] = {}
    for variant, path in (("interpreted", str(ROOT)), ("mypyc", f"{BUILD_DIR}{os.pathsep}{ROOT}")):
        command = [sys.executable, str(script), "--variant", variant, *arguments]
        env = {**os.environ, "PYTHONPATH": path}
        output = subprocess.run(command, env=env, check=True, capture_output=True, text=True,
                                cwd=ROOT / "bench").stdout  # fmt: skip
        for line in output.splitlines():
            print(line, flush=True)
            figure = json.loads(line)
            if figure["metric"] == "throughput":
                throughputs[figure["bench"]] = figure["value"]
    return throughputs


def main() -> None:
    """Build and print the directory to put first on sys.path."""
    print(build())


if __name__ == "__main__":
    main()
