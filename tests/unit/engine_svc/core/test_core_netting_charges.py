"""Netting accounts with swaps and commissions: worked examples with exact figures.

BTCUSD as the defaults (a tick is 0.01, a lot step 0.0001, so one tick times one lot step is
one micro-dollar, contract size 1) charging 30 USD per million of notional plus 1 USD per lot
(per BTC) on every open and close, and a long swap of -10 bps a day. Each example starts from
a 0.1 BTC long bought at 60000.00 on a 10,000 USD isolated netting account (margin 600,
commission 6000 x 30 / 10^6 + 0.1 x 1 = 0.28), charged one rollover (6000 x -10 bps = -6.00,
taken from the margin: 594.00), then grown by 0.2 BTC at 61000.00.
"""

from __future__ import annotations

import pytest

from engine_svc.core import (
    ApplyQuote,
    BalanceChanged,
    BalanceKind,
    ChargeSwaps,
    Core,
    CreateAccount,
    MarginMode,
    OpenPosition,
    OrderFilled,
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
    make_charges,
    make_instrument,
)
from unit.engine_svc.core.core_harness import Harness

USD = 1_000_000
DAY = 20_000


def _harness(balance: int = 10_000 * USD, margin_mode: MarginMode = MarginMode.ISOLATED) -> Harness:
    charges = make_charges(swap_long_bps="-10", commission_per_million="30", commission_per_lot="1")
    btc = make_instrument("BTCUSD", "0.01", "0.0001", 100, "0", "1", charges)
    harness = Harness(Core({"BTCUSD": btc}))
    created = harness.run(
        CreateAccount,
        account_id="n",
        initial_balance=balance,
        margin_mode=margin_mode,
        position_mode=PositionMode.NETTING,
    )
    assert created.ok, created
    _btc(harness, 5_999_000)
    return harness


def _btc(harness: Harness, bid: int) -> None:
    assert harness.run(ApplyQuote, symbol="BTCUSD", bid=bid, ask=bid + 1000).ok


def _trade(harness: Harness, side: Side, quantity: int) -> Result:
    return harness.run(
        OpenPosition, account_id="n", symbol="BTCUSD", side=side, leverage=10, quantity=quantity
    )


def _view(result: Result) -> PositionView:
    assert isinstance(result.payload, PositionView), result
    return result.payload


def _conserved(core: Core) -> bool:
    return core.total_user_money() + core.house_balance == core.total_deposits


def _grown(harness: Harness) -> Result:
    """Buy 0.1 at 60000.00, charge a rollover, buy 0.2 more at 61000.00."""
    first = _view(_trade(harness, Side.BUY, 1000))
    assert (first.margin, first.commission) == (600 * USD, 280_000)
    swapped = harness.run(ChargeSwaps, rollover_day=DAY, rollover_time=harness.ts, multiplier=1)
    assert swapped.ok, swapped
    _btc(harness, 6_099_000)
    return _trade(harness, Side.BUY, 2000)


def test_an_increase_pays_the_opening_commission_of_the_added_quantity() -> None:
    harness = _harness()
    before = harness.core.house_balance
    result = _grown(harness)
    grown = _view(result)
    # 0.2 BTC at 61000.00: margin 1220, commission 12200 x 30 / 10^6 + 0.2 x 1 = 0.566. The
    # position's commission is 0.28 + 0.566; its swap of -6.00 is kept.
    assert (grown.quantity, grown.entry_price) == (3000, 6_066_667)
    assert (grown.margin, grown.swap, grown.commission) == (1814 * USD, -6 * USD, 846_000)
    seq, ts = harness.seq, harness.ts
    balance = 10_000 * USD - 600 * USD - 280_000 - 1220 * USD
    assert result.events == (
        BalanceChanged(seq, ts, "n", BalanceKind.MARGIN_RESERVED, -1220 * USD, balance, grown.id),
        BalanceChanged(seq, ts, "n", BalanceKind.COMMISSION, -566_000, balance - 566_000, grown.id),
        PositionModified(seq, ts, "n", grown),
    )
    summary = harness.core.account_summary("n")
    assert summary is not None
    assert (summary.balance, summary.swap, summary.commission) == (
        8_179_154_000,
        -6 * USD,
        846_000,
    )
    # The house received both commissions and the swap.
    assert harness.core.house_balance - before == 846_000 + 6 * USD
    assert _conserved(harness.core)


def test_an_increase_that_cannot_pay_its_commission_is_refused_and_changes_nothing() -> None:
    # 600.28 for the first open leaves 600.10: the 600.00 margin of 0.1 more fits, not with
    # its 0.28 commission.
    _refused(
        1_200_380_000,
        Side.BUY,
        1000,
        "margin 600.00 USD plus commission 0.28 USD exceeds the free balance 600.10 USD",
    )


def _refused(balance: int, side: Side, quantity: int, message: str) -> None:
    """Check that after the 0.1 long a trade is refused with `message`, changing nothing."""
    harness = _harness(balance=balance)
    _trade(harness, Side.BUY, 1000)
    digest = harness.core.digest()
    refused = _trade(harness, side, quantity)
    assert (refused.reason, refused.message) == (Reason.INSUFFICIENT_BALANCE, message)
    assert harness.core.digest() == digest


