"""Trading from the chart in a real browser: price lines, dragging a stop or an order, one-click
orders, and editing a pending order."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
from playwright.sync_api import Locator, Page, expect

from e2e.browser_support import Mesh, sign_up
from support import REPO

ARTIFACTS = REPO / "test-artifacts"


def rest(page: Page, mesh: Mesh, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call the public API as the signed-in user of the page."""
    token = page.evaluate("() => JSON.parse(localStorage.getItem('cfd.session')).accessToken")
    reply = httpx.request(
        method,
        f"{mesh.base_url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    reply.raise_for_status()
    return reply.json()


def chart_line(page: Page, kind: str) -> Locator:
    return page.locator(f"[data-testid=chart-line][data-kind={kind}]")


def line_row(page: Page, kind: str) -> float:
    """Where a line is drawn on the chart, in page pixels (after the pointer crossed the chart)."""
    chart = page.get_by_test_id("chart")
    box = chart.bounding_box()
    assert box is not None
    # Crossing the chart refreshes the rows; the second move reads the settled drawing.
    page.mouse.move(box["x"] + box["width"] / 3, box["y"] + box["height"] / 2)
    page.mouse.move(box["x"] + box["width"] / 3 + 1, box["y"] + box["height"] / 2)
    line = chart_line(page, kind)
    expect(line).not_to_have_attribute("data-y", "")
    return box["y"] + float(line.get_attribute("data-y") or "nan")


def open_with_stops(page: Page, mesh: Mesh) -> str:
    """Open a BTCUSD buy with TP and SL through REST and wait for its lines on the chart."""
    page.get_by_test_id("instrument-BTCUSD").click()
    position = rest(
        page,
        mesh,
        "POST",
        "/v1/positions",
        {
            "symbol": "BTCUSD",
            "side": "SIDE_BUY",
            "quantity": "0.01",
            "leverage": 10,
            "takeProfit": "64500.00",
            "stopLoss": "63500.00",
        },
    )
    expect(chart_line(page, "stopLoss")).to_have_attribute("data-price", "63500.00")
    return str(position["position"]["id"])


def drag(page: Page, from_y: float, to_y: float) -> None:
    box = page.get_by_test_id("chart").bounding_box()
    assert box is not None
    x = box["x"] + box["width"] / 3
    page.mouse.move(x, from_y)
    page.mouse.down()
    for step in range(1, 6):
        page.mouse.move(x, from_y + (to_y - from_y) * step / 5)
    page.mouse.up()


def test_chart_shows_entry_tp_sl_liquidation_and_order_lines(mesh: Mesh, page: Page) -> None:
    mesh.publish("BTCUSD", "64000.00", "64010.00")
    sign_up(page)
    open_with_stops(page, mesh)
    rest(
        page,
        mesh,
        "POST",
        "/v1/orders",
        {
            "symbol": "BTCUSD",
            "side": "SIDE_BUY",
            "type": "ORDER_TYPE_LIMIT",
            "triggerPrice": "63800.00",
            "quantity": "0.02",
            "leverage": 5,
        },
    )
    expect(chart_line(page, "order")).to_have_attribute("data-draggable", "true")
    expect(chart_line(page, "entry")).to_have_attribute("data-price", "64010.00")
    expect(chart_line(page, "takeProfit")).to_have_attribute("data-draggable", "true")
    expect(chart_line(page, "liquidation")).to_have_count(1)
    expect(chart_line(page, "order")).to_contain_text("Buy limit 0.02 at 63,800.00")
    for name in ("ma", "ema", "bb", "rsi"):
        page.get_by_test_id(f"indicator-{name}").click()
        expect(page.get_by_test_id(f"indicator-{name}")).to_have_attribute("aria-pressed", "true")
    ARTIFACTS.mkdir(exist_ok=True)
    page.get_by_test_id("chart").screenshot(path=str(ARTIFACTS / "chart-lines.png"))


def place_limit(page: Page, mesh: Mesh, price: str) -> str:
    """Place a BTCUSD buy limit through REST and wait for its line on the chart."""
    page.get_by_test_id("instrument-BTCUSD").click()
    order = {"symbol": "BTCUSD", "side": "SIDE_BUY", "type": "ORDER_TYPE_LIMIT",
             "triggerPrice": price, "quantity": "0.02", "leverage": 5}  # fmt: skip
    placed = rest(page, mesh, "POST", "/v1/orders", order)["order"]
    expect(chart_line(page, "order")).to_have_attribute("data-price", price)
    return str(placed["id"])


def pending(page: Page, mesh: Mesh, order_id: str) -> dict[str, Any]:
    orders = rest(page, mesh, "GET", "/v1/orders")["orders"]
    found: dict[str, Any] = next(o for o in orders if o["id"] == order_id)
    return found


def test_dragging_a_pending_orders_line_moves_its_price_after_confirmation(
    mesh: Mesh, page: Page
) -> None:
    mesh.publish("BTCUSD", "64000.00", "64010.00")
    sign_up(page)
    order_id = place_limit(page, mesh, "63800.00")
    order_row = line_row(page, "order")
    box = page.get_by_test_id("chart").bounding_box()
    assert box is not None
    # Further down the chart: a lower limit price, still below the ask.
    drag(page, order_row, order_row + (box["y"] + box["height"] - order_row) / 3)
    dialog = page.get_by_test_id("dialog-move-line")
    expect(dialog).to_be_visible()
    text = dialog.get_by_test_id("move-line-text")
    expect(text).to_contain_text("Order price 63,800.00 → ")
    new_price = Decimal(text.get_attribute("data-new-price") or "")
    assert new_price < Decimal("63800.00")
    dialog.get_by_test_id("move-line-confirm").click()
    expect(dialog).to_be_hidden()
    assert Decimal(pending(page, mesh, order_id)["triggerPrice"]) == new_price
    expect(chart_line(page, "order")).to_have_attribute("data-price", f"{new_price:.2f}")


def test_a_pending_order_is_edited_from_the_orders_table(mesh: Mesh, page: Page) -> None:
    mesh.publish("BTCUSD", "64000.00", "64010.00")
    sign_up(page)
    order_id = place_limit(page, mesh, "63700.00")
    page.get_by_role("tab", name="Orders (1)").click()
    page.get_by_test_id("order-edit").click()
    dialog = page.get_by_test_id("dialog-edit-order")
    expect(dialog.get_by_test_id("edit-order-price")).to_have_value("63700.00")
    # A price above the ask is no limit: refused, the dialog stays with the reason.
    dialog.get_by_test_id("edit-order-price").fill("65000")
    dialog.get_by_test_id("edit-order-submit").click()
    expect(dialog.get_by_test_id("dialog-error")).to_be_visible()
    assert pending(page, mesh, order_id)["triggerPrice"] == "63700.00"

    dialog.get_by_test_id("edit-order-price").fill("63650.5")
    dialog.get_by_test_id("edit-order-size").fill("0.03")
    dialog.get_by_test_id("edit-order-sl").fill("62000")
    dialog.get_by_test_id("edit-order-submit").click()
    expect(dialog).to_be_hidden()
    order = pending(page, mesh, order_id)
    assert (order["triggerPrice"], order["quantity"], order["stopLoss"]) == (
        "63650.50", "0.0300", "62000.00"
    )
    expect(page.get_by_test_id("order-row")).to_contain_text("63,650.50")


def test_dragging_the_stop_loss_line_modifies_the_position_after_confirmation(
    mesh: Mesh, page: Page
) -> None:
    mesh.publish("BTCUSD", "64000.00", "64010.00")
    sign_up(page)
    position_id = open_with_stops(page, mesh)
    stop_row = line_row(page, "stopLoss")
    # Halfway between the stop and the liquidation price: a valid, lower stop.
    target_row = (stop_row + line_row(page, "liquidation")) / 2

    # Cancelling puts the line back and changes nothing.
    drag(page, stop_row, target_row)
    dialog = page.get_by_test_id("dialog-move-line")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_test_id("move-line-text")).to_contain_text("Stop loss 63,500.00 → ")
    dialog.get_by_test_id("move-line-cancel").click()
    expect(dialog).to_be_hidden()
    unchanged = rest(page, mesh, "GET", f"/v1/positions/{position_id}")["position"]
    assert unchanged["stopLoss"] == "63500.00"

    drag(page, stop_row, target_row)
    expect(dialog).to_be_visible()
    text = dialog.get_by_test_id("move-line-text")
    new_price = Decimal(text.get_attribute("data-new-price") or "")
    assert Decimal("57609.00") < new_price < Decimal("63500.00")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chart-drag-confirm.png"))
    dialog.get_by_test_id("move-line-confirm").click()
    expect(dialog).to_be_hidden()
    position = rest(page, mesh, "GET", f"/v1/positions/{position_id}")["position"]
    assert Decimal(position["stopLoss"]) == new_price
    assert position["takeProfit"] == "64500.00"
    expect(chart_line(page, "stopLoss")).to_have_attribute(
        "data-price", position["stopLoss"]
    )


