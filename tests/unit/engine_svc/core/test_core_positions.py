"""Opening, closing and adding margin, with hand-computed figures for each instrument."""

from __future__ import annotations

import pytest

from engine_svc.core import (
    AccountCreated,
    AccountSummary,
    AddMargin,
    ApplyQuote,
    BalanceChanged,
    BalanceKind,
    ClosedPosition,
    ClosePosition,
    CloseReason,
    CreateAccount,
    Deposit,
    MarginAdded,
    OpenPosition,
    PositionClosed,
    PositionOpened,
    PositionView,
    Reason,
    Side,
)
from unit.engine_svc.core.core_harness import Harness

USD = 1_000_000


def _setup(harness: Harness, balance: int = 10_000 * USD) -> None:
    assert harness.run(CreateAccount, account_id="a", initial_balance=balance).ok


def _position(result_payload: object) -> PositionView:
    assert isinstance(result_payload, PositionView)
    return result_payload


def test_create_account_is_idempotent_and_deposit_credits(harness: Harness) -> None:
    first = harness.run(CreateAccount, account_id="a", initial_balance=5000 * USD)
    assert first.ok
    assert first.events == (AccountCreated(1, harness.ts, "a", 5000 * USD),)
    again = harness.run(CreateAccount, account_id="a", initial_balance=99 * USD)
    assert again.ok and again.duplicate and again.events == ()
    assert isinstance(again.payload, AccountSummary) and again.payload.balance == 5000 * USD
    deposit = harness.run(Deposit, account_id="a", amount=250 * USD)
    assert deposit.events == (
        BalanceChanged(3, harness.ts, "a", BalanceKind.DEPOSIT, 250 * USD, 5250 * USD, ""),
    )
    summary = harness.core.account_summary("a")
    assert summary == AccountSummary("a", 5250 * USD, 0, 0, 5250 * USD, 5250 * USD, None, 0, 0)
    assert harness.run(Deposit, account_id="zz", amount=1).reason is Reason.ACCOUNT_NOT_FOUND
    assert harness.run(Deposit, account_id="a", amount=0).reason is Reason.VALIDATION_FAILED
    assert harness.run(Deposit, account_id="a", amount=-5).reason is Reason.VALIDATION_FAILED
    assert harness.run(CreateAccount, account_id="", initial_balance=1).reason is (
        Reason.VALIDATION_FAILED
    )


def test_quote_is_validated(harness: Harness) -> None:
    assert harness.run(ApplyQuote, symbol="XYZUSD", bid=1, ask=2).reason is Reason.UNKNOWN_SYMBOL
    assert harness.run(ApplyQuote, symbol="BTCUSD", bid=5, ask=5).reason is (
        Reason.VALIDATION_FAILED
    )
    assert harness.run(ApplyQuote, symbol="BTCUSD", bid=0, ask=5).reason is (
        Reason.VALIDATION_FAILED
    )
    ok = harness.run(ApplyQuote, symbol="BTCUSD", bid=4, ask=5)
    assert ok.ok and harness.core.get_quote("BTCUSD") == ok.payload


def test_btc_buy_by_quantity_fills_at_ask_and_charges_margin_rounded_up(
    harness: Harness,
) -> None:
    _setup(harness)
    harness.run(ApplyQuote, symbol="BTCUSD", bid=6_425_000, ask=6_425_015)
    # 0.0003 BTC at 64250.15, leverage 7: notional 19.275045 USD, margin 2.7535778571 -> up.
    result = harness.run(
        OpenPosition, account_id="a", symbol="BTCUSD", side=Side.BUY, leverage=7, quantity=3
    )
    position = _position(result.payload)
    assert position.id == "p-3"
    assert position.entry_price == 6_425_015
    assert position.margin == 2_753_578
    # entry - 2.753578 / 0.0003 = 55071.5567 rounded up to the tick.
    assert position.liquidation_price == 5_507_156
    assert position.unrealized_pnl == (6_425_000 - 6_425_015) * 3
    assert result.events[0] == BalanceChanged(
        3, harness.ts, "a", BalanceKind.MARGIN_RESERVED, -2_753_578, 10_000 * USD - 2_753_578, "p-3"
    )
    assert result.events[1] == PositionOpened(3, harness.ts, "a", position)
    summary = harness.core.account_summary("a")
    assert summary is not None
    assert summary.balance == 10_000 * USD - 2_753_578
    assert summary.used_margin == 2_753_578
    assert summary.unrealized_pnl == -45
    assert summary.equity == 10_000 * USD - 45
    # (10000 - 0.000045) / 2.753578 x 100 = 363163.852812..% in millionths, rounded down.
    assert summary.margin_level == 363_163_852_812


