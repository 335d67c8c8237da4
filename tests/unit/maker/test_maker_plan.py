"""The re-quote decision: which open orders stay, which are cancelled (and when), what is placed."""

from __future__ import annotations

from decimal import Decimal

from maker.plan import Resting, plan
from maker.quotes import Quote


def bid(level: int, price: str, quantity: str = "0.010") -> Quote:
    return Quote("BTC_USD", True, level, Decimal(price), Decimal(quantity))


def ask(level: int, price: str, quantity: str = "0.010") -> Quote:
    return Quote("BTC_USD", False, level, Decimal(price), Decimal(quantity))


def resting(order_id: str, quote: Quote, remaining: str | None = None) -> Resting:
    left = quote.quantity if remaining is None else Decimal(remaining)
    return Resting(order_id, quote.buy, quote.price, left)


WANTED = [bid(1, "999.00"), bid(2, "998.00"), ask(1, "1001.00"), ask(2, "1002.00")]


def test_an_empty_book_places_every_quote() -> None:
    steps = plan(WANTED, [])
    assert steps.place == tuple(WANTED)
    assert steps.cancel_first == steps.cancel_after == ()


def test_orders_already_resting_as_wanted_stay_and_nothing_is_placed_twice() -> None:
    steps = plan(WANTED, [resting(f"o{i}", q) for i, q in enumerate(WANTED)])
    assert steps.empty


def test_only_the_missing_quotes_are_placed() -> None:
    steps = plan(WANTED, [resting("o1", WANTED[0]), resting("o3", WANTED[2])])
    assert steps.place == (WANTED[1], WANTED[3])
    assert steps.cancel_first == steps.cancel_after == ()


def test_a_partly_filled_order_is_replaced_by_a_full_one() -> None:
    steps = plan(WANTED[:1], [resting("o1", WANTED[0], remaining="0.004")])
    assert steps.place == (WANTED[0],)
    assert steps.cancel_after == ("o1",)


def test_a_duplicate_of_a_wanted_quote_is_cancelled() -> None:
    steps = plan(WANTED[:1], [resting("o1", WANTED[0]), resting("o2", WANTED[0])])
    assert steps.place == ()
    assert steps.cancel_after == ("o2",)


def test_after_a_small_move_old_quotes_go_once_the_new_ones_rest() -> None:
    moved = [bid(1, "999.50"), ask(1, "1001.50")]
    old = [resting("o1", WANTED[0]), resting("o2", WANTED[2])]
    steps = plan(moved, old)
    assert steps.cancel_first == ()
    assert steps.place == tuple(moved)
    assert steps.cancel_after == ("o1", "o2")


def test_old_quotes_a_new_one_would_cross_are_cancelled_before_placing() -> None:
    # The mid jumped up: the new bids reach the old asks, which must go first.
    jumped = [bid(1, "1001.50"), bid(2, "1000.50"), ask(1, "1003.50"), ask(2, "1004.50")]
    old = [resting(f"o{i}", q) for i, q in enumerate(WANTED)]
    steps = plan(jumped, old)
    assert steps.cancel_first == ("o2",)
    assert steps.cancel_after == ("o0", "o1", "o3")


def test_after_a_drop_the_old_bids_above_the_new_asks_go_first() -> None:
    dropped = [bid(1, "995.00"), ask(1, "997.50")]
    old = [resting(f"o{i}", q) for i, q in enumerate(WANTED)]
    steps = plan(dropped, old)
    assert steps.cancel_first == ("o0", "o1")
    assert steps.cancel_after == ("o2", "o3")


def test_wanting_nothing_cancels_everything() -> None:
    steps = plan([], [resting("o1", WANTED[0]), resting("o2", WANTED[2])])
    assert steps.place == () and steps.cancel_first == ()
    assert steps.cancel_after == ("o1", "o2")
