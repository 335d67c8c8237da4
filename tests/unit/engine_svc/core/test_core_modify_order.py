"""ModifyOrder: a pending order's trigger, size, stops and expiry change under placement rules."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine_svc.core import (
    CLEAR,
    ApplyQuote,
    CancelOrder,
    Core,
    CreateAccount,
    ExpireOrders,
    ModifyOrder,
    OrderExpired,
    OrderFilled,
    OrderModified,
    OrderStatus,
    OrderType,
    OrderView,
    PlaceOrder,
    Reason,
    Side,
)
from engine_svc.core.codec import decode_command, encode_command
from unit.engine_svc.core.core_harness import Harness

USD = 1_000_000
SECOND = 1_000_000_000


def _start(harness: Harness) -> None:
    harness.run(CreateAccount, account_id="a", initial_balance=10_000 * USD)
    harness.run(CreateAccount, account_id="b", initial_balance=10_000 * USD)
    harness.run(ApplyQuote, symbol="BTCUSD", bid=5_999_000, ask=6_000_000)


def _buy_limit(harness: Harness, trigger: int = 5_950_000, **fields: object) -> OrderView:
    result = harness.run(
        PlaceOrder, account_id="a", symbol="BTCUSD", side=Side.BUY,
        order_type=OrderType.LIMIT, trigger_price=trigger, leverage=10, quantity=100, **fields,
    )  # fmt: skip
    assert isinstance(result.payload, OrderView), result
    return result.payload


def _modify(harness: Harness, order: OrderView, **fields: object) -> OrderView:
    result = harness.run(ModifyOrder, account_id="a", order_id=order.id, **fields)
    assert isinstance(result.payload, OrderView), result
    assert result.events == (OrderModified(harness.seq, harness.ts, "a", result.payload),)
    return result.payload


def test_a_moved_trigger_fires_at_the_new_level_and_not_at_the_old(harness: Harness) -> None:
    _start(harness)
    order = _buy_limit(harness)
    moved = _modify(harness, order, trigger_price=5_900_000)
    assert moved.trigger_price == 5_900_000 and moved.status is OrderStatus.PENDING
    assert moved.create_time == order.create_time and moved.id == order.id
    assert harness.core.list_orders("a") == [moved]
    # The old level is crossed: nothing fires.
    assert harness.run(ApplyQuote, symbol="BTCUSD", bid=5_940_000, ask=5_945_000).events == ()
    assert harness.core.list_orders("a") == [moved]
    result = harness.run(ApplyQuote, symbol="BTCUSD", bid=5_890_000, ask=5_900_000)
    filled = [event.order for event in result.events if isinstance(event, OrderFilled)]
    assert [view.id for view in filled] == [order.id]
    assert harness.core.list_positions("a")[0].entry_price == 5_900_000


def test_a_trigger_moved_away_and_back_fires_once(harness: Harness) -> None:
    _start(harness)
    order = _buy_limit(harness)
    _modify(harness, order, trigger_price=5_900_000)
    _modify(harness, order, trigger_price=5_950_000)
    result = harness.run(ApplyQuote, symbol="BTCUSD", bid=5_880_000, ask=5_890_000)
    assert len([event for event in result.events if isinstance(event, OrderFilled)]) == 1
    assert harness.core.list_positions("a")[0].quantity == 100


def test_size_stops_and_expiry_change_and_a_cleared_expiry_never_expires(
    harness: Harness,
) -> None:
    _start(harness)
    order = _buy_limit(harness, take_profit=6_100_000, expire_time=harness.ts + SECOND)
    changed = _modify(
        harness, order, margin=500 * USD, stop_loss=5_800_000, take_profit=CLEAR,
        trailing_distance=10_000, expire_time=harness.ts + 5 * SECOND,
    )  # fmt: skip
    assert (changed.quantity, changed.margin) == (None, 500 * USD)
    assert (changed.take_profit, changed.stop_loss, changed.trailing_distance) == (
        None, 5_800_000, 10_000,
    )  # fmt: skip
    assert changed.expire_time == harness.ts + 5 * SECOND
    harness.ts += 2 * SECOND
    # The first expire time has passed, but the order now expires later.
    assert harness.run(ExpireOrders).events == ()
    resized = _modify(harness, order, quantity=7, expire_time=CLEAR, trailing_distance=CLEAR)
    assert (resized.quantity, resized.margin, resized.expire_time) == (7, None, None)
    assert resized.trailing_distance is None
    harness.ts += 10 * SECOND
    assert harness.run(ExpireOrders).events == ()
    assert harness.core.list_orders("a") == [resized]


def test_an_expiry_moved_earlier_expires_then(harness: Harness) -> None:
    _start(harness)
    order = _buy_limit(harness, expire_time=harness.ts + 10 * SECOND)
    _modify(harness, order, expire_time=harness.ts + SECOND)
    harness.ts += SECOND
    (expired,) = harness.run(ExpireOrders).events
    assert isinstance(expired, OrderExpired) and expired.order.status is OrderStatus.EXPIRED


def test_invalid_modifications_are_rejected_and_change_nothing(harness: Harness) -> None:
    _start(harness)
    order = _buy_limit(harness, take_profit=6_100_000, stop_loss=5_800_000)
    stop = harness.run(
        PlaceOrder, account_id="a", symbol="BTCUSD", side=Side.SELL, order_type=OrderType.STOP,
        trigger_price=5_900_000, leverage=10, quantity=1,
    ).payload  # fmt: skip
    assert isinstance(stop, OrderView)
    cases: list[tuple[str, dict[str, object], Reason, str]] = [
        (order.id, {}, Reason.VALIDATION_FAILED, ""),
        # A buy limit must stay below the ask, a sell stop below the bid.
        (order.id, {"trigger_price": 6_000_000}, Reason.VALIDATION_FAILED, "trigger_price"),
        (stop.id, {"trigger_price": 5_999_000}, Reason.VALIDATION_FAILED, "trigger_price"),
        # The stops are checked against the new trigger.
        (order.id, {"trigger_price": 5_750_000}, Reason.INVALID_STOPS, "stop_loss"),
        (order.id, {"stop_loss": 5_950_000}, Reason.INVALID_STOPS, "stop_loss"),
        (order.id, {"take_profit": 5_940_000}, Reason.INVALID_STOPS, "take_profit"),
        (order.id, {"quantity": 1, "margin": USD}, Reason.VALIDATION_FAILED, "quantity"),
        (order.id, {"quantity": 0}, Reason.QUANTITY_TOO_SMALL, "quantity"),
        (order.id, {"margin": 0}, Reason.VALIDATION_FAILED, "margin"),
        (order.id, {"trigger_price": 0}, Reason.VALIDATION_FAILED, "trigger_price"),
        (order.id, {"expire_time": harness.ts}, Reason.VALIDATION_FAILED, "expire_time"),
        (order.id, {"trailing_distance": -1}, Reason.VALIDATION_FAILED, "trailing_distance"),
        ("o-999", {"trigger_price": 5_900_000}, Reason.ORDER_NOT_FOUND, "order_id"),
    ]
    before = harness.core.digest()
    for order_id, fields, reason, field in cases:
        result = harness.run(ModifyOrder, account_id="a", order_id=order_id, **fields)
        assert (result.reason, result.field, result.events) == (reason, field, ()), fields
        assert harness.core.digest() == before, fields
    # Another account's order is not found, and neither is one that is no longer pending.
    other = harness.run(ModifyOrder, account_id="b", order_id=order.id, trigger_price=5_900_000)
    assert other.reason is Reason.ORDER_NOT_FOUND
    assert harness.run(CancelOrder, account_id="a", order_id=order.id).ok
    gone = harness.run(ModifyOrder, account_id="a", order_id=order.id, trigger_price=5_900_000)
    assert gone.reason is Reason.ORDER_NOT_FOUND


def test_a_repeated_client_order_id_returns_the_first_result(harness: Harness) -> None:
    _start(harness)
    order = _buy_limit(harness)
    other = _buy_limit(harness, trigger=5_940_000)
    first = harness.run(
        ModifyOrder, account_id="a", order_id=order.id, trigger_price=5_900_000,
        client_order_id="m1",
    )  # fmt: skip
    again = harness.run(
        ModifyOrder, account_id="a", order_id=order.id, trigger_price=5_800_000,
        client_order_id="m1",
    )  # fmt: skip
    assert again.duplicate and again.payload == first.payload and again.events == ()
    assert harness.core.get_order("a", order.id) == first.payload
    # The key is bound to its kind and its target.
    for command, target in ((ModifyOrder, other.id), (CancelOrder, order.id)):
        reused = harness.run(command, account_id="a", order_id=target, client_order_id="m1")
        assert reused.reason is Reason.IDEMPOTENCY_KEY_REUSED


def test_the_journal_codec_round_trips_a_modification() -> None:
    command = ModifyOrder(
        7, 9, "a", "o-3", trigger_price=5, margin=6, stop_loss=CLEAR, expire_time=CLEAR,
        client_order_id="k",
    )  # fmt: skip
    assert decode_command(encode_command(command)) == command


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(5_800_000, 6_100_000), st.integers(5_800_000, 6_100_000)),
        min_size=1,
        max_size=8,
    )
)
def test_an_order_fills_exactly_when_its_current_trigger_is_crossed(
    steps: list[tuple[int, int]],
) -> None:
    """Alternate modifications and quotes: the order fills at the first quote that crosses
    the trigger it has then, never at an earlier trigger; a rejected modification keeps it."""
    harness = Harness(Core())
    _start(harness)
    order = _buy_limit(harness, trigger=5_700_000)
    trigger, ask = 5_700_000, 6_000_000
    for new_trigger, new_ask in steps:
        result = harness.run(
            ModifyOrder, account_id="a", order_id=order.id, trigger_price=new_trigger
        )
        assert result.ok == (new_trigger < ask)
        if result.ok:
            trigger = new_trigger
        fired = harness.run(ApplyQuote, symbol="BTCUSD", bid=new_ask - 1_000, ask=new_ask).events
        filled = [event.order for event in fired if isinstance(event, OrderFilled)]
        if new_ask <= trigger:
            assert [view.id for view in filled] == [order.id]
            assert harness.core.list_positions("a")[0].entry_price == new_ask
            return
        assert filled == []
        assert harness.core.get_order("a", order.id) is not None
        ask = new_ask
