"""The web trading page in a real browser against the real mesh on the manual feed."""

from __future__ import annotations

import time
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from playwright.sync_api import Locator, Page, WebSocketRoute, expect

from e2e.browser_support import Mesh, expect_money, number, shown, sign_up, unique_email
from support import REPO

ARTIFACTS = REPO / "test-artifacts"
MICRO = Decimal("0.000001")
CENT = Decimal("0.01")


def margin_of(quantity: Decimal, price: Decimal, leverage: int) -> Decimal:
    """Margin as API.md defines it: notional / leverage rounded up to 1e-6."""
    return (quantity * price / leverage).quantize(MICRO, rounding=ROUND_CEILING)


def buy_liquidation(entry: Decimal, quantity: Decimal, margin: Decimal) -> Decimal:
    """Buy liquidation price with a zero maintenance rate, rounded up to the cent tick."""
    return ((entry - margin / quantity) / CENT).to_integral_value(ROUND_CEILING) * CENT


def toast(page: Page, title: str) -> Locator:
    return page.get_by_test_id("toast").filter(has_text=title)


def set_leverage(page: Page, leverage: int) -> None:
    """Move the leverage slider with the keyboard, as a keyboard-only user would."""
    slider = page.get_by_test_id("order-leverage")
    slider.focus()
    page.keyboard.press("Home")
    for _ in range(leverage - 1):
        page.keyboard.press("ArrowRight")
    expect(page.get_by_test_id("order-leverage-value")).to_have_text(f"{leverage}×")


def open_market(
    page: Page,
    quantity: str,
    leverage: int,
    side: str = "buy",
    take_profit: str = "",
) -> Locator:
    """Open a market position from the order panel and return its row."""
    rows = page.get_by_test_id("position-row")
    before = rows.count()
    page.get_by_test_id(f"side-{side}").click()
    page.get_by_test_id("type-market").click()
    page.get_by_test_id("size-quantity").click()
    page.get_by_test_id("order-amount").fill(quantity)
    set_leverage(page, leverage)
    if take_profit:
        page.get_by_test_id("order-tp").fill(take_profit)
    page.get_by_test_id("order-submit").click()
    expect(page.get_by_test_id("order-notice")).to_be_visible()
    expect(rows).to_have_count(before + 1)
    return rows.last


def select(page: Page, symbol: str) -> None:
    page.get_by_test_id(f"instrument-{symbol}").click()
    expect(page.get_by_test_id("chart-symbol")).to_have_text(symbol)


def test_sign_up_shows_balance_and_chart_candles(mesh: Mesh, page: Page) -> None:
    sign_up(page)
    expect(page.get_by_test_id("account-balance")).to_have_text("5,000.00")
    page.wait_for_function(
        "() => Number(document.querySelector('[data-testid=chart]')?.dataset.candleCount) > 0"
    )
    page.get_by_test_id("interval-1h").click()
    page.wait_for_function(
        "() => Number(document.querySelector('[data-testid=chart]')?.dataset.candleCount) > 0"
    )


def test_keyboard_moves_through_instruments_and_interval(mesh: Mesh, page: Page) -> None:
    sign_up(page)
    select(page, "BTCUSD")
    page.get_by_test_id("instrument-BTCUSD").focus()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_test_id("chart-symbol")).to_have_text("ETHUSD")
    expect(page.get_by_test_id("instrument-ETHUSD")).to_be_focused()
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    expect(page.get_by_test_id("chart-symbol")).to_have_text("SOLUSD")
    page.get_by_test_id("interval-5m").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("interval-5m")).to_have_attribute("aria-pressed", "true")
    page.wait_for_function(
        "() => Number(document.querySelector('[data-testid=chart]')?.dataset.candleCount) > 0"
    )


