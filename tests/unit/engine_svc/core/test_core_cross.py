"""Cross-margin accounts: worked examples of every rule, with exact figures.

BTCUSD: a tick is 0.01 and a lot 0.0001, so one tick times one lot is one micro-dollar.
ETHUSD: a tick is 0.01 and a lot 0.001, so one tick times one lot is ten micro-dollars.
"""

from __future__ import annotations

import pytest

from engine_svc.core import (
    AccountSummary,
    AddMargin,
    ApplyQuote,
    BalanceChanged,
    ClosedPosition,
    ClosePosition,
    CloseReason,
    Core,
    CreateAccount,
    Deposit,
    OpenPosition,
    OrderRejected,
    OrderType,
    PlaceOrder,
    PositionClosed,
    PositionView,
    Reason,
    Result,
    Side,
    TransferFunds,
    make_instrument,
)
from engine_svc.core.codec import CodecError, decode_command, encode_command
from engine_svc.core.engine import SNAPSHOT_VERSION
from engine_svc.core.enums import MarginMode
from engine_svc.core.events import MarginCallReached
from engine_svc.core.indexes import ASK_ABOVE, ASK_BELOW, BID_ABOVE, BID_BELOW
from engine_svc.core.spot.enums import TransferDirection
from unit.engine_svc.core.core_harness import Harness, as_version_4

USD = 1_000_000
CROSS = MarginMode.CROSS


def _start(
    harness: Harness, balance: int = 1000 * USD, call: int = 60, stop: int = 0, account: str = "c"
) -> None:
    result = harness.run(
        CreateAccount,
        account_id=account,
        initial_balance=balance,
        margin_mode=CROSS,
        margin_call_level=call,
        stop_out_level=stop,
    )
    assert result.ok, result
    if harness.core.get_quote("BTCUSD") is None:
        _btc(harness, 5_999_000)
        harness.run(ApplyQuote, symbol="ETHUSD", bid=299_900, ask=300_000)


def _btc(harness: Harness, bid: int) -> Result:
    return harness.run(ApplyQuote, symbol="BTCUSD", bid=bid, ask=bid + 1000)


def _eth(harness: Harness, bid: int) -> Result:
    return harness.run(ApplyQuote, symbol="ETHUSD", bid=bid, ask=bid + 100)


def _open(harness: Harness, account: str = "c", **fields: object) -> PositionView:
    base: dict[str, object] = {"account_id": account, "symbol": "BTCUSD", "side": Side.BUY}
    result = harness.run(OpenPosition, **{**base, **fields})
    assert isinstance(result.payload, PositionView), result
    return result.payload


def _calls(result: Result) -> list[MarginCallReached]:
    return [event for event in result.events if isinstance(event, MarginCallReached)]


def _closes(result: Result) -> list[ClosedPosition]:
    return [event.close for event in result.events if isinstance(event, PositionClosed)]


def _conserved(core: Core) -> bool:
    return core.total_user_money() + core.house_balance == core.total_deposits


def test_opening_reserves_margin_from_free_margin_and_leaves_the_balance(
    harness: Harness,
) -> None:
    _start(harness)
    position = _open(harness, leverage=100, quantity=1000)
    # 0.1 BTC at the ask 60000.00: notional 6000, margin 60; PnL at the bid 59990 is -1.
    assert position.margin == 60 * USD
    result = harness.run(Deposit, account_id="c", amount=0)
    assert not result.ok
    summary = harness.core.account_summary("c")
    assert summary is not None
    assert summary.margin_mode is CROSS
    assert (summary.balance, summary.used_margin, summary.unrealized_pnl) == (
        1000 * USD,
        60 * USD,
        -1 * USD,
    )
    assert (summary.equity, summary.free_margin) == (999 * USD, 939 * USD)
    # 999 / 60 x 100 = 1665%, in millionths of a percent.
    assert summary.margin_level == 1_665_000_000
    # Stop-out at 0%: equity can lose all of its 999 USD.
    assert summary.stop_out_distance == 999 * USD
    assert (summary.margin_call_level, summary.stop_out_level, summary.margin_call) == (
        60,
        0,
        False,
    )
    assert _conserved(harness.core)


