"""Liquidation, take profit, stop loss and trailing stops fired by quotes, with exact figures."""

from __future__ import annotations

from engine_svc.core import (
    CLEAR,
    AddMargin,
    ApplyQuote,
    ClosedPosition,
    ClosePosition,
    CloseReason,
    Core,
    CreateAccount,
    ModifyPosition,
    OpenPosition,
    PositionClosed,
    PositionModified,
    PositionView,
    Reason,
    Side,
    make_instrument,
)
from unit.engine_svc.core.core_harness import Harness

USD = 1_000_000


def _open(harness: Harness, **fields: object) -> PositionView:
    base: dict[str, object] = {"account_id": "a", "symbol": "BTCUSD", "side": Side.BUY}
    result = harness.run(OpenPosition, **{**base, **fields})
    assert isinstance(result.payload, PositionView), result
    return result.payload


def _closes(events: tuple[object, ...]) -> list[ClosedPosition]:
    return [event.close for event in events if isinstance(event, PositionClosed)]


def _start(harness: Harness, balance: int = 10_000 * USD) -> None:
    harness.run(CreateAccount, account_id="a", initial_balance=balance)
    harness.run(ApplyQuote, symbol="BTCUSD", bid=5_999_000, ask=6_000_000)


def test_buy_liquidates_when_bid_reaches_the_liquidation_price(harness: Harness) -> None:
    _start(harness)
    position = _open(harness, leverage=10, quantity=1000)
    assert position.liquidation_price == 5_400_000
    assert harness.run(ApplyQuote, symbol="BTCUSD", bid=5_400_001, ask=5_401_000).events == ()
    result = harness.run(ApplyQuote, symbol="BTCUSD", bid=5_400_000, ask=5_401_000)
    (closed,) = _closes(result.events)
    # Fills at the triggering bid: (54000 - 60000) x 0.1 = -600 = the whole margin.
    assert (closed.reason, closed.close_price, closed.realized_pnl) == (
        CloseReason.LIQUIDATION,
        5_400_000,
        -600 * USD,
    )
    assert (closed.credited, closed.house_absorbed) == (0, 0)
    assert harness.core.house_balance == 600 * USD
    assert harness.core.list_positions("a") == []


def test_gap_through_the_liquidation_price_is_absorbed_by_the_house(harness: Harness) -> None:
    _start(harness)
    _open(harness, leverage=10, quantity=1000)
    result = harness.run(ApplyQuote, symbol="BTCUSD", bid=5_300_000, ask=5_301_000)
    (closed,) = _closes(result.events)
    # (53000 - 60000) x 0.1 = -700: 600 margin lost, 100 beyond it borne by the house.
    assert closed.close_price == 5_300_000
    assert (closed.realized_pnl, closed.credited, closed.house_absorbed) == (
        -700 * USD,
        0,
        100 * USD,
    )
    summary = harness.core.account_summary("a")
    assert summary is not None and summary.balance == 9_400 * USD
    assert harness.core.house_balance == 600 * USD


def test_sell_liquidates_when_ask_reaches_the_liquidation_price(harness: Harness) -> None:
    harness.run(CreateAccount, account_id="a", initial_balance=5000 * USD)
    harness.run(ApplyQuote, symbol="ETHUSD", bid=300_000, ask=300_010)
    position = _open(harness, symbol="ETHUSD", side=Side.SELL, leverage=5, quantity=2000)
    assert position.liquidation_price == 360_000
    assert harness.run(ApplyQuote, symbol="ETHUSD", bid=359_000, ask=359_999).events == ()
    (closed,) = _closes(harness.run(ApplyQuote, symbol="ETHUSD", bid=359_000, ask=360_000).events)
    assert closed.reason is CloseReason.LIQUIDATION
    assert closed.close_price == 360_000 and closed.realized_pnl == -1200 * USD


def test_partial_close_then_liquidation(harness: Harness) -> None:
    _start(harness)
    position = _open(harness, leverage=7, quantity=1000)
    # 6000 / 7 = 857.142857.. rounded up; 60000 - 857.142858 / 0.1 = 51428.57142 -> 51428.58.
    assert position.margin == 857_142_858 and position.liquidation_price == 5_142_858
    partial = harness.run(ClosePosition, account_id="a", position_id=position.id, quantity=300)
    assert isinstance(partial.payload, ClosedPosition)
    # 857.142858 x 0.3 = 257.1428574 released, rounded down.
    assert partial.payload.released_margin == 257_142_857
    remaining = partial.payload.remaining
    assert remaining is not None and remaining.margin == 600_000_001
    # 60000 - 600.000001 / 0.07 = 51428.571414.. rounded up to 51428.58.
    assert remaining.liquidation_price == 5_142_858
    result = harness.run(ApplyQuote, symbol="BTCUSD", bid=5_142_858, ask=5_143_000)
    (closed,) = _closes(result.events)
    # (51428.58 - 60000) x 0.07 = -599.9994; the rounded-up price leaves 0.000601 USD.
    assert closed.closed_quantity == 700 and closed.realized_pnl == -599_999_400
    assert closed.credited == 601 and closed.reason is CloseReason.LIQUIDATION


