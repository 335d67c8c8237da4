"""client_order_id: a repeated request returns the first result and changes nothing."""

from __future__ import annotations

from engine_svc.core import (
    AddMargin,
    ApplyQuote,
    CancelOrder,
    ClosedPosition,
    ClosePosition,
    Core,
    CreateAccount,
    Deposit,
    ModifyPosition,
    OpenPosition,
    OrderType,
    OrderView,
    PlaceOrder,
    PositionView,
    Reason,
    Side,
)
from unit.engine_svc.core.core_harness import Harness

USD = 1_000_000
OPEN = {"account_id": "a", "symbol": "BTCUSD", "side": Side.BUY, "leverage": 10}


def test_retry_returns_the_first_result_and_changes_nothing(harness: Harness) -> None:
    harness.run(CreateAccount, account_id="a", initial_balance=1000 * USD)
    harness.run(ApplyQuote, symbol="BTCUSD", bid=5_999_000, ask=6_000_000)
    first = harness.run(OpenPosition, **OPEN, quantity=10, client_order_id="c-1")
    assert first.ok and not first.duplicate
    harness.run(ApplyQuote, symbol="BTCUSD", bid=5_900_000, ask=5_900_100)
    digest = harness.core.digest()
    # Even with other fields the same key returns the first position, as it was then.
    retry = harness.run(OpenPosition, **OPEN, quantity=99, client_order_id="c-1")
    assert retry.duplicate and retry.events == () and retry.payload == first.payload
    assert harness.core.digest() == digest
    assert len(harness.core.list_positions("a")) == 1
    position_id = harness.core.list_positions("a")[0].id
    close = harness.run(
        ClosePosition, account_id="a", position_id=position_id, client_order_id="c-2"
    )
    again = harness.run(
        ClosePosition, account_id="a", position_id=position_id, client_order_id="c-2"
    )
    assert isinstance(again.payload, ClosedPosition) and again.payload == close.payload


def test_keys_are_per_account_and_rejections_are_not_stored(harness: Harness) -> None:
    harness.run(CreateAccount, account_id="a", initial_balance=1 * USD)
    harness.run(CreateAccount, account_id="b", initial_balance=1000 * USD)
    harness.run(ApplyQuote, symbol="BTCUSD", bid=5_999_000, ask=6_000_000)
    rejected = harness.run(OpenPosition, **OPEN, quantity=10, client_order_id="k")
    assert rejected.reason is Reason.INSUFFICIENT_BALANCE
    other = harness.run(
        OpenPosition, **{**OPEN, "account_id": "b"}, quantity=10, client_order_id="k"
    )
    assert other.ok and not other.duplicate
    harness.run(Deposit, account_id="a", amount=100 * USD)
    accepted = harness.run(OpenPosition, **OPEN, quantity=10, client_order_id="k")
    assert accepted.ok and not accepted.duplicate
    assert harness.run(Deposit, account_id="a", amount=5, client_order_id="x" * 65).reason is (
        Reason.VALIDATION_FAILED
    )
    deposit = harness.run(Deposit, account_id="a", amount=5, client_order_id="d")
    repeat = harness.run(Deposit, account_id="a", amount=5, client_order_id="d")
    assert repeat.duplicate and repeat.payload == deposit.payload
    assert harness.core.total_deposits == 1101 * USD + 5


def _two_positions(harness: Harness) -> tuple[str, str]:
    harness.run(CreateAccount, account_id="a", initial_balance=1000 * USD)
    harness.run(ApplyQuote, symbol="BTCUSD", bid=5_999_000, ask=6_000_000)
    first = harness.run(OpenPosition, **OPEN, quantity=10, client_order_id="open-1")
    second = harness.run(OpenPosition, **OPEN, quantity=20, client_order_id="open-2")
    assert isinstance(first.payload, PositionView) and isinstance(second.payload, PositionView)
    return first.payload.id, second.payload.id


