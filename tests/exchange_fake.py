"""A hand-written ExchangeService on a real gRPC server: a tiny in-memory book per market.

Limit orders rest (they never match here); tests make trades happen with `trade` and break a
book stream's sequence with `skip`. Good enough to drive the clients of the exchange (the edge,
the market maker, the market data service) over the wire exactly as the engine would.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import timestamp_pb2

from cfd.v1 import common_pb2, exchange_pb2, exchange_pb2_grpc
from mesh.auth import subject
from mesh.config import Settings
from mesh.errors import ApiError
from mesh.server import Service, serve
from mesh.tokens import JWKS_FILE_NAME, JwtVerifier, SigningKey, write_jwks_file
from support import free_port

INTERNAL = "internal-token-for-exchange-tests"
MARKETS = ("BTC_USD", "ETH_USD")
BUY = common_pb2.SIDE_BUY
SELL = common_pb2.SIDE_SELL


@dataclass
class Book:
    """One market: resting orders, its sequence, its live streams."""

    orders: dict[str, exchange_pb2.SpotOrder] = field(default_factory=dict)
    sequence: int = 0
    book_queues: list[asyncio.Queue[exchange_pb2.StreamOrderBookResponse]] = field(
        default_factory=list
    )
    trade_queues: list[asyncio.Queue[exchange_pb2.StreamMarketTradesResponse]] = field(
        default_factory=list
    )
    trades: list[exchange_pb2.MarketTrade] = field(default_factory=list)

    def levels(self, side: int) -> list[exchange_pb2.BookLevel]:
        total: dict[Decimal, Decimal] = {}
        for order in self.orders.values():
            if order.side == side:
                price = Decimal(order.price)
                total[price] = total.get(price, Decimal(0)) + Decimal(order.quantity)
        prices = sorted(total, reverse=side == BUY)
        return [exchange_pb2.BookLevel(price=str(p), quantity=str(total[p])) for p in prices]

    def level(self, side: int, price: str) -> exchange_pb2.BookLevel:
        quantity = sum(
            (
                Decimal(o.quantity)
                for o in self.orders.values()
                if o.side == side and Decimal(o.price) == Decimal(price)
            ),
            Decimal(0),
        )
        return exchange_pb2.BookLevel(price=price, quantity=str(quantity))


class FakeExchange(exchange_pb2_grpc.ExchangeServiceServicer):
    """The exchange's RPCs over in-memory books; counts what clients did."""

    def __init__(self) -> None:
        self.books = {name: Book() for name in MARKETS}
        self._ids = itertools.count(1)
        self._placed: dict[tuple[str, str], exchange_pb2.SpotOrder] = {}
        self._owners: dict[str, str] = {}
        self.place_calls = 0
        self.cancel_calls = 0
        self.book_streams_opened = 0
        self.trade_streams_opened = 0

    def _book(self, market: str) -> Book:
        book = self.books.get(market)
        if book is None:
            raise ApiError("UNKNOWN_MARKET", f"unknown market {market!r}")
        return book

    # Test hooks.

    def trade(self, market: str, price: str, quantity: str, side: int, seconds: int) -> None:
        """Print a public trade on the tape of `market` at `seconds` since the epoch."""
        book = self._book(market)
        trade = exchange_pb2.MarketTrade(
            id=f"t{next(self._ids)}",
            price=price,
            quantity=quantity,
            taker_side=side,  # type: ignore[arg-type]
            time=timestamp_pb2.Timestamp(seconds=seconds),
        )
        book.trades.append(trade)
        for queue in book.trade_queues:
            queue.put_nowait(exchange_pb2.StreamMarketTradesResponse(market=market, trades=[trade]))

    def rest(
        self, market: str, side: int, price: str, quantity: str, owner: str = "someone"
    ) -> exchange_pb2.SpotOrder:
        """Rest a GTC limit order of `owner` in the book of `market`."""
        order = exchange_pb2.SpotOrder(
            id=f"o{next(self._ids)}",
            market=market,
            side=side,  # type: ignore[arg-type]
            type=exchange_pb2.SPOT_ORDER_TYPE_LIMIT,
            price=price,
            quantity=quantity,
            filled_quantity="0",
            fee="0",
            time_in_force=exchange_pb2.TIME_IN_FORCE_GTC,
            status=exchange_pb2.SPOT_ORDER_STATUS_OPEN,
        )
        self._owners[order.id] = owner
        self._book(market).orders[order.id] = order
        self._changed(market, side, price)
        return order

    def skip(self, market: str) -> None:
        """Lose one change of the book stream of `market`: its subscribers see a gap."""
        self.books[market].sequence += 1

    def open_orders(self, market: str) -> list[exchange_pb2.SpotOrder]:
        """Return the resting orders of a market, oldest first."""
        return list(self.books[market].orders.values())

    def _changed(self, market: str, side: int, price: str) -> None:
        book = self.books[market]
        book.sequence += 1
        level = book.level(side, price)
        change = exchange_pb2.StreamOrderBookResponse(market=market, sequence=book.sequence)
        (change.bids if side == BUY else change.asks).append(level)
        for queue in book.book_queues:
            queue.put_nowait(change)

    # Market RPCs.

    async def ListMarkets(
        self, request: exchange_pb2.ListMarketsRequest, context: Any
    ) -> exchange_pb2.ListMarketsResponse:
        markets = [
            exchange_pb2.Market(
                name=name,
                base_asset=name.split("_")[0],
                quote_asset="USD",
                tick_size="0.01",
                lot_step="0.001",
                taker_fee_bps=10,
            )
            for name in MARKETS
        ]
        return exchange_pb2.ListMarketsResponse(markets=markets)

    async def GetOrderBook(
        self, request: exchange_pb2.GetOrderBookRequest, context: Any
    ) -> exchange_pb2.GetOrderBookResponse:
        book = self._book(request.market)
        depth = request.depth or 50
        return exchange_pb2.GetOrderBookResponse(
            market=request.market,
            bids=book.levels(BUY)[:depth],
            asks=book.levels(SELL)[:depth],
            sequence=book.sequence,
        )

    async def ListMarketTrades(
        self, request: exchange_pb2.ListMarketTradesRequest, context: Any
    ) -> exchange_pb2.ListMarketTradesResponse:
        book = self._book(request.market)
        newest = list(reversed(book.trades))[: request.page_size or 50]
        return exchange_pb2.ListMarketTradesResponse(trades=newest)

    async def StreamOrderBook(
        self, request: exchange_pb2.StreamOrderBookRequest, context: Any
    ) -> AsyncIterator[exchange_pb2.StreamOrderBookResponse]:
        book = self._book(request.market)
        self.book_streams_opened += 1
        queue: asyncio.Queue[exchange_pb2.StreamOrderBookResponse] = asyncio.Queue()
        book.book_queues.append(queue)
        try:
            yield exchange_pb2.StreamOrderBookResponse(
                market=request.market,
                sequence=book.sequence,
                snapshot=True,
                bids=book.levels(BUY),
                asks=book.levels(SELL),
            )
            while True:
                yield await queue.get()
        finally:
            book.book_queues.remove(queue)

    async def StreamMarketTrades(
        self, request: exchange_pb2.StreamMarketTradesRequest, context: Any
    ) -> AsyncIterator[exchange_pb2.StreamMarketTradesResponse]:
        book = self._book(request.market)
        self.trade_streams_opened += 1
        queue: asyncio.Queue[exchange_pb2.StreamMarketTradesResponse] = asyncio.Queue()
        book.trade_queues.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            book.trade_queues.remove(queue)

    # Account RPCs.

    async def GetWallet(
        self, request: exchange_pb2.GetWalletRequest, context: Any
    ) -> exchange_pb2.GetWalletResponse:
        return exchange_pb2.GetWalletResponse(
            balances=[exchange_pb2.WalletBalance(asset="USD", available="0", locked="0")]
        )

    async def TransferFunds(
        self, request: exchange_pb2.TransferFundsRequest, context: Any
    ) -> exchange_pb2.TransferFundsResponse:
        if Decimal(request.amount or "0") <= 0:
            raise ApiError("VALIDATION_FAILED", "amount", [("amount", "a positive amount")])
        return exchange_pb2.TransferFundsResponse(cfd_balance="0")

    async def PlaceSpotOrder(
        self, request: exchange_pb2.PlaceSpotOrderRequest, context: Any
    ) -> exchange_pb2.PlaceSpotOrderResponse:
        self.place_calls += 1
        user = subject()
        self._book(request.market)
        key = (user, request.client_order_id)
        if request.client_order_id and key in self._placed:
            return exchange_pb2.PlaceSpotOrderResponse(order=self._placed[key])
        if request.type != exchange_pb2.SPOT_ORDER_TYPE_LIMIT:
            raise ApiError("NO_LIQUIDITY", "this book takes limit orders only")
        order = self.rest(request.market, request.side, request.price, request.quantity, user)
        order.post_only = request.post_only
        order.client_order_id = request.client_order_id
        if request.client_order_id:
            self._placed[key] = order
        return exchange_pb2.PlaceSpotOrderResponse(order=order)

    async def CancelSpotOrder(
        self, request: exchange_pb2.CancelSpotOrderRequest, context: Any
    ) -> exchange_pb2.CancelSpotOrderResponse:
        self.cancel_calls += 1
        for name, book in self.books.items():
            order = book.orders.get(request.order_id)
            if order is not None and self._owners.get(order.id) == subject():
                del book.orders[order.id]
                self._changed(name, order.side, order.price)
                cancelled = exchange_pb2.SpotOrder()
                cancelled.CopyFrom(order)
                cancelled.status = exchange_pb2.SPOT_ORDER_STATUS_CANCELLED
                return exchange_pb2.CancelSpotOrderResponse(order=cancelled)
        raise ApiError("ORDER_NOT_FOUND", f"no open order {request.order_id}")

    async def ListSpotOrders(
        self, request: exchange_pb2.ListSpotOrdersRequest, context: Any
    ) -> exchange_pb2.ListSpotOrdersResponse:
        user = subject()
        names = [request.market] if request.market else list(self.books)
        orders = [
            order
            for name in names
            for order in self._book(name).orders.values()
            if self._owners.get(order.id) == user
        ]
        return exchange_pb2.ListSpotOrdersResponse(orders=orders)

    async def ListSpotFills(
        self, request: exchange_pb2.ListSpotFillsRequest, context: Any
    ) -> exchange_pb2.ListSpotFillsResponse:
        subject()
        return exchange_pb2.ListSpotFillsResponse()


