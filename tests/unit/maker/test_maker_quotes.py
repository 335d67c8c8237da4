"""The maker's quoting: exact levels around the mid, on the market's steps."""

from __future__ import annotations

from decimal import Decimal

import pytest

from maker.quotes import MarketSteps, QuoteConfig, moved, quotes

BTC = MarketSteps("BTC_USD", Decimal("0.01"), Decimal("0.001"))


def test_levels_are_whole_spreads_from_the_mid_rounded_away_from_it() -> None:
    config = QuoteConfig(levels=3, spread_bps=Decimal(10), level_quantity=Decimal("0.0259"))
    found = [
        (q.buy, q.level, q.price, q.quantity) for q in quotes(Decimal("64000.005"), BTC, config)
    ]
    assert found == [
        (True, 1, Decimal("63936.00"), Decimal("0.025")),
        (True, 2, Decimal("63872.00"), Decimal("0.025")),
        (True, 3, Decimal("63808.00"), Decimal("0.025")),
        (False, 1, Decimal("64064.01"), Decimal("0.025")),
        (False, 2, Decimal("64128.01"), Decimal("0.025")),
        (False, 3, Decimal("64192.01"), Decimal("0.025")),
    ]


def test_levels_that_round_to_one_price_move_a_tick_apart() -> None:
    config = QuoteConfig(levels=3, spread_bps=Decimal(1), level_quantity=Decimal(1))
    prices = [q.price for q in quotes(Decimal("1.00"), BTC, config)]
    bids = [Decimal("0.99"), Decimal("0.98"), Decimal("0.97")]
    asks = [Decimal("1.01"), Decimal("1.02"), Decimal("1.03")]
    assert prices == [*bids, *asks]


def test_bids_that_would_reach_zero_are_left_out() -> None:
    config = QuoteConfig(levels=3, spread_bps=Decimal(5000), level_quantity=Decimal(1))
    found = [(q.buy, q.price) for q in quotes(Decimal("0.04"), BTC, config)]
    assert found == [
        (True, Decimal("0.02")),
        (False, Decimal("0.06")),
        (False, Decimal("0.08")),
        (False, Decimal("0.10")),
    ]


def test_a_quantity_below_the_lot_step_is_refused() -> None:
    config = QuoteConfig(levels=1, spread_bps=Decimal(10), level_quantity=Decimal("0.0009"))
    with pytest.raises(ValueError, match="lot step"):
        quotes(Decimal(100), BTC, config)


def test_client_order_ids_name_the_round_the_side_and_the_level() -> None:
    config = QuoteConfig(levels=1, spread_bps=Decimal(10), level_quantity=Decimal(1))
    bid, ask = quotes(Decimal(100), BTC, config)
    assert (bid.client_order_id(7), ask.client_order_id(7)) == (
        "mm-BTC_USD-7-b1",
        "mm-BTC_USD-7-a1",
    )


def test_the_maker_quotes_again_once_the_mid_moves_half_a_spread() -> None:
    assert not moved(Decimal(1000), Decimal("1000.49"), Decimal(10))
    assert moved(Decimal(1000), Decimal("1000.50"), Decimal(10))
    assert moved(Decimal(1000), Decimal("999.50"), Decimal(10))