def test_sign_up_reports_a_taken_email_on_the_field(mesh: Mesh, page: Page) -> None:
    email = sign_up(page)
    page.get_by_test_id("signout").click()
    expect(page.get_by_test_id("auth-submit")).to_be_visible()
    page.get_by_test_id("auth-mode-signup").click()
    page.get_by_test_id("auth-email").fill(email)
    page.get_by_test_id("auth-password").fill("another-password")
    page.get_by_test_id("auth-submit").click()
    expect(page.get_by_test_id("auth-email-error")).to_contain_text("already exists")
    page.get_by_test_id("auth-mode-signin").click()
    page.get_by_test_id("auth-email").fill(unique_email())
    page.get_by_test_id("auth-password").fill("whatever-password")
    page.get_by_test_id("auth-submit").click()
    expect(page.get_by_test_id("auth-error")).to_have_text("Wrong email or password")


def boxes(page: Page, test_ids: list[str]) -> dict[str, tuple[float, float, float, float]]:
    """Return where each element is drawn, to compare before and after a tick."""
    found: dict[str, tuple[float, float, float, float]] = {}
    for test_id in test_ids:
        box = page.get_by_test_id(test_id).bounding_box()
        assert box is not None, test_id
        found[test_id] = (box["x"], box["y"], box["width"], box["height"])
    return found


def test_sign_up_shows_the_servers_field_violation(mesh: Mesh, page: Page) -> None:
    page.goto("/")
    page.get_by_test_id("auth-mode-signup").click()
    # Passes the page's own check; the server wants a top-level domain of two letters or more.
    page.get_by_test_id("auth-email").fill("trader@example.c")
    page.get_by_test_id("auth-password").fill("long-enough-password")
    page.get_by_test_id("auth-submit").click()
    expect(page.get_by_test_id("auth-email-error")).to_have_text(
        "Email is not a valid email address"
    )
    expect(page.get_by_test_id("auth-email")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_test_id("auth-password-error")).to_have_count(0)


def test_published_tick_changes_the_bid_within_a_second(mesh: Mesh, page: Page) -> None:
    sign_up(page)
    select(page, "ETHUSD")
    mesh.publish("ETHUSD", "3000.00", "3000.60")
    bid = page.get_by_test_id("bid-ETHUSD")
    expect(bid).to_have_text("3,000.00")
    started = time.monotonic()
    mesh.publish("ETHUSD", "3012.34", "3012.95")
    expect(bid).to_have_text("3,012.34", timeout=1_000)
    assert time.monotonic() - started < 1.0
    expect(page.get_by_test_id("ask-ETHUSD")).to_have_text("3,012.95")
    expect(page.get_by_test_id("chart-bid")).to_have_text("3,012.34")


def test_price_ticks_do_not_move_the_layout(mesh: Mesh, page: Page) -> None:
    mesh.publish("ETHUSD", "9999.98", "9999.99")
    sign_up(page)
    select(page, "ETHUSD")
    watched = [
        "bid-ETHUSD",
        "ask-ETHUSD",
        "change-ETHUSD",
        "chart-ask",
        "chart",
        "side-buy",
        "order-submit",
        "order-amount",
        "account-equity",
        "connection-status",
    ]
    expect(page.get_by_test_id("ask-ETHUSD")).to_have_text("9,999.99")
    before = boxes(page, watched)
    # One more digit in every price.
    mesh.publish("ETHUSD", "10000.01", "10000.02")
    expect(page.get_by_test_id("ask-ETHUSD")).to_have_text("10,000.02")
    expect(page.get_by_test_id("chart-ask")).to_have_text("10,000.02")
    assert boxes(page, watched) == before


