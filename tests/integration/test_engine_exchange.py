"""Every ExchangeService RPC of a real engine on loopback: transfers, orders, fills, books,
trades and wallets, the error reasons with their details, and the book stream's sequence."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from cfd.v1 import (
    common_pb2,
    engine_admin_pb2,
    exchange_pb2,
    exchange_pb2_grpc,
    trading_pb2,
)
from integration import test_engine_rpc
from integration.test_engine_harness import failure, violations
from integration.test_engine_rpc import World
from support import until

# The engine, its fake market and two funded accounts of the TradingService tests.
world = test_engine_rpc.world

BUY, SELL = common_pb2.SIDE_BUY, common_pb2.SIDE_SELL
LIMIT, MARKET = exchange_pb2.SPOT_ORDER_TYPE_LIMIT, exchange_pb2.SPOT_ORDER_TYPE_MARKET
TO_SPOT = exchange_pb2.TRANSFER_DIRECTION_TO_SPOT
TO_CFD = exchange_pb2.TRANSFER_DIRECTION_TO_CFD


def _exchange(world: World) -> Any:
    return exchange_pb2_grpc.ExchangeServiceStub(world.client.channel)


async def _fails(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def _fund(world: World) -> None:
    """Give alice 1000 USD in her wallet and bob 0.5 BTC."""
    exchange = _exchange(world)
    await exchange.TransferFunds(
        exchange_pb2.TransferFundsRequest(amount="1000", direction=TO_SPOT), metadata=world.md()
    )
    await world.client.admin.DepositAsset(
        engine_admin_pb2.DepositAssetRequest(user_id="bob", asset="BTC", amount="0.5"),
        metadata=world.client.internal,
    )


def _limit(side: common_pb2.Side.ValueType, price: str, quantity: str, **fields: Any) -> Any:
    return exchange_pb2.PlaceSpotOrderRequest(
        market="BTC_USD", side=side, type=LIMIT, price=price, quantity=quantity, **fields
    )


def _balances(response: Any) -> dict[str, tuple[str, str]]:
    return {b.asset: (b.available, b.locked) for b in response.balances}


async def test_markets_wallet_and_transfers_both_ways(world: World) -> None:
    exchange = _exchange(world)
    markets = await exchange.ListMarkets(exchange_pb2.ListMarketsRequest(), metadata=world.md())
    names = [m.name for m in markets.markets]
    assert names == ["BTC_USD", "ETH_USD", "SOL_USD"]
    btc = markets.markets[0]
    assert (btc.base_asset, btc.quote_asset, btc.taker_fee_bps, btc.maker_fee_bps) == (
        "BTC", "USD", 10, 0,
    )  # fmt: skip
    moved = await exchange.TransferFunds(
        exchange_pb2.TransferFundsRequest(amount="250.5", direction=TO_SPOT, client_order_id="t"),
        metadata=world.md(),
    )
    assert moved.cfd_balance == "9749.50"
    assert _balances(moved)["USD"] == ("250.50", "0.00")
    again = await exchange.TransferFunds(
        exchange_pb2.TransferFundsRequest(amount="250.5", direction=TO_SPOT, client_order_id="t"),
        metadata=world.md(),
    )
    assert again.cfd_balance == "9749.50"
    back = await exchange.TransferFunds(
        exchange_pb2.TransferFundsRequest(amount="50", direction=TO_CFD), metadata=world.md()
    )
    assert back.cfd_balance == "9799.50"
    wallet = await exchange.GetWallet(exchange_pb2.GetWalletRequest(), metadata=world.md())
    assert _balances(wallet)["USD"] == ("200.50", "0.00")
    account = await world.trading.GetAccount(
        trading_pb2.GetAccountRequest(), metadata=world.md()
    )
    assert account.balance == "9799.50"
    too_much = await _fails(
        exchange.TransferFunds(
            exchange_pb2.TransferFundsRequest(amount="200.51", direction=TO_CFD),
            metadata=world.md(),
        )
    )
    assert failure(too_much) == (grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_BALANCE")
    bad = await _fails(
        exchange.TransferFunds(
            exchange_pb2.TransferFundsRequest(amount="1.0000001"), metadata=world.md()
        )
    )
    assert failure(bad) == (grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_FAILED")
    assert violations(bad) == ["direction"]


async def test_orders_trade_and_show_in_books_tapes_wallets_and_fills(world: World) -> None:
    exchange = _exchange(world)
    await _fund(world)
    rest = await exchange.PlaceSpotOrder(
        _limit(SELL, "64000.00", "0.2", client_order_id="s1"), metadata=world.md("bob")
    )
    assert rest.order.status == exchange_pb2.SPOT_ORDER_STATUS_OPEN
    book = await exchange.GetOrderBook(
        exchange_pb2.GetOrderBookRequest(market="BTC_USD"), metadata=world.md()
    )
    assert [(a.price, a.quantity) for a in book.asks] == [("64000.00", "0.2000")]
    took = await exchange.PlaceSpotOrder(
        exchange_pb2.PlaceSpotOrderRequest(
            market="BTC_USD", side=BUY, type=MARKET, quantity="0.0015"
        ),
        metadata=world.md(),
    )
    assert took.order.status == exchange_pb2.SPOT_ORDER_STATUS_FILLED
    assert took.order.average_price == "64000.00"
    (fill,) = took.fills
    # 0.0015 BTC at 64,000.00 is 96 USD; the taker pays 10 bps on it.
    assert (fill.price, fill.quantity, fill.fee, fill.liquidity) == (
        "64000.00", "0.0015", "0.096", exchange_pb2.LIQUIDITY_TAKER,
    )  # fmt: skip
    wallet = _balances(
        await exchange.GetWallet(exchange_pb2.GetWalletRequest(), metadata=world.md())
    )
    assert wallet["USD"] == ("903.904", "0.00") and wallet["BTC"][0] == "0.0015"
    trades = await exchange.ListMarketTrades(
        exchange_pb2.ListMarketTradesRequest(market="BTC_USD"), metadata=world.md()
    )
    assert [(t.price, t.quantity, t.taker_side) for t in trades.trades] == [
        ("64000.00", "0.0015", BUY)
    ]
    orders = await exchange.ListSpotOrders(
        exchange_pb2.ListSpotOrdersRequest(market="BTC_USD"), metadata=world.md("bob")
    )
    (open_order,) = orders.orders
    assert open_order.filled_quantity == "0.0015"
    assert open_order.status == exchange_pb2.SPOT_ORDER_STATUS_PARTIALLY_FILLED
    fills = await exchange.ListSpotFills(
        exchange_pb2.ListSpotFillsRequest(), metadata=world.md("bob")
    )
    assert [(f.liquidity, f.fee) for f in fills.fills] == [(exchange_pb2.LIQUIDITY_MAKER, "0.00")]
    # Another user's order is not found; the owner cancels it.
    stolen = await _fails(
        exchange.CancelSpotOrder(
            exchange_pb2.CancelSpotOrderRequest(order_id=open_order.id), metadata=world.md()
        )
    )
    assert failure(stolen) == (grpc.StatusCode.NOT_FOUND, "ORDER_NOT_FOUND")
    cancelled = await exchange.CancelSpotOrder(
        exchange_pb2.CancelSpotOrderRequest(order_id=open_order.id), metadata=world.md("bob")
    )
    assert cancelled.order.status == exchange_pb2.SPOT_ORDER_STATUS_CANCELLED
    left = await exchange.ListSpotOrders(
        exchange_pb2.ListSpotOrdersRequest(), metadata=world.md("bob")
    )
    assert list(left.orders) == []


async def test_fills_page_newest_first(world: World) -> None:
    exchange = _exchange(world)
    await _fund(world)
    await exchange.PlaceSpotOrder(_limit(SELL, "64000.00", "0.01"), metadata=world.md("bob"))
    for _ in range(3):
        await exchange.PlaceSpotOrder(_limit(BUY, "64000.00", "0.001"), metadata=world.md())
    first = await exchange.ListSpotFills(
        exchange_pb2.ListSpotFillsRequest(page_size=2), metadata=world.md()
    )
    assert len(first.fills) == 2 and first.next_page_token
    second = await exchange.ListSpotFills(
        exchange_pb2.ListSpotFillsRequest(page_size=2, page_token=first.next_page_token),
        metadata=world.md(),
    )
    assert len(second.fills) == 1 and not second.next_page_token
    ids = [f.order_id for f in [*first.fills, *second.fills]]
    assert ids == sorted(ids, key=lambda i: int(i[2:]), reverse=True)


@pytest.mark.parametrize(
    ("request_fields", "reason", "fields"),
    [
        ({"market": "DOGE_USD"}, "UNKNOWN_MARKET", ["market"]),
        ({"price": "64000.005"}, "INVALID_PRICE", ["price"]),
        ({"price": "-1"}, "INVALID_PRICE", ["price"]),
        ({"price": "abc"}, "VALIDATION_FAILED", ["price"]),
        ({"quantity": "0.00001"}, "QUANTITY_TOO_SMALL", ["quantity"]),
        ({"side": 0}, "VALIDATION_FAILED", ["side"]),
        ({"type": 0}, "VALIDATION_FAILED", ["type"]),
        ({"time_in_force": 9}, "VALIDATION_FAILED", ["timeInForce"]),
    ],
)
async def test_bad_orders_are_400_with_field_violations(
    world: World, request_fields: dict[str, Any], reason: str, fields: list[str]
) -> None:
    exchange = _exchange(world)
    base: dict[str, Any] = {
        "market": "BTC_USD", "side": BUY, "type": LIMIT, "price": "64000.00", "quantity": "0.01",
    }  # fmt: skip
    request = exchange_pb2.PlaceSpotOrderRequest(**(base | request_fields))
    error = await _fails(exchange.PlaceSpotOrder(request, metadata=world.md()))
    assert failure(error) == (grpc.StatusCode.INVALID_ARGUMENT, reason)
    assert violations(error) == fields


async def test_core_rejections_keep_their_reasons(world: World) -> None:
    exchange = _exchange(world)
    await _fund(world)
    poor = await _fails(
        exchange.PlaceSpotOrder(_limit(BUY, "64000.00", "1"), metadata=world.md())
    )
    assert failure(poor) == (grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_BALANCE")
    empty = await _fails(
        exchange.PlaceSpotOrder(
            exchange_pb2.PlaceSpotOrderRequest(
                market="ETH_USD", side=BUY, type=MARKET, quantity="0.01"
            ),
            metadata=world.md(),
        )
    )
    assert failure(empty) == (grpc.StatusCode.FAILED_PRECONDITION, "NO_LIQUIDITY")
    await exchange.PlaceSpotOrder(_limit(SELL, "64000.00", "0.1"), metadata=world.md("bob"))
    taking = await _fails(
        exchange.PlaceSpotOrder(
            _limit(BUY, "64000.00", "0.001", post_only=True), metadata=world.md()
        )
    )
    assert failure(taking) == (grpc.StatusCode.FAILED_PRECONDITION, "POST_ONLY_WOULD_TAKE")


async def test_the_book_stream_starts_with_the_depth_and_has_no_gap(world: World) -> None:
    exchange = _exchange(world)
    await _fund(world)
    await exchange.PlaceSpotOrder(_limit(SELL, "64100.00", "0.1"), metadata=world.md("bob"))
    stream = exchange.StreamOrderBook(
        exchange_pb2.StreamOrderBookRequest(market="BTC_USD"), metadata=world.md()
    )
    trades = exchange.StreamMarketTrades(
        exchange_pb2.StreamMarketTradesRequest(market="BTC_USD"), metadata=world.md()
    )
    first = await stream.read()
    assert first.snapshot and [(a.price, a.quantity) for a in first.asks] == [
        ("64100.00", "0.1000")
    ]
    await until(lambda: _subscribed(world))
    # Concurrent orders from both users: every change arrives, sequences one apart.
    await asyncio.gather(
        *[
            exchange.PlaceSpotOrder(
                _limit(SELL, f"{64200 + i}.00", "0.001"), metadata=world.md("bob")
            )
            for i in range(10)
        ],
        exchange.PlaceSpotOrder(_limit(BUY, "64100.00", "0.002"), metadata=world.md()),
    )
    changes = [await stream.read() for _ in range(11)]
    sequences = [first.sequence, *[c.sequence for c in changes]]
    assert sequences == list(range(first.sequence, first.sequence + 12))
    assert not any(c.snapshot for c in changes)
    taken = next(c for c in changes if any(a.price == "64100.00" for a in c.asks))
    assert [(a.price, a.quantity) for a in taken.asks] == [("64100.00", "0.0980")]
    tape = await trades.read()
    assert [(t.price, t.quantity) for t in tape.trades] == [("64100.00", "0.0020")]
    stream.cancel()
    trades.cancel()


def _subscribed(world: World) -> bool:
    hub = world.engine.runtime.market_hub
    return "BTC_USD" in hub._books and "BTC_USD" in hub._trades


async def test_own_spot_events_arrive_on_stream_events(world: World) -> None:
    exchange = _exchange(world)
    await _fund(world)
    events = world.trading.StreamEvents(
        trading_pb2.StreamEventsRequest(from_sequence=0), metadata=world.md("bob")
    )
    await exchange.PlaceSpotOrder(_limit(SELL, "64000.00", "0.01"), metadata=world.md("bob"))
    await exchange.PlaceSpotOrder(_limit(BUY, "64000.00", "0.01"), metadata=world.md())
    seen: list[int] = []
    while trading_pb2.EVENT_TYPE_SPOT_ORDER_FILLED not in seen:
        item = await events.read()
        seen.append(item.type)
        if item.type == trading_pb2.EVENT_TYPE_SPOT_FILL:
            assert item.spot_fill.liquidity == exchange_pb2.LIQUIDITY_MAKER
    assert trading_pb2.EVENT_TYPE_SPOT_ORDER_PLACED in seen
    assert trading_pb2.EVENT_TYPE_SPOT_FILL in seen
    events.cancel()
