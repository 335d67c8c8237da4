"""Worked examples, with exact figures, for every rule of API.md's spot matching semantics.

BTC_USD has tick 0.01 and lot 0.0001, so 60000.00 is 6_000_000 ticks, 0.1 BTC is 1000 lots
and one tick times one lot is exactly one micro-USD: price x quantity = ticks x lots micro-USD.
"""

from __future__ import annotations

import pytest

from engine_svc.core import Reason, Side
from engine_svc.core.spot import (
    BookLevel,
    BookView,
    FeeSchedule,
    Liquidity,
    SpotBookChanged,
    SpotExchange,
    SpotFillExecuted,
    SpotFillView,
    SpotOrderCancelled,
    SpotOrderFilled,
    SpotOrderPlaced,
    SpotOrderStatus,
    SpotOrderUpdated,
    SpotOrderView,
    SpotTradeExecuted,
    TimeInForce,
)
from unit.engine_svc.core.spot.spot_harness import USD, SpotHarness, placement

BUY = Side.BUY
SELL = Side.SELL


def _trades(events: tuple[object, ...]) -> list[tuple[int, int]]:
    return [(e.price, e.quantity) for e in events if isinstance(e, SpotTradeExecuted)]


def _order(result_payload: object) -> SpotOrderView:
    assert isinstance(result_payload, SpotOrderView)
    return result_payload


def test_price_time_priority_trades_best_price_first_then_oldest_at_the_makers_price() -> None:
    h = SpotHarness()
    h.credit("a", "USD", 20_000 * USD)
    for account in ("b", "c", "d"):
        h.credit(account, "BTC", 1000)
    h.limit("b", SELL, 6_000_100, 1000)
    h.limit("c", SELL, 6_000_000, 1000)
    h.limit("d", SELL, 6_000_000, 1000)
    result = h.limit("a", BUY, 6_000_100, 2500)
    placed = placement(result)
    # c then d (same price, c older) at 60000.00, then b at its own 60001.00.
    assert _trades(result.events) == [(6_000_000, 1000), (6_000_000, 1000), (6_000_100, 500)]
    assert [fill.order_id for fill in placed.fills] == ["s-8", "s-8", "s-8"]
    makers = [
        e.fill.order_id
        for e in result.events
        if isinstance(e, SpotFillExecuted) and e.fill.liquidity is Liquidity.MAKER
    ]
    assert makers == ["s-6", "s-7", "s-5"]
    order = placed.order
    assert order.status is SpotOrderStatus.FILLED and order.filled_quantity == 2500
    # Quote 6000 + 6000 + 0.05 x 60001 = 15000.05 USD; taker fee 10 bps of each fill.
    assert order.filled_quote == 15_000_050_000
    assert [fill.fee for fill in placed.fills] == [6_000_000, 6_000_000, 3_000_050]
    assert order.fee == 15_000_050
    # The lock at the limit (15000.25 + 15.00025) is released down to what was paid.
    assert h.wallet("a") == {"BTC": (2500, 0), "USD": (20_000 * USD - 15_015_050_050, 0)}
    assert h.wallet("b") == {"BTC": (0, 500), "USD": (3_000_050_000, 0)}
    assert h.wallet("c") == {"USD": (6_000_000_000, 0)}
    assert h.exchange.house["USD"] == 15_000_050
    assert h.book().asks == (BookLevel(6_000_100, 500),) and h.book().bids == ()


def test_buy_limit_locks_quote_plus_taker_fee_and_a_sell_locks_its_base() -> None:
    h = SpotHarness()
    h.credit("a", "USD", 10_000 * USD)
    h.credit("b", "BTC", 3000)
    buy = placement(h.limit("a", BUY, 5_000_000, 1000)).order
    # 0.1 x 50000 = 5000 USD plus 10 bps = 5 USD.
    assert buy.locked == 5_005_000_000
    assert h.wallet("a") == {"USD": (4_995_000_000, 5_005_000_000)}
    sell = placement(h.limit("b", SELL, 6_000_000, 2500)).order
    assert sell.locked == 2500
    assert h.wallet("b") == {"BTC": (500, 2500)}


