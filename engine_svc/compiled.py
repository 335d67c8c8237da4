"""Run the engine on the mypyc-compiled core when a build of the current sources exists.

`bench/mypyc_build.py` compiles `engine_svc/core` into `build/mypyc` and records there the
digest of the sources it compiled. `activate` (called by `cfd engine` before anything imports
the core) puts that build ahead of the sources when the digest still matches, and otherwise,
or when the compiled modules do not load, leaves the interpreted core in place. Either way it
logs which one runs. Both behave identically: the compiled one is the same code, faster.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from pathlib import Path

import engine_svc

log = logging.getLogger("engine.core")

SOURCE_DIR = Path(__file__).resolve().parent / "core"
BUILD_DIR = Path(__file__).resolve().parent.parent / "build" / "mypyc"
DIGEST_FILE = "core.sha256"
CORE = "engine_svc.core"


def source_digest(source_dir: Path = SOURCE_DIR) -> str:
    """Return the SHA-256 of the core's Python sources: their paths and contents."""
    digest = hashlib.sha256()
    for path in sorted(source_dir.rglob("*.py")):
        digest.update(path.relative_to(source_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def activate(build_dir: Path = BUILD_DIR, source_dir: Path = SOURCE_DIR) -> str:
    """Load the compiled core if a build of these sources exists; return what runs.

    Returns "compiled" or "interpreted". Must run before `engine_svc.core` is imported.
    """
    if CORE in sys.modules:
        raise RuntimeError("the engine core is already imported; activate must come first")
    stamp = build_dir / DIGEST_FILE
    if not stamp.is_file():
        return _interpreted(f"no compiled build in {build_dir} (make run builds one)")
    if stamp.read_text().strip() != source_digest(source_dir):
        return _interpreted(f"the compiled build in {build_dir} is of other sources")
    package_dir = str(build_dir / "engine_svc")
    # The compiled modules share one library at the top of the build directory.
    sys.path.insert(0, str(build_dir))
    engine_svc.__path__.insert(0, package_dir)
    try:
        import engine_svc.core as core
    except ImportError as exc:
        sys.path.remove(str(build_dir))
        engine_svc.__path__.remove(package_dir)
        for name in [n for n in sys.modules if n == CORE or n.startswith(CORE + ".")]:
            del sys.modules[name]
        return _interpreted(f"the compiled build in {build_dir} does not load: {exc}")
    log.info(
        "engine core: compiled with mypyc",
        extra={"fields": {"core": "compiled", "path": core.__file__}},
    )
    return "compiled"


def _interpreted(reason: str) -> str:
    log.info("engine core: interpreted: %s", reason, extra={"fields": {"core": "interpreted"}})
    return "interpreted"
