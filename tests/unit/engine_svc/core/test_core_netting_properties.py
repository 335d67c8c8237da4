"""Properties of netting accounts over random sequences of opens, closes, pending orders and
quotes (and, with swaps and commissions, rollovers): never two positions on a symbol, a trade
moves the net position by its signed quantity, rejections change nothing, money is
conserved, and replay and a snapshot restore reach the same digest."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine_svc.core import (
    ApplyQuote,
    BalanceChanged,
    BalanceKind,
    ChargeSwaps,
    CloseReason,
    Command,
    Core,
    CreateAccount,
    Instrument,
    MarginMode,
    OpenPosition,
    OrderType,
    PlaceOrder,
    PositionClosed,
    PositionMode,
    Result,
    Side,
    SwapCharged,
    make_charges,
    make_instrument,
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
# With charges: rollovers too (multiplier), and per instrument (swap long, swap short,
# commission per million, commission per lot, contract size).
charged_actions = st.one_of(actions, st.tuples(st.just("rollover"), st.sampled_from((1, 3))))
rates = st.tuples(
    st.sampled_from(("0", "-2.5", "-10", "1.25")),
    st.sampled_from(("0", "-1", "2.5", "-50")),
    st.sampled_from(("0", "30", "1000")),
    st.sampled_from(("0", "0.5", "3")),
    st.sampled_from(("1", "0.1", "100")),
)


def _charged(chosen: list[tuple[str, str, str, str, str]]) -> dict[str, Instrument]:
    steps = {"BTCUSD": ("0.01", "0.0001"), "ETHUSD": ("0.01", "0.001")}
    return {
        name: make_instrument(
            name, *steps[name], 100, "0", chosen[index][4], make_charges(*chosen[index][:4])
        )
        for index, name in enumerate(SYMBOLS)
    }


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
    if kind == "rollover":
        # Commands are at ts = seq: every position opened so far is held over it.
        return ChargeSwaps(seq, seq, core.last_rollover + 1, seq, action[1])
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
        summary = core.account_summary(name)
        assert summary is not None
        assert summary.commission == sum(p.commission for p in account.positions.values())
        assert summary.swap == sum(p.swap for p in account.positions.values())
        assert all(p.commission >= 0 for p in account.positions.values())
        symbols = [p.symbol for p in account.positions.values()]
        if mode is PositionMode.NETTING:
            # Netting never leaves two positions on a symbol.
            assert len(symbols) == len(set(symbols))


class Charged:
    """What the events say each position was charged: commissions and swaps, by id."""

    def __init__(self) -> None:
        self.commission: dict[str, int] = {}
        self.swap: dict[str, int] = {}

    def add(self, result: Result) -> None:
        for event in result.events:
            if isinstance(event, BalanceChanged) and event.kind is BalanceKind.COMMISSION:
                key = event.ref_id or ""
                self.commission[key] = self.commission.get(key, 0) - event.amount
            elif isinstance(event, SwapCharged):
                key = event.position.id
                self.swap[key] = self.swap.get(key, 0) + event.amount
            elif isinstance(event, PositionClosed):
                # A close's own commission is netted in its settlement.
                close = event.close
                self.commission[close.position_id] = self.commission.get(close.position_id, 0)

    def check(self, core: Core, closed: dict[str, tuple[int, int]]) -> None:
        """Every position's opening commissions and swaps are in it or in its closed
        entries (`closed`: swap and commission the closes took, less the closes' own)."""
        open_positions = {p.id: p for name, _, _ in ACCOUNTS for p in core.list_positions(name)}
        for key in set(self.commission) | set(self.swap):
            position = open_positions.get(key)
            swap, commission = closed.get(key, (0, 0))
            if position is not None:
                swap += position.swap
                commission += position.commission
            assert swap == self.swap.get(key, 0)
            assert commission == self.commission.get(key, 0)


def _run(
    actions_list: list[tuple[Any, ...]], instruments: dict[str, Instrument] | None = None
) -> tuple[Core, list[Command], list[Result]]:
    core = Core(instruments)
    charged = Charged()
    # Per position: the swap and the opening commission its closes took.
    closed: dict[str, tuple[int, int]] = {}
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
        charged.add(result)
        for event in result.events:
            if isinstance(event, PositionClosed):
                close = event.close
                instrument = core.instruments[close.symbol]
                own = instrument.commission_ceil_micros(close.close_price, close.closed_quantity)
                swap, commission = closed.get(close.position_id, (0, 0))
                closed[close.position_id] = (swap + close.swap, commission + close.commission - own)
        charged.check(core, closed)
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


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(rates, min_size=2, max_size=2),
    st.lists(charged_actions, min_size=20, max_size=80),
    st.integers(0, 80),
)
def test_netting_with_swaps_and_commissions_conserves_money_and_replays(
    chosen: list[tuple[str, str, str, str, str]], actions_list: list[tuple[Any, ...]], cut: int
) -> None:
    instruments = _charged(chosen)
    core, commands, results = _run(actions_list, instruments)
    check_replay_and_restore(core, commands, results, 5 + cut, instruments)