def test_a_fill_below_the_limit_and_at_the_maker_fee_releases_the_difference() -> None:
    h = SpotHarness()
    h.credit("a", "USD", 10_000 * USD)
    h.credit("b", "BTC", 1000)
    h.limit("a", BUY, 6_000_000, 1000)
    result = h.market("b", SELL, quantity=400)
    assert _trades(result.events) == [(6_000_000, 400)]
    # The maker buyer pays 2400 USD and no fee (maker 0 bps); it keeps 3600 + 3.60 locked for
    # the 600 left, so the 2.40 taker fee locked for the filled 400 comes back.
    assert h.wallet("a") == {"BTC": (400, 0), "USD": (3_996_400_000, 3_603_600_000)}
    # The taker seller receives the quote less 10 bps.
    assert h.wallet("b") == {"BTC": (600, 0), "USD": (2_397_600_000, 0)}
    assert h.exchange.house["USD"] == 2_400_000


def test_cancel_releases_what_the_order_locked() -> None:
    h = SpotHarness()
    h.credit("a", "USD", 10_000 * USD)
    h.credit("a", "BTC", 100)
    buy = placement(h.limit("a", BUY, 5_000_000, 1000)).order
    sell = placement(h.limit("a", SELL, 7_000_000, 100)).order
    result = h.cancel("a", buy.id)
    cancelled = _order(result.payload)
    assert cancelled.status is SpotOrderStatus.CANCELLED and cancelled.locked == 0
    assert isinstance(result.events[0], SpotOrderCancelled)
    assert not result.events[0].self_trade
    assert result.events[1] == SpotBookChanged(
        h.seq, result.events[1].ts, "BTC_USD", 3, (BookLevel(5_000_000, 0),), ()
    )
    h.cancel("a", sell.id)
    assert h.wallet("a") == {"USD": (10_000 * USD, 0), "BTC": (100, 0)}
    assert h.book().bids == h.book().asks == ()


def test_market_buy_by_quantity_fills_as_far_as_the_available_usd_covers_fee_included() -> None:
    h = SpotHarness()
    h.credit("a", "USD", 9_006_000_000)
    h.credit("b", "BTC", 2000)
    h.limit("b", SELL, 6_000_000, 1000)
    h.limit("b", SELL, 6_100_000, 1000)
    result = h.market("a", BUY, quantity=2000)
    placed = placement(result)
    # Level one costs 6000 + 6 USD; the 3000 USD left buy 491 lots at 61000 with the fee:
    # 491 x 6.1 = 2995.10 plus 2.9951 = 2998.0951 (492 lots would cost 3004.2012).
    assert _trades(result.events) == [(6_000_000, 1000), (6_100_000, 491)]
    order = placed.order
    assert order.status is SpotOrderStatus.EXPIRED and order.filled_quantity == 1491
    assert order.remaining == 0 and order.locked == 0
    assert h.wallet("a") == {"BTC": (1491, 0), "USD": (1_904_900, 0)}
    assert isinstance(result.events[-2], SpotOrderUpdated)


def test_market_buy_by_quote_quantity_spends_the_budget_with_fees_on_top() -> None:
    h = SpotHarness()
    h.credit("a", "USD", 10_000 * USD)
    h.credit("b", "BTC", 2000)
    h.limit("b", SELL, 6_000_000, 1000)
    h.limit("b", SELL, 6_100_000, 1000)
    result = h.market("a", BUY, quote_quantity=9_050_000_000)
    order = placement(result).order
    # 6000 USD at 60000, then the 3050 left buy exactly 500 lots at 61000.
    assert _trades(result.events) == [(6_000_000, 1000), (6_100_000, 500)]
    assert order.status is SpotOrderStatus.FILLED
    assert order.quantity is None and order.quote_quantity == 9_050_000_000
    assert order.filled_quantity == 1500 and order.filled_quote == 9_050_000_000
    assert order.fee == 9_050_000
    assert h.wallet("a") == {"BTC": (1500, 0), "USD": (10_000 * USD - 9_059_050_000, 0)}


