"""Swaps and commissions: worked examples for every rule, with hand-computed figures.

BTCUSD here has tick 0.01 and lot 0.0001, so a tick times a lot is exactly one micro-dollar:
a notional in micro-dollars is ticks x lots.
"""

from __future__ import annotations

import json

import pytest

from engine_svc.core import (
    AccountSummary,
    ApplyQuote,
    BalanceChanged,
    BalanceKind,
    Charges,
    ChargeSwaps,
    ClosedPosition,
    ClosePosition,
    CloseReason,
    Core,
    CreateAccount,
    DecimalFormatError,
    MarginMode,
    OpenPosition,
    OrderType,
    PlaceOrder,
    PositionClosed,
    PositionOpened,
    PositionView,
    Reason,
    RolloverView,
    Side,
    SwapCharged,
    make_charges,
    make_instrument,
)
from engine_svc.core.codec import CodecError, decode_command, encode_command
from unit.engine_svc.core.core_harness import Harness, as_version_4

USD = 1_000_000
DAY = 20_000
BID = 5_999_900  # 59999.00
ASK = 6_000_000  # 60000.00


def _core(**rates: str) -> Harness:
    charges = make_charges(**rates)
    instrument = make_instrument("BTCUSD", "0.01", "0.0001", 100, "0", charges=charges)
    harness = Harness(Core({"BTCUSD": instrument}))
    assert harness.run(CreateAccount, account_id="a", initial_balance=10_000 * USD).ok
    _quote(harness, BID, ASK)
    return harness


def _quote(harness: Harness, bid: int, ask: int) -> None:
    assert harness.run(ApplyQuote, symbol="BTCUSD", bid=bid, ask=ask).ok


def _open(harness: Harness, side: Side = Side.BUY, lots: int = 1000, leverage: int = 10) -> str:
    result = harness.run(
        OpenPosition, account_id="a", symbol="BTCUSD", side=side, leverage=leverage,
        quantity=lots,
    )  # fmt: skip
    assert isinstance(result.payload, PositionView), result
    return result.payload.id


def _close(harness: Harness, position_id: str, lots: int | None = None) -> ClosedPosition:
    result = harness.run(ClosePosition, account_id="a", position_id=position_id, quantity=lots)
    assert isinstance(result.payload, ClosedPosition), result
    return result.payload


def _rollover(harness: Harness, day: int = DAY, multiplier: int = 1) -> RolloverView:
    result = harness.run(
        ChargeSwaps, rollover_day=day, rollover_time=harness.ts, multiplier=multiplier
    )
    assert isinstance(result.payload, RolloverView), result
    return result.payload


def _summary(harness: Harness, account_id: str = "a") -> AccountSummary:
    summary = harness.core.account_summary(account_id)
    assert summary is not None
    return summary


def _conserved(core: Core) -> bool:
    return core.total_user_money() + core.house_balance == core.total_deposits


# ----------------------------------------------------------------------------- commissions


def test_a_commission_per_million_is_charged_on_open_and_close() -> None:
    harness = _core(commission_per_million="30")
    result = harness.run(
        OpenPosition, account_id="a", symbol="BTCUSD", side=Side.BUY, leverage=10, quantity=1000
    )
    # 0.1 BTC at 60000.00 is 6000 USD: margin 600, commission 6000 x 30 / 10^6 = 0.18.
    assert result.events[:2] == (
        BalanceChanged(3, harness.ts, "a", BalanceKind.MARGIN_RESERVED, -600 * USD, 9400 * USD,
                       "p-3"),
        BalanceChanged(3, harness.ts, "a", BalanceKind.COMMISSION, -180_000,
                       9399_820_000, "p-3"),
    )  # fmt: skip
    opened = result.events[2]
    assert isinstance(opened, PositionOpened) and opened.position.commission == 180_000
    assert harness.core.house_balance == 180_000
    assert _summary(harness).commission == 180_000
    _quote(harness, 6_100_000, 6_100_100)
    closed = _close(harness, "p-3")
    # Closing at 61000.00: PnL 100, commission 6100 x 30 / 10^6 = 0.183, credited
    # 600 + 100 - 0.183; the entry carries both commissions.
    assert closed.realized_pnl == 100 * USD
    assert closed.credited == 699_817_000
    assert closed.commission == 363_000
    assert closed.swap == 0
    assert harness.core.accounts["a"].balance == 10_099_637_000
    assert harness.core.house_balance == -99_637_000
    assert _conserved(harness.core)


