"""Generate the Python code, type stubs and descriptor set of the contracts in proto/.

Usage: python tools/protogen.py [OUT_DIR]   write the code (default: gen/)
       python tools/protogen.py --check     fail when gen/ differs from what proto/ generates
"""

from __future__ import annotations

import filecmp
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
THIRD_PARTY = ROOT / "third_party"
DESCRIPTOR_NAME = "cfd.binpb"
# Error detail types are not imported by the contracts, but Envoy's transcoder needs them in
# the descriptor set to render google.rpc.Status details as JSON.
EXTRA_DESCRIPTOR_INPUTS = ("google/rpc/status.proto", "google/rpc/error_details.proto")
INIT_DOC = '"""Generated from proto/cfd/v1 by tools/protogen.py; do not edit."""\n'


def contract_files() -> list[str]:
    """Return the contract files relative to proto/, sorted."""
    return sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))


def generate(out_dir: Path) -> None:
    """Write *_pb2.py, *_pb2_grpc.py, .pyi stubs and the descriptor set into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    well_known = str(resources.files("grpc_tools") / "_proto")
    files = contract_files()
    includes = [f"-I{PROTO_DIR}", f"-I{THIRD_PARTY}", f"-I{well_known}"]
    bin_dir = Path(sys.executable).parent
    code_args = [
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out=quiet:{out_dir}",
        f"--mypy_grpc_out=quiet:{out_dir}",
    ]
    if protoc.main(["protoc", *includes, *code_args, *files]) != 0:
        raise SystemExit("protoc failed generating Python code")
    descriptor = out_dir / "cfd" / "v1" / DESCRIPTOR_NAME
    descriptor_args = [
        f"--descriptor_set_out={descriptor}",
        "--include_imports",
        "--include_source_info",
    ]
    if protoc.main(["protoc", *includes, *descriptor_args, *files, *EXTRA_DESCRIPTOR_INPUTS]) != 0:
        raise SystemExit("protoc failed writing the descriptor set")
    for package in (out_dir / "cfd", out_dir / "cfd" / "v1"):
        (package / "__init__.py").write_text(INIT_DOC)
        (package / "py.typed").write_text("")


def stale_files(committed: Path) -> list[str]:
    """Return the files of `committed` that differ from a fresh generation, or are missing."""
    with tempfile.TemporaryDirectory() as fresh_dir:
        fresh = Path(fresh_dir)
        generate(fresh)
        fresh_files = {p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file()}
        old_files = {
            p.relative_to(committed)
            for p in committed.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }
        changed = [
            str(name)
            for name in sorted(fresh_files & old_files)
            if not filecmp.cmp(fresh / name, committed / name, shallow=False)
        ]
        return sorted({*changed, *map(str, fresh_files ^ old_files)})


def main() -> None:
    if sys.argv[1:] == ["--check"]:
        stale = stale_files(ROOT / "gen")
        if stale:
            raise SystemExit("gen/ is stale; run `make proto`. Differs: " + ", ".join(stale))
        print("gen/ is up to date")
        return
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "gen"
    generate(out)


if __name__ == "__main__":
    main()
