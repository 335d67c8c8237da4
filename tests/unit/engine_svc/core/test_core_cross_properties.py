"""Properties of cross-margin accounts over random sequences of opens, closes, deposits,
transfers to and from the spot wallet and quotes: conservation, the exact margin call and
stop-out rules (whatever the stop-out index holds), stop-out order, replay and snapshot
digests."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine_svc.core import (
    ApplyQuote,
    CloseReason,
    Command,
    Core,
    CreateAccount,
    Deposit,
    OpenPosition,
    PositionClosed,
    Result,
    Side,
    TransferFunds,
)
from engine_svc.core.enums import MarginMode
from engine_svc.core.events import MarginCallReached
from engine_svc.core.margin import stop_out_price
from engine_svc.core.money import cross_equity, unrealized
from engine_svc.core.spot.enums import TransferDirection
from engine_svc.core.state import Account
from unit.engine_svc.core.core_harness import (
    check_replay_and_restore,
    close_command,
    tick_command,
)

USD = 1_000_000
SYMBOLS = ("BTCUSD", "ETHUSD")
START = {"BTCUSD": 5_999_000, "ETHUSD": 299_900}
SPREAD = {"BTCUSD": 1000, "ETHUSD": 100}
STEP = {"BTCUSD": 10_000, "ETHUSD": 500}
# (account, margin call level, stop-out level); "i" is an isolated neighbour.
ACCOUNTS = (("c0", 60, 0), ("c1", 100, 50), ("c2", 80, 20))

actions = st.one_of(
    st.tuples(
        st.just("open"),
        st.integers(0, 2),
        st.integers(0, 1),
        st.booleans(),
        st.sampled_from([20, 50, 100]),
        st.integers(100, 5000),
    ),
    st.tuples(st.just("close"), st.integers(0, 2), st.integers(0, 5)),
    st.tuples(st.just("tick"), st.integers(0, 1), st.integers(-40, 40)),
    st.tuples(st.just("deposit"), st.integers(0, 2), st.integers(1, 500)),
    st.tuples(st.just("transfer"), st.integers(0, 2), st.booleans(), st.integers(1, 400)),
)


def _setup() -> list[Command]:
    commands: list[Command] = []
    for name, call, stop in ACCOUNTS:
        commands.append(
            CreateAccount(
                len(commands) + 1, 0, name, 300 * USD, MarginMode.CROSS, call, stop
            )
        )
    commands.append(CreateAccount(len(commands) + 1, 0, "i", 1000 * USD))
    for symbol in SYMBOLS:
        bid = START[symbol]
        commands.append(ApplyQuote(len(commands) + 1, 0, symbol, bid, bid + SPREAD[symbol]))
    return commands


def _build(core: Core, action: tuple[Any, ...], seq: int) -> Command | None:
    kind = action[0]
    if kind == "open":
        _, owner, symbol_index, buy, leverage, lots = action
        symbol = SYMBOLS[symbol_index]
        if symbol == "ETHUSD":
            lots //= 10
        return OpenPosition(
            seq, seq, ACCOUNTS[owner][0], symbol, Side.BUY if buy else Side.SELL, leverage,
            quantity=max(lots, 1),
        )  # fmt: skip
    if kind == "close":
        _, owner, index = action
        return close_command(core, seq, ACCOUNTS[owner][0], index)
    if kind == "tick":
        _, symbol_index, move = action
        symbol = SYMBOLS[symbol_index]
        return tick_command(core, seq, symbol, move, STEP[symbol])
    if kind == "transfer":
        _, owner, out, amount = action
        direction = TransferDirection.TO_SPOT if out else TransferDirection.TO_CFD
        return TransferFunds(seq, seq, ACCOUNTS[owner][0], amount * USD, direction)
    _, owner, amount = action
    return Deposit(seq, seq, ACCOUNTS[owner][0], amount * USD)


def _expected_stop_out(core: Core, account: Account, symbol: str, bid: int) -> list[str]:
    """Return the ids a quote (symbol at `bid`) stops out, by the rules, before applying it."""
    ask = bid + SPREAD[symbol]
    pnls: dict[int, int] = {}
    for key, position in account.positions.items():
        if position.symbol == symbol:
            move = bid - position.entry if position.is_buy else position.entry - ask
            pnls[key] = core.instruments[symbol].pnl_floor_micros(move, position.quantity)
        else:
            pnls[key] = unrealized(core, position) or 0
    # Closing realises PnL into the balance: equity stays, used margin falls.
    equity = account.balance + sum(pnls.values())
    used = account.used_margin
    closed: list[str] = []
    remaining = dict(pnls)
    while remaining and 100 * equity <= account.stop_out_level * used:
        key = min(remaining, key=lambda k: (remaining[k], k))
        used -= account.positions[key].margin
        del remaining[key]
        closed.append(f"p-{key}")
    return closed


def _equity_at(core: Core, account: Account, symbol: str, bid: int) -> int:
    """Return the account's equity with `symbol` at `bid` (its spread kept), others held."""
    quote = core.get_quote(symbol)
    assert quote is not None
    ask = bid + quote.ask - quote.bid
    equity = account.balance
    for position in account.positions.values():
        if position.symbol != symbol:
            equity += unrealized(core, position) or 0
            continue
        move = bid - position.entry if position.is_buy else position.entry - ask
        equity += core.instruments[symbol].pnl_floor_micros(move, position.quantity)
    return equity