def test_btc_sell_fills_at_bid_and_liquidation_rounds_down(harness: Harness) -> None:
    _setup(harness)
    harness.run(ApplyQuote, symbol="BTCUSD", bid=6_425_015, ask=6_425_030)
    position = _position(
        harness.run(
            OpenPosition, account_id="a", symbol="BTCUSD", side=Side.SELL, leverage=7, quantity=3
        ).payload
    )
    assert position.entry_price == 6_425_015
    assert position.margin == 2_753_578
    # entry + 2.753578 / 0.0003 = 73428.7433 rounded down to the tick.
    assert position.liquidation_price == 7_342_874
    # A sell's unrealized PnL uses the ask: (64250.15 - 64250.30) x 0.0003.
    assert position.unrealized_pnl == -45


def test_eth_and_sol_scales(harness: Harness) -> None:
    _setup(harness)
    harness.run(ApplyQuote, symbol="ETHUSD", bid=299_990, ask=300_000)
    eth = _position(
        harness.run(
            OpenPosition,
            account_id="a",
            symbol="ETHUSD",
            side=Side.BUY,
            leverage=20,
            quantity=1500,
        ).payload
    )
    # 1.5 ETH x 3000.00 = 4500 USD, / 20 = 225 USD; liquidation 3000 - 225 / 1.5 = 2850.
    assert eth.margin == 225 * USD
    assert eth.liquidation_price == 285_000
    assert eth.unrealized_pnl == -150_000  # (2999.90 - 3000.00) x 1.5 = -0.15
    harness.run(ApplyQuote, symbol="SOLUSD", bid=150_100, ask=150_125)
    sol = _position(
        harness.run(
            OpenPosition,
            account_id="a",
            symbol="SOLUSD",
            side=Side.BUY,
            leverage=3,
            quantity=250,
        ).payload
    )
    # 2.5 SOL x 150.125 = 375.3125 USD, / 3 = 125.1041666.. rounded up.
    assert sol.margin == 125_104_167
    # 150.125 - 125.104167 / 2.5 = 100.0833332 rounded up to the 0.001 tick.
    assert sol.liquidation_price == 100_084
    assert sol.unrealized_pnl == -62_500  # (150.100 - 150.125) x 2.5


def test_open_by_margin_floors_quantity_to_the_lot_step(harness: Harness) -> None:
    _setup(harness)
    harness.run(ApplyQuote, symbol="BTCUSD", bid=6_425_000, ask=6_425_015)
    result = harness.run(
        OpenPosition,
        account_id="a",
        symbol="BTCUSD",
        side=Side.BUY,
        leverage=10,
        margin=100 * USD,
    )
    position = _position(result.payload)
    # 100 x 10 / 64250.15 = 0.015564.. BTC -> 0.0155; margin 0.0155 x 64250.15 / 10 rounded up.
    assert position.quantity == 155
    assert position.margin == 99_587_733
    tiny = harness.run(
        OpenPosition, account_id="a", symbol="BTCUSD", side=Side.BUY, leverage=1, margin=6 * USD
    )
    assert tiny.reason is Reason.QUANTITY_TOO_SMALL


def test_open_rejections_change_nothing(harness: Harness) -> None:
    _setup(harness, balance=100 * USD)
    base = {"account_id": "a", "symbol": "BTCUSD", "side": Side.BUY, "leverage": 10}
    assert harness.run(OpenPosition, **base, quantity=1).reason is Reason.PRICE_UNAVAILABLE
    harness.run(ApplyQuote, symbol="BTCUSD", bid=5_999_000, ask=6_000_000)
    before = harness.core.digest()
    cases = [
        ({**base, "symbol": "DOGEUSD", "quantity": 1}, Reason.UNKNOWN_SYMBOL),
        ({**base, "leverage": 0, "quantity": 1}, Reason.INVALID_LEVERAGE),
        ({**base, "leverage": 101, "quantity": 1}, Reason.INVALID_LEVERAGE),
        ({**base, "quantity": 0}, Reason.QUANTITY_TOO_SMALL),
        ({**base}, Reason.VALIDATION_FAILED),
        ({**base, "quantity": 1, "margin": 1}, Reason.VALIDATION_FAILED),
        ({**base, "quantity": True}, Reason.VALIDATION_FAILED),
        # 0.2 BTC x 60000 / 10 = 1200 USD > 100 USD.
        ({**base, "quantity": 2000}, Reason.INSUFFICIENT_BALANCE),
        ({**base, "quantity": 1, "stop_loss": 5_999_000}, Reason.INVALID_STOPS),
        ({**base, "quantity": 1, "take_profit": 5_999_000}, Reason.INVALID_STOPS),
        ({**base, "account_id": "nobody", "quantity": 1}, Reason.ACCOUNT_NOT_FOUND),
    ]
    for fields, reason in cases:
        result = harness.run(OpenPosition, **fields)
        assert result.reason is reason, fields
        assert result.events == () and result.message
    assert harness.core.digest() == before


