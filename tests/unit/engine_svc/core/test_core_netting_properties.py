"""Properties of netting accounts over random sequences of opens, closes, pending orders and
quotes: never two positions on a symbol, a trade moves the net position by its signed
quantity, rejections change nothing, money is conserved, and replay and a snapshot restore
reach the same digest."""

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
    MarginMode,
    OpenPosition,
    OrderType,
    PlaceOrder,
    PositionClosed,
    PositionMode,
    Result,
    Side,
)
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
# (account, margin mode, position mode); "h" is a hedging neighbour.
ACCOUNTS = (
    ("n", MarginMode.ISOLATED, PositionMode.NETTING),
    ("x", MarginMode.CROSS, PositionMode.NETTING),
    ("h", MarginMode.ISOLATED, PositionMode.HEDGING),
)

actions = st.one_of(
    st.tuples(
        st.just("open"),
        st.integers(0, 2),
        st.integers(0, 1),
        st.booleans(),
        st.sampled_from([10, 10, 10, 20]),
        st.integers(-5, 4000),
    ),
    st.tuples(
        st.just("order"),
        st.integers(0, 2),
        st.integers(0, 1),
        st.booleans(),
        st.booleans(),
        st.integers(1, 5),
        st.integers(1, 4000),
    ),
    st.tuples(st.just("close"), st.integers(0, 2), st.integers(0, 5)),
    st.tuples(st.just("tick"), st.integers(0, 1), st.integers(-40, 40)),
)


def _setup() -> list[Command]:
    commands: list[Command] = []
    for name, margin_mode, position_mode in ACCOUNTS:
        commands.append(
            CreateAccount(
                len(commands) + 1, 0, name, 3000 * USD, margin_mode, position_mode=position_mode
            )
        )
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
            quantity=lots,
        )  # fmt: skip
    if kind == "order":
        _, owner, symbol_index, buy, limit, steps, lots = action
        symbol = SYMBOLS[symbol_index]
        quote = core.get_quote(symbol)
        assert quote is not None
        # A limit below (buy) or above (sell) the price, a stop the other way.
        below = buy == limit
        trigger = quote.ask - steps * STEP[symbol] if below else quote.bid + steps * STEP[symbol]
        if symbol == "ETHUSD":
            lots = max(lots // 10, 1)
        return PlaceOrder(
            seq, seq, ACCOUNTS[owner][0], symbol, Side.BUY if buy else Side.SELL,
            OrderType.LIMIT if limit else OrderType.STOP, max(trigger, 1), 10, quantity=lots,
        )  # fmt: skip
    if kind == "close":
        _, owner, index = action
        return close_command(core, seq, ACCOUNTS[owner][0], index)
    _, symbol_index, move = action
    symbol = SYMBOLS[symbol_index]
    return tick_command(core, seq, symbol, move, STEP[symbol])


def _net(core: Core, account: str, symbol: str) -> int:
    return sum(
        p.quantity if p.side is Side.BUY else -p.quantity
        for p in core.list_positions(account)
        if p.symbol == symbol
    )


def _check(core: Core) -> None:
    assert core.total_user_money() + core.house_balance == core.total_deposits
    for name, _, mode in ACCOUNTS:
        account = core.accounts[name]
        assert account.used_margin == sum(p.margin for p in account.positions.values())
        symbols = [p.symbol for p in account.positions.values()]
        if mode is PositionMode.NETTING:
            # Netting never leaves two positions on a symbol.
            assert len(symbols) == len(set(symbols))


def _run(actions_list: list[tuple[Any, ...]]) -> tuple[Core, list[Command], list[Result]]:
    core = Core()
    commands = _setup()
    results = [core.apply(command) for command in commands]
    for action in actions_list:
        seq = len(commands) + 1
        command = _build(core, action, seq)
        if command is None:
            continue
        before_digest = core.digest()
        before_net = 0
        if isinstance(command, OpenPosition):
            before_net = _net(core, command.account_id, command.symbol)
        result = core.apply(command)
        commands.append(command)
        results.append(result)
        _check(core)
        if not result.ok:
            assert core.digest() == before_digest
            continue
        if isinstance(command, OpenPosition):
            signed = command.quantity if command.side is Side.BUY else -(command.quantity or 0)
            assert signed is not None
            # A cross trade may be followed by a stop-out of the account's positions.
            stopped = sum(
                e.close.closed_quantity if e.close.side is Side.BUY else -e.close.closed_quantity
                for e in result.events
                if isinstance(e, PositionClosed)
                and e.close.reason is CloseReason.LIQUIDATION
                and e.close.symbol == command.symbol
            )
            after_net = _net(core, command.account_id, command.symbol)
            assert after_net == before_net + signed - stopped
    return core, commands, results


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(actions, min_size=20, max_size=80))
def test_netting_never_leaves_two_positions_on_a_symbol(
    actions_list: list[tuple[Any, ...]],
) -> None:
    _run(actions_list)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(actions, min_size=20, max_size=80), st.integers(0, 80))
def test_netting_replay_and_a_snapshot_restore_reach_the_same_digest(
    actions_list: list[tuple[Any, ...]], cut: int
) -> None:
    core, commands, results = _run(actions_list)
    # Replay, and restore mid-way then apply the rest: same results, same digest.
    check_replay_and_restore(core, commands, results, 5 + cut)