def test_commissions_round_up_and_add_the_per_lot_part_exactly() -> None:
    both = make_instrument(
        "BTCUSD", "0.01", "0.0001", 100, "0",
        charges=make_charges(commission_per_million="1", commission_per_lot="7"),
    )  # fmt: skip
    # 0.0001 BTC at 60000.01: 6.000001 USD x 1 / 10^6 = 6.000001 micro-dollars, plus 0.0001
    # lot x 7 USD = 700: 706.000001 rounds up to 707.
    assert both.commission_ceil_micros(6_000_001, 1) == 707
    # At 60000.00 it is exact: 6 + 700.
    assert both.commission_ceil_micros(6_000_000, 1) == 706
    # A contract size of 100 units: 0.5 BTC is 0.005 lot, 0.005 x 5 USD = 0.025 USD.
    per_lot = make_instrument(
        "BTCUSD", "0.01", "0.0001", 100, "0", "100", make_charges(commission_per_lot="5")
    )
    assert per_lot.commission_ceil_micros(6_000_000, 5000) == 25_000
    # A contract size of 0.01 units: 0.5 BTC is 50 lots, 50 x 5 USD = 250 USD.
    small = make_instrument(
        "BTCUSD", "0.01", "0.0001", 100, "0", "0.01", make_charges(commission_per_lot="5")
    )
    assert small.commission_ceil_micros(6_000_000, 5000) == 250 * USD
    assert make_instrument("BTCUSD", "0.01", "0.0001").commission_ceil_micros(6_000_000, 5) == 0


def test_a_partial_close_takes_its_share_of_the_opening_commission() -> None:
    harness = _core(commission_per_million="30")
    pid = _open(harness, lots=3000)
    # 0.3 BTC at 60000.00 = 18000 USD: 0.54 USD.
    assert harness.core.get_position("a", pid).commission == 540_000  # type: ignore[union-attr]
    first = _close(harness, pid, 1000)
    # A third of 0.54 plus 5999.90 x 30 / 10^6 = 0.179997.
    assert first.commission == 180_000 + 179_997
    assert first.remaining is not None and first.remaining.commission == 360_000
    second = _close(harness, pid)
    assert second.commission == 360_000 + 359_994
    assert first.commission + second.commission == 540_000 + 179_997 + 359_994
    assert harness.core.house_balance == 1_079_991 - first.realized_pnl - second.realized_pnl
    assert _conserved(harness.core)


def test_the_margin_check_includes_the_commission() -> None:
    harness = _core(commission_per_million="1000000")
    # A commission of the whole notional, leverage 10: 0.16 BTC at 60000.00 needs margin 960
    # plus commission 9600, more than 10000; 0.15 BTC needs 900 + 9000 and fits.
    refused = harness.run(
        OpenPosition, account_id="a", symbol="BTCUSD", side=Side.BUY, leverage=10, quantity=1600
    )
    assert refused.reason is Reason.INSUFFICIENT_BALANCE
    assert refused.message == (
        "margin 960.00 USD plus commission 9600.00 USD exceeds the free balance 10000.00 USD"
    )
    assert harness.core.house_balance == 0
    _open(harness, lots=1500)
    assert harness.core.accounts["a"].balance == 100 * USD
    assert _conserved(harness.core)


def test_a_filled_order_pays_the_commission() -> None:
    harness = _core(commission_per_million="30")
    placed = harness.run(
        PlaceOrder, account_id="a", symbol="BTCUSD", side=Side.BUY, order_type=OrderType.LIMIT,
        trigger_price=5_900_000, leverage=10, quantity=1000,
    )  # fmt: skip
    assert placed.ok
    harness.ts += 1
    result = harness.run(ApplyQuote, symbol="BTCUSD", bid=5_899_000, ask=5_900_000)
    kinds = [event.kind for event in result.events if isinstance(event, BalanceChanged)]
    assert kinds == [BalanceKind.MARGIN_RESERVED, BalanceKind.COMMISSION]
    # 5900 USD x 30 / 10^6.
    assert harness.core.house_balance == 177_000
    assert _conserved(harness.core)


