"""Property tests over random spot command sequences: the exchange's invariants.

After every command: no book is crossed; per asset, the wallets plus the house fees equal
what was transferred in; no balance is negative; every lock is exactly what its open orders
hold; levels are FIFO in time order; fills follow price-time priority; a rejection changes
nothing. At the end, a replay and a snapshot restore (at any cut) give the same digest.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from engine_svc.core import Side
from engine_svc.core.spot import (
    QUOTE_ASSET,
    CancelSpotOrder,
    CreditWallet,
    DebitWallet,
    FeeSchedule,
    Liquidity,
    PlaceSpotOrder,
    SpotCommand,
    SpotExchange,
    SpotFillExecuted,
    SpotOrderStatus,
    SpotOrderType,
    SpotPlacement,
    SpotResult,
    TimeInForce,
    parse_spot_order_id,
)
from engine_svc.core.spot.codec import decode_spot_command, encode_spot_command
from engine_svc.core.spot.state import restore, snapshot, spot_digest

USD = 1_000_000
ACCOUNTS = ("a", "b", "c")
MIDS = {"BTC_USD": 6_000_000, "SOL_USD": 150_000}
ASSETS = ("USD", "BTC", "SOL")

account = st.sampled_from(ACCOUNTS)
market = st.sampled_from(tuple(MIDS))
side = st.sampled_from((Side.BUY, Side.SELL))
tif = st.sampled_from((TimeInForce.GTC,) * 4 + (TimeInForce.IOC, TimeInForce.FOK))
coid = st.sampled_from((None,) * 7 + ("k1", "k2", "k3"))
# Mostly valid sizes, sometimes zero or negative.
lots = st.sampled_from((0, -1, *range(1, 61, 3), *range(1, 61, 3)))
post_only = st.sampled_from((False, False, False, True))

_by_kind = {
    "credit": st.tuples(
        st.just("credit"), account, st.sampled_from(ASSETS), st.integers(1, 3000), coid
    ),
    "debit": st.tuples(
        st.just("debit"), account, st.sampled_from(ASSETS), st.integers(1, 2000), coid
    ),
    "limit": st.tuples(
        st.just("limit"), account, market, side, st.integers(-12, 12), lots, tif, post_only,
        coid,
    ),
    "market": st.tuples(
        st.just("market"), account, market, side,
        st.one_of(lots.map(lambda q: ("q", q)), st.integers(0, 900).map(lambda u: ("u", u))),
        tif, coid,
    ),
    # None cancels as the order's owner, an account name as that account.
    "cancel": st.tuples(
        st.just("cancel"), st.sampled_from((None, None, *ACCOUNTS)), st.integers(0, 40), coid
    ),
}  # fmt: skip
# Mostly orders, some cancels, a few transfers.
actions = st.sampled_from(
    ("limit",) * 10 + ("market",) * 2 + ("cancel",) * 2 + ("credit", "debit")
).flatmap(_by_kind.__getitem__)


def _command(seq: int, action: tuple[Any, ...], placed: list[tuple[str, str]]) -> SpotCommand:
    kind = action[0]
    ts = 1_700_000_000_000_000_000 + seq
    if kind in ("credit", "debit"):
        _, who, asset, amount, key = action
        # USD in whole dollars, base assets in lots.
        scaled = amount * USD if asset == QUOTE_ASSET else amount
        factory = CreditWallet if kind == "credit" else DebitWallet
        return factory(seq, ts, who, asset, scaled, key)
    if kind == "limit":
        _, who, name, way, offset, quantity, force, post_only, key = action
        return PlaceSpotOrder(
            seq, ts, who, name, way, SpotOrderType.LIMIT, MIDS[name] + offset * 10, quantity,
            None, force, post_only, key,
        )  # fmt: skip
    if kind == "market":
        _, who, name, way, (mode, size), force, key = action
        quantity, quote = (size, None) if mode == "q" else (None, size * USD)
        return PlaceSpotOrder(
            seq, ts, who, name, way, SpotOrderType.MARKET, None, quantity, quote, force, False,
            key,
        )  # fmt: skip
    _, who, pick, key = action
    order_id, owner = placed[-1 - pick % len(placed)] if placed else ("s-1", "a")
    return CancelSpotOrder(seq, ts, owner if who is None else who, order_id, key)


def _check_state(exchange: SpotExchange) -> None:
    """Assert the state invariants."""
    for name, book in exchange.books.items():
        bid, ask = exchange.best_bid(name), exchange.best_ask(name)
        assert bid is None or ask is None or bid < ask, (name, bid, ask)
        for book_side in (book.bids, book.asks):
            assert book_side.keys == sorted(book_side.keys)
            prices = {key if book_side.is_bid else -key for key in book_side.keys}
            assert prices == set(book_side.levels)
            for level in book_side.levels.values():
                node, total, last_key = level.head, 0, 0
                while node is not None:
                    assert node.key > last_key and node.price == level.price
                    total += node.remaining
                    last_key = node.key
                    node = node.next
                assert total == level.total > 0
    for asset in exchange.assets:
        held, house, net = exchange.asset_totals(asset)
        assert held + house == net, asset
        assert house >= 0
    for spot_account in exchange.accounts.values():
        expected: dict[str, int] = {}
        for order in spot_account.orders.values():
            assert order.status in (SpotOrderStatus.OPEN, SpotOrderStatus.PARTIALLY_FILLED)
            assert order.remaining > 0 and order.filled + order.remaining == order.quantity
            spot_market = exchange.markets[order.market]
            if order.is_buy:
                assert order.locked == exchange.buy_lock(order.price, order.remaining, spot_market)
                asset = QUOTE_ASSET
            else:
                assert order.locked == order.remaining
                asset = spot_market.base_asset
            expected[asset] = expected.get(asset, 0) + order.locked
        for asset in exchange.assets:
            assert spot_account.available.get(asset, 0) >= 0
            assert spot_account.locked.get(asset, 0) == expected.get(asset, 0)


def _check_priority(exchange: SpotExchange, command: SpotCommand, result: SpotResult) -> None:
    """Assert that a placement's trades took the best prices, oldest first, within its limit."""
    if not isinstance(command, PlaceSpotOrder) or not isinstance(result.payload, SpotPlacement):
        return
    makers = [
        event.fill
        for event in result.events
        if isinstance(event, SpotFillExecuted) and event.fill.liquidity is Liquidity.MAKER
    ]
    if not makers:
        return
    # Self-trade prevention: no account ever trades with itself.
    assert all(fill.account_id != command.account_id for fill in makers)
    is_buy = command.side is Side.BUY
    prices = [fill.price for fill in makers]
    assert prices == sorted(prices, reverse=not is_buy)
    if command.order_type is SpotOrderType.LIMIT:
        assert all(p <= command.price if is_buy else p >= command.price for p in prices)  # type: ignore[operator]
    for before, after in pairwise(makers):
        if before.price == after.price:
            assert parse_spot_order_id(before.order_id) < parse_spot_order_id(after.order_id)
    last = makers[-1]
    last_key = max(parse_spot_order_id(f.order_id) for f in makers if f.price == last.price)
    for view in exchange.resting_orders(command.market, Side.SELL if is_buy else Side.BUY):
        better = view.price < last.price if is_buy else view.price > last.price  # type: ignore[operator]
        assert not better, (view, last)
        if view.price == last.price:
            # Only the last order traded (partly filled) or younger ones may remain there.
            assert view.create_seq >= last_key