def test_market_buy_by_quote_quantity_expires_when_the_book_runs_out() -> None:
    h = SpotHarness()
    h.credit("a", "USD", 20_000 * USD)
    h.credit("b", "BTC", 1000)
    h.limit("b", SELL, 6_000_000, 1000)
    order = placement(h.market("a", BUY, quote_quantity=10_000 * USD)).order
    assert order.status is SpotOrderStatus.EXPIRED and order.filled_quantity == 1000
    assert h.wallet("a") == {"BTC": (1000, 0), "USD": (20_000 * USD - 6_006_000_000, 0)}


def test_quote_quantity_below_one_lot_at_the_best_ask_is_too_small() -> None:
    h = SpotHarness()
    h.credit("a", "USD", 100 * USD)
    h.credit("b", "BTC", 10)
    h.limit("b", SELL, 6_000_000, 10)
    result = h.market("a", BUY, quote_quantity=5_999_999)
    assert result.reason is Reason.QUANTITY_TOO_SMALL
    assert _order(result.payload).status is SpotOrderStatus.REJECTED


def test_market_sell_fills_as_far_as_the_book_goes_and_the_rest_expires() -> None:
    h = SpotHarness()
    h.credit("a", "BTC", 2000)
    h.credit("b", "USD", 10_000 * USD)
    h.limit("b", BUY, 5_990_000, 1000)
    h.limit("b", BUY, 5_980_000, 500)
    result = h.market("a", SELL, quantity=2000)
    order = placement(result).order
    assert _trades(result.events) == [(5_990_000, 1000), (5_980_000, 500)]
    assert order.status is SpotOrderStatus.EXPIRED and order.filled_quantity == 1500
    # 5990 + 2990 USD less 10 bps of each; the unsold 500 lots are unlocked.
    assert h.wallet("a") == {"BTC": (500, 0), "USD": (8_971_020_000, 0)}
    assert h.book().bids == ()


@pytest.mark.parametrize("side", [BUY, SELL])
def test_market_order_into_an_empty_side_is_rejected_with_no_liquidity(side: Side) -> None:
    h = SpotHarness()
    h.credit("a", "USD", 10_000 * USD)
    h.credit("a", "BTC", 1000)
    h.limit("a", SELL if side is SELL else BUY, 6_000_000, 10)  # own side only
    before = h.wallet("a")
    result = h.market("a", side, quantity=10)
    assert result.reason is Reason.NO_LIQUIDITY and result.events == ()
    assert _order(result.payload).status is SpotOrderStatus.REJECTED
    assert _order(result.payload).reject_reason is Reason.NO_LIQUIDITY
    assert h.wallet("a") == before


def test_fee_is_rounded_up_to_a_micro_usd_per_fill_buyer_pays_and_seller_receives() -> None:
    h = SpotHarness()
    h.credit("a", "USD", 100 * USD)
    h.credit("b", "BTC", 1)
    h.limit("b", SELL, 6_000_001, 1)
    fill = placement(h.market("a", BUY, quantity=1)).fills[0]
    # 60000.01 x 0.0001 = 6.000001 USD; 10 bps is 0.006000001, rounded up to 0.006001.
    assert (fill.quote, fill.fee) == (6_000_001, 6001)
    assert h.wallet("a") == {"BTC": (1, 0), "USD": (100 * USD - 6_006_002, 0)}
    h.credit("c", "USD", 100 * USD)
    h.limit("c", BUY, 6_000_001, 1)
    sold = placement(h.market("a", SELL, quantity=1)).fills[0]
    assert sold.fee == 6001
    assert h.wallet("a")["USD"] == (100 * USD - 6_006_002 + 6_000_001 - 6001, 0)
    assert h.exchange.house["USD"] == 2 * 6001


