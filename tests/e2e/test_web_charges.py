"""Swaps and commissions on the web page: the positions and history columns, the account bar
and the rollover toast, in a real browser against a mesh whose SOLUSD charges both."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal

import grpc
import pytest
from google.protobuf import timestamp_pb2
from playwright.sync_api import Page, expect

from cfd.v1 import engine_admin_pb2, engine_admin_pb2_grpc
from e2e.browser_support import Mesh, expect_money, sign_up
from e2e.test_web_trading import open_market, select, toast
from engine_svc.rollover import NS_PER_DAY, RolloverSchedule
from mesh.instruments import DEFAULT_SPECS

NS = 1_000_000_000


@pytest.fixture(scope="module")
def mesh_overrides(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """SOLUSD charges -10 bps of swap a day on longs and 100 USD per million of notional."""
    rows = [spec.to_json() for spec in DEFAULT_SPECS]
    rows[2] |= {"swap_long_bps": "-10", "commission_per_million": "100"}
    path = tmp_path_factory.mktemp("charges") / "instruments.json"
    path.write_text(json.dumps(rows))
    yield {"CFD_INSTRUMENTS_FILE": str(path)}


def _run_rollover(mesh: Mesh, at_ns: int) -> engine_admin_pb2.RunRolloverResponse:
    with grpc.insecure_channel(f"127.0.0.1:{mesh.env['CFD_ENGINE_PORT']}") as channel:
        stub = engine_admin_pb2_grpc.EngineAdminServiceStub(channel)
        response: engine_admin_pb2.RunRolloverResponse = stub.RunRollover(
            engine_admin_pb2.RunRolloverRequest(
                rollover_time=timestamp_pb2.Timestamp(seconds=at_ns // NS)
            ),
            metadata=(("x-cfd-internal-token", mesh.env["CFD_INTERNAL_TOKEN"]),),
            timeout=10,
        )
        return response


def test_commission_and_swap_show_in_positions_account_and_history(
    mesh: Mesh, page: Page
) -> None:
    mesh.publish("SOLUSD", "150.000", "150.030")
    sign_up(page)
    select(page, "SOLUSD")
    row = open_market(page, "10", 5)
    # 10 SOL at 150.030: 1500.30 USD of notional x 100 / 10^6.
    opening = Decimal("0.15003")
    expect_money(row.get_by_test_id("position-commission"), opening)
    expect_money(page.get_by_test_id("account-commission"), opening)
    expect(page.get_by_test_id("account-swap")).to_have_count(0)

    # The next rollover, run now: -10 bps of 1500.30 USD a day, times its multiplier.
    at = time.time_ns() + NS_PER_DAY
    schedule = RolloverSchedule()
    multiplier = schedule.multiplier(schedule.latest(at)[0])
    rolled = _run_rollover(mesh, at)
    assert rolled.multiplier == multiplier and rolled.positions_charged >= 1
    swap = -Decimal("1.5003") * multiplier
    expect(toast(page, "Swap charged")).to_have_count(1)
    expect(row.get_by_test_id("position-swap")).to_have_text(f"{swap:.2f}")
    expect(row.get_by_test_id("position-swap")).to_have_attribute("title", f"{swap}")
    expect(page.get_by_test_id("account-swap")).to_have_text(f"{swap:.2f}")
    # Eight figures at 1280x800: the row wraps rather than scrolls.
    scrolls = page.evaluate(
        "() => { const bar = document.querySelector('[data-testid=account-bar]');"
        " return bar.scrollWidth > bar.clientWidth; }"
    )
    assert not scrolls, "the account figures scroll sideways at 1280x800"

    row.get_by_test_id("position-close").click()
    dialog = page.get_by_test_id("dialog-close")
    dialog.get_by_test_id("close-submit").click()
    expect(page.get_by_test_id("positions-empty")).to_be_visible()
    page.get_by_test_id("tab-history").click()
    entry = page.get_by_test_id("history-row").first
    expect(entry.get_by_test_id("history-swap")).to_have_text(f"{swap:.2f}")
    # Closed at the bid 150.000: 1500.00 x 100 / 10^6 more.
    expect_money(entry.get_by_test_id("history-commission"), opening + Decimal("0.15"))
