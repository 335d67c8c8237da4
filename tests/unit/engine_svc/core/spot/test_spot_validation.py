"""Validation reasons, ownership, idempotency, wallet transfers and the status table."""

from __future__ import annotations

import pytest

from engine_svc.core import DecimalFormatError, Reason, Side
from engine_svc.core.spot import (
    SPOT_TRANSITIONS,
    BalanceView,
    CancelSpotOrder,
    CreditWallet,
    FeeSchedule,
    IllegalSpotTransitionError,
    PlaceSpotOrder,
    SpotExchange,
    SpotOrderStatus,
    SpotOrderType,
    SpotSequenceError,
    TimeInForce,
    WalletChanged,
    check_spot_transition,
)
from unit.engine_svc.core.spot.spot_harness import USD, SpotHarness, placement

BUY = Side.BUY
SELL = Side.SELL


def _funded() -> SpotHarness:
    h = SpotHarness()
    h.credit("a", "USD", 1000 * USD)
    h.credit("a", "BTC", 100)
    return h


@pytest.mark.parametrize(("taker", "maker"), [(10, 11), (-1, 0), (10_000, 0), (10, -1)])
def test_fee_schedules_must_be_bps_with_the_maker_fee_at_most_the_taker_fee(
    taker: int, maker: int
) -> None:
    with pytest.raises(ValueError):
        FeeSchedule(taker_bps=taker, maker_bps=maker)


def test_markets_take_tick_and_lot_from_the_cfd_instrument_of_the_same_coin() -> None:
    exchange = SpotExchange()
    assert list(exchange.markets) == ["BTC_USD", "ETH_USD", "SOL_USD"]
    assert exchange.assets == ("BTC", "ETH", "SOL", "USD")
    sol = exchange.markets["SOL_USD"]
    assert (sol.scale.tick_size, sol.scale.lot_step, sol.quote_unit) == ("0.001", "0.01", 10)
    assert sol.scale.parse_price("150.125") == 150_125
    with pytest.raises(DecimalFormatError):
        exchange.markets["BTC_USD"].scale.parse_price("60000.005")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"market": "DOGE_USD"}, Reason.UNKNOWN_MARKET),
        ({"price": 0}, Reason.INVALID_PRICE),
        ({"price": -5}, Reason.INVALID_PRICE),
        ({"price": None}, Reason.INVALID_PRICE),
        ({"quantity": 0}, Reason.QUANTITY_TOO_SMALL),
        ({"quantity": -1}, Reason.QUANTITY_TOO_SMALL),
        ({"quantity": 10**16}, Reason.VALIDATION_FAILED),
        ({"quantity": 101, "side": SELL}, Reason.INSUFFICIENT_BALANCE),
        ({"quantity": 2000}, Reason.INSUFFICIENT_BALANCE),
        ({"quantity": None, "quote_quantity": 10}, Reason.VALIDATION_FAILED),
        ({"quote_quantity": 10}, Reason.VALIDATION_FAILED),
        ({"post_only": True, "time_in_force": TimeInForce.IOC}, Reason.VALIDATION_FAILED),
        ({"client_order_id": ""}, Reason.VALIDATION_FAILED),
        ({"client_order_id": "x" * 65}, Reason.VALIDATION_FAILED),
        ({"account_id": "has space"}, Reason.VALIDATION_FAILED),
    ],
)
def test_bad_limit_orders_are_rejected_with_their_reason_and_change_nothing(
    fields: dict[str, object], reason: Reason
) -> None:
    h = _funded()
    before = (h.wallet("a"), h.book(), h.exchange.house)
    base: dict[str, object] = {
        "account_id": "a", "market": "BTC_USD", "side": BUY,
        "order_type": SpotOrderType.LIMIT, "price": 5_000_000, "quantity": 10,
    }  # fmt: skip
    result = h.run(PlaceSpotOrder, **{**base, **fields})
    assert result.reason is reason, result
    assert result.events == ()
    assert (h.wallet("a"), h.book(), h.exchange.house) == before


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"price": 5_000_000}, Reason.VALIDATION_FAILED),
        ({"post_only": True}, Reason.VALIDATION_FAILED),
        ({"quantity": None}, Reason.VALIDATION_FAILED),
        ({"quantity": None, "quote_quantity": 100, "side": SELL}, Reason.VALIDATION_FAILED),
        (
            {"quantity": None, "quote_quantity": 100, "time_in_force": TimeInForce.FOK},
            Reason.VALIDATION_FAILED,
        ),
    ],
)
def test_bad_market_orders_are_rejected(fields: dict[str, object], reason: Reason) -> None:
    h = _funded()
    h.credit("b", "BTC", 100)
    h.limit("b", SELL, 6_000_000, 100)
    base: dict[str, object] = {
        "account_id": "a", "market": "BTC_USD", "side": BUY,
        "order_type": SpotOrderType.MARKET, "quantity": 10,
    }  # fmt: skip
    result = h.run(PlaceSpotOrder, **{**base, **fields})
    assert result.reason is reason, result


