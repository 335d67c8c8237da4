"""The edge's own pages in a real browser: live prices over the WebSocket, and the API docs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from integration.test_edge_support import LiveMesh, live_mesh


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveMesh]:
    with live_mesh(tmp_path_factory.mktemp("edge-page")) as running:
        yield running


def test_the_minimal_page_shows_live_prices(mesh: LiveMesh, browser: Browser) -> None:
    page = browser.new_page()
    try:
        page.goto(f"{mesh.url}/_edge/index.html")
        page.wait_for_selector("#status:has-text('live')", timeout=15_000)
        mesh.publish(("BTCUSD", "61234.56", "61240.00"))
        bid = page.locator("tr[data-symbol='BTCUSD'] .bid")
        bid.filter(has_text="61234.56").wait_for(timeout=15_000)
        assert page.locator("tr[data-symbol='BTCUSD'] .ask").inner_text() == "61240.00"
        mesh.publish(("BTCUSD", "61300.00", "61305.00"))
        bid.filter(has_text="61300.00").wait_for(timeout=15_000)
        assert page.locator("tr[data-symbol='BTCUSD']").get_attribute("class") == "up"
    finally:
        page.close()


def test_the_docs_page_lists_every_operation_offline(mesh: LiveMesh, browser: Browser) -> None:
    page = browser.new_page()
    outside: list[str] = []
    page.on(
        "request",
        lambda request: (
            outside.append(request.url) if not request.url.startswith(mesh.url) else None
        ),
    )
    try:
        page.goto(f"{mesh.url}/docs")
        page.wait_for_selector("#operations details.op")
        assert page.locator("#operations details.op").count() >= 24
        instruments = page.locator("#operations details.op", has_text="/v1/instruments — List")
        instruments.locator("summary").click()
        instruments.locator("button").click()
        instruments.locator("pre", has_text="HTTP 200").wait_for(timeout=10_000)
        assert "BTCUSD" in instruments.locator("pre", has_text="HTTP 200").inner_text()
        assert outside == []
    finally:
        page.close()
