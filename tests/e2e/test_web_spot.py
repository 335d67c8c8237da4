"""The Spot view in a real browser against the real mesh: transfer, rest, cancel and trade.

No market maker runs here: the test makes its own liquidity through the API as a second user.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
from playwright.sync_api import Locator, Page, expect

from e2e.browser_support import MAKER_LEVELS, PASSWORD, Mesh, sign_up, unique_email


class ApiUser:
    """A second user driving the public REST API, as another trader would."""

    def __init__(self, mesh: Mesh) -> None:
        self.base_url = mesh.base_url
        reply = httpx.post(
            f"{mesh.base_url}/v1/auth/signup",
            json={"email": unique_email(), "password": PASSWORD},
            timeout=10,
        )
        reply.raise_for_status()
        body = reply.json()
        self.user_id: str = body["user"]["id"]
        self.headers = {"Authorization": f"Bearer {body['accessToken']}"}

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        reply = httpx.request(
            method, f"{self.base_url}{path}", json=body, headers=self.headers, timeout=10
        )
        assert reply.is_success, reply.text
        return reply.json()

    def wallet(self) -> dict[str, tuple[Decimal, Decimal]]:
        balances = self.call("GET", "/v1/wallet").get("balances", [])
        return {
            b["asset"]: (Decimal(b.get("available", "0")), Decimal(b.get("locked", "0")))
            for b in balances
        }


def wallet_row(page: Page, asset: str) -> Locator:
    page.get_by_test_id("spot-tab-wallet").click()
    return page.locator(f'[data-testid=wallet-row][data-asset="{asset}"]')


def expect_wallet(page: Page, asset: str, available: str, locked: str) -> None:
    row = wallet_row(page, asset)
    expect(row.get_by_test_id("wallet-available")).to_have_text(available)
    expect(row.get_by_test_id("wallet-locked")).to_have_text(locked)


def ladder_level(page: Page, side: str, price: str) -> Locator:
    return page.locator(f'[data-testid=ladder-{side}][data-price="{price}"]')


def place(page: Page, side: str, kind: str, quantity: str, price: str = "") -> None:
    page.get_by_test_id(f"spot-side-{side}").click()
    page.get_by_test_id(f"spot-type-{kind}").click()
    if price:
        page.get_by_test_id("spot-price").fill(price)
    page.get_by_test_id("spot-size-quantity").click()
    page.get_by_test_id("spot-amount").fill(quantity)


def test_spot_transfer_rest_cancel_and_trade(mesh: Mesh, page: Page) -> None:
    sign_up(page)
    page.get_by_test_id("view-spot").click()
    expect(page.get_by_test_id("spot-screen")).to_be_visible()
    expect(page.get_by_test_id("market-BTC_USD")).to_have_attribute("aria-pressed", "true")

    # USD from the CFD balance to the spot wallet.
    page.get_by_test_id("spot-transfer-open").click()
    dialog = page.get_by_test_id("transfer-dialog")
    expect(dialog.get_by_test_id("transfer-cfd-balance")).to_have_text("5,000.00")
    dialog.get_by_test_id("transfer-amount").fill("5000.01")
    dialog.get_by_test_id("transfer-submit").click()
    expect(dialog.get_by_test_id("transfer-error")).to_have_text("More than is available")
    dialog.get_by_test_id("transfer-amount").fill("1000")
    dialog.get_by_test_id("transfer-submit").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_test_id("account-balance")).to_have_text("4,000.00")
    expect(page.get_by_test_id("spot-available")).to_have_text("1,000.00 USD")
    expect_wallet(page, "USD", "1,000.00", "0.00")

    # The maker's levels, far from the mid, are in the book before the test's own orders.
    depth = page.get_by_test_id("depth-chart")
    expect(depth).to_have_attribute("data-bid-levels", str(MAKER_LEVELS))
    # A buy limit below any ask rests in the ladder; the ticket showed its cost with the fee.
    place(page, "buy", "limit", "0.01", price="60000.00")
    expect(page.get_by_test_id("spot-preview-value")).to_have_text("600.00")
    expect(page.get_by_test_id("spot-preview-fee")).to_have_text("0.60")
    expect(page.get_by_test_id("spot-preview-total")).to_have_text("600.60 USD")
    expect(page.get_by_test_id("spot-preview-lock")).to_have_text("600.60 USD")
    page.get_by_test_id("spot-submit").click()
    expect(page.get_by_test_id("spot-order-notice")).to_have_text(
        "Order placed: 0.01 BTC at 60,000.00"
    )
    bid = ladder_level(page, "bid", "60000")
    expect(bid.get_by_test_id("ladder-quantity")).to_have_text("0.0100")
    expect(bid).to_have_attribute("data-mine", "true")
    expect(depth).to_have_attribute("data-bid-levels", str(MAKER_LEVELS + 1))
    expect_wallet(page, "USD", "399.40", "600.60")

    # Cancelling it takes it off the ladder and releases the lock.
    page.get_by_test_id("spot-tab-orders").click()
    rows = page.get_by_test_id("spot-order-row")
    expect(rows).to_have_count(1)
    expect(rows.get_by_test_id("spot-order-price")).to_have_text("60,000.00")
    rows.get_by_test_id("spot-order-cancel").click()
    expect(rows).to_have_count(0)
    expect(bid).to_have_count(0)
    expect_wallet(page, "USD", "1,000.00", "0.00")

    # Another trader rests a sell; buying at market takes it at the maker's price.
    seller = ApiUser(mesh)
    mesh.deposit_asset(seller.user_id, "BTC", "0.05")
    seller.call(
        "POST",
        "/v1/spot/orders",
        {
            "market": "BTC_USD",
            "side": "SIDE_SELL",
            "type": "SPOT_ORDER_TYPE_LIMIT",
            "price": "61000.00",
            "quantity": "0.02",
        },
    )
    ask = ladder_level(page, "ask", "61000")
    expect(ask.get_by_test_id("ladder-quantity")).to_have_text("0.0200")
    expect(ask).not_to_have_attribute("data-mine", "true")

    # A post-only buy at the ask would take: refused, and nothing changes.
    place(page, "buy", "limit", "0.01", price="61000.00")
    page.get_by_test_id("spot-post-only").check()
    page.get_by_test_id("spot-submit").click()
    expect(page.get_by_test_id("spot-order-error")).to_have_text(
        "A post-only order may not trade at once; it was not placed"
    )
    page.get_by_test_id("spot-post-only").uncheck()
    expect(ask.get_by_test_id("ladder-quantity")).to_have_text("0.0200")
    expect(page.get_by_test_id("spot-available")).to_have_text("1,000.00 USD")

    place(page, "buy", "market", "0.01")
    expect(page.get_by_test_id("spot-preview-price")).to_have_text("≈ 61,000.00")
    expect(page.get_by_test_id("spot-preview-total")).to_have_text("≈ 610.61 USD")
    page.get_by_test_id("spot-submit").click()
    expect(page.get_by_test_id("spot-order-notice")).to_have_text(
        "Filled 0.01 BTC at 61,000.00 on average"
    )
    expect(ask.get_by_test_id("ladder-quantity")).to_have_text("0.0100")
    tape = page.get_by_test_id("tape-row").first
    expect(tape.get_by_test_id("tape-price")).to_have_text("61,000.00")
    expect(tape.get_by_test_id("tape-quantity")).to_have_text("0.0100")
    expect(page.get_by_test_id("toast").filter(has_text="Spot fill")).to_contain_text(
        "Buy 0.01 BTC_USD at 61,000.00, fee 0.61 USD (taker)"
    )

    page.get_by_test_id("spot-tab-fills").click()
    fill = page.get_by_test_id("spot-fill-row").first
    expect(fill.get_by_test_id("spot-fill-price")).to_have_text("61,000.00")
    expect(fill.get_by_test_id("spot-fill-quantity")).to_have_text("0.01")
    expect(fill.get_by_test_id("spot-fill-fee")).to_have_text("0.61")
    expect(fill.get_by_test_id("spot-fill-liquidity")).to_have_text("Taker")
    # 1000 - 610 - 0.61 fee; the seller got 610 at the zero maker fee.
    expect_wallet(page, "USD", "389.39", "0.00")
    expect_wallet(page, "BTC", "0.01", "0")
    # The seller holds 0.05 - 0.01 sold, 0.01 of it still offered.
    sold = seller.wallet()
    assert sold["BTC"] == (Decimal("0.03"), Decimal("0.01"))
    assert sold["USD"] == (Decimal("610"), Decimal("0"))
    expect(page.get_by_test_id("account-balance")).to_have_text("4,000.00")


def test_spot_resting_sell_fills_as_maker_live(mesh: Mesh, page: Page) -> None:
    sign_up(page)
    page.get_by_test_id("view-spot").click()
    page.get_by_test_id("market-ETH_USD").click()
    expect(page.get_by_test_id("market-ETH_USD")).to_have_attribute("aria-pressed", "true")
    user_id = page.evaluate(
        "() => JSON.parse(localStorage.getItem('cfd.session') ?? 'null')?.user?.id ?? null"
    )
    assert isinstance(user_id, str), "the page keeps its session in localStorage"
    mesh.deposit_asset(user_id, "ETH", "1.5")
    page.reload()
    expect(page.get_by_test_id("spot-screen")).to_be_visible()
    expect(page.get_by_test_id("market-ETH_USD")).to_have_attribute("aria-pressed", "true")

    place(page, "sell", "limit", "0.5", price="3100.00")
    page.get_by_test_id("spot-post-only").check()
    # Post-only pays the maker fee (0 by default); a seller receives the value less it.
    expect(page.get_by_test_id("spot-preview-total")).to_have_text("1,550.00 USD")
    page.get_by_test_id("spot-submit").click()
    expect(ladder_level(page, "ask", "3100")).to_have_attribute("data-mine", "true")
    expect_wallet(page, "ETH", "1", "0.5")

    buyer = ApiUser(mesh)
    buyer.call(
        "POST", "/v1/wallet:transfer", {"amount": "1000", "direction": "TRANSFER_DIRECTION_TO_SPOT"}
    )
    buyer.call(
        "POST",
        "/v1/spot/orders",
        {
            "market": "ETH_USD",
            "side": "SIDE_BUY",
            "type": "SPOT_ORDER_TYPE_MARKET",
            "quantity": "0.2",
        },
    )
    # The page learns of the fill from its events channel alone.
    expect(page.get_by_test_id("toast").filter(has_text="Spot fill")).to_contain_text(
        "Sell 0.2 ETH_USD at 3,100.00, fee 0.00 USD (maker)"
    )
    expect(ladder_level(page, "ask", "3100").get_by_test_id("ladder-quantity")).to_have_text(
        "0.300"
    )
    expect_wallet(page, "USD", "620.00", "0.00")
    expect_wallet(page, "ETH", "1", "0.3")
    page.get_by_test_id("spot-tab-orders").click()
    row = page.get_by_test_id("spot-order-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Partly filled")
    assert buyer.wallet()["ETH"] == (Decimal("0.2"), Decimal("0"))