def test_add_margin_moves_the_liquidation_trigger(harness: Harness) -> None:
    _start(harness)
    position = _open(harness, leverage=10, quantity=1000)
    harness.run(AddMargin, account_id="a", position_id=position.id, amount=200 * USD)
    # The old level 54000 no longer fires; the new one is 60000 - 800 / 0.1 = 52000.
    assert harness.run(ApplyQuote, symbol="BTCUSD", bid=5_400_000, ask=5_401_000).events == ()
    assert harness.run(ApplyQuote, symbol="BTCUSD", bid=5_200_001, ask=5_201_000).events == ()
    (closed,) = _closes(
        harness.run(ApplyQuote, symbol="BTCUSD", bid=5_200_000, ask=5_201_000).events
    )
    assert closed.reason is CloseReason.LIQUIDATION and closed.released_margin == 800 * USD


def test_maintenance_margin_raises_the_liquidation_price() -> None:
    instrument = make_instrument("BTCUSD", "0.01", "0.0001", 100, maintenance_rate="0.005")
    harness = Harness(Core({"BTCUSD": instrument}))
    _start(harness)
    position = _open(harness, leverage=10, quantity=1000)
    # Maintenance 0.5% x 6000 = 30 USD; 60000 - (600 - 30) / 0.1 = 54300.
    assert position.maintenance_margin == 30 * USD
    assert position.liquidation_price == 5_430_000
    (closed,) = _closes(
        harness.run(ApplyQuote, symbol="BTCUSD", bid=5_430_000, ask=5_431_000).events
    )
    assert closed.reason is CloseReason.LIQUIDATION and closed.credited == 30 * USD


def test_buy_take_profit_and_stop_loss_fill_at_the_triggering_quote(harness: Harness) -> None:
    _start(harness)
    tp_position = _open(harness, leverage=10, quantity=10, take_profit=6_100_000)
    sl_position = _open(harness, leverage=10, quantity=10, stop_loss=5_900_000)
    assert harness.run(ApplyQuote, symbol="BTCUSD", bid=6_099_999, ask=6_100_500).events == ()
    (closed,) = _closes(
        harness.run(ApplyQuote, symbol="BTCUSD", bid=6_150_000, ask=6_151_000).events
    )
    # The bid jumped past the take profit: the close fills at 61500, not 61000.
    assert (closed.position_id, closed.reason, closed.close_price) == (
        tp_position.id,
        CloseReason.TAKE_PROFIT,
        6_150_000,
    )
    assert closed.realized_pnl == 1_500_000  # (61500 - 60000) x 0.001
    (closed,) = _closes(
        harness.run(ApplyQuote, symbol="BTCUSD", bid=5_900_000, ask=5_901_000).events
    )
    assert (closed.position_id, closed.reason, closed.close_price) == (
        sl_position.id,
        CloseReason.STOP_LOSS,
        5_900_000,
    )


def test_sell_take_profit_and_stop_loss_use_the_ask(harness: Harness) -> None:
    _start(harness)
    tp_position = _open(harness, side=Side.SELL, leverage=10, quantity=10, take_profit=5_900_000)
    sl_position = _open(harness, side=Side.SELL, leverage=10, quantity=10, stop_loss=6_100_000)
    assert harness.run(ApplyQuote, symbol="BTCUSD", bid=5_890_000, ask=5_900_001).events == ()
    (closed,) = _closes(
        harness.run(ApplyQuote, symbol="BTCUSD", bid=5_890_000, ask=5_900_000).events
    )
    assert closed.position_id == tp_position.id and closed.reason is CloseReason.TAKE_PROFIT
    # (59990.00 - 59000.00) x 0.001 = 0.99 USD.
    assert closed.realized_pnl == 990_000
    (closed,) = _closes(
        harness.run(ApplyQuote, symbol="BTCUSD", bid=6_099_000, ask=6_100_000).events
    )
    assert closed.position_id == sl_position.id and closed.reason is CloseReason.STOP_LOSS


