"""Pending limit and stop orders: placement rules, triggers, fills, expiry and rejection."""

from __future__ import annotations

import pytest

from engine_svc.core import (
    ApplyQuote,
    BalanceChanged,
    CancelOrder,
    CreateAccount,
    ExpireOrders,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderPlaced,
    OrderRejected,
    OrderStatus,
    OrderType,
    OrderView,
    PlaceOrder,
    PositionOpened,
    Reason,
    Side,
)
from engine_svc.core.enums import IllegalTransitionError
from unit.engine_svc.core.core_harness import Harness

USD = 1_000_000


def _start(harness: Harness, balance: int = 10_000 * USD) -> None:
    harness.run(CreateAccount, account_id="a", initial_balance=balance)
    harness.run(ApplyQuote, symbol="BTCUSD", bid=5_999_000, ask=6_000_000)


def _place(harness: Harness, **fields: object) -> OrderView:
    base: dict[str, object] = {"account_id": "a", "symbol": "BTCUSD", "leverage": 10}
    result = harness.run(PlaceOrder, **{**base, **fields})
    assert isinstance(result.payload, OrderView), result
    assert result.events == (OrderPlaced(harness.seq, harness.ts, "a", result.payload),)
    return result.payload


def _fills(events: tuple[object, ...]) -> list[OrderView]:
    return [event.order for event in events if isinstance(event, OrderFilled)]


def test_buy_limit_fires_when_ask_falls_to_the_trigger(harness: Harness) -> None:
    _start(harness)
    order = _place(
        harness, side=Side.BUY, order_type=OrderType.LIMIT, trigger_price=5_950_000, quantity=100
    )
    assert order.id == "o-3" and order.status is OrderStatus.PENDING
    assert harness.core.list_orders("a") == [order]
    assert harness.run(ApplyQuote, symbol="BTCUSD", bid=5_940_000, ask=5_950_001).events == ()
    result = harness.run(ApplyQuote, symbol="BTCUSD", bid=5_930_000, ask=5_940_000)
    filled, balance, opened = result.events
    assert isinstance(filled, OrderFilled) and filled.order.status is OrderStatus.FILLED
    assert filled.order.position_id == "p-3"
    assert isinstance(balance, BalanceChanged) and balance.amount == -59_400_000
    assert isinstance(opened, PositionOpened)
    # Fills at the triggering ask 59400, better than the trigger; 0.01 x 59400 / 10 = 59.40.
    assert opened.position.entry_price == 5_940_000 and opened.position.margin == 59_400_000
    assert opened.position.order_id == order.id and opened.position.open_seq == harness.seq
    assert harness.core.list_orders("a") == []


def test_sell_limit_fires_when_bid_rises_to_the_trigger(harness: Harness) -> None:
    _start(harness)
    _place(
        harness, side=Side.SELL, order_type=OrderType.LIMIT, trigger_price=6_050_000, quantity=100
    )
    assert harness.run(ApplyQuote, symbol="BTCUSD", bid=6_049_999, ask=6_051_000).events == ()
    result = harness.run(ApplyQuote, symbol="BTCUSD", bid=6_050_000, ask=6_051_000)
    (filled,) = _fills(result.events)
    opened = result.events[-1]
    assert isinstance(opened, PositionOpened) and opened.position.entry_price == 6_050_000
    assert opened.position.side is Side.SELL and filled.side is Side.SELL


def test_buy_stop_fires_when_ask_rises_to_the_trigger(harness: Harness) -> None:
    _start(harness)
    _place(harness, side=Side.BUY, order_type=OrderType.STOP, trigger_price=6_050_000, quantity=100)
    assert harness.run(ApplyQuote, symbol="BTCUSD", bid=6_040_000, ask=6_049_999).events == ()
    result = harness.run(ApplyQuote, symbol="BTCUSD", bid=6_059_000, ask=6_060_000)
    assert len(_fills(result.events)) == 1
    opened = result.events[-1]
    # Fills at the triggering ask 60600, beyond the trigger.
    assert isinstance(opened, PositionOpened) and opened.position.entry_price == 6_060_000


def test_sell_stop_fires_when_bid_falls_to_the_trigger(harness: Harness) -> None:
    _start(harness)
    _place(
        harness, side=Side.SELL, order_type=OrderType.STOP, trigger_price=5_950_000, quantity=100
    )
    assert harness.run(ApplyQuote, symbol="BTCUSD", bid=5_950_001, ask=5_951_000).events == ()
    result = harness.run(ApplyQuote, symbol="BTCUSD", bid=5_950_000, ask=5_951_000)
    opened = result.events[-1]
    assert isinstance(opened, PositionOpened) and opened.position.entry_price == 5_950_000


