"""The maker's quoting: exact levels around the mid, on the market's steps."""

from __future__ import annotations

from decimal import Decimal

import pytest

from maker.quotes import MarketSteps, QuoteConfig, moved, quotes

BTC = MarketSteps("BTC_USD", Decimal("0.01"), Decimal("0.001"))


def config(
    levels: int, spread_bps: int, level_size: str = "100", step_bps: int | None = None
) -> QuoteConfig:
    return QuoteConfig(
        levels=levels,
        level_size=Decimal(level_size),
        spread_bps=Decimal(spread_bps),
        step_bps=Decimal(spread_bps if step_bps is None else step_bps),
    )


def test_levels_are_whole_spreads_from_the_mid_rounded_away_from_it() -> None:
    found = [
        (q.buy, q.level, q.price, q.quantity)
        for q in quotes(Decimal("64000.005"), BTC, config(3, 10, "1657.6"))
    ]
    assert found == [
        (True, 1, Decimal("63936.00"), Decimal("0.025")),
        (True, 2, Decimal("63872.00"), Decimal("0.025")),
        (True, 3, Decimal("63808.00"), Decimal("0.025")),
        (False, 1, Decimal("64064.01"), Decimal("0.025")),
        (False, 2, Decimal("64128.01"), Decimal("0.025")),
        (False, 3, Decimal("64192.01"), Decimal("0.025")),
    ]


def test_the_first_level_sits_a_spread_out_and_the_next_ones_a_step_apart() -> None:
    found = [(q.buy, q.price) for q in quotes(Decimal(1000), BTC, config(3, 20, step_bps=5))]
    assert found == [
        (True, Decimal("998.00")),
        (True, Decimal("997.50")),
        (True, Decimal("997.00")),
        (False, Decimal("1002.00")),
        (False, Decimal("1002.50")),
        (False, Decimal("1003.00")),
    ]


def test_a_level_is_worth_its_size_in_usd_floored_to_the_lot() -> None:
    (bid, ask) = quotes(Decimal(1000), BTC, config(1, 10, "12.3456"))
    assert (bid.quantity, ask.quantity) == (Decimal("0.012"), Decimal("0.012"))


def test_levels_that_round_to_one_price_move_a_tick_apart() -> None:
    prices = [q.price for q in quotes(Decimal("1.00"), BTC, config(3, 1, "1"))]
    bids = [Decimal("0.99"), Decimal("0.98"), Decimal("0.97")]
    asks = [Decimal("1.01"), Decimal("1.02"), Decimal("1.03")]
    assert prices == [*bids, *asks]


def test_bids_that_would_reach_zero_are_left_out() -> None:
    found = [(q.buy, q.price) for q in quotes(Decimal("0.04"), BTC, config(3, 5000, "1"))]
    assert found == [
        (True, Decimal("0.02")),
        (False, Decimal("0.06")),
        (False, Decimal("0.08")),
        (False, Decimal("0.10")),
    ]


def test_a_level_size_below_the_lot_step_is_refused() -> None:
    with pytest.raises(ValueError, match="lot step"):
        quotes(Decimal(100), BTC, config(1, 10, "0.09"))


def test_client_order_ids_name_the_round_the_side_and_the_level() -> None:
    bid, ask = quotes(Decimal(100), BTC, config(1, 10))
    assert (bid.client_order_id("k2-7"), ask.client_order_id("k2-7")) == (
        "mm-BTC_USD-k2-7-b1",
        "mm-BTC_USD-k2-7-a1",
    )


def test_the_maker_quotes_again_once_the_mid_moves_the_threshold() -> None:
    assert not moved(Decimal(1000), Decimal("1000.49"), Decimal(5))
    assert moved(Decimal(1000), Decimal("1000.50"), Decimal(5))
    assert moved(Decimal(1000), Decimal("999.50"), Decimal(5))