def test_order_rejected_at_its_trigger_toasts_the_reason(mesh: Mesh, page: Page) -> None:
    mesh.publish("BTCUSD", "64000.00", "64010.00")
    sign_up(page)
    select(page, "BTCUSD")
    page.get_by_test_id("side-sell").click()
    page.get_by_test_id("type-stop").click()
    page.get_by_test_id("order-trigger").fill("63900.00")
    page.get_by_test_id("order-amount").fill("2")
    set_leverage(page, 1)
    page.get_by_test_id("order-submit").click()
    expect(page.get_by_test_id("order-notice")).to_have_text("Stop order placed")
    mesh.publish("BTCUSD", "63899.00", "63909.00")
    rejected = toast(page, "Order rejected")
    expect(rejected).to_have_count(1)
    expect(rejected).to_contain_text("Not enough free margin for this order")
    page.get_by_test_id("tab-orders").click()
    expect(page.get_by_test_id("orders-empty")).to_be_visible()


def test_open_position_shows_preview_and_the_right_margin(mesh: Mesh, page: Page) -> None:
    mesh.publish("BTCUSD", "64000.00", "64010.15")
    sign_up(page)
    select(page, "BTCUSD")
    expect(page.get_by_test_id("ask-BTCUSD")).to_have_text("64,010.15")
    quantity, ask, leverage = Decimal("0.0123"), Decimal("64010.15"), 7
    margin = margin_of(quantity, ask, leverage)
    liquidation = buy_liquidation(ask, quantity, margin)
    page.get_by_test_id("order-amount").fill(str(quantity))
    set_leverage(page, leverage)
    expect_money(page.get_by_test_id("preview-margin"), margin)
    expect(page.get_by_test_id("preview-liquidation")).to_have_text(shown(liquidation))
    row = open_market(page, str(quantity), leverage)
    expect_money(row.get_by_test_id("position-margin"), margin)
    expect(row.get_by_test_id("position-liquidation")).to_have_text(shown(liquidation))
    expect(row.get_by_test_id("position-quantity")).to_have_text("0.0123")
    expect(toast(page, "Position opened")).to_have_count(1)
    balance = Decimal(5000) - margin
    expect_money(page.get_by_test_id("account-balance"), balance)


def test_rejected_order_shows_the_reason_in_words(mesh: Mesh, page: Page) -> None:
    mesh.publish("BTCUSD", "64000.00", "64010.00")
    sign_up(page)
    select(page, "BTCUSD")
    page.get_by_test_id("order-amount").fill("5")
    set_leverage(page, 1)
    page.get_by_test_id("order-submit").click()
    expect(page.get_by_test_id("order-error")).to_have_text("Not enough free margin for this order")
    expect(page.get_by_test_id("positions-empty")).to_be_visible()


def test_price_move_changes_the_unrealized_pnl(mesh: Mesh, page: Page) -> None:
    mesh.publish("SOLUSD", "150.000", "150.030")
    sign_up(page)
    select(page, "SOLUSD")
    row = open_market(page, "10", 5)
    mesh.publish("SOLUSD", "151.500", "151.530")
    # Buy PnL = (bid - entry) x quantity = (151.500 - 150.030) x 10.
    expect(row.get_by_test_id("position-pnl")).to_have_text("+14.70")
    mesh.publish("SOLUSD", "149.000", "149.030")
    expect(row.get_by_test_id("position-pnl")).to_have_text("-10.30")


def test_take_profit_hit_toasts_and_lands_in_history(mesh: Mesh, page: Page) -> None:
    mesh.publish("ETHUSD", "3000.00", "3000.60")
    sign_up(page)
    select(page, "ETHUSD")
    open_market(page, "0.5", 10, take_profit="3050.00")
    mesh.publish("ETHUSD", "3050.10", "3050.70")
    expect(toast(page, "Take profit hit")).to_have_count(1)
    expect(page.get_by_test_id("positions-empty")).to_be_visible()
    page.get_by_test_id("tab-history").click()
    history = page.get_by_test_id("history-row").first
    expect(history.get_by_test_id("history-reason")).to_have_text("Take profit")
    # Closed at the triggering bid: (3050.10 - 3000.60) x 0.5.
    expect(history.get_by_test_id("history-pnl")).to_have_text("+24.75")