def test_a_reduction_takes_its_share_and_pays_the_close_commission() -> None:
    harness = _harness()
    grown = _view(_grown(harness))
    _btc(harness, 6_200_000)
    result = _trade(harness, Side.SELL, 1000)
    closed_event, settled = result.events
    assert isinstance(closed_event, PositionClosed) and isinstance(settled, BalanceChanged)
    closed = closed_event.close
    # PnL (62000.00 - 60666.67) x 0.1 = 133.333; close commission 6200 x 30 / 10^6 + 0.1 =
    # 0.286; a third of the margin 1814 (604.666666), of the swap -6.00 (-2.00) and of the
    # commission 0.846 (0.282).
    assert (closed.realized_pnl, closed.released_margin) == (133_333_000, 604_666_666)
    assert (closed.swap, closed.commission) == (-2 * USD, 282_000 + 286_000)
    assert closed.credited == 604_666_666 + 133_333_000 - 286_000
    rest = _view(result)
    assert rest.id == grown.id and rest.quantity == 2000
    assert (rest.margin, rest.swap, rest.commission) == (1_209_333_334, -4 * USD, 564_000)
    # The closed entry and the rest add up to what the position was charged, plus the close's.
    assert closed.swap + rest.swap == grown.swap
    assert closed.commission + rest.commission == grown.commission + 286_000
    assert _conserved(harness.core)


def test_a_reversal_closes_with_commission_and_opens_the_rest_with_its_own() -> None:
    harness = _harness()
    grown = _view(_grown(harness))
    _btc(harness, 6_200_000)
    result = _trade(harness, Side.SELL, 5000)
    closed_event, settled, reserved, commission, opened = result.events
    assert isinstance(closed_event, PositionClosed) and isinstance(opened, PositionOpened)
    assert isinstance(settled, BalanceChanged) and settled.amount == closed_event.close.credited
    closed = closed_event.close
    # The whole 0.3: PnL 399.999; close commission 18600 x 30 / 10^6 + 0.3 = 0.858; it takes
    # all the swap and commission.
    assert closed.position_id == grown.id and closed.remaining is None
    assert (closed.realized_pnl, closed.swap, closed.commission) == (
        399_999_000,
        -6 * USD,
        846_000 + 858_000,
    )
    assert closed.credited == 1814 * USD + 399_999_000 - 858_000
    # A 0.2 short at 62000.00: margin 1240, commission 12400 x 30 / 10^6 + 0.2 = 0.572.
    short = _view(result)
    assert short.id != grown.id and short.side is Side.SELL and short.quantity == 2000
    assert (short.margin, short.swap, short.commission) == (1240 * USD, 0, 572_000)
    assert isinstance(reserved, BalanceChanged) and reserved.kind is BalanceKind.MARGIN_RESERVED
    assert isinstance(commission, BalanceChanged) and commission.kind is BalanceKind.COMMISSION
    assert commission.amount == -572_000
    assert harness.core.accounts["n"].balance == 9_151_723_000
    assert _conserved(harness.core)


def test_a_reversal_counts_both_commissions_in_its_affordability() -> None:
    # With 1201.55997 USD the open (600.28) leaves 601.27997; closing at 59990.00 returns
    # 600 - 1.00 - 0.27997 (margin, PnL, close commission), so 1200.00 would be free; the
    # 0.2 short at 59990.00 needs margin 1199.80 plus commission 11998 x 30 / 10^6 + 0.2.
    _refused(
        1_201_559_970,
        Side.SELL,
        3000,
        "margin 1199.80 USD plus commission 0.55994 USD exceeds the free balance 1200.00 USD",
    )
    # 0.56 more and it fits.
    ok = _harness(balance=1_201_559_970 + 560_000)
    _trade(ok, Side.BUY, 1000)
    assert _view(_trade(ok, Side.SELL, 3000)).commission == 559_940
    assert _conserved(ok.core)


@pytest.mark.parametrize("margin_mode", [MarginMode.ISOLATED, MarginMode.CROSS])
def test_a_filled_order_nets_with_commissions_and_replays(margin_mode: MarginMode) -> None:
    harness = _harness(margin_mode=margin_mode)
    _grown(harness)
    placed = harness.run(
        PlaceOrder, account_id="n", symbol="BTCUSD", side=Side.SELL,
        order_type=OrderType.LIMIT, trigger_price=6_200_000, leverage=10, quantity=1000,
    )  # fmt: skip
    assert placed.ok, placed
    harness.seq += 1
    quote = ApplyQuote(harness.seq, harness.ts, "BTCUSD", 6_200_000, 6_201_000)
    harness.commands.append(quote)
    filled = harness.core.apply(quote)
    assert any(isinstance(event, OrderFilled) for event in filled.events)
    (closed,) = [e.close for e in filled.events if isinstance(e, PositionClosed)]
    # The fill reduces the long by 0.1 at 62000.00, as the reduction above.
    assert (closed.swap, closed.commission) == (-2 * USD, 282_000 + 286_000)
    (position,) = harness.core.list_positions("n")
    assert (position.quantity, position.swap, position.commission) == (2000, -4 * USD, 564_000)
    assert _conserved(harness.core)
    # Replay and a snapshot taken half-way give the same state.
    instruments = dict(harness.core.instruments)
    replay = Core(instruments)
    for command in harness.commands:
        replay.apply(command)
    assert replay.digest() == harness.core.digest()
    half = len(harness.commands) // 2
    first = Core(instruments)
    for command in harness.commands[:half]:
        first.apply(command)
    restored = Core.restore(first.snapshot())
    assert restored.instruments["BTCUSD"] == instruments["BTCUSD"]
    for command in harness.commands[half:]:
        restored.apply(command)
    assert restored.snapshot() == harness.core.snapshot()