def test_a_cross_open_emits_no_balance_change(harness: Harness) -> None:
    _start(harness)
    result = harness.run(
        OpenPosition, account_id="c", symbol="BTCUSD", side=Side.BUY, leverage=100, quantity=1000
    )
    assert [type(event).__name__ for event in result.events] == ["PositionOpened"]


def test_an_open_beyond_the_free_margin_is_rejected_in_usd(harness: Harness) -> None:
    _start(harness, balance=100 * USD)
    _open(harness, leverage=100, quantity=1000)
    # Free margin 100 - 1 - 60 = 39; another 0.1 BTC needs 60.
    result = harness.run(
        OpenPosition, account_id="c", symbol="BTCUSD", side=Side.BUY, leverage=100, quantity=1000
    )
    assert result.reason is Reason.INSUFFICIENT_BALANCE
    assert result.message == "margin 60.00 USD exceeds the free margin 39.00 USD"
    assert len(harness.core.list_positions("c")) == 1


def test_a_single_position_reports_the_exact_stop_out_price(harness: Harness) -> None:
    _start(harness)
    position = _open(harness, leverage=100, quantity=1000)
    # Equity 1000 + (bid - 60000) x 0.1 reaches 0 at bid 50000.00.
    assert position.liquidation_price == 5_000_000
    assert harness.core.accounts["c"].watch["BTCUSD"][BID_BELOW] == 5_036_000
    assert _closes(_btc(harness, 5_000_001)) == []
    (closed,) = _closes(_btc(harness, 5_000_000))
    assert (closed.reason, closed.realized_pnl, closed.house_absorbed) == (
        CloseReason.LIQUIDATION,
        -1000 * USD,
        0,
    )
    summary = harness.core.account_summary("c")
    assert summary is not None and summary.balance == 0
    assert _conserved(harness.core)


def test_a_sell_reports_its_stop_out_price_as_an_ask(harness: Harness) -> None:
    _start(harness)
    position = _open(harness, side=Side.SELL, leverage=100, quantity=1000)
    # Sold at the bid 59990.00; equity 1000 + (59990 - ask) x 0.1 reaches 0 at ask 69990.
    assert position.liquidation_price == 6_999_000
    assert harness.core.accounts["c"].watch["BTCUSD"][ASK_ABOVE] > 0
    assert _closes(harness.run(ApplyQuote, symbol="BTCUSD", bid=6_997_000, ask=6_998_999)) == []
    (closed,) = _closes(harness.run(ApplyQuote, symbol="BTCUSD", bid=6_997_000, ask=6_999_000))
    assert closed.realized_pnl == -1000 * USD


def test_a_margin_call_is_emitted_once_per_crossing(harness: Harness) -> None:
    _start(harness)
    _open(harness, leverage=100, quantity=1000)
    # 60% of the 60 USD margin is 36: equity 1000 + (bid - 60000) x 0.1 <= 36 at 50360.00.
    assert _calls(_btc(harness, 5_036_001)) == []
    (call,) = _calls(_btc(harness, 5_036_000))
    assert (call.account_id, call.equity, call.used_margin) == ("c", 36 * USD, 60 * USD)
    assert call.margin_level == 60_000_000
    account = harness.core.accounts["c"]
    assert account.margin_call
    # While the call is in effect the index watches the stop-out and the recovery.
    assert account.watch["BTCUSD"][BID_BELOW] == 5_000_000
    assert account.watch["BTCUSD"][BID_ABOVE] == 5_036_001
    assert _calls(_btc(harness, 5_030_000)) == []
    assert _calls(_btc(harness, 5_035_000)) == []
    summary = harness.core.account_summary("c")
    assert summary is not None and summary.margin_call
    # Back above 60%: re-armed without an event; the next crossing emits again.
    assert _calls(_btc(harness, 5_036_001)) == []
    assert not account.margin_call
    assert len(_calls(_btc(harness, 5_036_000))) == 1