def test_placement_rules(harness: Harness) -> None:
    base = {"account_id": "a", "symbol": "BTCUSD", "leverage": 10, "quantity": 1}
    harness.run(CreateAccount, account_id="a", initial_balance=1000 * USD)
    assert (
        harness.run(
            PlaceOrder, **base, side=Side.BUY, order_type=OrderType.LIMIT, trigger_price=1
        ).reason
        is Reason.PRICE_UNAVAILABLE
    )
    harness.run(ApplyQuote, symbol="BTCUSD", bid=5_999_000, ask=6_000_000)
    before = harness.core.digest()
    cases = [
        # A limit must be better than the current price, a stop worse.
        (
            {"side": Side.BUY, "order_type": OrderType.LIMIT, "trigger_price": 6_000_000},
            Reason.VALIDATION_FAILED,
        ),
        (
            {"side": Side.BUY, "order_type": OrderType.STOP, "trigger_price": 6_000_000},
            Reason.VALIDATION_FAILED,
        ),
        (
            {"side": Side.SELL, "order_type": OrderType.LIMIT, "trigger_price": 5_999_000},
            Reason.VALIDATION_FAILED,
        ),
        (
            {"side": Side.SELL, "order_type": OrderType.STOP, "trigger_price": 5_999_000},
            Reason.VALIDATION_FAILED,
        ),
        # Stops are checked against the trigger price.
        (
            {
                "side": Side.BUY,
                "order_type": OrderType.LIMIT,
                "trigger_price": 5_900_000,
                "stop_loss": 5_900_000,
            },
            Reason.INVALID_STOPS,
        ),
        (
            {
                "side": Side.SELL,
                "order_type": OrderType.LIMIT,
                "trigger_price": 6_100_000,
                "take_profit": 6_100_001,
            },
            Reason.INVALID_STOPS,
        ),
        (
            {
                "side": Side.BUY,
                "order_type": OrderType.LIMIT,
                "trigger_price": 5_900_000,
                "expire_time": harness.ts,
            },
            Reason.VALIDATION_FAILED,
        ),
        (
            {"side": Side.BUY, "order_type": OrderType.LIMIT, "trigger_price": 0},
            Reason.VALIDATION_FAILED,
        ),
        (
            {
                "side": Side.BUY,
                "order_type": OrderType.LIMIT,
                "trigger_price": 5_900_000,
                "leverage": 500,
            },
            Reason.INVALID_LEVERAGE,
        ),
        (
            {
                "side": Side.BUY,
                "order_type": OrderType.LIMIT,
                "trigger_price": 5_900_000,
                "symbol": "NOPE",
            },
            Reason.UNKNOWN_SYMBOL,
        ),
    ]
    for fields, reason in cases:
        assert harness.run(PlaceOrder, **{**base, **fields}).reason is reason, fields
    assert harness.core.digest() == before


def test_orders_expire_on_quotes_and_on_expire_commands(harness: Harness) -> None:
    _start(harness)
    soon = _place(
        harness,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        trigger_price=5_950_000,
        quantity=1,
        expire_time=harness.ts + 100,
    )
    later = _place(
        harness,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        trigger_price=5_950_000,
        quantity=1,
        expire_time=harness.ts + 200,
    )
    harness.ts += 100
    # The quote would trigger both, but the first order expires before it is evaluated.
    result = harness.run(ApplyQuote, symbol="BTCUSD", bid=5_900_000, ask=5_901_000)
    expired = result.events[0]
    assert isinstance(expired, OrderExpired) and expired.order.id == soon.id
    assert expired.order.status is OrderStatus.EXPIRED
    assert [order.id for order in _fills(result.events)] == [later.id]
    third = _place(
        harness,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        trigger_price=5_800_000,
        quantity=1,
        expire_time=harness.ts + 50,
    )
    harness.ts += 49
    assert harness.run(ExpireOrders).events == ()
    harness.ts += 1
    (event,) = harness.run(ExpireOrders).events
    assert isinstance(event, OrderExpired) and event.order.id == third.id
    assert harness.core.list_orders("a") == []