def test_a_quote_quantity_of_zero_is_too_small() -> None:
    h = _funded()
    h.credit("b", "BTC", 100)
    h.limit("b", SELL, 6_000_000, 100)
    assert h.market("a", BUY, quote_quantity=0).reason is Reason.QUANTITY_TOO_SMALL


def test_a_market_buy_that_cannot_pay_one_lot_is_insufficient_balance() -> None:
    h = SpotHarness()
    h.credit("a", "USD", 6_005_999)
    h.credit("b", "BTC", 100)
    h.limit("b", SELL, 6_000_000, 100)
    # One lot at 60000 costs 6 USD plus 0.006 fee.
    result = h.market("a", BUY, quantity=1)
    assert result.reason is Reason.INSUFFICIENT_BALANCE
    h.credit("a", "USD", 1)
    assert placement(h.market("a", BUY, quantity=1)).order.status is SpotOrderStatus.FILLED


def test_another_accounts_order_id_is_order_not_found_and_changes_nothing() -> None:
    h = _funded()
    h.credit("b", "USD", 1000 * USD)
    order = placement(h.limit("a", BUY, 5_000_000, 10)).order
    for account, order_id in (("b", order.id), ("a", "s-999"), ("a", "x-1"), ("c", order.id)):
        result = h.cancel(account, order_id)
        assert result.reason is Reason.ORDER_NOT_FOUND, (account, order_id)
    assert h.exchange.get_order("b", order.id) is None
    assert h.exchange.open_orders("a") == [order]
    assert h.cancel("a", order.id).ok
    assert h.cancel("a", order.id).reason is Reason.ORDER_NOT_FOUND


def test_a_repeated_client_order_id_returns_the_first_result_and_changes_nothing() -> None:
    h = _funded()
    first = h.limit("a", BUY, 5_000_000, 10, client_order_id="k1")
    before = (h.wallet("a"), h.book())
    again = h.limit("a", BUY, 5_000_000, 10, client_order_id="k1")
    assert again.duplicate and again.events == () and again.payload == first.payload
    assert (h.wallet("a"), h.book()) == before
    # The key is bound to its first kind and target: reusing it elsewhere is refused.
    other_market = h.limit("a", BUY, 100_000, 10, market="ETH_USD", client_order_id="k1")
    assert other_market.reason is Reason.VALIDATION_FAILED
    assert h.cancel("a", "s-3", client_order_id="k1").reason is Reason.VALIDATION_FAILED
    assert h.debit("a", "USD", 1, client_order_id="k1").reason is Reason.VALIDATION_FAILED
    # Another account may use the same key.
    h.credit("b", "USD", 1000 * USD)
    assert not h.limit("b", BUY, 5_000_000, 10, client_order_id="k1").duplicate


def test_a_rejected_request_is_not_stored_so_its_retry_is_evaluated_again() -> None:
    h = SpotHarness()
    rejected = h.limit("a", BUY, 5_000_000, 10, client_order_id="k")
    assert rejected.reason is Reason.INSUFFICIENT_BALANCE
    h.credit("a", "USD", 1000 * USD)
    retried = h.limit("a", BUY, 5_000_000, 10, client_order_id="k")
    assert retried.ok and not retried.duplicate


