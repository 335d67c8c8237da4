"""Account figures and the margin call event as the API shows them."""

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
    PositionMode,
    PositionView,
    Side,
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
