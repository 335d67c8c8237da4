"""Property tests with swaps and commissions: money is conserved, the house receives exactly
what was charged, and replay or restore across rollovers gives the same state."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine_svc.core import (
    ApplyQuote,
    BalanceChanged,
    BalanceKind,
    ChargeSwaps,
    Command,
    Core,
    CreateAccount,
    Instrument,
    MarginMode,
    PositionClosed,
    Result,
    SwapCharged,
    make_charges,
    make_instrument,
)
from engine_svc.core.codec import decode_command, encode_command
from unit.engine_svc.core.test_core_properties import ACCOUNTS, MIDS, SYMBOLS, _build, cfd_actions

USD = 1_000_000
DAY = 20_000

rates = st.tuples(
    st.sampled_from(("0", "-2.5", "-10", "-300", "1.25", "5")),
    st.sampled_from(("0", "-1", "-0.0001", "2.5", "-50")),
    st.sampled_from(("0", "30", "7.5", "1000")),
    st.sampled_from(("0", "0.5", "3")),
    # The contract size, which commission_per_lot is per lot of.
    st.sampled_from(("1", "0.1", "100")),
)
rollover_action = st.tuples(
    st.just("rollover"), st.sampled_from((1, 1, 1, 3)), st.sampled_from((1, 1, 1, 1, 0))
)
charged_actions = st.one_of(cfd_actions, rollover_action, rollover_action)


def _instruments(chosen: list[tuple[str, str, str, str, str]]) -> dict[str, Instrument]:
    specs = {"BTCUSD": ("0.01", "0.0001"), "ETHUSD": ("0.01", "0.001"), "SOLUSD": ("0.001", "0.01")}
    return {
        name: make_instrument(
            name, *specs[name], 100, "0", chosen[index][4], make_charges(*chosen[index][:4])
        )
        for index, name in enumerate(SYMBOLS)
    }


class Books:
    """What the events say the house must hold: commissions and swaps against PnL."""

    def __init__(self) -> None:
        self.house = 0
        self.swaps = 0
        self.commissions = 0

    def add(self, core: Core, result: Result) -> None:
        for event in result.events:
            if isinstance(event, BalanceChanged) and event.kind is BalanceKind.COMMISSION:
                self.house -= event.amount
                self.commissions -= event.amount
            elif isinstance(event, SwapCharged):
                self.house -= event.amount
                self.swaps += event.amount
            elif isinstance(event, PositionClosed):
                close = event.close
                charged = core.instruments[close.symbol].commission_ceil_micros(
                    close.close_price, close.closed_quantity
                )
                self.house += charged - close.realized_pnl - close.house_absorbed
                self.commissions += charged
                # What the history shows leaves the open positions' figures.
                self.swaps -= close.swap
                self.commissions -= close.commission


def _check(core: Core, books: Books) -> None:
    assert core.total_user_money() + core.house_balance == core.total_deposits
    assert core.house_balance == books.house
    open_swaps = sum(p.swap for p in core.positions.values())
    open_commissions = sum(p.commission for p in core.positions.values())
    assert open_swaps == books.swaps
    assert open_commissions == books.commissions
    for name in ACCOUNTS:
        summary = core.account_summary(name)
        if summary is None:
            continue
        positions = core.list_positions(name)
        assert summary.used_margin == sum(p.margin for p in positions)
        assert summary.swap == sum(p.swap for p in positions)
        assert summary.commission == sum(p.commission for p in positions)
        assert all(p.margin >= 0 and p.commission >= 0 for p in positions)
        if summary.margin_mode is MarginMode.ISOLATED:
            assert summary.balance >= 0


def _run(
    instruments: dict[str, Instrument], actions: list[tuple[Any, ...]], cross: bool
) -> tuple[Core, list[Command], list[Result]]:
    core = Core(instruments)
    books = Books()
    commands: list[Command] = []
    results: list[Result] = []
    ts = 1_000
    day = DAY

    def apply(command: Command) -> None:
        before = core.digest()
        result = core.apply(command)
        commands.append(command)
        results.append(result)
        if not result.ok or result.duplicate:
            assert result.events == ()
            if not isinstance(command, CreateAccount):
                assert core.digest() == before, (command, result)
        books.add(core, result)
        _check(core, books)

    for index, name in enumerate(ACCOUNTS):
        mode = MarginMode.CROSS if cross and index == 1 else MarginMode.ISOLATED
        apply(CreateAccount(len(commands) + 1, ts, name, (index + 1) * 1000 * USD, mode))
    for name in SYMBOLS:
        apply(ApplyQuote(len(commands) + 1, ts, name, MIDS[name], MIDS[name] + 10))
    for action in actions:
        seq = len(commands) + 1
        if action[0] == "time":
            ts += action[1]
        elif action[0] == "rollover":
            _, multiplier, step = action
            day += step
            apply(ChargeSwaps(seq, ts, day, ts, multiplier))
        elif action[0] != "retry":
            command = _build(core, action, seq, ts)
            if command is not None:
                apply(command)
    return core, commands, results


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(rates, min_size=3, max_size=3),
    st.lists(charged_actions, min_size=30, max_size=90),
    st.booleans(),
)
def test_swaps_and_commissions_conserve_money_and_replay_exactly(
    chosen: list[tuple[str, str, str, str, str]],
    actions: list[tuple[Any, ...]],
    cross: bool,
) -> None:
    instruments = _instruments(chosen)
    core, commands, results = _run(instruments, actions, cross)
    replay = Core(instruments)
    assert [replay.apply(decode_command(encode_command(c))) for c in commands] == results
    assert replay.digest() == core.digest()
    restored = Core.restore(core.snapshot())
    assert restored.digest() == core.digest()
    assert restored.snapshot() == core.snapshot()