def test_trigger_with_insufficient_margin_rejects_the_order(harness: Harness) -> None:
    _start(harness, balance=100 * USD)
    order = _place(
        harness, side=Side.BUY, order_type=OrderType.STOP, trigger_price=6_050_000, quantity=1000
    )
    result = harness.run(ApplyQuote, symbol="BTCUSD", bid=6_050_000, ask=6_051_000)
    (event,) = result.events
    # 0.1 x 60510 / 10 = 605.10 USD of margin > 100 USD.
    assert isinstance(event, OrderRejected) and event.reason is Reason.INSUFFICIENT_BALANCE
    assert event.order.id == order.id and event.order.status is OrderStatus.REJECTED
    assert event.order.reject_reason is Reason.INSUFFICIENT_BALANCE
    summary = harness.core.account_summary("a")
    assert summary is not None and summary.balance == 100 * USD
    assert summary.open_positions == 0 and summary.pending_orders == 0


def test_margin_sized_order_computes_quantity_at_the_fill(harness: Harness) -> None:
    _start(harness)
    _place(
        harness,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        trigger_price=5_000_000,
        margin=100 * USD,
    )
    result = harness.run(ApplyQuote, symbol="BTCUSD", bid=4_998_000, ask=4_999_000)
    opened = result.events[-1]
    # 100 x 10 / 49990 = 0.020004 -> 0.02 BTC; margin 0.02 x 49990 / 10 = 99.98.
    assert isinstance(opened, PositionOpened)
    assert opened.position.quantity == 200 and opened.position.margin == 99_980_000


def test_cancel_only_own_pending_orders(harness: Harness) -> None:
    _start(harness)
    harness.run(CreateAccount, account_id="b", initial_balance=0)
    order = _place(
        harness, side=Side.BUY, order_type=OrderType.LIMIT, trigger_price=5_950_000, quantity=1
    )
    assert harness.run(CancelOrder, account_id="b", order_id=order.id).reason is (
        Reason.ORDER_NOT_FOUND
    )
    assert harness.core.get_order("b", order.id) is None
    assert harness.core.get_order("a", order.id) == order
    result = harness.run(CancelOrder, account_id="a", order_id=order.id)
    assert isinstance(result.payload, OrderView)
    assert result.payload.status is OrderStatus.CANCELLED
    assert result.events == (OrderCancelled(harness.seq, harness.ts, "a", result.payload),)
    assert harness.run(CancelOrder, account_id="a", order_id=order.id).reason is (
        Reason.ORDER_NOT_FOUND
    )
    # A cancelled order no longer triggers.
    assert harness.run(ApplyQuote, symbol="BTCUSD", bid=5_900_000, ask=5_901_000).events == ()


def test_a_rejection_names_the_field_at_fault(harness: Harness) -> None:
    _start(harness)
    order = {"account_id": "a", "symbol": "BTCUSD", "side": Side.BUY, "leverage": 10}
    limit = {**order, "order_type": OrderType.LIMIT, "quantity": 1}
    cases = [
        ({**limit, "trigger_price": 6_100_000}, Reason.VALIDATION_FAILED, "trigger_price"),
        ({**limit, "trigger_price": 5_000_000, "expire_time": 1}, Reason.VALIDATION_FAILED,
         "expire_time"),
        ({**limit, "trigger_price": 5_000_000, "take_profit": 4_000_000}, Reason.INVALID_STOPS,
         "take_profit"),
        ({**limit, "trigger_price": 5_000_000, "symbol": "DOGEUSD"}, Reason.UNKNOWN_SYMBOL,
         "symbol"),
        ({**limit, "trigger_price": 5_000_000, "leverage": 1000}, Reason.INVALID_LEVERAGE,
         "leverage"),
        ({**limit, "trigger_price": 5_000_000, "margin": 5}, Reason.VALIDATION_FAILED,
         "quantity"),
    ]  # fmt: skip
    for fields, reason, field in cases:
        result = harness.run(PlaceOrder, **fields)
        assert (result.reason, result.field) == (reason, field), fields
    missing = harness.run(CancelOrder, account_id="a", order_id="o-999")
    assert (missing.reason, missing.field) == (Reason.ORDER_NOT_FOUND, "order_id")
    assert harness.run(PlaceOrder, **limit, trigger_price=5_000_000).field == ""


def test_every_status_change_follows_the_transition_table(harness: Harness) -> None:
    _start(harness)
    placed = _place(
        harness, side=Side.BUY, order_type=OrderType.LIMIT, trigger_price=5_000_000, quantity=1
    )
    assert placed.status is OrderStatus.PENDING
    order = harness.core.orders[placed.create_seq]
    assert harness.run(CancelOrder, account_id="a", order_id=placed.id).ok
    assert order.status is OrderStatus.CANCELLED
    # A final status is final: the table refuses any further change.
    for status in OrderStatus:
        with pytest.raises(IllegalTransitionError):
            order.move_to(status)
    assert order.status is OrderStatus.CANCELLED