def test_a_key_reused_on_another_position_is_rejected_and_changes_nothing(
    harness: Harness,
) -> None:
    first, second = _two_positions(harness)
    digest = harness.core.digest()
    target = {"account_id": "a", "position_id": second, "client_order_id": "open-1"}
    reused = [
        harness.run(AddMargin, **target, amount=USD),
        harness.run(ModifyPosition, **target, stop_loss=5_000_000),
        harness.run(ClosePosition, **target),
    ]
    for result in reused:
        assert result.reason is Reason.IDEMPOTENCY_KEY_REUSED and result.payload is None
        assert "OpenPosition" in result.message
    assert harness.core.digest() == digest
    margin = harness.run(
        AddMargin, account_id="a", position_id=first, amount=USD, client_order_id="m"
    )
    assert margin.ok
    # The same kind on another target, or another kind on the same target, is another request.
    other_target = harness.run(
        AddMargin, account_id="a", position_id=second, amount=USD, client_order_id="m"
    )
    other_kind = harness.run(
        ModifyPosition, account_id="a", position_id=first, stop_loss=5_000_000, client_order_id="m"
    )
    assert other_target.reason is other_kind.reason is Reason.IDEMPOTENCY_KEY_REUSED
    assert f"AddMargin on {first}" in other_target.message
    repeat = harness.run(
        AddMargin, account_id="a", position_id=first, amount=USD, client_order_id="m"
    )
    assert repeat.duplicate and repeat.payload == margin.payload and repeat.events == ()


def test_a_key_reused_to_cancel_another_order_is_rejected(harness: Harness) -> None:
    harness.run(CreateAccount, account_id="a", initial_balance=1000 * USD)
    harness.run(ApplyQuote, symbol="BTCUSD", bid=5_999_000, ask=6_000_000)
    order = {**OPEN, "order_type": OrderType.LIMIT, "trigger_price": 5_000_000, "quantity": 1}
    placed = harness.run(PlaceOrder, **order, client_order_id="place-1")
    other = harness.run(PlaceOrder, **order)
    assert isinstance(placed.payload, OrderView) and isinstance(other.payload, OrderView)
    cancel = harness.run(
        CancelOrder, account_id="a", order_id=other.payload.id, client_order_id="place-1"
    )
    assert cancel.reason is Reason.IDEMPOTENCY_KEY_REUSED
    assert [view.id for view in harness.core.list_orders("a")] == [
        placed.payload.id,
        other.payload.id,
    ]
    first = harness.run(
        CancelOrder, account_id="a", order_id=other.payload.id, client_order_id="cancel"
    )
    assert first.ok
    again = harness.run(
        CancelOrder, account_id="a", order_id=other.payload.id, client_order_id="cancel"
    )
    assert again.duplicate and again.payload == first.payload
    elsewhere = harness.run(
        CancelOrder, account_id="a", order_id=placed.payload.id, client_order_id="cancel"
    )
    assert elsewhere.reason is Reason.IDEMPOTENCY_KEY_REUSED
    assert harness.run(PlaceOrder, **order, client_order_id="cancel").reason is (
        Reason.IDEMPOTENCY_KEY_REUSED
    )
    assert harness.run(Deposit, account_id="a", amount=5, client_order_id="place-1").reason is (
        Reason.IDEMPOTENCY_KEY_REUSED
    )


def test_key_bindings_survive_a_snapshot(harness: Harness) -> None:
    first, second = _two_positions(harness)
    closed = harness.run(ClosePosition, account_id="a", position_id=first, client_order_id="c")
    restored = Harness(Core.restore(harness.core.snapshot()))
    restored.seq = harness.seq
    assert restored.core.digest() == harness.core.digest()
    reused = restored.run(ClosePosition, account_id="a", position_id=second, client_order_id="c")
    assert reused.reason is Reason.IDEMPOTENCY_KEY_REUSED
    repeat = restored.run(ClosePosition, account_id="a", position_id=first, client_order_id="c")
    assert repeat.duplicate and repeat.payload == closed.payload
