"""Sizing orders in lots on the web page, on an instrument of 1000 units a lot."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Locator, Page, expect

from e2e.browser_support import Mesh, sign_up
from mesh.instruments import DEFAULT_SPECS, InstrumentSpec

XRP = InstrumentSpec("XRPUSD", "XRP vs US Dollar", "XRP", "0.0001", "1", 50, contract_size="1000")


@pytest.fixture(scope="module")
def mesh_overrides(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Add XRPUSD, 1000 XRP a lot, to the default instruments."""
    path = tmp_path_factory.mktemp("lots") / "instruments.json"
    path.write_text(json.dumps([spec.to_json() for spec in (*DEFAULT_SPECS, XRP)]))
    return {"CFD_INSTRUMENTS_FILE": str(path)}


def test_a_position_sized_in_lots_opens_their_quantity(mesh: Mesh, page: Page) -> None:
    mesh.publish("XRPUSD", "0.5000", "0.5001")
    sign_up(page)
    page.get_by_test_id("instrument-XRPUSD").click()
    expect(page.get_by_test_id("chart-symbol")).to_have_text("XRPUSD")
    expect(page.get_by_test_id("ask-XRPUSD")).to_have_text("0.5001")
    page.get_by_test_id("size-lots").click()
    amount = page.get_by_test_id("order-amount")
    expect(amount).to_have_attribute("placeholder", "min 0.001")

    # 0.0015 lots is 1.5 XRP, off the 1 XRP lot step: refused, not rounded.
    amount.fill("0.0015")
    page.get_by_test_id("order-submit").click()
    expect(page.get_by_test_id("order-amount-error")).to_have_text(
        "Lots must be a multiple of 0.001"
    )
    expect(page.get_by_test_id("positions-empty")).to_be_visible()

    amount.fill("2.5")
    expect(page.get_by_test_id("preview-quantity")).to_have_text("2,500")
    expect(page.get_by_test_id("preview-lots")).to_have_text("2.5")
    page.get_by_test_id("order-submit").click()
    expect(page.get_by_test_id("order-notice")).to_contain_text("Opened 2,500 XRPUSD (2.5 lots)")
    row = page.get_by_test_id("position-row")
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("position-quantity")).to_have_text("2,500")
    expect(row.get_by_test_id("position-lots")).to_have_text("2.5")

    # The ticket keeps sizing in lots after a reload.
    page.reload()
    expect(page.get_by_test_id("trading-screen")).to_be_visible()
    expect(page.get_by_test_id("size-lots")).to_have_attribute("aria-pressed", "true")


def refused(dialog: Locator, prefix: str, submit: str, typed: str, reason: str) -> None:
    """Submit a size the dialog refuses: the reason shows under the field, marked invalid."""
    size = dialog.get_by_test_id(f"{prefix}-quantity" if prefix == "close" else f"{prefix}-size")
    size.fill(typed)
    dialog.get_by_test_id(submit).click()
    expect(dialog.get_by_test_id(f"{prefix}-size-error")).to_have_text(reason)
    expect(size).to_have_attribute("aria-invalid", "true")


def test_the_close_and_edit_dialogs_take_lots_like_the_ticket(mesh: Mesh, page: Page) -> None:
    mesh.publish("XRPUSD", "0.5000", "0.5001")
    sign_up(page)
    page.get_by_test_id("instrument-XRPUSD").click()
    expect(page.get_by_test_id("ask-XRPUSD")).to_have_text("0.5001")
    page.get_by_test_id("size-lots").click()
    page.get_by_test_id("order-amount").fill("2.5")
    page.get_by_test_id("order-submit").click()
    row = page.get_by_test_id("position-row")
    expect(row.get_by_test_id("position-lots")).to_have_text("2.5")

    # The close dialog sizes in lots too, starting from the whole position.
    row.get_by_test_id("position-close").click()
    dialog = page.get_by_test_id("dialog-close")
    size = dialog.get_by_test_id("close-quantity")
    expect(size).to_have_value("2.5")
    expect(dialog.get_by_label("Volume to close (lots of 1000 XRP)")).to_be_visible()
    expect(dialog.get_by_test_id("close-quantity-preview")).to_have_text("= 2,500 XRP")
    # Off the 1 XRP lot step, or more than is open: refused under the field, nothing closed.
    refused(dialog, "close", "close-submit", "0.0015", "Lots must be a multiple of 0.001")
    refused(dialog, "close", "close-submit", "3", "At most 2.5")
    size.fill("0.5")
    expect(dialog.get_by_test_id("close-quantity-preview")).to_have_text("= 500 XRP")
    dialog.get_by_test_id("close-submit").click()
    expect(dialog).to_be_hidden()
    expect(row.get_by_test_id("position-quantity")).to_have_text("2,000")
    expect(row.get_by_test_id("position-lots")).to_have_text("2")

    # A pending order placed in lots is resized in lots.
    page.get_by_test_id("type-limit").click()
    page.get_by_test_id("order-trigger").fill("0.4500")
    page.get_by_test_id("order-amount").fill("1")
    page.get_by_test_id("order-submit").click()
    expect(page.get_by_test_id("order-notice")).to_have_text("Limit order placed")
    page.get_by_test_id("tab-orders").click()
    order = page.get_by_test_id("order-row")
    expect(order.get_by_test_id("order-lots")).to_have_text("1")
    order.get_by_test_id("order-edit").click()
    edit = page.get_by_test_id("dialog-edit-order")
    edit_size = edit.get_by_test_id("edit-order-size")
    expect(edit_size).to_have_value("1")
    expect(edit.get_by_label("Volume (lots of 1000 XRP)")).to_be_visible()
    refused(edit, "edit-order", "edit-order-submit", "1.2345", "Lots must be a multiple of 0.001")
    edit_size.fill("1.5")
    expect(edit.get_by_test_id("edit-order-size-preview")).to_have_text("= 1,500 XRP")
    edit.get_by_test_id("edit-order-submit").click()
    expect(edit).to_be_hidden()
    expect(order.get_by_test_id("order-lots")).to_have_text("1.5")
    expect(order).to_contain_text("1,500")
