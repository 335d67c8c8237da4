"""The documentation site: built strictly, complete, offline, and served by the edge."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from html import unescape
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser
from starlette.applications import Starlette

from edge.app import create_app
from mesh.config import Settings
from support import REPO, load_tool, serving
from unit.tools.test_apidocs import all_methods, http_routes

apidocs = load_tool("apidocs")
# Directories that hold no Python source of the project.
NOT_SOURCES = frozenset({".venv", ".git", "gen", "build", "web", "third_party", "node_modules"})
ENV_VAR = re.compile(r"^CFD_[A-Z0-9_]*[A-Z0-9]$")
NAMED_FAMILY = re.compile(r"(CFD_[A-Z0-9_]*)<(?:NAME|i)>([A-Z0-9_]*)")
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
    # A documented family such as CFD_OIDC_<NAME>_ISSUER (or CFD_ENGINE_ADDR_<i>) covers every
    # name in its place.
    families = [
        re.compile(re.escape(head) + "[A-Z0-9_]+" + re.escape(tail))
        for head, tail in NAMED_FAMILY.findall(unescape(configuration))
    ]
    missing = {
        name: files
        for name, files in variables.items()
        if name not in configuration and not any(f.fullmatch(name) for f in families)
    }
    assert not missing, f"undocumented settings (add them to the README's tables): {missing}"


def test_the_site_loads_nothing_from_other_hosts(site: Path) -> None:
    pages = list(site.rglob("*.html"))
    assert len(pages) > 15
    for page in pages:
        html = page.read_text()
        assert not EXTERNAL_ASSET.search(html), page
        # Material fetches the Mermaid library from a CDN for such blocks.
        assert 'class="mermaid"' not in html, page


def edge_app(data_dir: Path, site: Path) -> Starlette:
    """Return an edge serving `site` as its documentation (no service behind it)."""
    settings = Settings.from_env({"CFD_DATA_DIR": str(data_dir)})
    return create_app(settings, addresses={}, docs_site=site)


@pytest.fixture
async def edge_client(site: Path, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=edge_app(tmp_path, site))
    async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
        yield client


async def test_the_edge_serves_the_built_site(edge_client: httpx.AsyncClient) -> None:
    moved = await edge_client.get("/docs/site")
    assert moved.status_code == 307 and moved.headers["location"] == "/docs/site/"
    index = await edge_client.get("/docs/site/")
    assert index.status_code == 200 and "text/html" in index.headers["content-type"]
    assert "Trading concepts" in index.text
    page = await edge_client.get("/docs/site/api/reference/trading-service/")
    assert page.status_code == 200
    assert "/cfd.v1.TradingService/OpenPosition" in page.text
    styles = re.search(r'href="(assets/stylesheets/main\.[^"]+\.css)"', index.text)
    assert styles is not None
    assert (await edge_client.get(f"/docs/site/{styles.group(1)}")).status_code == 200
    # The OpenAPI browser keeps its own path.
    assert (await edge_client.get("/docs")).status_code == 200


async def test_the_edge_says_how_to_build_a_missing_site(tmp_path: Path) -> None:
    transport = httpx.ASGITransport(app=edge_app(tmp_path, tmp_path / "not-built"))
    async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
        response = await client.get("/docs/site/")
    assert response.status_code == 404
    assert "make docs" in response.text


def test_the_site_works_offline_in_a_browser_search_included(
    site: Path, tmp_path: Path, browser: Browser
) -> None:
    with serving(edge_app(tmp_path, site)) as url:
        page = browser.new_page()
        outside: list[str] = []
        page.on(
            "request",
            lambda request: None if request.url.startswith(url) else outside.append(request.url),
        )
        try:
            page.goto(f"{url}/docs/site/user/concepts/")
            page.get_by_role("heading", name="Liquidation").first.wait_for()
            search = page.locator("input.md-search__input")
            search.click()
            # Keys typed before the search index is ready are not searched again.
            page.locator(".md-search-result__meta", has_text="Type to start").wait_for()
            search.press_sequentially("liquidation price", delay=20)
            page.locator(".md-search-result__item").first.wait_for(timeout=15_000)
            page.goto(f"{url}/docs/site/api/reference/websocket-channels/")
            page.locator("#channel-candles").wait_for()
            assert outside == []
        finally:
            page.close()