def test_one_click_trading_sends_on_buy_and_sell_and_is_remembered(
    mesh: Mesh, page: Page
) -> None:
    mesh.publish("BTCUSD", "64000.00", "64010.00")
    sign_up(page)
    page.get_by_test_id("instrument-BTCUSD").click()
    page.get_by_test_id("type-market").click()
    page.get_by_test_id("order-amount").fill("0.01")
    rows = page.get_by_test_id("position-row")
    # Off by default: Buy only picks the side, the order button sends.
    toggle = page.get_by_test_id("one-click-toggle")
    expect(toggle).not_to_be_checked()
    page.get_by_test_id("side-buy").click()
    expect(page.get_by_test_id("order-submit")).to_have_text("Buy BTCUSD")
    expect(rows).to_have_count(0)

    toggle.check()
    page.get_by_test_id("side-sell").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Sell")
    page.reload()
    expect(page.get_by_test_id("one-click-toggle")).to_be_checked()
    page.get_by_test_id("order-amount").fill("0.02")
    page.get_by_test_id("side-buy").click()
    expect(rows).to_have_count(2)
    positions = rest(page, mesh, "GET", "/v1/positions")["positions"]
    assert sorted((p["side"], Decimal(p["quantity"])) for p in positions) == [
        ("SIDE_BUY", Decimal("0.02")),
        ("SIDE_SELL", Decimal("0.01")),
    ]