def test_maker_fee_is_configurable_and_charged_to_the_resting_side() -> None:
    h = SpotHarness(SpotExchange(fees=FeeSchedule(taker_bps=10, maker_bps=2)))
    h.credit("a", "USD", 10_000 * USD)
    h.credit("b", "BTC", 1000)
    h.limit("b", SELL, 6_000_000, 1000)
    result = h.limit("a", BUY, 6_000_000, 1000)
    fees = {e.fill.liquidity: e.fill.fee for e in result.events if isinstance(e, SpotFillExecuted)}
    assert fees == {Liquidity.MAKER: 1_200_000, Liquidity.TAKER: 6_000_000}
    assert h.wallet("b") == {"USD": (6_000_000_000 - 1_200_000, 0)}
    assert h.exchange.house["USD"] == 7_200_000


def test_per_fill_rounding_beyond_the_locked_fee_comes_from_available_then_is_forgone() -> None:
    for extra, fees in ((1, [6001, 6001]), (0, [6000, 6001])):
        h = SpotHarness()
        # The lock for 2 lots at 60000.01: 12.000002 + fee 0.012000002 -> 0.012001.
        h.credit("a", "USD", 12_012_003 + extra)
        h.credit("b", "BTC", 1)
        h.credit("c", "BTC", 1)
        h.limit("b", SELL, 6_000_001, 1)
        h.limit("c", SELL, 6_000_001, 1)
        placed = placement(h.limit("a", BUY, 6_000_001, 2))
        # Two fills round up to 0.006001 each, one micro more than the locked fee; the first
        # fill finds it short, so with nothing available the house forgoes that micro.
        assert [fill.fee for fill in placed.fills] == fees
        assert h.wallet("a") == {"BTC": (2, 0)}
        assert h.exchange.house["USD"] == sum(fees)


def test_gtc_rests_and_ioc_expires_the_rest() -> None:
    h = SpotHarness()
    h.credit("a", "USD", 20_000 * USD)
    h.credit("b", "BTC", 2000)
    h.limit("b", SELL, 6_000_000, 1000)
    ioc = placement(h.limit("a", BUY, 6_000_000, 1500, time_in_force=TimeInForce.IOC)).order
    assert ioc.status is SpotOrderStatus.EXPIRED and ioc.filled_quantity == 1000
    assert ioc.locked == 0 and h.book().bids == ()
    assert h.wallet("a") == {"BTC": (1000, 0), "USD": (20_000 * USD - 6_006_000_000, 0)}
    h.limit("b", SELL, 6_000_000, 1000)
    gtc = placement(h.limit("a", BUY, 6_000_000, 1500)).order
    assert gtc.status is SpotOrderStatus.PARTIALLY_FILLED and gtc.remaining == 500
    assert h.exchange.best_bid("BTC_USD") == 6_000_000
    assert h.exchange.open_orders("a") == [gtc]


def test_fok_fills_entirely_now_or_expires_with_no_fill() -> None:
    h = SpotHarness()
    h.credit("a", "USD", 20_000 * USD)
    h.credit("b", "BTC", 1000)
    h.limit("b", SELL, 6_000_000, 600)
    h.limit("b", SELL, 6_000_100, 400)
    before = (h.wallet("a"), h.wallet("b"), h.book())
    result = h.limit("a", BUY, 6_000_000, 1000, time_in_force=TimeInForce.FOK)
    order = placement(result).order
    assert order.status is SpotOrderStatus.EXPIRED and order.filled_quantity == 0
    assert [type(e) for e in result.events] == [SpotOrderPlaced, SpotOrderUpdated]
    assert (h.wallet("a"), h.wallet("b"), h.book()) == before
    filled = placement(h.limit("a", BUY, 6_000_100, 1000, time_in_force=TimeInForce.FOK))
    assert filled.order.status is SpotOrderStatus.FILLED
    assert [(f.price, f.quantity) for f in filled.fills] == [(6_000_000, 600), (6_000_100, 400)]


