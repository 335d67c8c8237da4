"""Netting accounts: worked examples of every rule, with exact figures.

BTCUSD: a tick is 0.01 and a lot 0.0001, so one tick times one lot is one micro-dollar; the
default instruments have no maintenance margin, so liquidation = entry -/+ margin / quantity.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine_svc.core import (
    AccountSummary,
    ApplyQuote,
    BalanceChanged,
    BalanceKind,
    ClosedPosition,
    ClosePosition,
    CloseReason,
    Core,
    CreateAccount,
    MarginMode,
    ModifyPosition,
    OpenPosition,
    OrderFilled,
    OrderRejected,
    OrderType,
    PlaceOrder,
    PositionClosed,
    PositionMode,
    PositionModified,
    PositionOpened,
    PositionView,
    Reason,
    Result,
    Side,
)
from engine_svc.core.codec import CodecError, decode_command, encode_command
from engine_svc.core.engine import SNAPSHOT_VERSION
from engine_svc.core.positions import average_entry
from engine_svc.core.units import MAX_QUANTITY_LOTS
from unit.engine_svc.core.core_harness import Harness, as_version_4

USD = 1_000_000
NETTING = PositionMode.NETTING


def _start(
    harness: Harness,
    account: str = "n",
    balance: int = 10_000 * USD,
    mode: PositionMode = NETTING,
    margin_mode: MarginMode = MarginMode.ISOLATED,
) -> None:
    result = harness.run(
        CreateAccount,
        account_id=account,
        initial_balance=balance,
        margin_mode=margin_mode,
        position_mode=mode,
    )
    assert result.ok, result
    if harness.core.get_quote("BTCUSD") is None:
        _btc(harness, 5_999_000)


def _btc(harness: Harness, bid: int) -> Result:
    return harness.run(ApplyQuote, symbol="BTCUSD", bid=bid, ask=bid + 1000)


def _trade(harness: Harness, side: Side, account: str = "n", **fields: Any) -> Result:
    base: dict[str, object] = {
        "account_id": account,
        "symbol": "BTCUSD",
        "side": side,
        "leverage": 10,
    }
    return harness.run(OpenPosition, **{**base, **fields})


def _view(result: Result) -> PositionView:
    assert isinstance(result.payload, PositionView), result
    return result.payload


def _summary(harness: Harness, account: str = "n") -> AccountSummary:
    summary = harness.core.account_summary(account)
    assert summary is not None
    return summary


def _conserved(core: Core) -> bool:
    return core.total_user_money() + core.house_balance == core.total_deposits


def test_the_mode_is_reported_and_a_hedging_account_keeps_several_positions(
    harness: Harness,
) -> None:
    _start(harness)
    _start(harness, account="h", mode=PositionMode.HEDGING)
    assert _summary(harness).position_mode is NETTING
    assert _summary(harness, "h").position_mode is PositionMode.HEDGING
    for side in (Side.BUY, Side.BUY, Side.SELL):
        assert _trade(harness, side, account="h", quantity=1000).ok
    assert len(harness.core.list_positions("h")) == 3


def test_a_trade_in_the_same_direction_increases_the_position(harness: Harness) -> None:
    _start(harness)
    first = _view(_trade(harness, Side.BUY, quantity=1000))
    # 0.1 BTC at the ask 60000.00, 10x: margin 600.
    assert (first.margin, first.entry_price) == (600 * USD, 6_000_000)
    _btc(harness, 6_099_000)
    result = _trade(harness, Side.BUY, quantity=2000)
    grown = _view(result)
    # 0.2 BTC more at 61000.00: margin 1220. Entry (60000 x 0.1 + 61000 x 0.2) / 0.3 =
    # 60666.666..., rounded up for a buy to 60666.67.
    assert grown.id == first.id and grown.open_seq == first.open_seq
    assert (grown.quantity, grown.margin, grown.entry_price) == (3000, 1820 * USD, 6_066_667)
    # Liquidation: 60666.67 - floor(1820 / 0.3 per tick) = 60666.67 - 6066.66.
    assert grown.liquidation_price == 6_066_667 - 606_666
    seq = harness.seq
    assert result.events == (
        BalanceChanged(
            seq, harness.ts, "n", BalanceKind.MARGIN_RESERVED, -1220 * USD, 8180 * USD, first.id
        ),
        PositionModified(seq, harness.ts, "n", grown),
    )
    summary = _summary(harness)
    assert (summary.balance, summary.used_margin, summary.open_positions) == (
        8180 * USD,
        1820 * USD,
        1,
    )
    assert _conserved(harness.core)


def test_a_sell_increase_rounds_its_average_entry_down(harness: Harness) -> None:
    _start(harness)
    assert _trade(harness, Side.SELL, quantity=1000).ok
    _btc(harness, 6_100_000)
    grown = _view(_trade(harness, Side.SELL, quantity=2000))
    # (59990.00 x 0.1 + 61000.00 x 0.2) / 0.3 = 60663.333..., rounded down for a sell.
    assert (grown.quantity, grown.entry_price) == (3000, 6_066_333)
    assert average_entry(True, 5_999_000, 1000, 6_100_000, 2000) == 6_066_334


@pytest.mark.parametrize("lots", [1, 7, 999])
def test_average_entry_is_within_one_tick_of_the_exact_average_against_the_holder(
    lots: int,
) -> None:
    exact = 100 * 3 + 101 * lots  # the exact average is exact / (3 + lots)
    buy = average_entry(True, 100, 3, 101, lots)
    sell = average_entry(False, 100, 3, 101, lots)
    assert (buy - 1) * (3 + lots) < exact <= buy * (3 + lots)
    assert sell * (3 + lots) <= exact < (sell + 1) * (3 + lots)


def test_a_smaller_opposite_trade_is_a_partial_close_as_close_position_makes(
    harness: Harness,
) -> None:
    _start(harness)
    _start(harness, account="h", mode=PositionMode.HEDGING)
    held = _view(_trade(harness, Side.BUY, quantity=3000, stop_loss=5_000_000))
    twin = _view(_trade(harness, Side.BUY, account="h", quantity=3000, stop_loss=5_000_000))
    _btc(harness, 6_200_000)
    # The trade's own stops are checked for a sell, then not used: the rest keeps its own.
    netted = _trade(harness, Side.SELL, quantity=1000, take_profit=6_000_000)
    closed = harness.run(ClosePosition, account_id="h", position_id=twin.id, quantity=1000)
    (net_close, net_settled) = netted.events
    (hedge_close, hedge_settled) = closed.events
    assert isinstance(net_close, PositionClosed) and isinstance(hedge_close, PositionClosed)
    assert isinstance(net_settled, BalanceChanged) and isinstance(hedge_settled, BalanceChanged)
    # 0.1 BTC of 0.3 closed at the bid 62000.00: PnL 2000 x 0.1 = 200, a third of the margin
    # 1800 released.
    close = net_close.close
    assert (close.position_id, close.closed_quantity, close.close_price) == (
        held.id,
        1000,
        6_200_000,
    )
    assert (close.realized_pnl, close.released_margin, close.reason) == (
        200 * USD,
        600 * USD,
        CloseReason.USER,
    )
    assert net_settled.kind is BalanceKind.CLOSE_SETTLED and net_settled.amount == 800 * USD
    # The hedging twin's ClosePosition made the same close but for its ids and times.
    unrelated: dict[str, Any] = {"position_id": "", "account_id": "", "close_seq": 0,
                                 "close_time": 0, "open_time": 0, "remaining": None}  # fmt: skip
    assert close._replace(**unrelated) == hedge_close.close._replace(**unrelated)
    assert (net_settled.amount, net_settled.balance) == (
        hedge_settled.amount,
        hedge_settled.balance,
    )
    rest = _view(netted)
    assert rest == close.remaining
    assert (rest.id, rest.quantity, rest.margin, rest.entry_price) == (
        held.id,
        2000,
        1200 * USD,
        6_000_000,
    )
    assert (rest.stop_loss, rest.take_profit) == (5_000_000, None)
    assert _conserved(harness.core)


def test_an_equal_opposite_trade_closes_the_position(harness: Harness) -> None:
    _start(harness)
    held = _view(_trade(harness, Side.SELL, quantity=1000))
    _btc(harness, 5_899_000)
    result = _trade(harness, Side.BUY, quantity=1000, leverage=50)
    # The short closes at the ask 59000.00: PnL (59990 - 59000) x 0.1 = 99.
    assert isinstance(result.payload, ClosedPosition)
    assert result.payload.position_id == held.id and result.payload.remaining is None
    assert result.payload.realized_pnl == 99 * USD
    assert [type(event) for event in result.events] == [PositionClosed, BalanceChanged]
    assert harness.core.list_positions("n") == []
    summary = _summary(harness)
    assert (summary.balance, summary.used_margin) == (10_099 * USD, 0)
    assert _conserved(harness.core)


def test_a_larger_opposite_trade_reverses_the_position_with_the_trade_s_stops(
    harness: Harness,
) -> None:
    _start(harness)
    held = _view(_trade(harness, Side.BUY, quantity=2000, take_profit=7_000_000))
    _btc(harness, 5_900_000)
    result = _trade(
        harness, Side.SELL, quantity=5000, leverage=20, take_profit=5_000_000,
        stop_loss=6_500_000, client_order_id="flip",
    )  # fmt: skip
    closed, settled, reserved, opened = result.events
    assert isinstance(closed, PositionClosed) and closed.close.position_id == held.id
    # The long closes in full at the bid 59000.00: PnL -1000 x 0.2 = -200; 1200 margin back.
    assert (closed.close.closed_quantity, closed.close.realized_pnl) == (2000, -200 * USD)
    assert isinstance(settled, BalanceChanged) and settled.amount == 1000 * USD
    # 0.3 BTC short at the bid 59000.00, 20x: margin 885.
    assert isinstance(reserved, BalanceChanged) and reserved.amount == -885 * USD
    assert isinstance(opened, PositionOpened)
    new = _view(result)
    assert new == opened.position
    assert (new.id, new.side, new.quantity, new.leverage, new.entry_price, new.margin) == (
        f"p-{harness.seq}",
        Side.SELL,
        3000,
        20,
        5_900_000,
        885 * USD,
    )
    assert (new.take_profit, new.stop_loss, new.client_order_id) == (5_000_000, 6_500_000, "flip")
    assert [p.id for p in harness.core.list_positions("n")] == [new.id]
    # 10000 - 1200 + 1000 - 885.
    assert _summary(harness).balance == 8915 * USD
    assert _conserved(harness.core)
    # The same key again is the stored result.
    again = _trade(harness, Side.SELL, quantity=5000, leverage=20, client_order_id="flip")
    assert again.duplicate and again.payload == new and again.events == ()


def test_a_reversal_may_use_the_margin_its_close_frees(harness: Harness) -> None:
    _start(harness, balance=1000 * USD)
    # 0.016 BTC at 60000.00, 1x: margin 960, 40 left.
    assert _trade(harness, Side.BUY, quantity=160, leverage=1).ok
    # Closing at 59990.00 gives back 960 - 0.16: 999.84 free for a 959.84 margin.
    result = _trade(harness, Side.SELL, quantity=320, leverage=1)
    assert _view(result).margin == 959_840_000
    assert _summary(harness).balance == 40 * USD
    assert _conserved(harness.core)


def test_rejections_change_nothing(harness: Harness) -> None:
    _start(harness, balance=1000 * USD)
    assert _trade(harness, Side.BUY, quantity=1000, leverage=10).ok
    digest = harness.core.digest()
    cases: list[tuple[dict[str, Any], Side, Reason]] = [
        ({"quantity": 0}, Side.BUY, Reason.QUANTITY_TOO_SMALL),
        ({"quantity": -5}, Side.SELL, Reason.QUANTITY_TOO_SMALL),
        ({"margin": 0}, Side.SELL, Reason.VALIDATION_FAILED),
        ({"quantity": 1000, "leverage": 20}, Side.BUY, Reason.INVALID_LEVERAGE),
        ({"quantity": 1000, "leverage": 0}, Side.SELL, Reason.INVALID_LEVERAGE),
        # 0.1 BTC more at 10x needs 600, 400 is free.
        ({"quantity": 1000}, Side.BUY, Reason.INSUFFICIENT_BALANCE),
        # Reversing into 0.2 BTC short needs 1199.8; the close would leave 999.9.
        ({"quantity": 3000}, Side.SELL, Reason.INSUFFICIENT_BALANCE),
        ({"quantity": 500, "stop_loss": 5_000_000}, Side.SELL, Reason.INVALID_STOPS),
        ({"quantity": MAX_QUANTITY_LOTS + 1}, Side.SELL, Reason.VALIDATION_FAILED),
    ]
    for fields, side, reason in cases:
        result = _trade(harness, side, **fields)
        assert result.reason is reason, (fields, result)
        assert harness.core.digest() == digest


def test_an_increase_s_stops_replace_the_given_ones_and_keep_the_others(
    harness: Harness,
) -> None:
    _start(harness)
    held = _view(_trade(harness, Side.BUY, quantity=1000, take_profit=7_000_000,
                        stop_loss=5_000_000))  # fmt: skip
    grown = _view(_trade(harness, Side.BUY, quantity=1000, take_profit=6_500_000,
                         trailing_distance=100_000))  # fmt: skip
    assert (grown.take_profit, grown.stop_loss, grown.trailing_distance) == (
        6_500_000,
        5_000_000,
        100_000,
    )
    # The trailing stop trails from the current bid 59990.00.
    assert grown.trailing_stop_price == 5_899_000
    # The old take profit no longer fires; the new one does, for the whole position.
    assert not any(isinstance(e, PositionClosed) for e in _btc(harness, 6_400_000).events)
    fired = _btc(harness, 6_500_000)
    (close,) = [e.close for e in fired.events if isinstance(e, PositionClosed)]
    assert (close.position_id, close.closed_quantity, close.reason) == (
        held.id,
        2000,
        CloseReason.TAKE_PROFIT,
    )
    assert _conserved(harness.core)


def test_a_reduced_position_keeps_its_liquidation_and_trigger_entries(harness: Harness) -> None:
    _start(harness)
    held = _view(_trade(harness, Side.BUY, quantity=2000, leverage=100))
    # 0.2 BTC at 100x: margin 120, liquidation 60000.00 - 600.00.
    assert held.liquidation_price == 5_940_000
    rest = _view(_trade(harness, Side.SELL, quantity=1000))
    # Half the margin is released: 60 for 0.1 BTC, the same liquidation price.
    assert (rest.margin, rest.liquidation_price) == (60 * USD, 5_940_000)
    fired = _btc(harness, 5_940_000)
    (close,) = [e.close for e in fired.events if isinstance(e, PositionClosed)]
    assert (close.closed_quantity, close.reason) == (1000, CloseReason.LIQUIDATION)
    assert _conserved(harness.core)


def test_a_pending_order_fill_nets_into_the_position(harness: Harness) -> None:
    _start(harness)
    held = _view(_trade(harness, Side.BUY, quantity=3000))
    placed = harness.run(
        PlaceOrder, account_id="n", symbol="BTCUSD", side=Side.SELL,
        order_type=OrderType.LIMIT, trigger_price=6_100_000, leverage=5, quantity=1000,
    )  # fmt: skip
    assert placed.ok
    result = _btc(harness, 6_100_000)
    filled, closed, settled = result.events
    assert isinstance(filled, OrderFilled) and filled.order.position_id == held.id
    assert isinstance(closed, PositionClosed) and closed.close.closed_quantity == 1000
    assert closed.close.realized_pnl == 100 * USD
    assert isinstance(settled, BalanceChanged)
    (rest,) = harness.core.list_positions("n")
    assert (rest.id, rest.quantity) == (held.id, 2000)
    assert _conserved(harness.core)


def test_a_pending_order_that_reverses_opens_under_its_own_key(harness: Harness) -> None:
    _start(harness)
    _view(_trade(harness, Side.BUY, quantity=1000))
    order = harness.run(
        PlaceOrder, account_id="n", symbol="BTCUSD", side=Side.SELL,
        order_type=OrderType.STOP, trigger_price=5_900_000, leverage=10, quantity=3000,
    )  # fmt: skip
    assert order.ok
    result = _btc(harness, 5_900_000)
    types = [type(event) for event in result.events]
    assert types == [OrderFilled, PositionClosed, BalanceChanged, BalanceChanged, PositionOpened]
    (new,) = harness.core.list_positions("n")
    order_key = harness.seq - 1
    assert (new.id, new.side, new.quantity, new.order_id) == (
        f"p-{order_key}",
        Side.SELL,
        2000,
        f"o-{order_key}",
    )
    assert _conserved(harness.core)


def test_a_pending_order_that_cannot_net_is_rejected_and_changes_nothing_else(
    harness: Harness,
) -> None:
    _start(harness)
    _trade(harness, Side.BUY, quantity=1000)
    assert harness.run(
        PlaceOrder, account_id="n", symbol="BTCUSD", side=Side.BUY,
        order_type=OrderType.LIMIT, trigger_price=5_900_000, leverage=20, quantity=1000,
    ).ok  # fmt: skip
    before = harness.core.list_positions("n")
    result = _btc(harness, 5_899_000)
    (rejected,) = [e for e in result.events if isinstance(e, OrderRejected)]
    assert rejected.reason is Reason.INVALID_LEVERAGE
    after = harness.core.list_positions("n")
    assert [(p.quantity, p.margin, p.entry_price) for p in after] == [
        (p.quantity, p.margin, p.entry_price) for p in before
    ]


def test_a_cross_netting_account_reserves_and_reverses_out_of_free_margin(
    harness: Harness,
) -> None:
    _start(harness, balance=1000 * USD, margin_mode=MarginMode.CROSS)
    assert _summary(harness).position_mode is NETTING
    assert _trade(harness, Side.BUY, quantity=1000, leverage=100).ok
    grown = _trade(harness, Side.BUY, quantity=1000, leverage=100)
    # A cross increase moves no balance: only PositionModified.
    assert [type(event) for event in grown.events] == [PositionModified]
    assert (_view(grown).quantity, _view(grown).margin) == (2000, 120 * USD)
    summary = _summary(harness)
    assert (summary.balance, summary.used_margin) == (1000 * USD, 120 * USD)
    flipped = _trade(harness, Side.SELL, quantity=3000, leverage=100)
    # Closed at the bid 59990.00: PnL -10 x 0.2 ... -1000 ticks x 2000 lots = -2.
    new = _view(flipped)
    assert (new.side, new.quantity, new.margin) == (Side.SELL, 1000, 59_990_000)
    summary = _summary(harness)
    assert (summary.balance, summary.used_margin) == (998 * USD, 59_990_000)
    assert _conserved(harness.core)


def test_modify_and_close_work_on_the_netted_position(harness: Harness) -> None:
    _start(harness)
    held = _view(_trade(harness, Side.BUY, quantity=1000))
    _trade(harness, Side.BUY, quantity=1000)
    modified = harness.run(
        ModifyPosition, account_id="n", position_id=held.id, stop_loss=5_500_000
    )
    assert modified.ok
    closed = harness.run(ClosePosition, account_id="n", position_id=held.id)
    assert isinstance(closed.payload, ClosedPosition) and closed.payload.closed_quantity == 2000
    assert _summary(harness).used_margin == 0 and _conserved(harness.core)


def test_the_mode_survives_a_snapshot_and_replay_reaches_the_same_digest(
    harness: Harness,
) -> None:
    _start(harness)
    _start(harness, account="x", margin_mode=MarginMode.CROSS)
    _start(harness, account="h", mode=PositionMode.HEDGING)
    _trade(harness, Side.BUY, quantity=1000)
    _trade(harness, Side.BUY, account="x", quantity=1000)
    _btc(harness, 6_050_000)
    _trade(harness, Side.SELL, quantity=2500)
    _trade(harness, Side.BUY, account="x", quantity=500)
    data, digest = harness.core.snapshot_with_digest()
    assert data.startswith(b'{"format":"cfd-core-snapshot","version":%d,' % SNAPSHOT_VERSION)
    restored = Core.restore(data)
    assert restored.digest() == digest
    assert [restored.accounts[a].netting for a in ("h", "n", "x")] == [False, True, True]
    replayed = Core()
    for command in harness.commands:
        replayed.apply(decode_command(encode_command(command)))
    assert replayed.digest() == digest
    # A netting account is part of the digest.
    hedging = Core()
    for command in harness.commands:
        if isinstance(command, CreateAccount):
            command = command._replace(position_mode=PositionMode.HEDGING)
        hedging.apply(command)
    assert hedging.digest() != digest
    # The next trade behaves the same on the restored core.
    harness_restored = Harness(restored)
    harness_restored.seq = harness.seq
    ours = _trade(harness, Side.SELL, quantity=1000)
    theirs = _trade(harness_restored, Side.SELL, quantity=1000)
    assert ours == theirs and harness.core.digest() == restored.digest()


def test_an_older_snapshot_restores_every_account_as_hedging(harness: Harness) -> None:
    _start(harness, mode=PositionMode.HEDGING)
    _trade(harness, Side.BUY, quantity=1000)
    older = as_version_4(harness.core.snapshot())
    restored = Core.restore(older)
    assert not restored.accounts["n"].netting
    assert restored.digest() == harness.core.digest()
    # A netting account cannot be in a version 4 snapshot.
    _start(harness, account="m")
    with pytest.raises(CodecError, match="account row"):
        Core.restore(as_version_4(harness.core.snapshot()))


def test_a_netting_create_account_round_trips_and_a_hedging_one_encodes_as_before() -> None:
    netting = CreateAccount(1, 0, "n", 5, position_mode=NETTING)
    assert decode_command(encode_command(netting)) == netting
    assert encode_command(CreateAccount(1, 0, "h", 5)) == b'["CreateAccount",1,0,"h",5]'
    with pytest.raises(TypeError):
        Core().apply(CreateAccount(1, 0, "n", 5, position_mode="NETTING"))  # type: ignore[arg-type]


def _marked_netting(snapshot: bytes) -> bytes:
    """Return the snapshot with its one account's row marked netting, as version 5 writes it."""
    header, _, body = snapshot.partition(b"\n")
    small_end = 8 + int.from_bytes(body[:8], "big")
    state = json.loads(body[8:small_end])
    (row,) = state[4]
    row.append(NETTING.value)
    small = json.dumps(state, separators=(",", ":")).encode("ascii")
    return header + b"\n" + len(small).to_bytes(8, "big") + small + body[small_end:]


def test_a_snapshot_with_two_positions_on_a_symbol_of_a_netting_account_is_refused(
    harness: Harness,
) -> None:
    _start(harness, mode=PositionMode.HEDGING)
    _trade(harness, Side.BUY, quantity=1000)
    _trade(harness, Side.SELL, quantity=1000)
    # The hedging account holds a long and a short BTCUSD: it cannot be a netting account.
    with pytest.raises(CodecError, match="two positions on a symbol"):
        Core.restore(_marked_netting(harness.core.snapshot()))
    # With one position per symbol the same mark restores a netting account.
    harness.run(ClosePosition, account_id="n", position_id=f"p-{harness.seq}")
    restored = Core.restore(_marked_netting(harness.core.snapshot()))
    assert restored.accounts["n"].netting