def test_wrongly_typed_fields_raise_type_error_and_change_nothing(harness: Harness) -> None:
    _setup(harness)
    harness.run(ApplyQuote, symbol="BTCUSD", bid=5_999_000, ask=6_000_000)
    before = harness.core.digest()
    base = {"account_id": "a", "symbol": "BTCUSD", "side": Side.BUY, "leverage": 10}
    for fields in (
        {**base, "side": "BUY", "quantity": 1},
        {**base, "quantity": "1"},
        {**base, "leverage": 10.0, "quantity": 1},
        {**base, "account_id": 7, "quantity": 1},
        {**base, "symbol": None, "quantity": 1},
        {**base, "quantity": 1, "client_order_id": 5},
    ):
        with pytest.raises(TypeError):
            harness.run(OpenPosition, **fields)
    with pytest.raises(TypeError):
        harness.run(ClosePosition, account_id="a", position_id=3)
    with pytest.raises(TypeError, match="not a core command"):
        harness.core.apply(AccountSummary("a", 0, 0, 0, 0, 0, None, 0, 0))  # type: ignore[arg-type]
    assert harness.core.digest() == before


def test_slippage_guard_is_inclusive_at_the_limit(harness: Harness) -> None:
    _setup(harness)
    harness.run(ApplyQuote, symbol="BTCUSD", bid=6_005_000, ask=6_006_000)
    base = {
        "account_id": "a",
        "symbol": "BTCUSD",
        "side": Side.BUY,
        "leverage": 10,
        "quantity": 1,
        "expected_price": 6_000_000,
    }
    # |60060.00 - 60000.00| / 60000.00 x 10000 = 10 bps exactly.
    assert harness.run(OpenPosition, **base, max_slippage_bps=10).ok
    harness.run(ApplyQuote, symbol="BTCUSD", bid=6_005_000, ask=6_006_001)
    assert harness.run(OpenPosition, **base, max_slippage_bps=10).reason is (
        Reason.SLIPPAGE_EXCEEDED
    )
    sell = {**base, "side": Side.SELL, "expected_price": 6_011_000}
    # A sell fills at the bid 60050.00: 60 / 60110 x 10000 = 9.98 bps.
    assert harness.run(OpenPosition, **sell, max_slippage_bps=9).reason is (
        Reason.SLIPPAGE_EXCEEDED
    )
    assert harness.run(OpenPosition, **sell, max_slippage_bps=10).ok


def test_full_close_at_bid_credits_margin_plus_pnl(harness: Harness) -> None:
    _setup(harness)
    harness.run(ApplyQuote, symbol="BTCUSD", bid=5_999_000, ask=6_000_000)
    opened = _position(
        harness.run(
            OpenPosition,
            account_id="a",
            symbol="BTCUSD",
            side=Side.BUY,
            leverage=10,
            quantity=1000,
        ).payload
    )
    assert opened.margin == 600 * USD and opened.liquidation_price == 5_400_000
    harness.run(ApplyQuote, symbol="BTCUSD", bid=6_100_000, ask=6_101_000)
    result = harness.run(ClosePosition, account_id="a", position_id=opened.id)
    closed = result.payload
    assert isinstance(closed, ClosedPosition)
    # 0.1 BTC x (61000 - 60000) = 100 USD.
    assert (closed.close_price, closed.closed_quantity, closed.realized_pnl) == (
        6_100_000,
        1000,
        100 * USD,
    )
    assert (closed.released_margin, closed.credited, closed.house_absorbed) == (
        600 * USD,
        700 * USD,
        0,
    )
    assert closed.reason is CloseReason.USER and closed.remaining is None
    assert result.events == (
        PositionClosed(5, harness.ts, "a", closed),
        BalanceChanged(
            5, harness.ts, "a", BalanceKind.CLOSE_SETTLED, 700 * USD, 10_100 * USD, opened.id
        ),
    )
    assert harness.core.account_summary("a") == AccountSummary(
        "a", 10_100 * USD, 0, 0, 10_100 * USD, 10_100 * USD, None, 0, 0
    )
    assert harness.core.house_balance == -100 * USD
    again = harness.run(ClosePosition, account_id="a", position_id=opened.id)
    assert again.reason is Reason.POSITION_NOT_FOUND