def test_credit_and_debit_move_available_funds_idempotently() -> None:
    h = SpotHarness()
    credit = h.run(CreditWallet, account_id="a", asset="USD", amount=500 * USD,
                   client_order_id="t1")  # fmt: skip
    assert credit.payload == BalanceView("USD", 500 * USD, 0)
    ts = credit.events[0].ts
    assert credit.events == (WalletChanged(1, ts, "a", "USD", 500 * USD, 500 * USD),)
    repeat = h.run(CreditWallet, account_id="a", asset="USD", amount=500 * USD,
                   client_order_id="t1")  # fmt: skip
    assert repeat.duplicate and h.wallet("a") == {"USD": (500 * USD, 0)}
    placement(h.limit("a", BUY, 4_000_000, 100))  # locks 400.40 USD
    assert h.debit("a", "USD", 100 * USD).reason is Reason.INSUFFICIENT_BALANCE
    debit = h.debit("a", "USD", 99_600_000, client_order_id="t2")
    assert debit.payload == BalanceView("USD", 0, 400_400_000)
    assert h.exchange.asset_totals("USD") == (400_400_000, 0, 400_400_000)
    assert h.debit("a", "USD", 99_600_000, client_order_id="t2").duplicate


@pytest.mark.parametrize(
    ("asset", "amount", "reason"),
    [
        ("DOGE", 1, Reason.VALIDATION_FAILED),
        ("USD", 0, Reason.VALIDATION_FAILED),
        ("USD", -1, Reason.VALIDATION_FAILED),
        ("USD", 10**19, Reason.VALIDATION_FAILED),
    ],
)
def test_bad_transfers_are_rejected(asset: str, amount: int, reason: Reason) -> None:
    h = SpotHarness()
    assert h.run(CreditWallet, account_id="a", asset=asset, amount=amount).reason is reason
    assert h.debit("a", asset, amount).reason is reason
    assert h.exchange.accounts == {}


def test_a_debit_from_an_unknown_wallet_is_insufficient_balance() -> None:
    assert SpotHarness().debit("nobody", "USD", 1).reason is Reason.INSUFFICIENT_BALANCE


def test_sequence_numbers_must_rise_and_fields_must_have_their_types() -> None:
    exchange = SpotExchange()
    exchange.apply(CreditWallet(5, 0, "a", "USD", 1))
    with pytest.raises(SpotSequenceError):
        exchange.apply(CreditWallet(5, 0, "a", "USD", 1))
    with pytest.raises(TypeError):
        exchange.apply(CancelSpotOrder(6, 0, "a", 7))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        exchange.apply(("not", "a", "command"))  # type: ignore[arg-type]
    late = exchange.apply(CreditWallet(8, -1, "a", "USD", 1))
    assert late.reason is Reason.VALIDATION_FAILED


def test_the_status_table_allows_only_its_transitions() -> None:
    status = SpotOrderStatus
    assert check_spot_transition(status.OPEN, status.REJECTED) is status.REJECTED
    assert check_spot_transition(status.PARTIALLY_FILLED, status.FILLED) is status.FILLED
    for terminal in (status.FILLED, status.CANCELLED, status.REJECTED, status.EXPIRED):
        assert SPOT_TRANSITIONS[terminal] == frozenset()
        for target in status:
            with pytest.raises(IllegalSpotTransitionError):
                check_spot_transition(terminal, target)
    with pytest.raises(IllegalSpotTransitionError):
        check_spot_transition(status.PARTIALLY_FILLED, status.REJECTED)
    with pytest.raises(IllegalSpotTransitionError):
        check_spot_transition(status.PARTIALLY_FILLED, status.OPEN)


def test_the_exchange_refuses_a_transition_outside_the_table() -> None:
    h = _funded()
    order = placement(h.limit("a", BUY, 5_000_000, 10)).order
    # Corrupt the order as a bug would: a FILLED order can never be cancelled.
    h.exchange.orders[order.create_seq].status = SpotOrderStatus.FILLED
    with pytest.raises(IllegalSpotTransitionError):
        h.cancel("a", order.id)