def test_fok_does_not_count_own_orders_that_would_be_cancelled() -> None:
    h = SpotHarness()
    h.credit("a", "USD", 20_000 * USD)
    h.credit("a", "BTC", 500)
    h.credit("b", "BTC", 1000)
    own = placement(h.limit("a", SELL, 6_000_000, 500)).order
    h.limit("b", SELL, 6_000_100, 1000)
    order = placement(h.limit("a", BUY, 6_000_100, 1500, time_in_force=TimeInForce.FOK)).order
    assert order.status is SpotOrderStatus.EXPIRED
    assert h.exchange.get_order("a", own.id) == own


def test_post_only_that_would_take_is_rejected_and_one_that_would_not_rests() -> None:
    h = SpotHarness()
    h.credit("a", "USD", 20_000 * USD)
    h.credit("b", "BTC", 1000)
    h.limit("b", SELL, 6_000_000, 1000)
    before = h.wallet("a")
    result = h.limit("a", BUY, 6_000_000, 100, post_only=True)
    assert result.reason is Reason.POST_ONLY_WOULD_TAKE and result.events == ()
    assert _order(result.payload).status is SpotOrderStatus.REJECTED
    assert h.wallet("a") == before
    rested = placement(h.limit("a", BUY, 5_999_999, 100, post_only=True)).order
    assert rested.status is SpotOrderStatus.OPEN and rested.post_only


def test_self_trade_prevention_cancels_the_resting_own_order_and_matching_continues() -> None:
    h = SpotHarness()
    h.credit("a", "USD", 20_000 * USD)
    h.credit("a", "BTC", 1000)
    h.credit("b", "BTC", 1000)
    own = placement(h.limit("a", SELL, 6_000_000, 1000)).order
    h.limit("b", SELL, 6_000_000, 1000)
    result = h.limit("a", BUY, 6_000_000, 1500)
    cancelled = [e for e in result.events if isinstance(e, SpotOrderCancelled)]
    assert len(cancelled) == 1 and cancelled[0].self_trade
    assert cancelled[0].order.id == own.id
    assert cancelled[0].order.status is SpotOrderStatus.CANCELLED
    assert _trades(result.events) == [(6_000_000, 1000)]
    order = placement(result).order
    assert order.status is SpotOrderStatus.PARTIALLY_FILLED and order.remaining == 500
    # The cancelled sell's 1000 lots are free again; the 500 left rest as a bid.
    assert h.wallet("a") == {
        "BTC": (2000, 0),
        "USD": (20_000 * USD - 6_006_000_000 - 3_003_000_000, 3_003_000_000),
    }
    book = h.exchange.book_view("BTC_USD")
    assert book is not None and book.asks == () and book.bids == (BookLevel(6_000_000, 500),)


def test_order_fee_is_the_sum_of_its_fills_fees_for_maker_and_taker() -> None:
    h = SpotHarness(SpotExchange(fees=FeeSchedule(taker_bps=10, maker_bps=3)))
    h.credit("a", "USD", 20_000 * USD)
    h.credit("b", "BTC", 3)
    resting = placement(h.limit("a", BUY, 6_000_001, 3)).order
    fills: list[SpotFillView] = []
    events: list[object] = []
    for _ in range(3):
        result = h.market("b", SELL, quantity=1)
        fills.extend(placement(result).fills)
        events.extend(result.events)
    assert [fill.fee for fill in fills] == [6001, 6001, 6001]
    assert sum(fill.fee for fill in fills) == 3 * 6001
    # Maker: 3 bps of 6.000001 = 0.0018000003, rounded up to 0.001801 per fill.
    maker_fills = [
        e.fill for e in events if isinstance(e, SpotFillExecuted) and e.account_id == "a"
    ]
    assert [fill.fee for fill in maker_fills] == [1801, 1801, 1801]
    final = [e.order for e in events if isinstance(e, SpotOrderFilled) and e.account_id == "a"]
    assert final[0].id == resting.id and final[0].fee == 3 * 1801
    assert h.exchange.get_order("a", resting.id) is None
    assert h.wallet("b") == {"USD": (3 * (6_000_001 - 6001), 0)}
    assert h.exchange.house["USD"] == 3 * (6001 + 1801)