def test_a_deposit_that_lifts_the_level_re_arms_the_margin_call(harness: Harness) -> None:
    _start(harness)
    _open(harness, leverage=100, quantity=1000)
    assert len(_calls(_btc(harness, 5_036_000))) == 1
    result = harness.run(Deposit, account_id="c", amount=10 * USD)
    assert result.ok and _calls(result) == []
    # The deposit's summary is taken after the review.
    assert isinstance(result.payload, AccountSummary) and not result.payload.margin_call
    assert not harness.core.accounts["c"].margin_call
    assert len(_calls(_btc(harness, 4_936_000))) == 1


def test_stop_out_closes_the_largest_loss_first_and_stops_when_the_level_recovers(
    harness: Harness,
) -> None:
    _start(harness, balance=100 * USD, call=100, stop=50)
    _open(harness, leverage=100, quantity=1000)  # 0.1 BTC, margin 60
    _open(harness, symbol="ETHUSD", leverage=100, quantity=1000)  # 1 ETH at 3000, margin 30
    assert _calls(_eth(harness, 299_500)) == []  # ETH PnL -5, equity 94 > 90
    # BTC PnL (59480 - 60000) x 0.1 = -52: equity 100 - 52 - 5 = 43 <= 50% of 90.
    result = _btc(harness, 5_948_000)
    (call,) = _calls(result)
    assert call.equity == 43 * USD
    (closed,) = _closes(result)
    assert (closed.symbol, closed.reason, closed.realized_pnl) == (
        "BTCUSD",
        CloseReason.LIQUIDATION,
        -52 * USD,
    )
    # The margin call comes before the stop-out's close.
    kinds = [type(event).__name__ for event in result.events]
    assert kinds.index("MarginCallReached") < kinds.index("PositionClosed")
    # Balance 48, equity 43 on 30 of margin: 143% is above both levels; ETH stays open.
    summary = harness.core.account_summary("c")
    assert summary is not None
    assert (summary.balance, summary.equity, summary.used_margin) == (48 * USD, 43 * USD, 30 * USD)
    assert [p.symbol for p in harness.core.list_positions("c")] == ["ETHUSD"]
    assert not harness.core.accounts["c"].margin_call
    assert _conserved(harness.core)


def test_stop_out_picks_the_largest_loss_whatever_the_symbol(harness: Harness) -> None:
    _start(harness, balance=100 * USD, call=100, stop=50)
    _open(harness, leverage=100, quantity=1000)
    _open(harness, symbol="ETHUSD", leverage=100, quantity=1000)
    _btc(harness, 5_990_000)  # BTC PnL -1
    # ETH PnL (2943 - 3000) x 1 = -57: equity 100 - 1 - 57 = 42 <= 45.
    (closed,) = _closes(_eth(harness, 294_300))
    assert (closed.symbol, closed.realized_pnl) == ("ETHUSD", -57 * USD)
    assert [p.symbol for p in harness.core.list_positions("c")] == ["BTCUSD"]


def test_stop_out_closes_every_position_when_equity_cannot_recover(harness: Harness) -> None:
    _start(harness, balance=100 * USD)
    _open(harness, leverage=100, quantity=1000)
    _open(harness, leverage=100, quantity=500)
    assert _closes(_btc(harness, 5_970_000)) == []  # PnL -30 and -15: equity 55
    # PnL -70 and -35: equity -5. Closing the larger loss leaves balance 30 and PnL -35, still
    # at or below 0% whatever closes, so both close, the larger loss first.
    closes = _closes(_btc(harness, 5_930_000))
    assert [(c.closed_quantity, c.realized_pnl) for c in closes] == [
        (1000, -70 * USD),
        (500, -35 * USD),
    ]
    assert [c.house_absorbed for c in closes] == [0, 5 * USD]
    assert harness.core.list_positions("c") == []
    assert _conserved(harness.core)


