"""Property tests over random command sequences: the core's money and state invariants."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine_svc.core import (
    AddMargin,
    ApplyQuote,
    CancelOrder,
    ClosePosition,
    Command,
    Core,
    CreateAccount,
    Deposit,
    DepositAsset,
    ExpireOrders,
    ModifyPosition,
    OpenPosition,
    OrderType,
    PlaceOrder,
    Result,
    Side,
    TransferFunds,
)
from engine_svc.core.codec import decode_command, encode_command
from engine_svc.core.spot import (
    CancelSpotOrder,
    PlaceSpotOrder,
    SpotOrderType,
    TimeInForce,
)
from engine_svc.core.spot.enums import TransferDirection

USD = 1_000_000
ACCOUNTS = ("a", "b", "c")
SYMBOLS = ("BTCUSD", "ETHUSD", "SOLUSD")
MIDS = {"BTCUSD": 6_000_000, "ETHUSD": 300_000, "SOLUSD": 150_000}
LOTS = {"BTCUSD": 1000, "ETHUSD": 1000, "SOLUSD": 100}

# Mostly real accounts, sometimes one that does not exist.
account = st.one_of(*[st.sampled_from(ACCOUNTS)] * 5, st.just("ghost"))
symbol = st.sampled_from(SYMBOLS)
side = st.sampled_from((Side.BUY, Side.SELL))
leverage = st.sampled_from((1, 2, 3, 5, 10, 20, 50, 100, 1, 2, 5, 10, 0, 101))
# Price moves in thousandths of the mid: mostly small, sometimes a gap.
move = st.one_of(st.integers(-40, 40), st.integers(-40, 40), st.integers(-300, 300))
maybe_level = st.one_of(st.none(), st.integers(min_value=-60, max_value=60))
coid = st.one_of(st.none(), st.none(), st.sampled_from(("k1", "k2", "k3", "k4", "k5")))
pick = st.integers(min_value=0, max_value=50)
# Spot actions trade between real accounts: the ghost is covered by the CFD actions.
trader = st.sampled_from(ACCOUNTS)
# Mostly one market, so that orders meet.
market_symbol = st.sampled_from(("BTCUSD", "BTCUSD", "BTCUSD", "ETHUSD"))

open_action = st.tuples(
    st.just("open"),
    account,
    symbol,
    side,
    leverage,
    st.one_of(
        st.integers(min_value=-1, max_value=3000).map(lambda q: ("q", q)),
        st.integers(min_value=1, max_value=3000).map(lambda m: ("m", m * USD)),
    ),
    maybe_level,
    maybe_level,
    st.one_of(st.none(), st.integers(1, 60)),
    coid,
)
close_action = st.tuples(
    st.just("close"), account, pick, st.one_of(st.none(), st.integers(0, 3000)), coid
)
quote_action = st.tuples(st.just("quote"), symbol, move, st.integers(min_value=1, max_value=2000))
cfd_actions = st.one_of(
    quote_action,
    quote_action,
    quote_action,
    open_action,
    open_action,
    open_action,
    close_action,
    close_action,
    st.tuples(st.just("margin"), account, pick, st.integers(min_value=-1, max_value=2000), coid),
    st.tuples(
        st.just("modify"),
        account,
        pick,
        maybe_level,
        maybe_level,
        st.one_of(st.none(), st.integers(0, 60)),
        coid,
    ),
    st.tuples(
        st.just("place"),
        account,
        symbol,
        side,
        st.sampled_from((OrderType.LIMIT, OrderType.STOP)),
        move,
        leverage,
        st.integers(min_value=1, max_value=3000),
        st.booleans(),
        st.one_of(st.none(), st.integers(1, 100)),
        maybe_level,
        coid,
    ),
    st.tuples(st.just("cancel"), account, pick, coid),
    st.tuples(st.just("deposit"), account, st.integers(min_value=-5, max_value=10_000), coid),
    st.tuples(st.just("time"), st.integers(min_value=1, max_value=60)),
    st.tuples(st.just("expire")),
    st.tuples(st.just("retry"), pick),
)

# The spot part: transfers both ways, base asset deposits, orders and cancels.
spot_actions = st.one_of(
    *[st.tuples(
        st.just("transfer"),
        trader,
        st.integers(min_value=-1, max_value=600),
        st.sampled_from((TransferDirection.TO_SPOT, TransferDirection.TO_SPOT,
                         TransferDirection.TO_CFD)),
        coid,
    )] * 2,
    *[st.tuples(
        st.just("asset"), trader, market_symbol, st.integers(min_value=0, max_value=400), coid
    )] * 2,
    *[st.tuples(
        st.just("spot"),
        trader,
        market_symbol,
        side,
        st.sampled_from((SpotOrderType.LIMIT, SpotOrderType.LIMIT, SpotOrderType.MARKET)),
        st.integers(min_value=-3, max_value=3),
        st.integers(min_value=0, max_value=10),
        st.sampled_from((TimeInForce.GTC, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK)),
        st.sampled_from((False, False, False, True)),
        st.one_of(st.none(), coid),
    )] * 4,
    st.tuples(st.just("spot_cancel"), account, pick, coid),
)
actions = st.one_of(cfd_actions, spot_actions)
# Mostly spot commands with quotes, opens and retries between them.
spot_heavy = st.one_of(spot_actions, spot_actions, spot_actions, quote_action, open_action,
                       st.tuples(st.just("retry"), pick))


def _price(core: Core, name: str, level: int | None) -> int | None:
    if level is None:
        return None
    quote = core.get_quote(name)
    mid = quote.bid if quote is not None else MIDS[name]
    return max(1, mid + mid * level // 1000)


def _distance(name: str, level: int | None) -> int | None:
    return None if level is None else MIDS[name] * level // 1000


def _position_id(core: Core, owner: str, index: int) -> str:
    # Usually one of the owner's positions, sometimes another account's.
    names = ACCOUNTS if index % 4 == 0 else (owner,)
    ids = [p.id for name in names for p in core.list_positions(name)]
    return ids[index % len(ids)] if ids and index < 45 else f"p-{index}"


def _spot_order_id(core: Core, index: int) -> str:
    ids = [o.id for name in ACCOUNTS for o in core.spot.open_orders(name)]
    return ids[index % len(ids)] if ids and index < 45 else f"s-{index}"


def _order_id(core: Core, index: int) -> str:
    ids = [o.id for name in ACCOUNTS for o in core.list_orders(name)]
    return ids[index % len(ids)] if ids and index < 45 else f"o-{index}"


def _build(core: Core, action: tuple[Any, ...], seq: int, ts: int) -> Command | None:
    """Turn an abstract action into a command against the current state."""
    kind = action[0]
    if kind == "quote":
        _, name, offset, spread = action
        bid = MIDS[name] + MIDS[name] * offset // 1000
        return ApplyQuote(seq, ts, name, bid, bid + spread)
    if kind == "open":
        _, owner, name, way, lev, size, tp, sl, trail, key = action
        quantity = size[1] * LOTS[name] // 1000 if size[0] == "q" else None
        margin = size[1] if size[0] == "m" else None
        return OpenPosition(
            seq, ts, owner, name, way, lev, quantity, margin, None, None,
            _price(core, name, tp), _price(core, name, sl), _distance(name, trail), key,
        )  # fmt: skip
    if kind == "close":
        _, owner, index, quantity, key = action
        return ClosePosition(seq, ts, owner, _position_id(core, owner, index), quantity, key)
    if kind == "margin":
        _, owner, index, amount, key = action
        target = _position_id(core, owner, index)
        return AddMargin(seq, ts, owner, target, amount * USD // 10, key)
    if kind == "modify":
        _, owner, index, tp, sl, trail, key = action
        target = _position_id(core, owner, index)
        position = core.get_position(owner, target)
        name = position.symbol if position is not None else "BTCUSD"
        return ModifyPosition(
            seq, ts, owner, target, _price(core, name, tp), _price(core, name, sl),
            _distance(name, trail), key,
        )  # fmt: skip
    if kind == "place":
        _, owner, name, way, order_type, offset, lev, size, by_margin, expire, sl, key = action
        return PlaceOrder(
            seq, ts, owner, name, way, order_type, _price(core, name, offset) or 1, lev,
            None if by_margin else size * LOTS[name] // 1000, size * USD if by_margin else None,
            None, _price(core, name, sl), None, None if expire is None else ts + expire, key,
        )  # fmt: skip
    if kind == "cancel":
        _, owner, index, key = action
        return CancelOrder(seq, ts, owner, _order_id(core, index), key)
    if kind == "deposit":
        _, owner, amount, key = action
        return Deposit(seq, ts, owner, amount * USD, key)
    if kind == "expire":
        return ExpireOrders(seq, ts)
    return _build_spot(core, action, seq, ts)


def _build_spot(core: Core, action: tuple[Any, ...], seq: int, ts: int) -> Command | None:
    kind = action[0]
    if kind == "transfer":
        _, owner, amount, direction, key = action
        return TransferFunds(seq, ts, owner, amount * USD, direction, key)
    if kind == "asset":
        _, owner, name, amount, key = action
        return DepositAsset(seq, ts, owner, name[:-3], amount, key)
    if kind == "spot":
        _, owner, name, way, order_type, offset, size, tif, post_only, key = action
        market = f"{name[:-3]}_USD"
        limit = order_type is SpotOrderType.LIMIT
        return PlaceSpotOrder(
            seq, ts, owner, market, way, order_type, MIDS[name] + offset * 100 if limit else None,
            size, None, tif, post_only and limit and tif is TimeInForce.GTC, key,
        )  # fmt: skip
    if kind == "spot_cancel":
        _, owner, index, key = action
        return CancelSpotOrder(seq, ts, owner, _spot_order_id(core, index), key)
    return None


def _check_invariants(core: Core) -> None:
    # USD moves between the CFD balances and the spot wallets only by transfers, so together
    # with the house's CFD gains and spot fees it is what was deposited.
    held, fees, transferred = core.spot.asset_totals("USD")
    assert held + fees == transferred
    cfd = core.total_user_money() + core.house_balance
    assert cfd + held + fees == core.total_deposits
    for asset in core.spot.assets:
        held, fees, credited = core.spot.asset_totals(asset)
        assert held + fees == credited
    for market in core.spot.markets:
        bid, ask = core.spot.best_bid(market), core.spot.best_ask(market)
        assert bid is None or ask is None or bid < ask
    for name in ACCOUNTS:
        assert all(b.available >= 0 and b.locked >= 0 for b in core.spot.wallet(name))
    for name in ACCOUNTS:
        summary = core.account_summary(name)
        if summary is None:
            continue
        assert summary.balance >= 0
        positions = core.list_positions(name)
        assert summary.used_margin == sum(p.margin for p in positions)
        assert all(p.margin > 0 and p.quantity > 0 for p in positions)


def _run(actions_list: list[tuple[Any, ...]]) -> tuple[Core, list[Command], list[Result]]:
    core = Core()
    commands: list[Command] = []
    results: list[Result] = []
    ts = 1_000

    def apply(command: Command) -> Result:
        before = core.digest()
        result = core.apply(command)
        commands.append(command)
        results.append(result)
        if not result.ok or result.duplicate:
            assert result.events == ()
            if not isinstance(command, CreateAccount):
                assert core.digest() == before, (command, result)
        _check_invariants(core)
        return result

    for index, name in enumerate(ACCOUNTS):
        apply(CreateAccount(len(commands) + 1, ts, name, (index + 1) * 1000 * USD))
    for name in SYMBOLS:
        apply(ApplyQuote(len(commands) + 1, ts, name, MIDS[name], MIDS[name] + 10))
    for action in actions_list:
        seq = len(commands) + 1
        if action[0] == "time":
            ts += action[1]
            continue
        if action[0] == "retry":
            index = action[1]
            keyed = [
                (c, r) for c, r in zip(commands, results, strict=True)
                if r.ok and getattr(c, "client_order_id", None) is not None
            ]  # fmt: skip
            if keyed:
                original, first = keyed[index % len(keyed)]
                retry = apply(original._replace(seq=seq, ts=ts))
                assert retry.duplicate and retry.payload == first.payload
            continue
        command = _build(core, action, seq, ts)
        if command is not None:
            apply(command)
    return core, commands, results


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(actions, min_size=30, max_size=90))
def test_random_sequences_keep_every_invariant(actions_list: list[tuple[Any, ...]]) -> None:
    core, commands, results = _run(actions_list)
    snapshot = core.snapshot()
    restored = Core.restore(snapshot)
    assert restored.digest() == core.digest()
    assert restored.snapshot() == snapshot
    replay = Core()
    replayed = [replay.apply(decode_command(encode_command(c))) for c in commands]
    assert replayed == results
    assert replay.digest() == core.digest()
    # The restored core continues exactly like the original.
    follow = ApplyQuote(len(commands) + 1, 10**6, "BTCUSD", 5_000_000, 5_000_010)
    assert restored.apply(follow) == core.apply(follow)
    assert restored.digest() == core.digest()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(spot_heavy, min_size=30, max_size=120))
def test_mixed_cfd_and_spot_sequences_replay_to_the_same_digest(
    actions_list: list[tuple[Any, ...]],
) -> None:
    core, commands, results = _run(actions_list)
    replay = Core()
    replayed = [replay.apply(decode_command(encode_command(c))) for c in commands]
    assert replayed == results
    assert replay.digest() == core.digest()
    restored = Core.restore(core.snapshot())
    assert restored.digest() == core.digest()
    assert restored.snapshot() == core.snapshot()