@dataclass
class RunningExchange:
    """The fake exchange served on loopback, with the key that signs its users' tokens."""

    address: str
    port: int
    exchange: FakeExchange
    key: SigningKey
    settings: Settings


@contextlib.asynccontextmanager
async def running_exchange(
    data_dir: Path,
    port: int | None = None,
    exchange: FakeExchange | None = None,
    key: SigningKey | None = None,
) -> AsyncIterator[RunningExchange]:
    """Serve a FakeExchange (a fresh one and a new key unless given) until the block ends."""
    settings = Settings.from_env({"CFD_DATA_DIR": str(data_dir), "CFD_INTERNAL_TOKEN": INTERNAL})
    key = SigningKey.generate() if key is None else key
    write_jwks_file(data_dir / JWKS_FILE_NAME, key.public_keys)
    exchange = FakeExchange() if exchange is None else exchange
    port = free_port() if port is None else port
    service = Service(
        exchange_pb2_grpc.add_ExchangeServiceServicer_to_server,
        exchange,
        "cfd.v1.ExchangeService",
    )
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(
            "fake-exchange",
            port,
            [service],
            settings=settings,
            verifier=JwtVerifier(key.public_keys),
            stop=stop,
            grace=0.2,
        )
    )
    address = f"127.0.0.1:{port}"
    async with grpc.aio.insecure_channel(address) as channel:
        await asyncio.wait_for(channel.channel_ready(), 10)
    try:
        yield RunningExchange(address, port, exchange, key, settings)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