def test_negative_balance_protection_books_the_shortfall_to_the_house(harness: Harness) -> None:
    _start(harness, balance=100 * USD)
    _open(harness, leverage=100, quantity=1000)
    # A gap to 40000: PnL -2000 on a 100 USD account.
    result = _btc(harness, 4_000_000)
    (closed,) = _closes(result)
    assert (closed.realized_pnl, closed.house_absorbed, closed.credited) == (
        -2000 * USD,
        1900 * USD,
        -100 * USD,
    )
    (settled,) = [event for event in result.events if isinstance(event, BalanceChanged)]
    assert (settled.amount, settled.balance) == (-100 * USD, 0)
    summary = harness.core.account_summary("c")
    assert summary is not None and summary.balance == 0
    # The house won the 100 the account had and no more.
    assert harness.core.house_balance == 100 * USD
    assert _conserved(harness.core)


def test_a_negative_balance_is_carried_while_open_positions_cover_it(harness: Harness) -> None:
    _start(harness, balance=200 * USD)
    long = _open(harness, leverage=100, quantity=1000)
    short = _open(harness, side=Side.SELL, leverage=100, quantity=1000)
    # Long PnL (57990 - 60000) x 0.1 = -201; short (59990 - 58000) x 0.1 = +199.
    _btc(harness, 5_799_000)
    result = harness.run(ClosePosition, account_id="c", position_id=long.id)
    (closed,) = _closes(result)
    assert (closed.credited, closed.house_absorbed) == (-201 * USD, 0)
    summary = harness.core.account_summary("c")
    assert summary is not None
    assert (summary.balance, summary.equity) == (-1 * USD, 198 * USD)
    harness.run(ClosePosition, account_id="c", position_id=short.id)
    summary = harness.core.account_summary("c")
    assert summary is not None and summary.balance == 198 * USD
    assert harness.core.house_balance == 2 * USD
    assert _conserved(harness.core)


def test_a_hedged_symbol_reports_no_stop_out_price(harness: Harness) -> None:
    _start(harness)
    _open(harness, leverage=100, quantity=1000)
    view = _open(harness, side=Side.SELL, leverage=100, quantity=1000)
    assert view.liquidation_price == 0
    watch = harness.core.accounts["c"].watch["BTCUSD"]
    # Two legs share the excess: each is watched on its own quote side.
    assert watch[BID_BELOW] > 0 and watch[ASK_ABOVE] > 0
    assert watch[BID_ABOVE] == watch[ASK_BELOW] == 0


def test_the_stop_out_price_of_a_symbol_holds_the_others_at_their_quotes(
    harness: Harness,
) -> None:
    _start(harness)
    _open(harness, leverage=100, quantity=1000)
    _open(harness, symbol="ETHUSD", leverage=100, quantity=1000)
    _eth(harness, 289_900)  # ETH PnL (2899 - 3000) x 1 = -101
    (btc, eth) = harness.core.list_positions("c")
    # BTC alone: 1000 - 101 + (bid - 60000) x 0.1 <= 0 at bid 51010.00.
    assert btc.liquidation_price == 5_101_000
    # ETH alone: 1000 - 1 + (bid - 3000) x 1 <= 0 at bid 2001.00.
    assert eth.liquidation_price == 200_100


def test_add_margin_is_rejected_on_a_cross_position(harness: Harness) -> None:
    _start(harness)
    position = _open(harness, leverage=100, quantity=1000)
    result = harness.run(AddMargin, account_id="c", position_id=position.id, amount=USD)
    assert result.reason is Reason.VALIDATION_FAILED
    assert harness.core.list_positions("c")[0].margin == 60 * USD