Box = tuple[float, float, float, float]


def box_of(locator: Locator) -> Box:
    found = locator.bounding_box()
    assert found is not None
    return found["x"], found["y"], found["width"], found["height"]


def overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def inside_window(page: Page, box: Box) -> bool:
    size = page.viewport_size
    assert size is not None
    x, y, width, height = box
    return x >= 0 and y >= 0 and x + width <= size["width"] and y + height <= size["height"]


def test_layout_fits_1280x800_in_every_order_mode_and_toasts_stay_clear(
    mesh: Mesh, page: Page
) -> None:
    mesh.publish("BTCUSD", "64000.00", "64010.00")
    sign_up(page)
    page.get_by_test_id("instrument-BTCUSD").click()
    for mode in ("market", "limit", "stop"):
        page.get_by_test_id(f"type-{mode}").click()
        # Even scrolled to the end, the account bar and the order button stay in the window.
        page.mouse.move(20, 780)
        page.mouse.wheel(0, 2000)
        page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
        assert inside_window(page, box_of(page.get_by_test_id("account-bar"))), mode
        assert inside_window(page, box_of(page.get_by_test_id("order-submit"))), mode
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"layout-1280x800-{mode}.png"))

    page.get_by_test_id("type-market").click()
    page.get_by_test_id("order-amount").fill("0.01")
    for _ in range(3):
        page.get_by_test_id("order-submit").click()
        expect(page.get_by_test_id("order-notice")).to_be_visible()
    expect(page.get_by_test_id("toast")).to_have_count(3)
    actions = page.get_by_test_id("position-row").first.locator(".row-actions")
    covered = [box_of(page.get_by_test_id("order-submit")), box_of(actions)]
    for index in range(3):
        toast_box = box_of(page.get_by_test_id("toast").nth(index))
        assert not any(overlaps(toast_box, other) for other in covered), toast_box
    page.screenshot(path=str(ARTIFACTS / "layout-1280x800-toasts.png"))


def test_account_bar_warns_as_the_margin_level_falls(mesh: Mesh, page: Page) -> None:
    mesh.publish("BTCUSD", "64000.00", "64010.00")
    sign_up(page)
    alert = page.get_by_test_id("margin-alert")
    expect(alert).to_have_attribute("data-state", "none")
    # 4,480.70 USD of margin at 1×: equity 5,000 - 0.7 USD of spread, level about 111%.
    rest(
        page,
        mesh,
        "POST",
        "/v1/positions",
        {"symbol": "BTCUSD", "side": "SIDE_BUY", "quantity": "0.07", "leverage": 1},
    )
    expect(page.get_by_test_id("position-row")).to_have_count(1)
    expect(alert).to_have_attribute("data-state", "none")
    # A loss of 630.70 takes equity to 4,369.30: 97.51% of the used margin.
    mesh.publish("BTCUSD", "55000.00", "55010.00")
    expect(alert).to_have_attribute("data-state", "warning")
    expect(alert).to_contain_text("Margin call")
    # A loss of 3,080.70 leaves 1,919.30: 42.83%.
    mesh.publish("BTCUSD", "20000.00", "20010.00")
    expect(alert).to_have_attribute("data-state", "danger")
    expect(alert).to_contain_text("Liquidation near")
    ARTIFACTS.mkdir(exist_ok=True)
    page.get_by_test_id("account-bar").screenshot(path=str(ARTIFACTS / "margin-danger.png"))
    mesh.publish("BTCUSD", "64000.00", "64010.00")
    expect(alert).to_have_attribute("data-state", "none")