def test_stops_are_validated_against_the_current_quote(harness: Harness) -> None:
    _start(harness)
    # Buy: SL < bid (59990) < TP; sell: TP < ask (60000) < SL.
    for fields in (
        {"side": Side.BUY, "stop_loss": 5_999_000},
        {"side": Side.BUY, "take_profit": 5_999_000},
        {"side": Side.SELL, "take_profit": 6_000_000},
        {"side": Side.SELL, "stop_loss": 6_000_000},
    ):
        result = harness.run(
            OpenPosition, account_id="a", symbol="BTCUSD", leverage=10, quantity=1, **fields
        )
        assert result.reason is Reason.INVALID_STOPS
    assert (
        _open(
            harness,
            side=Side.BUY,
            leverage=10,
            quantity=1,
            stop_loss=5_998_999,
            take_profit=5_999_001,
        ).stop_loss
        == 5_998_999
    )
    assert (
        _open(
            harness,
            side=Side.SELL,
            leverage=10,
            quantity=1,
            take_profit=5_999_999,
            stop_loss=6_000_001,
        ).take_profit
        == 5_999_999
    )


def test_modify_sets_and_clears_stops(harness: Harness) -> None:
    _start(harness)
    position = _open(harness, leverage=10, quantity=10, take_profit=6_100_000)
    result = harness.run(
        ModifyPosition,
        account_id="a",
        position_id=position.id,
        take_profit=CLEAR,
        stop_loss=5_900_000,
    )
    assert isinstance(result.payload, PositionView)
    assert (result.payload.take_profit, result.payload.stop_loss) == (None, 5_900_000)
    assert result.events == (
        PositionModified(result.events[0].seq, harness.ts, "a", result.payload),
    )
    # The cleared take profit no longer fires.
    assert harness.run(ApplyQuote, symbol="BTCUSD", bid=6_200_000, ask=6_201_000).events == ()
    assert harness.run(ModifyPosition, account_id="a", position_id=position.id).reason is (
        Reason.VALIDATION_FAILED
    )
    assert (
        harness.run(
            ModifyPosition, account_id="a", position_id=position.id, stop_loss=6_200_000
        ).reason
        is Reason.INVALID_STOPS
    )
    assert (
        harness.run(ModifyPosition, account_id="a", position_id=position.id, take_profit=-5).reason
        is Reason.VALIDATION_FAILED
    )
    assert (
        harness.run(ModifyPosition, account_id="b", position_id=position.id, take_profit=1).reason
        is Reason.ACCOUNT_NOT_FOUND
    )


def test_buy_trailing_stop_follows_the_highest_bid(harness: Harness) -> None:
    _start(harness)
    position = _open(harness, leverage=10, quantity=10, trailing_distance=10_000)
    assert position.trailing_stop_price == 5_989_000
    harness.run(ApplyQuote, symbol="BTCUSD", bid=6_050_000, ask=6_051_000)
    view = harness.core.get_position("a", position.id)
    assert view is not None and view.trailing_stop_price == 6_040_000
    assert harness.run(ApplyQuote, symbol="BTCUSD", bid=6_040_001, ask=6_041_000).events == ()
    (closed,) = _closes(
        harness.run(ApplyQuote, symbol="BTCUSD", bid=6_040_000, ask=6_041_000).events
    )
    assert closed.reason is CloseReason.TRAILING_STOP and closed.close_price == 6_040_000
    assert closed.realized_pnl == 40_000 * 10


def test_sell_trailing_stop_follows_the_lowest_ask(harness: Harness) -> None:
    _start(harness)
    position = _open(harness, side=Side.SELL, leverage=10, quantity=10, trailing_distance=10_000)
    assert position.trailing_stop_price == 6_010_000
    harness.run(ApplyQuote, symbol="BTCUSD", bid=5_940_000, ask=5_950_000)
    harness.run(ApplyQuote, symbol="BTCUSD", bid=5_945_000, ask=5_955_000)
    view = harness.core.get_position("a", position.id)
    assert view is not None and view.trailing_stop_price == 5_960_000
    (closed,) = _closes(
        harness.run(ApplyQuote, symbol="BTCUSD", bid=5_950_000, ask=5_965_000).events
    )
    # Fills at the triggering ask 59650, not at the stop 59600.
    assert closed.reason is CloseReason.TRAILING_STOP and closed.close_price == 5_965_000


def test_a_buy_trailing_distance_set_later_trails_from_the_current_bid(harness: Harness) -> None:
    _start(harness)
    position = _open(harness, leverage=10, quantity=10)
    harness.run(ApplyQuote, symbol="BTCUSD", bid=6_200_000, ask=6_201_000)
    harness.run(ApplyQuote, symbol="BTCUSD", bid=6_100_000, ask=6_101_000)
    # The best bid since open was 62000, but a distance set now starts at the bid 61000.
    result = harness.run(
        ModifyPosition, account_id="a", position_id=position.id, trailing_distance=50_000
    )
    assert isinstance(result.payload, PositionView)
    assert result.payload.trailing_stop_price == 6_050_000
    harness.run(ApplyQuote, symbol="BTCUSD", bid=6_150_000, ask=6_151_000)
    assert harness.run(ApplyQuote, symbol="BTCUSD", bid=6_100_001, ask=6_101_000).events == ()
    (closed,) = _closes(
        harness.run(ApplyQuote, symbol="BTCUSD", bid=6_100_000, ask=6_101_000).events
    )
    assert closed.reason is CloseReason.TRAILING_STOP and closed.close_price == 6_100_000