def test_book_changes_carry_new_level_totals_and_a_sequence_rising_by_one() -> None:
    h = SpotHarness()
    h.credit("b", "BTC", 3000)
    h.credit("a", "USD", 100_000 * USD)
    events: list[object] = []
    for price, quantity in ((6_000_000, 1000), (6_000_000, 500), (6_000_100, 700)):
        events.extend(h.limit("b", SELL, price, quantity).events)
    events.extend(h.limit("a", BUY, 6_000_000, 1500).events)
    changes = [e for e in events if isinstance(e, SpotBookChanged)]
    assert [c.sequence for c in changes] == [1, 2, 3, 4]
    assert [(c.bids, c.asks) for c in changes] == [
        ((), (BookLevel(6_000_000, 1000),)),
        ((), (BookLevel(6_000_000, 1500),)),
        ((), (BookLevel(6_000_100, 700),)),
        ((), (BookLevel(6_000_000, 0),)),
    ]
    assert h.book(depth=10) == BookView("BTC_USD", (), (BookLevel(6_000_100, 700),), 4)


@pytest.mark.parametrize("taker_side", [BUY, SELL])
def test_a_sweep_reports_its_levels_best_first_and_its_own_rest_on_the_other_side(
    taker_side: Side,
) -> None:
    h = SpotHarness()
    h.credit("a", "USD", 100_000 * USD)
    h.credit("a", "BTC", 10_000)
    h.credit("b", "USD", 100_000 * USD)
    h.credit("b", "BTC", 10_000)
    maker_side = SELL if taker_side is BUY else BUY
    # Makers placed worst price first, so the book's order is not the placing order.
    step = 100 if maker_side is SELL else -100
    prices = [6_000_000 + 2 * step, 6_000_000, 6_000_000 + step]
    for price in prices:
        h.limit("b", maker_side, price, 100)
    h.limit("b", maker_side, 6_000_000 + 2 * step, 100)
    result = h.limit("a", taker_side, 6_000_000 + step, 500)
    change = result.events[-1]
    assert isinstance(change, SpotBookChanged)
    swept = (BookLevel(6_000_000, 0), BookLevel(6_000_000 + step, 0))
    rested = (BookLevel(6_000_000 + step, 300),)
    expected = (rested, swept) if taker_side is BUY else (swept, rested)
    assert (change.bids, change.asks) == expected
    far = (BookLevel(6_000_000 + 2 * step, 200),)
    book = h.book()
    assert (book.bids, book.asks) == ((rested, far) if taker_side is BUY else (far, rested))
    assert len(placement(result).fills) == 2


def test_maker_orders_report_partial_and_complete_fills() -> None:
    h = SpotHarness()
    h.credit("b", "BTC", 1000)
    h.credit("a", "USD", 100_000 * USD)
    maker = placement(h.limit("b", SELL, 6_000_000, 1000)).order
    first = h.market("a", BUY, quantity=400).events
    updated = [e for e in first if isinstance(e, SpotOrderUpdated) and e.order.id == maker.id]
    assert updated[0].order.status is SpotOrderStatus.PARTIALLY_FILLED
    assert updated[0].order.remaining == 600 and updated[0].order.locked == 600
    second = h.market("a", BUY, quantity=600).events
    done = [e for e in second if isinstance(e, SpotOrderFilled) and e.order.id == maker.id]
    assert done[0].order.filled_quantity == 1000 and done[0].order.locked == 0
    assert h.exchange.open_orders("b") == []