def test_a_transfer_out_is_limited_to_the_free_margin(harness: Harness) -> None:
    _start(harness, balance=100 * USD)
    _open(harness, leverage=100, quantity=1000)
    # Free margin 100 - 1 - 60 = 39.
    result = harness.run(
        TransferFunds, account_id="c", amount=40 * USD, direction=TransferDirection.TO_SPOT
    )
    assert result.reason is Reason.INSUFFICIENT_BALANCE
    result = harness.run(
        TransferFunds, account_id="c", amount=39 * USD, direction=TransferDirection.TO_SPOT
    )
    assert result.ok, result
    summary = harness.core.account_summary("c")
    assert summary is not None and summary.free_margin == 0


def test_a_pending_order_fill_needs_free_margin(harness: Harness) -> None:
    _start(harness, balance=100 * USD)
    _open(harness, leverage=100, quantity=1000)
    placed = harness.run(
        PlaceOrder,
        account_id="c",
        symbol="BTCUSD",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        trigger_price=5_990_000,
        leverage=100,
        quantity=1000,
    )
    assert placed.ok
    # Ask 59900: the order needs 59.90 of margin; equity 100 - 10.1, used 60, free 29.9.
    result = _btc(harness, 5_989_000)
    (rejected,) = [event for event in result.events if isinstance(event, OrderRejected)]
    assert rejected.reason is Reason.INSUFFICIENT_BALANCE


def test_levels_are_checked_at_creation(harness: Harness) -> None:
    result = harness.run(
        CreateAccount,
        account_id="c",
        initial_balance=USD,
        margin_mode=CROSS,
        margin_call_level=50,
        stop_out_level=60,
    )
    assert result.reason is Reason.VALIDATION_FAILED
    assert not harness.core.has_account("c")


def test_isolated_accounts_keep_their_semantics_and_encoding(harness: Harness) -> None:
    command = CreateAccount(1, 0, "i", 1000 * USD)
    # The same journal bytes as before margin modes existed.
    assert encode_command(command) == b'["CreateAccount",1,0,"i",1000000000]'
    assert decode_command(encode_command(command)) == command
    cross = CreateAccount(2, 0, "c", 1000 * USD, CROSS, 70, 20)
    assert decode_command(encode_command(cross)) == cross
    harness.run(CreateAccount, account_id="i", initial_balance=1000 * USD)
    _btc(harness, 5_999_000)
    position = _open(harness, account="i", leverage=100, quantity=1000)
    # Isolated: 60000 - 60 / 0.1.
    assert position.liquidation_price == 5_940_000
    summary = harness.core.account_summary("i")
    assert summary is not None
    assert summary.margin_mode is MarginMode.ISOLATED
    assert (summary.balance, summary.free_margin, summary.stop_out_distance) == (
        940 * USD,
        940 * USD,
        None,
    )
    assert harness.core.accounts["i"].watch == {}


def test_the_upward_watch_of_a_short_leg_re_arms_the_call(harness: Harness) -> None:
    _start(harness)
    _open(harness, side=Side.SELL, leverage=100, quantity=1000)
    # Sold at 59990.00, margin 59.99, 60% of it 35.994: equity 1000 + (59990 - ask) x 0.1
    # falls to it at ask 69630.06.
    assert _calls(harness.run(ApplyQuote, symbol="BTCUSD", bid=6_962_000, ask=6_963_005)) == []
    (call,) = _calls(harness.run(ApplyQuote, symbol="BTCUSD", bid=6_962_000, ask=6_963_006))
    assert call.equity == 35_994_000
    watch = harness.core.accounts["c"].watch["BTCUSD"]
    assert watch[ASK_BELOW] == 6_963_005
    assert watch[ASK_ABOVE] == 6_999_000
    harness.run(ApplyQuote, symbol="BTCUSD", bid=6_961_000, ask=6_963_005)
    assert not harness.core.accounts["c"].margin_call


