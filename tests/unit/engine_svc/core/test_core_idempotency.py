"""client_order_id: a repeated request returns the first result and changes nothing."""

from __future__ import annotations

from engine_svc.core import (
    ApplyQuote,
    ClosedPosition,
    ClosePosition,
    CreateAccount,
    Deposit,
    OpenPosition,
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
