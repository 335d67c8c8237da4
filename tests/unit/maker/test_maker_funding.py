"""What the maker's quotes lock and how much its wallet is topped up."""

from __future__ import annotations

from decimal import Decimal

from maker.funding import needs, top_ups
from maker.quotes import Quote

STEPS = {"USD": Decimal("0.000001"), "BTC": Decimal("0.001"), "ETH": Decimal("0.01")}
BASES = {"BTC_USD": "BTC", "ETH_USD": "ETH"}


def test_bids_lock_usd_with_the_taker_fee_and_asks_lock_the_base() -> None:
    wanted = [
        Quote("BTC_USD", True, 1, Decimal("999.00"), Decimal("0.010")),
        Quote("BTC_USD", False, 1, Decimal("1001.00"), Decimal("0.010")),
        Quote("ETH_USD", True, 1, Decimal("99.50"), Decimal("0.10")),
        Quote("ETH_USD", False, 1, Decimal("100.50"), Decimal("0.10")),
        Quote("ETH_USD", False, 2, Decimal("101.00"), Decimal("0.10")),
    ]
    # 9.99 + 9.95 = 19.94 USD, plus 10 bps.
    assert needs(wanted, BASES, 10) == {
        "USD": Decimal("19.95994"),
        "BTC": Decimal("0.010"),
        "ETH": Decimal("0.20"),
    }


def test_a_wallet_with_twice_the_need_is_left_alone() -> None:
    locked = {"USD": Decimal("19.95994"), "BTC": Decimal("0.010")}
    held = {"USD": Decimal("39.91988"), "BTC": Decimal("0.020")}
    assert top_ups(locked, held, STEPS) == {}


def test_a_short_wallet_is_topped_up_to_four_times_the_need_on_each_step() -> None:
    locked = {"USD": Decimal("19.95994"), "BTC": Decimal("0.0105"), "ETH": Decimal("0.20")}
    held = {"USD": Decimal("39.91987"), "ETH": Decimal("0.40")}
    assert top_ups(locked, held, STEPS) == {
        "BTC": Decimal("0.042"),
        "USD": Decimal("39.919890"),
    }