def test_partial_close_keeps_the_rest_open(mesh: Mesh, page: Page) -> None:
    mesh.publish("BTCUSD", "64000.00", "64010.00")
    sign_up(page)
    select(page, "BTCUSD")
    row = open_market(page, "0.0200", 10)
    row.get_by_test_id("position-close").click()
    dialog = page.get_by_test_id("dialog-close")
    expect(dialog).to_be_visible()
    dialog.get_by_test_id("close-quantity").fill("0.005")
    dialog.get_by_test_id("close-submit").click()
    expect(dialog).to_be_hidden()
    expect(row.get_by_test_id("position-quantity")).to_have_text("0.015")
    # The margin left is the original minus the released part (rounded down).
    margin = margin_of(Decimal("0.02"), Decimal("64010.00"), 10)
    released = (margin * Decimal("0.005") / Decimal("0.02")).quantize(MICRO, rounding=ROUND_FLOOR)
    expect_money(row.get_by_test_id("position-margin"), margin - released)
    page.get_by_test_id("tab-history").click()
    expect(page.get_by_test_id("history-row")).to_have_count(1)
    expect(page.get_by_test_id("history-row").first).to_contain_text("0.005")


def test_edit_stops_and_add_margin(mesh: Mesh, page: Page) -> None:
    mesh.publish("ETHUSD", "3000.00", "3000.60")
    sign_up(page)
    select(page, "ETHUSD")
    row = open_market(page, "1", 20)
    row.get_by_test_id("position-edit").click()
    dialog = page.get_by_test_id("dialog-stops")
    dialog.get_by_test_id("modify-tp").fill("3100.00")
    dialog.get_by_test_id("modify-sl").fill("2900.00")
    dialog.get_by_test_id("modify-submit").click()
    expect(dialog).to_be_hidden()
    expect(row).to_contain_text("3,100.00")
    expect(row).to_contain_text("2,900.00")
    expect(toast(page, "Position updated")).to_have_count(1)
    # A stop on the wrong side is refused with the reason in words.
    row.get_by_test_id("position-edit").click()
    dialog.get_by_test_id("modify-sl").fill("3050.00")
    dialog.get_by_test_id("modify-submit").click()
    expect(dialog.get_by_test_id("dialog-error")).to_contain_text("wrong side")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    # 150.03 USD margin + 49.97 moves the buy liquidation to 3000.60 - 200 / 1 = 2800.60.
    row.get_by_test_id("position-add-margin").click()
    page.get_by_test_id("margin-amount").fill("49.97")
    page.get_by_test_id("margin-submit").click()
    expect(row.get_by_test_id("position-margin")).to_have_text("200.00")
    expect(row.get_by_test_id("position-liquidation")).to_have_text("2,800.60")
    expect(toast(page, "Margin added")).to_contain_text(
        "+49.97 USD to Buy 1 ETHUSD: margin 200.00 USD, liquidation at 2,800.60"
    )


def test_pending_limit_order_fills(mesh: Mesh, page: Page) -> None:
    mesh.publish("SOLUSD", "150.000", "150.030")
    sign_up(page)
    select(page, "SOLUSD")
    page.get_by_test_id("side-buy").click()
    page.get_by_test_id("type-limit").click()
    page.get_by_test_id("order-trigger").fill("149.500")
    page.get_by_test_id("order-amount").fill("2")
    set_leverage(page, 4)
    expect(page.get_by_test_id("preview-margin")).to_have_text(
        shown(margin_of(Decimal(2), Decimal("149.500"), 4))
    )
    page.get_by_test_id("order-submit").click()
    expect(page.get_by_test_id("order-notice")).to_have_text("Limit order placed")
    page.get_by_test_id("tab-orders").click()
    expect(page.get_by_test_id("order-row")).to_have_count(1)
    mesh.publish("SOLUSD", "149.400", "149.450")
    expect(toast(page, "Order filled")).to_have_count(1)
    expect(page.get_by_test_id("orders-empty")).to_be_visible()
    page.get_by_test_id("tab-positions").click()
    row = page.get_by_test_id("position-row")
    expect(row).to_have_count(1)
    # Filled at the triggering ask, not at the trigger level.
    filled_margin = margin_of(Decimal(2), Decimal("149.450"), 4)
    expect_money(row.get_by_test_id("position-margin"), filled_margin)