def test_losses_spread_over_two_symbols_reach_the_stop_out(harness: Harness) -> None:
    _start(harness, balance=100 * USD, call=0, stop=0)
    _open(harness, leverage=100, quantity=1000)
    _open(harness, symbol="ETHUSD", leverage=100, quantity=1000)
    # Equity 98 over two legs: neither symbol alone gets to lose it all before a review.
    assert _closes(_btc(harness, 5_951_000)) == []  # BTC PnL -49: equity 50
    # ETH PnL (2949 - 3000) x 1 = -51: equity 0, the stop-out level.
    closes = _closes(_eth(harness, 294_900))
    assert [(c.symbol, c.realized_pnl) for c in closes] == [
        ("ETHUSD", -51 * USD),
        ("BTCUSD", -49 * USD),
    ]
    assert _conserved(harness.core)


def test_a_snapshot_keeps_the_mode_the_levels_and_the_margin_call(harness: Harness) -> None:
    _start(harness, call=70, stop=10)
    harness.run(CreateAccount, account_id="i", initial_balance=1000 * USD)
    _open(harness, leverage=100, quantity=1000)
    # 70% of 60 is 42: equity 1000 + (bid - 60000) x 0.1 <= 42 at 50420.00.
    assert len(_calls(_btc(harness, 5_042_000))) == 1
    data = harness.core.snapshot()
    assert data.startswith(b'{"format":"cfd-core-snapshot","version":%d,' % SNAPSHOT_VERSION)
    restored = Harness(Core.restore(data))
    restored.seq = harness.seq
    assert restored.core.digest() == harness.core.digest()
    account = restored.core.accounts["c"]
    assert (account.cross, account.margin_call_level, account.stop_out_level) == (True, 70, 10)
    assert account.margin_call and not restored.core.accounts["i"].cross
    # The rebuilt index still watches the stop-out (10% of 60 = 6 at 50060.00) and recovery.
    assert account.watch["BTCUSD"][BID_BELOW] == 5_006_000
    assert account.watch["BTCUSD"][BID_ABOVE] == 5_042_001
    for core_harness in (harness, restored):
        assert _closes(_btc(core_harness, 5_006_001)) == []
        (closed,) = _closes(_btc(core_harness, 5_006_000))
        assert closed.realized_pnl == -994 * USD
    assert restored.core.digest() == harness.core.digest()


def test_a_cross_account_in_a_version_3_snapshot_is_refused(harness: Harness) -> None:
    _start(harness)
    data = as_version_4(harness.core.snapshot()).replace(b'"version":4', b'"version":3', 1)
    with pytest.raises(CodecError, match="account row"):
        Core.restore(data)


def test_the_stop_out_price_is_exact_when_a_tick_times_a_lot_is_a_fraction_of_a_micro() -> None:
    # A tick of 0.0001 times a lot of 0.001 is 0.1 micro-dollar: PnL rounds per position.
    instrument = make_instrument("XYZUSD", "0.0001", "0.001", 100)
    harness = Harness(Core({"XYZUSD": instrument}))
    harness.run(CreateAccount, account_id="c", initial_balance=10 * USD, margin_mode=CROSS)
    harness.run(ApplyQuote, symbol="XYZUSD", bid=19_999, ask=20_000)
    result = harness.run(
        OpenPosition, account_id="c", symbol="XYZUSD", side=Side.BUY, leverage=1, quantity=7
    )
    # 0.007 bought at 2.0000 can lose 0.014 USD at most: no price stops 10 USD out.
    assert isinstance(result.payload, PositionView) and result.payload.liquidation_price == 0
    short = harness.run(
        OpenPosition, account_id="c", symbol="XYZUSD", side=Side.SELL, leverage=100,
        quantity=400_000,
    )  # fmt: skip
    assert isinstance(short.payload, PositionView)
    # Net short 399.993: a rise of about 10 / 400 = 0.025 stops the account out.
    ask = short.payload.liquidation_price
    assert 20_200 < ask < 20_300
    assert _closes(harness.run(ApplyQuote, symbol="XYZUSD", bid=ask - 2, ask=ask - 1)) == []
    closes = _closes(harness.run(ApplyQuote, symbol="XYZUSD", bid=ask - 1, ask=ask))
    assert [c.side for c in closes] == [Side.SELL, Side.BUY]
