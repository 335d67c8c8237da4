"""The second account's small trades: which market, which side, how much."""

from __future__ import annotations

from decimal import Decimal

from maker.account import Login
from maker.funding import Funder
from maker.quotes import Quote
from maker.tape import Taker, taker_email, trade_quantity


def taker() -> Taker:
    login = Login("maker@example.com", "a long secret")
    return Taker(login, Funder(login, "internal-token-0123456789", "r1"), "r1")


def test_the_second_account_is_the_makers_email_plus_taker() -> None:
    assert taker_email("maker@cfd-mesh.dev") == "maker+taker@cfd-mesh.dev"


def test_a_trade_is_a_quarter_level_floored_to_the_lot_and_at_least_one_lot() -> None:
    assert trade_quantity(Decimal("0.0166"), Decimal("0.0001")) == Decimal("0.0041")
    assert trade_quantity(Decimal("0.0002"), Decimal("0.0001")) == Decimal("0.0001")


def test_markets_take_turns_and_each_buys_then_sells() -> None:
    level = [Quote("X", True, 1, Decimal(1), Decimal(1))]
    mids = {"BTC_USD": Decimal(60000), "ETH_USD": Decimal(3000), "SOL_USD": Decimal(150)}
    levels = {"BTC_USD": level, "ETH_USD": level, "SOL_USD": []}
    chooser = taker()
    turns = [chooser.next_order(mids, levels) for _ in range(4)]
    assert turns == [("BTC_USD", True), ("ETH_USD", True), ("BTC_USD", False), ("ETH_USD", False)]
    assert chooser.next_order({}, levels) is None