def test_pending_order_can_be_cancelled(mesh: Mesh, page: Page) -> None:
    mesh.publish("ETHUSD", "3000.00", "3000.60")
    sign_up(page)
    select(page, "ETHUSD")
    page.get_by_test_id("side-sell").click()
    page.get_by_test_id("type-limit").click()
    page.get_by_test_id("order-trigger").fill("3100.00")
    page.get_by_test_id("order-amount").fill("0.1")
    page.get_by_test_id("order-submit").click()
    page.get_by_test_id("tab-orders").click()
    expect(page.get_by_test_id("order-expires")).to_have_text("Good till cancelled")
    page.get_by_test_id("order-cancel").click()
    expect(page.get_by_test_id("orders-empty")).to_be_visible()
    expect(toast(page, "Order cancelled")).to_have_count(1)


LOCAL_TIME_IN = """(ms) => {
  const d = new Date(Date.now() + ms);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:`
    + `${p(d.getMinutes())}:${p(d.getSeconds())}`;
}"""


def test_pending_order_expires_with_a_toast(mesh: Mesh, page: Page) -> None:
    mesh.publish("ETHUSD", "3000.00", "3000.60")
    sign_up(page)
    select(page, "ETHUSD")
    page.get_by_test_id("side-buy").click()
    page.get_by_test_id("type-limit").click()
    page.get_by_test_id("order-trigger").fill("2900.00")
    page.get_by_test_id("order-amount").fill("0.1")
    page.get_by_test_id("order-expiry").fill(page.evaluate(LOCAL_TIME_IN, -60_000))
    page.get_by_test_id("order-submit").click()
    expect(page.get_by_test_id("order-expireTime-error")).to_have_text("Must be in the future")
    page.get_by_test_id("order-expiry").fill(page.evaluate(LOCAL_TIME_IN, 4_000))
    page.get_by_test_id("order-submit").click()
    expect(page.get_by_test_id("order-notice")).to_have_text("Limit order placed")
    page.get_by_test_id("tab-orders").click()
    expect(page.get_by_test_id("order-row")).to_have_count(1)
    expired = toast(page, "Order expired")
    expect(expired).to_have_count(1, timeout=15_000)
    expect(page.get_by_test_id("orders-empty")).to_be_visible()


def test_liquidation_toasts(mesh: Mesh, page: Page) -> None:
    mesh.publish("BTCUSD", "64000.00", "64010.00")
    sign_up(page)
    select(page, "BTCUSD")
    row = open_market(page, "0.01", 100)
    liquidation = number(row.get_by_test_id("position-liquidation").inner_text())
    assert liquidation == buy_liquidation(
        Decimal("64010.00"), Decimal("0.01"), margin_of(Decimal("0.01"), Decimal("64010.00"), 100)
    )
    below = liquidation - Decimal("5.00")
    mesh.publish("BTCUSD", f"{below:.2f}", f"{below + Decimal('10.00'):.2f}")
    expect(toast(page, "Position liquidated")).to_have_count(1)
    expect(page.get_by_test_id("positions-empty")).to_be_visible()
    page.get_by_test_id("tab-history").click()
    expect(page.get_by_test_id("history-reason").first).to_have_text("Liquidation")


