"""Every TradingService and EngineAdminService RPC of a real engine on loopback: the happy
paths and each error reason API.md lists, with ErrorInfo and BadRequest details."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2

from cfd.v1 import common_pb2, engine_admin_pb2, trading_pb2
from engine_svc.config import EngineConfig
from integration.test_engine_harness import (
    Client,
    Engine,
    FakeMarket,
    engine_settings,
    failure,
    fake_market,
    start_engine,
    user_issuer,
    violations,
)
from support import until

BUY, SELL = common_pb2.SIDE_BUY, common_pb2.SIDE_SELL


@dataclass
class World:
    market: FakeMarket
    engine: Engine
    client: Client

    def md(self, user: str = "alice") -> tuple[tuple[str, str], ...]:
        return self.client.auth(user)

    @property
    def trading(self) -> Any:
        return self.client.trading

    async def quote(self, symbol: str, bid: str, ask: str) -> None:
        """Push a quote and wait until the engine applied it."""
        self.market.push(symbol, bid, ask)
        instrument = self.engine.runtime.core.instruments[symbol]
        want = (instrument.parse_price(bid), instrument.parse_price(ask))

        async def applied() -> bool:
            quote = self.engine.runtime.core.get_quote(symbol)
            return quote is not None and (quote.bid, quote.ask) == want

        await until(applied)


@pytest.fixture
async def world(tmp_path: Path, database_url: str) -> AsyncIterator[World]:
    async with fake_market() as (market, address):
        settings, _ = engine_settings(tmp_path, address)
        engine = await start_engine(
            settings, EngineConfig(price_stale_ms=3000), db_url=database_url
        )
        channel = grpc.aio.insecure_channel(engine.address)
        client = Client(channel, user_issuer(settings))
        world = World(market, engine, client)
        await client.create_account("alice", "10000")
        await client.create_account("bob", "10000")
        await world.quote("BTCUSD", "64250.00", "64251.00")
        await world.quote("ETHUSD", "3000.00", "3000.50")
        try:
            yield world
        finally:
            await channel.close()
            await engine.shutdown()


async def _fails(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


def _open(symbol: str = "BTCUSD", side: common_pb2.Side.ValueType = BUY, **fields: Any) -> Any:
    fields.setdefault("quantity", "0.01")
    return trading_pb2.OpenPositionRequest(symbol=symbol, side=side, leverage=10, **fields)


async def test_account_prices_and_a_position_round_trip(world: World) -> None:
    account = await world.trading.GetAccount(trading_pb2.GetAccountRequest(), metadata=world.md())
    assert (account.balance, account.equity, account.margin_level, account.currency) == (
        "10000.00",
        "10000.00",
        "",
        "USD",
    )
    prices = await world.trading.ListPrices(trading_pb2.ListPricesRequest(), metadata=world.md())
    assert {(q.symbol, q.bid, q.ask) for q in prices.prices} == {
        ("BTCUSD", "64250.00", "64251.00"),
        ("ETHUSD", "3000.00", "3000.50"),
    }
    opened = await world.trading.OpenPosition(
        _open(take_profit="70000", stop_loss="60000", client_order_id="first"),
        metadata=world.md(),
    )
    position = opened.position
    assert (position.entry_price, position.quantity, position.margin) == (
        "64251.00",
        "0.0100",
        "64.251",
    )
    assert position.status == trading_pb2.POSITION_STATUS_OPEN
    assert position.client_order_id == "first"
    # One bitcoin a lot: the volume in lots is the quantity.
    assert position.volume_lots == "0.0100"
    again = await world.trading.OpenPosition(
        _open(quantity="1", client_order_id="first"), metadata=world.md()
    )
    assert again.position.id == position.id
    listed = await world.trading.ListPositions(
        trading_pb2.ListPositionsRequest(), metadata=world.md()
    )
    assert [p.id for p in listed.positions] == [position.id]
    assert listed.positions[0].unrealized_pnl == "-0.01"
    got = await world.trading.GetPosition(
        trading_pb2.GetPositionRequest(position_id=position.id), metadata=world.md()
    )
    assert got.position.id == position.id
    account = await world.trading.GetAccount(trading_pb2.GetAccountRequest(), metadata=world.md())
    assert (account.balance, account.used_margin, account.unrealized_pnl) == (
        "9935.749",
        "64.251",
        "-0.01",
    )

    modified = await world.trading.ModifyPosition(
        trading_pb2.ModifyPositionRequest(
            position_id=position.id, take_profit="", trailing_distance="100"
        ),
        metadata=world.md(),
    )
    assert (modified.position.take_profit, modified.position.stop_loss) == ("", "60000.00")
    assert modified.position.trailing_distance == "100.00"
    margin = await world.trading.AddMargin(
        trading_pb2.AddMarginRequest(position_id=position.id, amount="10"), metadata=world.md()
    )
    assert margin.position.margin == "74.251"
    assert margin.position.liquidation_price < position.liquidation_price

    await world.quote("BTCUSD", "64300.00", "64301.00")
    partial = await world.trading.ClosePosition(
        trading_pb2.ClosePositionRequest(position_id=position.id, quantity="0.004"),
        metadata=world.md(),
    )
    assert (partial.closed_quantity, partial.close_price, partial.realized_pnl) == (
        "0.0040",
        "64300.00",
        "0.196",
    )
    assert partial.position.status == trading_pb2.POSITION_STATUS_OPEN
    assert partial.position.quantity == "0.0060"
    closed = await world.trading.ClosePosition(
        trading_pb2.ClosePositionRequest(position_id=position.id), metadata=world.md()
    )
    assert closed.position.status == trading_pb2.POSITION_STATUS_CLOSED
    assert closed.position.close_reason == trading_pb2.CLOSE_REASON_USER
    history = await world.trading.ListHistory(
        trading_pb2.ListHistoryRequest(page_size=1), metadata=world.md()
    )
    assert [(p.quantity, p.volume_lots) for p in history.positions] == [("0.0060", "0.0060")]
    assert history.next_page_token
    rest = await world.trading.ListHistory(
        trading_pb2.ListHistoryRequest(page_size=5, page_token=history.next_page_token),
        metadata=world.md(),
    )
    assert [p.quantity for p in rest.positions] == ["0.0040"]
    assert rest.next_page_token == ""
    after = await world.trading.GetPosition(
        trading_pb2.GetPositionRequest(position_id=position.id), metadata=world.md()
    )
    assert after.position.status == trading_pb2.POSITION_STATUS_CLOSED
    eth_only = await world.trading.ListHistory(
        trading_pb2.ListHistoryRequest(symbol="ETHUSD"), metadata=world.md()
    )
    assert list(eth_only.positions) == []


async def test_orders_place_list_cancel_and_fill(world: World) -> None:
    placed = await world.trading.PlaceOrder(
        trading_pb2.PlaceOrderRequest(
            symbol="ETHUSD",
            side=BUY,
            type=trading_pb2.ORDER_TYPE_LIMIT,
            trigger_price="2900",
            leverage=5,
            margin="100",
            client_order_id="limit-1",
        ),
        metadata=world.md(),
    )
    order = placed.order
    assert (order.status, order.margin, order.trigger_price) == (
        trading_pb2.ORDER_STATUS_PENDING,
        "100.00",
        "2900.00",
    )
    listed = await world.trading.ListOrders(trading_pb2.ListOrdersRequest(), metadata=world.md())
    assert [o.id for o in listed.orders] == [order.id]
    stop = await world.trading.PlaceOrder(
        trading_pb2.PlaceOrderRequest(
            symbol="ETHUSD",
            side=SELL,
            type=trading_pb2.ORDER_TYPE_STOP,
            trigger_price="2950",
            leverage=5,
            quantity="0.1",
        ),
        metadata=world.md(),
    )
    cancelled = await world.trading.CancelOrder(
        trading_pb2.CancelOrderRequest(order_id=stop.order.id), metadata=world.md()
    )
    assert cancelled.order.status == trading_pb2.ORDER_STATUS_CANCELLED
    await world.quote("ETHUSD", "2899.00", "2899.50")
    positions = await world.trading.ListPositions(
        trading_pb2.ListPositionsRequest(), metadata=world.md()
    )
    assert [p.entry_price for p in positions.positions] == ["2899.50"]
    orders = await world.trading.ListOrders(trading_pb2.ListOrdersRequest(), metadata=world.md())
    assert list(orders.orders) == []
    gone = await _fails(
        world.trading.CancelOrder(
            trading_pb2.CancelOrderRequest(order_id=order.id), metadata=world.md()
        )
    )
    assert failure(gone) == (grpc.StatusCode.NOT_FOUND, "ORDER_NOT_FOUND")


async def test_a_client_order_id_reused_on_another_object_is_already_exists(
    world: World,
) -> None:
    md = world.md()
    await world.trading.OpenPosition(_open(client_order_id="open-1"), metadata=md)
    second = await world.trading.OpenPosition(_open(), metadata=md)
    target = second.position.id
    reused = [
        world.trading.AddMargin(
            trading_pb2.AddMarginRequest(position_id=target, amount="5", client_order_id="open-1"),
            metadata=md,
        ),
        world.trading.ModifyPosition(
            trading_pb2.ModifyPositionRequest(
                position_id=target, stop_loss="60000", client_order_id="open-1"
            ),
            metadata=md,
        ),
    ]
    for call in reused:
        error = await _fails(call)
        assert failure(error) == (grpc.StatusCode.ALREADY_EXISTS, "IDEMPOTENCY_KEY_REUSED")
        assert "OpenPosition" in (error.details() or "")
    untouched = await world.trading.GetPosition(
        trading_pb2.GetPositionRequest(position_id=target), metadata=md
    )
    assert (untouched.position.margin, untouched.position.stop_loss) == (
        second.position.margin,
        "",
    )
    order = trading_pb2.PlaceOrderRequest(
        symbol="BTCUSD",
        side=BUY,
        type=trading_pb2.ORDER_TYPE_LIMIT,
        trigger_price="60000",
        leverage=5,
        quantity="0.01",
    )
    placed = await world.trading.PlaceOrder(order, metadata=md)
    other = await world.trading.PlaceOrder(order, metadata=md)
    cancel = trading_pb2.CancelOrderRequest(order_id=placed.order.id, client_order_id="cancel-1")
    await world.trading.CancelOrder(cancel, metadata=md)
    again = await world.trading.CancelOrder(cancel, metadata=md)
    assert again.order.id == placed.order.id
    error = await _fails(
        world.trading.CancelOrder(
            trading_pb2.CancelOrderRequest(order_id=other.order.id, client_order_id="cancel-1"),
            metadata=md,
        )
    )
    assert failure(error) == (grpc.StatusCode.ALREADY_EXISTS, "IDEMPOTENCY_KEY_REUSED")
    pending = await world.trading.ListOrders(trading_pb2.ListOrdersRequest(), metadata=md)
    assert [o.id for o in pending.orders] == [other.order.id]


async def test_stop_loss_and_liquidation_close_on_ticks(world: World) -> None:
    sl = await world.trading.OpenPosition(_open(stop_loss="64000"), metadata=world.md())
    risky = await world.trading.OpenPosition(
        trading_pb2.OpenPositionRequest(symbol="BTCUSD", side=BUY, leverage=100, quantity="0.01"),
        metadata=world.md(),
    )
    await world.quote("BTCUSD", "63000.00", "63001.00")
    history = await world.trading.ListHistory(trading_pb2.ListHistoryRequest(), metadata=world.md())
    reasons = {p.id: p.close_reason for p in history.positions}
    assert reasons == {
        sl.position.id: trading_pb2.CLOSE_REASON_STOP_LOSS,
        risky.position.id: trading_pb2.CLOSE_REASON_LIQUIDATION,
    }
    stats = await world.client.stats()
    assert stats.open_positions == 0
    assert stats.house_balance != "0.00"


async def test_each_error_reason_of_the_trading_rpcs(world: World) -> None:
    md = world.md()
    cases: list[tuple[Any, grpc.StatusCode, str, list[str]]] = [
        (_open(symbol="DOGEUSD"), grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_SYMBOL", ["symbol"]),
        (
            _open(side=common_pb2.SIDE_UNSPECIFIED),
            grpc.StatusCode.INVALID_ARGUMENT,
            "VALIDATION_FAILED",
            ["side"],
        ),
        (
            _open(quantity="0.00001"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "QUANTITY_TOO_SMALL",
            ["quantity"],
        ),
        (
            _open(quantity="abc"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "VALIDATION_FAILED",
            ["quantity"],
        ),
        (_open(stop_loss="65000"), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_STOPS", []),
        (_open(quantity="100"), grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_BALANCE", []),
        (
            _open(expected_price="60000", max_slippage_bps=10),
            grpc.StatusCode.FAILED_PRECONDITION,
            "SLIPPAGE_EXCEEDED",
            [],
        ),
        (_open(symbol="SOLUSD"), grpc.StatusCode.FAILED_PRECONDITION, "PRICE_UNAVAILABLE", []),
    ]
    for request, code, reason, fields in cases:
        error = await _fails(world.trading.OpenPosition(request, metadata=md))
        assert failure(error) == (code, reason), request
        assert violations(error) == fields, request
    leverage = await _fails(
        world.trading.OpenPosition(
            trading_pb2.OpenPositionRequest(symbol="BTCUSD", side=BUY, leverage=500, quantity="1"),
            metadata=md,
        )
    )
    assert failure(leverage) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_LEVERAGE")
    assert violations(leverage) == ["leverage"]
    for call in (
        world.trading.GetPosition(trading_pb2.GetPositionRequest(position_id="p-999"), metadata=md),
        world.trading.ClosePosition(
            trading_pb2.ClosePositionRequest(position_id="p-999"), metadata=md
        ),
        world.trading.ModifyPosition(
            trading_pb2.ModifyPositionRequest(position_id="nope", stop_loss="1"), metadata=md
        ),
        world.trading.AddMargin(
            trading_pb2.AddMarginRequest(position_id="p-999", amount="1"), metadata=md
        ),
    ):
        error = await _fails(call)
        assert failure(error) == (grpc.StatusCode.NOT_FOUND, "POSITION_NOT_FOUND")
    mine = await world.trading.OpenPosition(_open(), metadata=md)
    theirs = await _fails(
        world.trading.GetPosition(
            trading_pb2.GetPositionRequest(position_id=mine.position.id), metadata=world.md("bob")
        )
    )
    assert failure(theirs) == (grpc.StatusCode.NOT_FOUND, "POSITION_NOT_FOUND")
    broke = await _fails(
        world.trading.AddMargin(
            trading_pb2.AddMarginRequest(position_id=mine.position.id, amount="1000000"),
            metadata=md,
        )
    )
    assert failure(broke) == (grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_BALANCE")
    stops = await _fails(
        world.trading.ModifyPosition(
            trading_pb2.ModifyPositionRequest(position_id=mine.position.id, take_profit="1"),
            metadata=md,
        )
    )
    assert failure(stops) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_STOPS")
    order = await _fails(
        world.trading.PlaceOrder(
            trading_pb2.PlaceOrderRequest(
                symbol="BTCUSD",
                side=BUY,
                type=trading_pb2.ORDER_TYPE_LIMIT,
                trigger_price="70000",
                leverage=10,
                quantity="0.01",
            ),
            metadata=md,
        )
    )
    assert failure(order) == (grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_FAILED")
    assert violations(order) == ["triggerPrice"]
    for request, field in (
        (trading_pb2.ListHistoryRequest(page_size=501), "pageSize"),
        (trading_pb2.ListHistoryRequest(page_token="garbage!"), "pageToken"),
    ):
        error = await _fails(world.trading.ListHistory(request, metadata=md))
        assert failure(error) == (grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_FAILED")
        assert violations(error) == [field]
    unknown = await _fails(
        world.trading.ListHistory(trading_pb2.ListHistoryRequest(symbol="XYZ"), metadata=md)
    )
    assert failure(unknown) == (grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_SYMBOL")
    stats = await world.client.stats()
    assert stats.open_positions == 1


async def test_calls_without_a_valid_token_are_unauthenticated(world: World) -> None:
    for metadata in ((), (("authorization", "Bearer nonsense"),)):
        error = await _fails(
            world.trading.GetAccount(trading_pb2.GetAccountRequest(), metadata=metadata)
        )
        assert failure(error) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID")
    admin = await _fails(world.client.admin.GetStats(engine_admin_pb2.GetStatsRequest()))
    assert admin.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_stale_price_refuses_orders_and_liquidates_nothing(world: World) -> None:
    risky = await world.trading.OpenPosition(
        trading_pb2.OpenPositionRequest(symbol="BTCUSD", side=BUY, leverage=100, quantity="0.01"),
        metadata=world.md(),
    )
    assert "BTCUSD" in (await world.client.stats()).fresh_symbols
    world.market.up = False
    freshness = world.engine.runtime.freshness

    async def stale() -> bool:
        return not freshness.fresh_symbols()

    await until(stale)
    assert list((await world.client.stats()).fresh_symbols) == []
    error = await _fails(world.trading.OpenPosition(_open(), metadata=world.md()))
    assert failure(error) == (grpc.StatusCode.FAILED_PRECONDITION, "PRICE_UNAVAILABLE")
    closing = await _fails(
        world.trading.ClosePosition(
            trading_pb2.ClosePositionRequest(position_id=risky.position.id), metadata=world.md()
        )
    )
    assert failure(closing) == (grpc.StatusCode.FAILED_PRECONDITION, "PRICE_UNAVAILABLE")
    prices = await world.trading.ListPrices(trading_pb2.ListPricesRequest(), metadata=world.md())
    assert list(prices.prices) == []
    positions = await world.trading.ListPositions(
        trading_pb2.ListPositionsRequest(), metadata=world.md()
    )
    assert [p.id for p in positions.positions] == [risky.position.id]


async def test_admin_create_account_is_idempotent_and_deposits_add_up(world: World) -> None:
    admin, internal = world.client.admin, world.client.internal
    first = await admin.CreateAccount(
        engine_admin_pb2.CreateAccountRequest(user_id="carol", initial_balance="250.5"),
        metadata=internal,
    )
    again = await admin.CreateAccount(
        engine_admin_pb2.CreateAccountRequest(user_id="carol", initial_balance="999"),
        metadata=internal,
    )
    assert (first.created, first.balance) == (True, "250.50")
    assert (again.created, again.balance) == (False, "250.50")
    deposit = await admin.Deposit(
        engine_admin_pb2.DepositRequest(user_id="carol", amount="0.5", client_order_id="d1"),
        metadata=internal,
    )
    repeat = await admin.Deposit(
        engine_admin_pb2.DepositRequest(user_id="carol", amount="0.5", client_order_id="d1"),
        metadata=internal,
    )
    assert deposit.balance == repeat.balance == "251.00"
    missing = await _fails(
        admin.Deposit(
            engine_admin_pb2.DepositRequest(user_id="nobody", amount="1"), metadata=internal
        )
    )
    assert failure(missing) == (grpc.StatusCode.NOT_FOUND, "ACCOUNT_NOT_FOUND")
    invalid = await _fails(
        admin.CreateAccount(engine_admin_pb2.CreateAccountRequest(user_id=""), metadata=internal)
    )
    assert failure(invalid) == (grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_FAILED")
    assert violations(invalid) == ["userId"]
    stats = await world.client.stats()
    assert stats.accounts == 3
    assert stats.total_deposits == "20251.00"
    assert stats.sequence >= 6
    assert len(stats.state_digest) == 64
    assert stats.journal_segments == 1 and stats.journal_bytes > 0


async def test_expire_time_expires_a_pending_order(world: World) -> None:
    now = timestamp_pb2.Timestamp()
    now.GetCurrentTime()
    expire = timestamp_pb2.Timestamp(seconds=now.seconds + 1, nanos=now.nanos)
    placed = await world.trading.PlaceOrder(
        trading_pb2.PlaceOrderRequest(
            symbol="BTCUSD",
            side=BUY,
            type=trading_pb2.ORDER_TYPE_LIMIT,
            trigger_price="60000",
            leverage=10,
            quantity="0.01",
            expire_time=expire,
        ),
        metadata=world.md(),
    )
    assert placed.order.expire_time == expire

    async def expired() -> bool:
        reply = await world.trading.ListOrders(trading_pb2.ListOrdersRequest(), metadata=world.md())
        return not reply.orders

    await until(expired, within=10)


async def test_modify_order_moves_a_pending_order_and_refuses_bad_changes(world: World) -> None:
    placed = await world.trading.PlaceOrder(
        trading_pb2.PlaceOrderRequest(
            symbol="ETHUSD", side=BUY, type=trading_pb2.ORDER_TYPE_LIMIT, trigger_price="2950",
            leverage=5, quantity="0.1", take_profit="3100",
        ),
        metadata=world.md(),
    )  # fmt: skip
    order_id = placed.order.id
    request = trading_pb2.ModifyOrderRequest(
        order_id=order_id, trigger_price="2900", margin="50", take_profit="",
        stop_loss="2800", client_order_id="move-1",
    )  # fmt: skip
    modified = await world.trading.ModifyOrder(request, metadata=world.md())
    order = modified.order
    assert (order.trigger_price, order.margin, order.take_profit, order.stop_loss) == (
        "2900.00", "50.00", "", "2800.00",
    )  # fmt: skip
    assert order.status == trading_pb2.ORDER_STATUS_PENDING and order.id == order_id
    repeat = (await world.trading.ModifyOrder(request, metadata=world.md())).order
    # The order's read model keeps no time of change: a repeat and a listing show creation.
    order.ClearField("update_time")
    repeat.ClearField("update_time")
    assert repeat == order
    cases: list[tuple[trading_pb2.ModifyOrderRequest, str, str]] = [
        (trading_pb2.ModifyOrderRequest(order_id=order_id), "VALIDATION_FAILED", "triggerPrice"),
        (
            trading_pb2.ModifyOrderRequest(order_id=order_id, trigger_price="3001"),
            "VALIDATION_FAILED", "triggerPrice",
        ),
        (
            trading_pb2.ModifyOrderRequest(order_id=order_id, stop_loss="2950"),
            "INVALID_STOPS", "",
        ),
        (
            trading_pb2.ModifyOrderRequest(order_id=order_id, quantity="0.0001"),
            "QUANTITY_TOO_SMALL", "quantity",
        ),
        (
            trading_pb2.ModifyOrderRequest(
                order_id=order_id, expire_time=timestamp_pb2.Timestamp(seconds=1)
            ),
            "VALIDATION_FAILED", "expireTime",
        ),
    ]  # fmt: skip
    for bad, reason, field in cases:
        error = await _fails(world.trading.ModifyOrder(bad, metadata=world.md()))
        assert failure(error)[1] == reason, bad
        if field:
            assert field in violations(error), bad
    hidden = await _fails(
        world.trading.ModifyOrder(
            trading_pb2.ModifyOrderRequest(order_id=order_id, trigger_price="2800"),
            metadata=world.md("bob"),
        )
    )
    assert failure(hidden) == (grpc.StatusCode.NOT_FOUND, "ORDER_NOT_FOUND")
    listed = await world.trading.ListOrders(trading_pb2.ListOrdersRequest(), metadata=world.md())
    listed.orders[0].ClearField("update_time")
    assert list(listed.orders) == [order]
    # The old trigger is crossed without a fill; the new one fills.
    await world.quote("ETHUSD", "2940.00", "2940.50")
    pending = await world.trading.ListOrders(trading_pb2.ListOrdersRequest(), metadata=world.md())
    assert [o.id for o in pending.orders] == [order_id]
    await world.quote("ETHUSD", "2899.00", "2899.50")
    positions = await world.trading.ListPositions(
        trading_pb2.ListPositionsRequest(), metadata=world.md()
    )
    assert [(p.entry_price, p.stop_loss) for p in positions.positions] == [("2899.50", "2800.00")]
    stream = world.trading.StreamEvents(
        trading_pb2.StreamEventsRequest(from_sequence=0), metadata=world.md()
    )
    kinds: list[tuple[int, str]] = []
    async with asyncio.timeout(10):
        async for event in stream:
            kinds.append((event.type, event.order.trigger_price))
            if event.type == trading_pb2.EVENT_TYPE_ORDER_FILLED:
                break
    stream.cancel()
    assert kinds[1:4] == [
        (trading_pb2.EVENT_TYPE_ORDER_PLACED, "2950.00"),
        (trading_pb2.EVENT_TYPE_ORDER_MODIFIED, "2900.00"),
        (trading_pb2.EVENT_TYPE_ORDER_FILLED, "2900.00"),
    ]
