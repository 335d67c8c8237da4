"""Fixtures of the browser tests: the real mesh on the manual feed and a headless Chromium."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Generator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, Response, expect, sync_playwright

from e2e.browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    MAKER_LEVELS,
    PASSWORD,
    Mesh,
    unique_email,
)
from support import REPO, ServiceProcess, mesh_env, wait_for

WEB = REPO / "web"
ARTIFACTS = REPO / "test-artifacts"
ACCESS_TOKEN_TTL_S = 20
OUTCOMES = pytest.StashKey[dict[str, bool]]()


def _web_sources_newer_than(stamp: Path) -> bool:
    built = stamp.stat().st_mtime
    sources = [WEB / "index.html", WEB / "package.json", WEB / "package-lock.json"]
    sources += [p for p in (WEB / "src").rglob("*") if p.is_file()]
    return any(p.stat().st_mtime > built for p in sources)


def _ensure_web_built() -> None:
    """Build web/dist the way `make run` does when it is missing or older than its sources."""
    index = WEB / "dist" / "index.html"
    if index.exists() and not _web_sources_newer_than(index):
        return
    subprocess.run(["make", "--no-print-directory", "web"], cwd=REPO, check=True, timeout=600)
    assert index.exists(), "make web did not produce web/dist/index.html"


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need the system Chromium")
    pytest.skip(f"{CHROMIUM} is missing (install the chromium package to run browser tests)")


def _wait_engine_prices(mesh: Mesh, symbols: set[str]) -> None:
    """Wait until the engine trades on the published quotes ("up" comes before its tick feed)."""
    signup = httpx.post(
        f"{mesh.base_url}/v1/auth/signup",
        json={"email": unique_email(), "password": PASSWORD},
        timeout=10,
    )
    signup.raise_for_status()
    headers = {"Authorization": f"Bearer {signup.json()['accessToken']}"}

    def priced() -> bool:
        reply = httpx.get(f"{mesh.base_url}/v1/prices", headers=headers, timeout=10)
        return reply.is_success and symbols <= {q["symbol"] for q in reply.json().get("prices", [])}

    wait_for(priced, 30, 0.2)


@pytest.fixture(scope="module")
def mesh_overrides() -> dict[str, str]:
    """Return settings a test module adds to the mesh's environment (a module may override)."""
    return {}


@pytest.fixture(scope="module")
def mesh(
    tmp_path_factory: pytest.TempPathFactory, mesh_overrides: dict[str, str]
) -> Iterator[Mesh]:
    """Start `cfd up` on the manual feed with a first quote of every instrument."""
    _require_chromium()
    _ensure_web_built()
    data_dir = tmp_path_factory.mktemp("e2e-mesh")
    # Short-lived access tokens, so that the page's refresh before expiry is exercised.
    # Every test signs a new user up from the same address: lift that abuse limit.
    env = mesh_env(
        data_dir,
        CFD_FEED="manual",
        # A day of backfilled candles fills the chart and keeps start-up short on a busy machine.
        CFD_BACKFILL_DAYS="1",
        CFD_ACCESS_TOKEN_TTL=str(ACCESS_TOKEN_TTL_S),
        CFD_LIMIT_SIGNUP_PER_ADDRESS="500/3600",
        # The market maker quotes half the mid away and never trades itself: the spot tests
        # trade among their own users at prices near the mid.
        CFD_MAKER_LEVELS=str(MAKER_LEVELS),
        CFD_MAKER_SPREAD_BPS="5000",
        CFD_MAKER_TRADE_MS="0",
        **mesh_overrides,
    )
    # Mailed links (written as files: no SMTP server) open the page the tests drive.
    env["CFD_PUBLIC_URL"] = f"http://127.0.0.1:{env['CFD_EDGE_PORT']}"
    up = ServiceProcess(["up"], env, data_dir / "up.log")
    try:
        wait_for(lambda: "CFD Mesh is up" in up.output() or up.process.poll() is not None, 120)
        assert up.process.poll() is None, up.output()
        running = Mesh(env=env, base_url=f"http://127.0.0.1:{env['CFD_EDGE_PORT']}")
        running.publish("BTCUSD", "64000.00", "64010.00")
        running.publish("ETHUSD", "3000.00", "3000.60")
        running.publish("SOLUSD", "150.000", "150.030")
        _wait_engine_prices(running, {"BTCUSD", "ETHUSD", "SOLUSD"})
        yield running
    finally:
        up.stop()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright, mesh: Mesh) -> Iterator[Browser]:
    # Assertions poll up to this long: the mesh shares two cores with whatever else runs.
    expect.set_options(timeout=15_000)
    chromium = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield chromium
    chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember each phase's outcome on the test item, for the page fixture's teardown."""
    report = yield
    item.stash.setdefault(OUTCOMES, {})[report.when] = report.failed
    return report


@pytest.fixture
def page(browser: Browser, mesh: Mesh, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context (no stored session) at the desktop size of the issue."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=mesh.base_url)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    console: list[str] = []
    tab.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    tab.on("pageerror", lambda error: console.append(f"page error: {error}"))

    def record_failure(response: Response) -> None:
        if response.status >= 400:
            console.append(f"{response.request.method} {response.url} -> {response.status}")
            console.append(f"  {response.text()}")

    tab.on("response", record_failure)
    yield tab
    if request.node.stash.get(OUTCOMES, {}).get("call", False):
        # Keep what the browser showed and logged when a test fails.
        ARTIFACTS.mkdir(exist_ok=True)
        name = request.node.name
        tab.screenshot(path=str(ARTIFACTS / f"failed-{name}.png"))
        (ARTIFACTS / f"failed-{name}.log").write_text("\n".join(console) + "\n")
    context.close()