def test_a_cross_account_pays_commissions_from_its_balance() -> None:
    harness = _core(commission_per_million="30")
    harness.run(
        CreateAccount, account_id="c", initial_balance=1000 * USD, margin_mode=MarginMode.CROSS
    )
    result = harness.run(
        OpenPosition, account_id="c", symbol="BTCUSD", side=Side.SELL, leverage=10, quantity=1000
    )
    # Sold at 59999.00: 5999.9 x 30 / 10^6 = 0.179997; the cross balance keeps the margin.
    assert result.events[0] == BalanceChanged(
        4, harness.ts, "c", BalanceKind.COMMISSION, -179_997, 1000 * USD - 179_997, "p-4"
    )
    closed = harness.run(ClosePosition, account_id="c", position_id="p-4").payload
    assert isinstance(closed, ClosedPosition)
    # Bought back at the ask 60000.00: PnL -0.1 x 1 = -0.1, commission 0.18.
    assert closed.credited == -100_000 - 180_000
    assert closed.commission == 179_997 + 180_000
    assert harness.core.accounts["c"].balance == 1000 * USD - 179_997 - 280_000
    assert _conserved(harness.core)


# ----------------------------------------------------------------------------- swaps


def test_swaps_accrue_across_rollovers_and_triple_on_the_triple_day() -> None:
    harness = _core(swap_long_bps="-10", swap_short_bps="2.5")
    pid = _open(harness)
    rollover = harness.run(ChargeSwaps, rollover_day=DAY, rollover_time=harness.ts, multiplier=1)
    # -10 bps of the entry notional 6000 USD: -6 USD, out of the isolated margin.
    (event,) = rollover.events
    assert isinstance(event, SwapCharged)
    assert (event.amount, event.multiplier, event.rollover_day) == (-6 * USD, 1, DAY)
    assert event.position.margin == 594 * USD and event.position.swap == -6 * USD
    # The liquidation price moves up: 60000.00 - 594 / 0.1 = 54060.00.
    assert event.position.liquidation_price == 5_406_000
    assert rollover.payload == RolloverView(DAY, 1, 1, -6 * USD)
    assert harness.core.house_balance == 6 * USD
    assert _rollover(harness, DAY + 1, 3) == RolloverView(DAY + 1, 3, 1, -18 * USD)
    position = harness.core.get_position("a", pid)
    assert position is not None and position.swap == -24 * USD and position.margin == 576 * USD
    assert _summary(harness).swap == -24 * USD
    assert _summary(harness).used_margin == 576 * USD
    closed = _close(harness, pid)
    # Closed at the bid 59999.00: PnL -0.1; the entry shows the swap the rollovers settled.
    assert closed.swap == -24 * USD
    assert closed.released_margin == 576 * USD
    assert closed.credited == 576 * USD - 100_000
    assert _conserved(harness.core)


def test_a_short_swap_is_credited_and_rounds_down() -> None:
    harness = _core(swap_short_bps="2.5")
    _quote(harness, 5_999_901, 6_000_001)
    _open(harness, Side.SELL)
    # Sold at 59999.01: 5999.901 USD x 2.5 bps = 1.49997525 USD, rounded down.
    assert _rollover(harness).total == 1_499_975
    assert harness.core.house_balance == -1_499_975
    assert _summary(harness).used_margin == 599_990_100 + 1_499_975
    assert _conserved(harness.core)


def test_a_charged_swap_rounds_up_in_size() -> None:
    instrument = make_instrument(
        "BTCUSD", "0.01", "0.0001", 100, "0", charges=make_charges(swap_long_bps="-10")
    )
    # 0.0001 BTC at 60000.01 is 6.000001 USD: -0.006000001 USD rounds to -6001 micro-dollars.
    assert instrument.swap_floor_micros(True, 6_000_001, 1, 1) == -6001
    assert instrument.swap_floor_micros(True, 6_000_001, 1, 3) == -18001
    assert instrument.swap_floor_micros(False, 6_000_001, 1, 1) == 0


def test_a_cross_account_swap_moves_the_balance() -> None:
    harness = _core(swap_long_bps="-10")
    harness.run(
        CreateAccount, account_id="c", initial_balance=1000 * USD, margin_mode=MarginMode.CROSS
    )
    harness.run(
        OpenPosition, account_id="c", symbol="BTCUSD", side=Side.BUY, leverage=10, quantity=1000
    )
    result = harness.run(ChargeSwaps, rollover_day=DAY, rollover_time=harness.ts, multiplier=1)
    swap, changed = result.events
    assert isinstance(swap, SwapCharged) and swap.position.margin == 600 * USD
    assert changed == BalanceChanged(
        harness.seq, harness.ts, "c", BalanceKind.SWAP, -6 * USD, 994 * USD, "p-4"
    )
    summary = _summary(harness, "c")
    assert summary.balance == 994 * USD and summary.swap == -6 * USD
    assert _conserved(harness.core)