fees = st.sampled_from(((10, 0), (0, 0), (25, 3), (7, 7)))


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(fee=fees, plan=st.lists(actions, min_size=15, max_size=60), cut=st.integers(0, 69))
def test_random_sequences_keep_every_invariant(
    fee: tuple[int, int], plan: list[tuple[Any, ...]], cut: int
) -> None:
    schedule = FeeSchedule(*fee)
    exchange = SpotExchange(fees=schedule)
    placed: list[tuple[str, str]] = []
    commands: list[SpotCommand] = []
    midway = b""
    # Every account starts funded in every asset, so most orders can trade.
    funding = [("credit", who, asset, 3000, None) for who in ACCOUNTS for asset in ASSETS]
    for seq, action in enumerate([*funding, *plan], start=1):
        if seq - 1 == cut:
            midway = snapshot(exchange)
        command = _command(seq, action, placed)
        commands.append(command)
        before = spot_digest(exchange)
        result = exchange.apply(command)
        if result.reason is not None:
            assert not result.events and spot_digest(exchange) == before
        elif isinstance(result.payload, SpotPlacement) and not result.duplicate:
            placed.append((result.payload.order.id, result.payload.order.account_id))
        _check_state(exchange)
        _check_priority(exchange, command, result)
    event("trades: " + ("0" if not exchange.trades else "1-9" if exchange.trades < 10 else "10+"))
    digest = spot_digest(exchange)
    replay = SpotExchange(fees=schedule)
    for command in commands:
        replay.apply(decode_spot_command(encode_spot_command(command)))
    assert spot_digest(replay) == digest
    assert spot_digest(restore(snapshot(exchange))) == digest
    if midway:
        resumed = restore(midway)
        for command in commands[cut:]:
            resumed.apply(command)
        assert spot_digest(resumed) == digest