def test_a_sell_trailing_distance_set_again_restarts_from_the_current_ask(
    harness: Harness,
) -> None:
    _start(harness)
    position = _open(harness, side=Side.SELL, leverage=10, quantity=10, trailing_distance=30_000)
    others = [_open(harness, side=Side.SELL, leverage=10, quantity=10) for _ in range(3)]
    harness.run(ApplyQuote, symbol="BTCUSD", bid=5_800_000, ask=5_801_000)
    harness.run(ApplyQuote, symbol="BTCUSD", bid=5_820_000, ask=5_821_000)
    view = harness.core.get_position("a", position.id)
    assert view is not None and view.trailing_stop_price == 5_831_000
    # The same distance set again measures from the ask 58210, so the stop moves to 58510.
    result = harness.run(
        ModifyPosition, account_id="a", position_id=position.id, trailing_distance=30_000
    )
    assert isinstance(result.payload, PositionView)
    assert result.payload.trailing_stop_price == 5_851_000
    # The stop the position had before no longer fires.
    assert harness.run(ApplyQuote, symbol="BTCUSD", bid=5_840_000, ask=5_841_000).events == ()
    view = harness.core.get_position("a", position.id)
    assert view is not None and view.trailing_stop_price == 5_851_000
    restored = Core.restore(harness.core.snapshot())
    assert restored.digest() == harness.core.digest()
    (closed,) = _closes(
        harness.run(ApplyQuote, symbol="BTCUSD", bid=5_850_000, ask=5_851_000).events
    )
    assert closed.position_id == position.id and closed.reason is CloseReason.TRAILING_STOP
    assert len(harness.core.list_positions("a")) == len(others)


def test_one_tick_fires_in_key_order_with_one_reason_per_position(harness: Harness) -> None:
    harness.run(CreateAccount, account_id="b", initial_balance=10_000 * USD)
    _start(harness)
    first = _open(harness, leverage=10, quantity=1000, stop_loss=5_500_000)
    second = _open(harness, account_id="b", leverage=10, quantity=1000, trailing_distance=1000)
    third = _open(harness, leverage=100, quantity=10)
    untouched = _open(harness, leverage=2, quantity=10, stop_loss=5_000_000)
    result = harness.run(ApplyQuote, symbol="BTCUSD", bid=5_300_000, ask=5_301_000)
    closes = _closes(result.events)
    # Liquidation wins over the stop loss it also crossed; closes come by position key.
    assert [(c.position_id, c.reason) for c in closes] == [
        (first.id, CloseReason.LIQUIDATION),
        (second.id, CloseReason.LIQUIDATION),
        (third.id, CloseReason.LIQUIDATION),
    ]
    assert [p.id for p in harness.core.list_positions("a")] == [untouched.id]


def test_untriggered_ticks_leave_the_indexes_alone(harness: Harness) -> None:
    _start(harness, balance=10**9 * USD)
    for index in range(200):
        _open(
            harness,
            leverage=10,
            quantity=1 + index,
            stop_loss=5_000_000 - index,
            take_profit=7_000_000 + index,
            trailing_distance=900_000 + index,
        )
        _open(harness, side=Side.SELL, leverage=10, quantity=1 + index)
    book = harness.core.books["BTCUSD"]
    entries = book.entry_count()
    for bid in (5_999_500, 5_990_000, 5_999_000, 5_995_000):
        assert harness.run(ApplyQuote, symbol="BTCUSD", bid=bid, ask=bid + 1000).events == ()
    assert book.entry_count() == entries
    assert book.long_trail.level_count() <= 2


def test_stale_index_entries_are_dropped(harness: Harness) -> None:
    _start(harness, balance=10**9 * USD)
    book = harness.core.books["BTCUSD"]
    for _ in range(6):
        opened = [
            _open(harness, leverage=10, quantity=1 + index, stop_loss=5_000_000 - index)
            for index in range(150)
        ]
        for position in opened:
            assert harness.run(ClosePosition, account_id="a", position_id=position.id).ok
    # Every position is closed: what is left is bounded by the compaction rule.
    assert all(len(heap) <= 4 * 150 + 64 for heap in book.heaps)
    assert harness.core.stats().open_positions == 0