def test_a_cross_account_is_stopped_out_when_a_swap_takes_its_equity() -> None:
    harness = _core(swap_long_bps="-1000")
    harness.run(
        CreateAccount, account_id="c", initial_balance=500 * USD, margin_mode=MarginMode.CROSS
    )
    harness.run(
        OpenPosition, account_id="c", symbol="BTCUSD", side=Side.BUY, leverage=100, quantity=1000
    )
    # -10% of 6000 is -600: the balance goes to -100 and the stop-out closes the position.
    result = harness.run(ChargeSwaps, rollover_day=DAY, rollover_time=harness.ts, multiplier=1)
    closes = [event for event in result.events if isinstance(event, PositionClosed)]
    assert [event.close.reason for event in closes] == [CloseReason.LIQUIDATION]
    assert harness.core.accounts["c"].balance == 0
    assert _conserved(harness.core)


def test_a_swap_beyond_the_margin_takes_it_all_and_liquidates() -> None:
    harness = _core(swap_long_bps="-1000")
    _open(harness, leverage=100)
    result = harness.run(ChargeSwaps, rollover_day=DAY, rollover_time=harness.ts, multiplier=1)
    # -10% of 6000 is -600, capped at the margin 60; the bid 59999.00 is below the new
    # liquidation price 60000.00, so the position closes there with a loss of 0.1.
    swap, closed, settled = result.events
    assert isinstance(swap, SwapCharged) and swap.amount == -60 * USD
    assert isinstance(closed, PositionClosed)
    assert closed.close.reason is CloseReason.LIQUIDATION and closed.close.swap == -60 * USD
    assert closed.close.house_absorbed == 100_000
    assert isinstance(settled, BalanceChanged) and settled.amount == 0
    assert harness.core.list_positions("a") == []
    assert _conserved(harness.core)


def test_a_rollover_is_charged_once_and_only_for_positions_held_over_it() -> None:
    harness = _core(swap_long_bps="-10")
    _open(harness)
    cutoff = harness.ts
    harness.ts += 10
    _open(harness)
    result = harness.run(ChargeSwaps, rollover_day=DAY, rollover_time=cutoff, multiplier=1)
    assert result.payload == RolloverView(DAY, 1, 1, -6 * USD)
    digest = harness.core.digest()
    for day, multiplier in ((DAY, 1), (DAY - 1, 1), (DAY + 1, 0), (DAY + 1, 8), (0, 1)):
        again = harness.run(
            ChargeSwaps, rollover_day=day, rollover_time=harness.ts, multiplier=multiplier
        )
        assert again.reason is Reason.VALIDATION_FAILED and again.events == ()
    assert harness.core.digest() == digest
    assert harness.core.last_rollover == DAY


def test_a_rollover_without_swap_rates_records_the_day_only() -> None:
    harness = _core(commission_per_million="30")
    _open(harness)
    assert _rollover(harness) == RolloverView(DAY, 1, 0, 0)
    assert harness.core.last_rollover == DAY


# ----------------------------------------------------------------------------- durability


def test_a_snapshot_keeps_the_rates_the_charges_and_the_rollover_day() -> None:
    harness = _core(swap_long_bps="-10", commission_per_million="30", commission_per_lot="1")
    pid = _open(harness, lots=3000)
    _rollover(harness)
    _close(harness, pid, 1000)
    restored = Core.restore(harness.core.snapshot())
    assert restored.digest() == harness.core.digest()
    assert restored.instruments == harness.core.instruments
    assert restored.last_rollover == DAY
    assert restored.get_position("a", pid) == harness.core.get_position("a", pid)
    position = restored.get_position("a", pid)
    assert position is not None and position.swap == -12 * USD and position.commission > 0


def _instrument_rows(snapshot: bytes) -> list[list[object]]:
    body = snapshot.partition(b"\n")[2]
    state = json.loads(body[8 : 8 + int.from_bytes(body[:8], "big")])
    rows: list[list[object]] = state[0]
    return rows


def _with_instrument_row(snapshot: bytes, row: list[object]) -> bytes:
    header, _, body = snapshot.partition(b"\n")
    small_end = 8 + int.from_bytes(body[:8], "big")
    state = json.loads(body[8:small_end])
    state[0] = [row]
    small = json.dumps(state, separators=(",", ":")).encode("ascii")
    return header + b"\n" + len(small).to_bytes(8, "big") + small + body[small_end:]