def test_reload_keeps_the_session_and_repeats_no_toast(mesh: Mesh, page: Page) -> None:
    mesh.publish("ETHUSD", "3000.00", "3000.60")
    email = sign_up(page)
    select(page, "ETHUSD")
    open_market(page, "0.2", 10)
    expect(toast(page, "Position opened")).to_have_count(1)
    page.reload()
    expect(page.get_by_test_id("trading-screen")).to_be_visible()
    expect(page.get_by_test_id("user-email")).to_have_text(email)
    expect(page.get_by_test_id("chart-symbol")).to_have_text("ETHUSD")
    expect(page.get_by_test_id("position-row")).to_have_count(1)
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "online")
    # An event after the reload is announced; the one before it is not announced again.
    page.get_by_test_id("position-close").click()
    page.get_by_test_id("dialog-close").get_by_test_id("close-all").click()
    expect(toast(page, "Position closed")).to_have_count(1)
    expect(toast(page, "Position opened")).to_have_count(0)


def test_reconnect_shows_offline_and_loses_no_event(mesh: Mesh, page: Page) -> None:
    routes: list[WebSocketRoute] = []
    offline = [False]

    def relay(route: WebSocketRoute) -> None:
        routes.append(route)
        if offline[0]:
            route.close(code=1006)
        else:
            route.connect_to_server()

    page.route_web_socket("**/v1/ws", relay)
    mesh.publish("SOLUSD", "150.000", "150.030")
    sign_up(page)
    select(page, "SOLUSD")
    open_market(page, "3", 10, take_profit="152.000")
    expect(toast(page, "Position opened")).to_have_count(1)
    offline[0] = True
    routes[-1].close(code=1006)
    status = page.get_by_test_id("connection-status")
    expect(status).to_have_text("Offline — reconnecting")
    # The take profit fires while the page is cut off.
    mesh.publish("SOLUSD", "152.100", "152.130")
    attempts = len(routes)
    expect(status).to_have_text("Offline — reconnecting")
    offline[0] = False
    expect(status).to_have_attribute("data-state", "online", timeout=20_000)
    assert len(routes) > attempts
    expect(toast(page, "Take profit hit")).to_have_count(1)
    expect(toast(page, "Position opened")).to_have_count(1)
    expect(page.get_by_test_id("positions-empty")).to_be_visible()


def test_session_is_refreshed_before_the_token_expires(mesh: Mesh, page: Page) -> None:
    mesh.publish("SOLUSD", "150.000", "150.030")
    sign_up(page)
    select(page, "SOLUSD")
    first = page.evaluate("() => JSON.parse(localStorage.getItem('cfd.session'))")
    # The mesh issues 20-second access tokens: the page must swap its token before expiry.
    page.wait_for_function(
        "(token) => JSON.parse(localStorage.getItem('cfd.session'))?.accessToken !== token",
        arg=first["accessToken"],
        timeout=30_000,
    )
    page.wait_for_function("(at) => Date.now() > at + 1000", arg=first["expiresAt"], timeout=30_000)
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "online")
    row = open_market(page, "1", 2)
    # The private channels outlived the first token: positions still update live.
    mesh.publish("SOLUSD", "151.000", "151.030")
    expect(row.get_by_test_id("position-pnl")).to_have_text("+0.97")


def test_main_screen_screenshot(mesh: Mesh, page: Page) -> None:
    mesh.publish("BTCUSD", "64000.00", "64010.00")
    sign_up(page)
    select(page, "BTCUSD")
    open_market(page, "0.05", 20, take_profit="66000.00")
    mesh.publish("BTCUSD", "64120.55", "64130.55")
    expect(page.get_by_test_id("position-pnl")).to_have_text("+5.53")
    expect(page.get_by_test_id("position-pnl")).to_have_attribute("title", "+5.5275")
    page.get_by_test_id("order-amount").fill("0.02")
    clipped = page.evaluate(
        "() => { const bar = document.querySelector('[data-testid=account-bar]');"
        " return bar.scrollWidth > bar.clientWidth; }"
    )
    assert not clipped, "the account figures do not fit at 1280x800"
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "web-main-1280x800.png"
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000
    page.set_viewport_size({"width": 390, "height": 844})
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at phone width ({width}px)"
    page.screenshot(path=str(ARTIFACTS / "web-main-phone.png"), full_page=True)
