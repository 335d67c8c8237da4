"""Account figures, swaps, commissions and the margin call event as the API shows them."""

from __future__ import annotations

from cfd.v1 import common_pb2, trading_pb2
from engine_svc.convert import (
    AccountEvent,
    closed_message,
    event_message,
    order_message,
    position_message,
    summary_message,
    with_volume_lots,
)
from engine_svc.core import (
    ApplyQuote,
    BalanceChanged,
    ChargeSwaps,
    ClosedPosition,
    ClosePosition,
    Core,
    CreateAccount,
    MarginCallReached,
    MarginMode,
    OpenPosition,
    OrderType,
    OrderView,
    PlaceOrder,
    PositionClosed,
    PositionMode,
    PositionView,
    Side,
    SwapCharged,
    make_charges,
    make_instrument,
)

USD = 1_000_000


def _core() -> Core:
    core = Core()
    core.apply(CreateAccount(1, 0, "c", 1000 * USD, MarginMode.CROSS, 60, 0))
    core.apply(CreateAccount(2, 0, "i", 1000 * USD))
    core.apply(ApplyQuote(3, 0, "BTCUSD", 5_999_000, 6_000_000))
    core.apply(OpenPosition(4, 0, "c", "BTCUSD", Side.BUY, 100, 1000))
    return core


def test_a_cross_account_shows_its_mode_levels_and_stop_out_distance() -> None:
    summary = _core().account_summary("c")
    assert summary is not None
    message = summary_message(summary, trading_pb2.GetAccountResponse)
    assert message.margin_mode == common_pb2.MARGIN_MODE_CROSS
    assert (message.balance, message.equity, message.free_margin) == (
        "1000.00",
        "999.00",
        "939.00",
    )
    assert (message.margin_call_level, message.stop_out_level) == ("60", "0")
    assert (message.stop_out_distance, message.margin_level) == ("999.00", "1665")
    assert not message.margin_call


def test_an_isolated_account_leaves_the_cross_fields_empty() -> None:
    summary = _core().account_summary("i")
    assert summary is not None
    message = summary_message(summary, trading_pb2.AccountSummary)
    assert message.margin_mode == common_pb2.MARGIN_MODE_ISOLATED
    assert message.margin_call_level == message.stop_out_level == message.stop_out_distance == ""
    assert message.position_mode == common_pb2.POSITION_MODE_HEDGING


def test_a_netting_account_reports_its_position_mode() -> None:
    core = Core()
    core.apply(CreateAccount(1, 0, "n", 1000 * USD, position_mode=PositionMode.NETTING))
    summary = core.account_summary("n")
    assert summary is not None
    response = summary_message(summary, trading_pb2.GetAccountResponse)
    streamed = summary_message(summary, trading_pb2.AccountSummary)
    for message in (response, streamed):
        assert message.position_mode == common_pb2.POSITION_MODE_NETTING
        assert message.margin_mode == common_pb2.MARGIN_MODE_ISOLATED


def test_a_margin_call_event_carries_the_account_figures() -> None:
    core = _core()
    event = MarginCallReached(7, 0, "c", 60_000_000, 36 * USD, 60 * USD)
    message = event_message(AccountEvent(7, 0, event), core.instruments)
    assert message.type == trading_pb2.EVENT_TYPE_MARGIN_CALL
    assert (message.margin_call.margin_level, message.margin_call.equity) == ("60", "36.00")
    assert message.margin_call.used_margin == "60.00"


def test_positions_orders_and_closes_show_their_quantity_in_lots() -> None:
    xrp = make_instrument("XRPUSD", "0.0001", "1", 50, contract_size="1000")
    core = Core({"XRPUSD": xrp})
    core.apply(CreateAccount(1, 0, "a", 1000 * USD))
    core.apply(ApplyQuote(2, 0, "XRPUSD", 5000, 5001))
    opened = core.apply(OpenPosition(3, 0, "a", "XRPUSD", Side.BUY, 10, 2500)).payload
    assert isinstance(opened, PositionView)
    position = position_message(opened, xrp)
    assert (position.quantity, position.volume_lots) == ("2500", "2.500")
    placed = core.apply(
        PlaceOrder(4, 0, "a", "XRPUSD", Side.BUY, OrderType.LIMIT, 4000, 10, quantity=7)
    ).payload
    assert isinstance(placed, OrderView)
    assert order_message(placed, xrp).volume_lots == "0.007"
    closed = core.apply(ClosePosition(5, 0, "a", opened.id, quantity=500)).payload
    assert isinstance(closed, ClosedPosition)
    entry = closed_message(closed, xrp)
    assert (entry.quantity, entry.volume_lots) == ("500", "0.500")
    # An entry recorded before volumes existed gets its volume when it is read.
    entry.ClearField("volume_lots")
    assert with_volume_lots(entry, {"XRPUSD": xrp}).volume_lots == "0.500"


def _charged() -> Core:
    charges = make_charges(swap_long_bps="-10", commission_per_million="30")
    core = Core({"BTCUSD": make_instrument("BTCUSD", "0.01", "0.0001", 100, "0", charges=charges)})
    core.apply(CreateAccount(1, 0, "i", 1000 * USD))
    core.apply(ApplyQuote(2, 0, "BTCUSD", 5_999_000, 6_000_000))
    core.apply(OpenPosition(3, 0, "i", "BTCUSD", Side.BUY, 10, 1000))
    return core


def test_a_swap_event_shows_the_amount_the_date_and_the_position() -> None:
    core = _charged()
    # Day 19723 is 2024-01-01.
    result = core.apply(ChargeSwaps(4, 0, 19_723, 10, 3))
    (event,) = result.events
    assert isinstance(event, SwapCharged)
    message = event_message(AccountEvent(4, 0, event), core.instruments)
    assert message.type == trading_pb2.EVENT_TYPE_SWAP_CHARGED
    charge = message.swap_charge
    assert (charge.amount, charge.multiplier, charge.rollover_date) == ("-18.00", 3, "2024-01-01")
    assert (message.position.swap, message.position.margin) == ("-18.00", "582.00")
    assert message.position.commission == "0.18"


def test_positions_closes_and_accounts_show_swaps_and_commissions() -> None:
    core = _charged()
    core.apply(ChargeSwaps(4, 0, 19_723, 10, 1))
    summary = core.account_summary("i")
    assert summary is not None
    account = summary_message(summary, trading_pb2.GetAccountResponse)
    assert (account.swap, account.commission) == ("-6.00", "0.18")
    opened = core.apply(OpenPosition(5, 0, "i", "BTCUSD", Side.BUY, 10, 10))
    commission = [e for e in opened.events if isinstance(e, BalanceChanged)][-1]
    message = event_message(AccountEvent(5, 1, commission), core.instruments)
    assert message.balance_change.kind == trading_pb2.BALANCE_CHANGE_KIND_COMMISSION
    assert message.balance_change.amount == "-0.0018"
    closed = core.apply(ClosePosition(6, 0, "i", "p-3"))
    close = closed.events[0]
    assert isinstance(close, PositionClosed)
    entry = event_message(AccountEvent(6, 0, close), core.instruments).position
    # 0.18 on the open, 5999.00 x 0.1 x 30 / 10^6 = 0.17997 on the close.
    assert (entry.swap, entry.commission) == ("-6.00", "0.35997")