def test_a_snapshot_holds_the_contract_size_only_with_a_commission_per_lot() -> None:
    per_lot = make_instrument(
        "BTCUSD", "0.01", "0.0001", 100, "0", "0.1", make_charges(commission_per_lot="1")
    )
    data = Core({"BTCUSD": per_lot}).snapshot()
    (row,) = _instrument_rows(data)
    # The 7 scales, the 4 rates, then the contract size 1 x 10^-1.
    assert row == ["BTCUSD", 1, 2, 1, 4, 100, 0, 1, 0, 0, 0, 1_000_000, 1, 1]
    restored = Core.restore(data)
    assert restored.instruments == {"BTCUSD": per_lot}
    assert restored.instruments["BTCUSD"].contract_size == "0.1"
    # Without a commission per lot the state does not depend on the contract size.
    swap_only = make_charges(swap_long_bps="-1")
    rows = [
        _instrument_rows(
            Core({"BTCUSD": make_instrument("BTCUSD", "0.01", "0.0001", 100, "0", size, swap_only)})
            .snapshot()
        )[0]
        for size in ("1", "100")
    ]  # fmt: skip
    assert rows[0] == rows[1] and len(rows[0]) == 12
    # A contract size without a commission per lot, or a commission per lot without one, is
    # malformed.
    for bad in (rows[0] + [1, 1], row[:12]):
        with pytest.raises(CodecError, match="instrument row"):
            Core.restore(_with_instrument_row(data, bad))


def test_a_version_4_snapshot_restores_with_no_charges() -> None:
    harness = _core()
    pid = _open(harness)
    restored = Core.restore(as_version_4(harness.core.snapshot()))
    assert restored.digest() == harness.core.digest() and restored.last_rollover == 0
    position = restored.get_position("a", pid)
    assert position is not None and (position.swap, position.commission) == (0, 0)


def test_replaying_the_journal_across_a_rollover_gives_the_same_digest() -> None:
    harness = _core(swap_long_bps="-10", swap_short_bps="1", commission_per_million="30")
    _open(harness)
    _open(harness, Side.SELL, 2000)
    _rollover(harness)
    _quote(harness, 6_050_000, 6_050_100)
    _rollover(harness, DAY + 1, 3)
    _close(harness, "p-4", 500)
    replay = Core({"BTCUSD": harness.core.instruments["BTCUSD"]})
    for command in harness.commands:
        replay.apply(decode_command(encode_command(command)))
    assert replay.digest() == harness.core.digest()
    assert replay.last_rollover == DAY + 1


def test_the_rates_are_checked() -> None:
    assert make_charges().is_free and Charges() == make_charges("0", "0", "0", "0")
    rates = make_charges("-2.5", "0.0001", "12.5", "0.000001")
    assert rates.texts() == {
        "swap_long_bps": "-2.5",
        "swap_short_bps": "0.0001",
        "commission_per_million": "12.5",
        "commission_per_lot": "0.000001",
    }
    for bad in (
        {"swap_long_bps": "0.00001"},
        {"swap_short_bps": "10001"},
        {"commission_per_million": "-1"},
        {"commission_per_lot": "0.0000001"},
        {"commission_per_lot": "x"},
    ):
        with pytest.raises(DecimalFormatError):
            make_charges(**bad)


def test_the_worked_example_of_the_concepts_page() -> None:
    harness = _core(commission_per_million="30", swap_long_bps="-10")
    pid = _open(harness)
    assert harness.core.accounts["a"].balance == 9_399_820_000
    _rollover(harness, multiplier=3)
    position = harness.core.get_position("a", pid)
    assert position is not None and position.margin == 582 * USD
    _quote(harness, 6_100_000, 6_100_100)
    closed = _close(harness, pid)
    assert closed.credited == 681_817_000
    assert (closed.swap, closed.commission) == (-18 * USD, 363_000)
    assert harness.core.accounts["a"].balance == 10_081_637_000
    assert harness.core.house_balance == -81_637_000


def test_the_swap_event_of_the_websocket_page() -> None:
    harness = _core(swap_long_bps="-1")
    _quote(harness, 6_400_900, 6_401_000)
    pid = _open(harness, lots=100)
    (event,) = harness.run(
        ChargeSwaps, rollover_day=DAY, rollover_time=harness.ts, multiplier=3
    ).events
    assert isinstance(event, SwapCharged) and event.amount == -192_030
    assert event.position.id == pid
    assert (event.position.margin, event.position.liquidation_price) == (63_817_970, 5_762_821)
