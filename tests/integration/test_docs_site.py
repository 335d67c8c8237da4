"""The documentation site: built strictly, complete and offline."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support import REPO, load_tool
from unit.tools.test_apidocs import all_methods, http_routes

apidocs = load_tool("apidocs")
# Directories that hold no Python source of the project.
NOT_SOURCES = frozenset({".venv", ".git", "gen", "build", "web", "third_party", "node_modules"})
ENV_VAR = re.compile(r"^CFD_[A-Z0-9_]*[A-Z0-9]$")
# An element that would make the browser fetch something from another host.
EXTERNAL_ASSET = re.compile(
    r"<(?:script|link|img|iframe|source|video|audio)\b[^>]*\b(?:src|href)=\"(?:https?:)?//", re.I
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs-site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return out


def page_text(site: Path, source: str) -> str:
    """Return the built HTML of a docs source page (`api/index.md` -> `api/index.html`)."""
    built = source.removesuffix(".md")
    built = built.removesuffix("index").rstrip("/")
    return (site / built / "index.html").read_text()


def python_sources() -> list[Path]:
    """Return the project's Python files, skipping the directories that hold none of its own."""
    sources: list[Path] = []
    for directory, subdirectories, files in os.walk(REPO):
        subdirectories[:] = [d for d in subdirectories if d not in NOT_SOURCES]
        sources += [Path(directory, name) for name in files if name.endswith(".py")]
    return sorted(sources)


def environment_variables() -> dict[str, list[str]]:
    """Return every CFD_* name the Python sources use as a string, with the files using it."""
    found: dict[str, list[str]] = {}
    for path in python_sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            text = node.value if isinstance(node, ast.Constant) else None
            if isinstance(text, str) and ENV_VAR.match(text):
                found.setdefault(text, []).append(str(path.relative_to(REPO)))
    return found


def test_every_rpc_is_in_the_built_reference_with_its_http_routes(site: Path) -> None:
    contracts = apidocs.read_contracts()
    page_of = {s.full_name: s.page for s in contracts.services}
    endpoints = page_text(site, apidocs.NAV_PLACEHOLDER)
    for service, method in all_methods():
        html = page_text(site, page_of[service.full_name])
        assert f'id="{service.name}-{method.name}"' in html, method.full_name
        assert f"/{service.full_name}/{method.name}" in html, method.full_name
        for route in http_routes(method):
            assert route in html, route
            assert route in endpoints, route


def test_every_environment_variable_the_code_reads_is_on_the_configuration_page(
    site: Path,
) -> None:
    variables = environment_variables()
    assert "CFD_DATA_DIR" in variables and "CFD_WS_SEND_TIMEOUT" in variables
    configuration = page_text(site, "operations/configuration.md")
    missing = {name: files for name, files in variables.items() if name not in configuration}
    assert not missing, f"undocumented settings (add them to the README's tables): {missing}"


def test_the_site_loads_nothing_from_other_hosts(site: Path) -> None:
    pages = list(site.rglob("*.html"))
    assert len(pages) > 15
    for page in pages:
        html = page.read_text()
        assert not EXTERNAL_ASSET.search(html), page
        # Material fetches the Mermaid library from a CDN for such blocks.
        assert 'class="mermaid"' not in html, page