def test_sell_closes_at_ask(harness: Harness) -> None:
    _setup(harness)
    harness.run(ApplyQuote, symbol="ETHUSD", bid=300_000, ask=300_010)
    opened = _position(
        harness.run(
            OpenPosition,
            account_id="a",
            symbol="ETHUSD",
            side=Side.SELL,
            leverage=5,
            quantity=2000,
        ).payload
    )
    # 2 ETH x 3000 / 5 = 1200 USD; liquidation 3000 + 1200 / 2 = 3600.
    assert opened.margin == 1200 * USD and opened.liquidation_price == 360_000
    harness.run(ApplyQuote, symbol="ETHUSD", bid=290_000, ask=290_050)
    closed = harness.run(ClosePosition, account_id="a", position_id=opened.id).payload
    assert isinstance(closed, ClosedPosition)
    # (3000.00 - 2900.50) x 2 = 199 USD.
    assert closed.close_price == 290_050 and closed.realized_pnl == 199 * USD


def test_partial_close_releases_margin_rounded_down_and_moves_liquidation(
    harness: Harness,
) -> None:
    _setup(harness)
    harness.run(ApplyQuote, symbol="BTCUSD", bid=6_425_000, ask=6_425_015)
    opened = _position(
        harness.run(
            OpenPosition, account_id="a", symbol="BTCUSD", side=Side.BUY, leverage=7, quantity=3
        ).payload
    )
    result = harness.run(ClosePosition, account_id="a", position_id=opened.id, quantity=1)
    closed = result.payload
    assert isinstance(closed, ClosedPosition)
    # 2.753578 x 1 / 3 = 0.9178593.. rounded down.
    assert closed.released_margin == 917_859
    assert closed.realized_pnl == -15
    remaining = closed.remaining
    assert remaining is not None
    assert (remaining.quantity, remaining.margin) == (2, 1_835_719)
    # 64250.15 - 1.835719 / 0.0002 = 55071.555 rounded up to the tick.
    assert remaining.liquidation_price == 5_507_156
    summary = harness.core.account_summary("a")
    assert summary is not None and summary.used_margin == 1_835_719
    assert (
        harness.run(ClosePosition, account_id="a", position_id=opened.id, quantity=3).reason
        is Reason.VALIDATION_FAILED
    )
    assert (
        harness.run(ClosePosition, account_id="a", position_id=opened.id, quantity=0).reason
        is Reason.QUANTITY_TOO_SMALL
    )
    rest = harness.run(ClosePosition, account_id="a", position_id=opened.id, quantity=2)
    assert isinstance(rest.payload, ClosedPosition)
    assert rest.payload.released_margin == 1_835_719 and rest.payload.remaining is None


def test_add_margin_moves_the_liquidation_price(harness: Harness) -> None:
    _setup(harness, balance=1000 * USD)
    harness.run(ApplyQuote, symbol="BTCUSD", bid=5_999_000, ask=6_000_000)
    opened = _position(
        harness.run(
            OpenPosition,
            account_id="a",
            symbol="BTCUSD",
            side=Side.BUY,
            leverage=10,
            quantity=1000,
        ).payload
    )
    result = harness.run(AddMargin, account_id="a", position_id=opened.id, amount=200 * USD)
    position = _position(result.payload)
    # 60000 - 800 / 0.1 = 52000; PnL (59990 - 60000) x 0.1 = -1; level 999 / 800 = 124.875%.
    assert position.margin == 800 * USD and position.liquidation_price == 5_200_000
    assert isinstance(result.events[1], MarginAdded)
    assert harness.core.account_summary("a") == AccountSummary(
        "a", 200 * USD, 800 * USD, -1 * USD, 999 * USD, 200 * USD, 124_875_000, 1, 0
    )
    too_much = harness.run(AddMargin, account_id="a", position_id=opened.id, amount=201 * USD)
    assert too_much.reason is Reason.INSUFFICIENT_BALANCE
    assert harness.run(AddMargin, account_id="a", position_id=opened.id, amount=0).reason is (
        Reason.VALIDATION_FAILED
    )


def test_other_accounts_positions_are_not_found(harness: Harness) -> None:
    _setup(harness)
    harness.run(CreateAccount, account_id="b", initial_balance=1000 * USD)
    harness.run(ApplyQuote, symbol="BTCUSD", bid=5_999_000, ask=6_000_000)
    opened = _position(
        harness.run(
            OpenPosition, account_id="a", symbol="BTCUSD", side=Side.BUY, leverage=10, quantity=1
        ).payload
    )
    for bad_id in (opened.id, "p-999", "x", "p-03", "p--1", ""):
        assert harness.run(ClosePosition, account_id="b", position_id=bad_id).reason is (
            Reason.POSITION_NOT_FOUND
        )
    assert harness.core.get_position("b", opened.id) is None
    assert harness.core.get_position("a", opened.id) == harness.core.list_positions("a")[0]
    assert harness.core.list_positions("b") == []