def _check_stop_out_prices(core: Core, account: Account) -> None:
    """Check each symbol's reported stop-out price is the exact boundary."""
    level = account.stop_out_level * account.used_margin
    for symbol in {position.symbol for position in account.positions.values()}:
        price = stop_out_price(core, account, symbol)
        quote = core.get_quote(symbol)
        assert quote is not None
        net = sum(
            p.quantity if p.is_buy else -p.quantity
            for p in account.positions.values()
            if p.symbol == symbol
        )
        if price == 0:
            continue
        spread = quote.ask - quote.bid
        if net > 0:
            # A bid: stopped out there, not one tick above.
            assert 100 * _equity_at(core, account, symbol, price) <= level
            assert 100 * _equity_at(core, account, symbol, price + 1) > level
        else:
            # An ask: stopped out there, not one tick below.
            assert 100 * _equity_at(core, account, symbol, price - spread) <= level
            assert 100 * _equity_at(core, account, symbol, price - spread - 1) > level


def _check_account(core: Core, account: Account) -> None:
    equity = cross_equity(core, account)
    used = account.used_margin
    if not account.positions:
        assert not account.margin_call and account.balance >= 0 and used == 0
        return
    assert used == sum(position.margin for position in account.positions.values())
    # As if reviewed exactly after every command and every quote.
    assert 100 * equity > account.stop_out_level * used
    assert account.margin_call == (100 * equity <= account.margin_call_level * used)
    _check_stop_out_prices(core, account)


def _run(actions_list: list[tuple[Any, ...]]) -> tuple[Core, list[Command], list[Result]]:
    core = Core()
    commands = _setup()
    results = [core.apply(command) for command in commands]
    for action in actions_list:
        seq = len(commands) + 1
        command = _build(core, action, seq)
        if command is None:
            continue
        before: dict[str, tuple[bool, list[str]]] = {}
        if isinstance(command, ApplyQuote):
            for name, _, _ in ACCOUNTS:
                account = core.accounts[name]
                expected = _expected_stop_out(core, account, command.symbol, command.bid)
                before[name] = (account.margin_call, expected)
        allowed = True
        if isinstance(command, TransferFunds) and command.direction is TransferDirection.TO_SPOT:
            account = core.accounts[command.account_id]
            free = cross_equity(core, account) - account.used_margin
            allowed = command.amount <= min(account.balance, free)
        result = core.apply(command)
        commands.append(command)
        results.append(result)
        if isinstance(command, TransferFunds) and command.direction is TransferDirection.TO_SPOT:
            # Never more than the balance, nor than the free margin.
            assert result.ok == allowed
        held, fees, _ = core.spot.asset_totals("USD")
        assert core.total_user_money() + core.house_balance + held + fees == core.total_deposits
        for name, _, _ in ACCOUNTS:
            _check_account(core, core.accounts[name])
            calls = [
                e
                for e in result.events
                if isinstance(e, MarginCallReached) and e.account_id == name
            ]
            assert len(calls) <= 1
            if name in before:
                was_called, expected = before[name]
                stopped = [
                    e.close.position_id
                    for e in result.events
                    if isinstance(e, PositionClosed)
                    and e.account_id == name
                    and e.close.reason is CloseReason.LIQUIDATION
                ]
                # Largest loss first, and no further than the level needs.
                assert stopped == expected
                if was_called:
                    assert calls == []
    return core, commands, results


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(actions, min_size=20, max_size=80))
def test_cross_accounts_follow_the_rules_after_every_command(
    actions_list: list[tuple[Any, ...]],
) -> None:
    _run(actions_list)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(actions, min_size=20, max_size=80), st.integers(0, 80))
def test_replay_and_a_snapshot_restore_reach_the_same_digest(
    actions_list: list[tuple[Any, ...]], cut: int
) -> None:
    core, commands, results = _run(actions_list)
    # Replay, and restore mid-way then apply the rest: same results, same digest.
    check_replay_and_restore(core, commands, results, 6 + cut)
