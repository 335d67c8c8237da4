"""`cfd.v1.ExchangeService` over the engine's port: the spot exchange of API.md.

Commands go through the same sequencer, group commit and journal as TradingService's; reads
come from the core's state and the market hub. Requests are checked at the boundary
(`engine_svc.spot_requests`), results turned into messages (`engine_svc.convert`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from cfd.v1 import engine_admin_pb2, exchange_pb2, exchange_pb2_grpc
from engine_svc import requests, spot_requests
from engine_svc.convert import (
    SIDES,
    balance_message,
    level_messages,
    spot_fill_message,
    spot_order_message,
    timestamp,
)
from engine_svc.core import (
    AccountSummary,
    Command,
    Result,
    SendTransfer,
    format_money,
)
from engine_svc.core import TransferFunds as TransferCommand
from engine_svc.core.spot import (
    BookView,
    Market,
    SpotOrderView,
    SpotPlacement,
    SpotTradeExecuted,
)
from engine_svc.core.spot.enums import TransferDirection
from engine_svc.history import PageTokenError, decode_page_token, encode_page_token
from engine_svc.port import EnginePort
from engine_svc.servicer import rejection, send_transfer
from engine_svc.transfers import transfer_id
from mesh.errors import ApiError, validation_error

Context = grpc.aio.ServicerContext[Any, Any]


def _trade_message(trade: SpotTradeExecuted, market: Market) -> exchange_pb2.MarketTrade:
    scale = market.scale
    return exchange_pb2.MarketTrade(
        id=trade.trade_id,
        price=scale.format_price(trade.price),
        quantity=scale.format_quantity(trade.quantity),
        taker_side=SIDES[trade.taker_side],
        time=timestamp(trade.ts),
    )


def _book_message(view: BookView, market: Market) -> exchange_pb2.StreamOrderBookResponse:
    return exchange_pb2.StreamOrderBookResponse(
        market=view.market,
        sequence=view.sequence,
        snapshot=True,
        bids=level_messages(view.bids, market),
        asks=level_messages(view.asks, market),
    )


def _overflowed() -> ApiError:
    return ApiError("SERVICE_UNAVAILABLE", "the stream fell too far behind; subscribe again")


class ExchangeServicer(exchange_pb2_grpc.ExchangeServiceServicer):
    """The public spot exchange API on the caller's own wallet and orders."""

    def __init__(self, engine: EnginePort) -> None:
        self._engine = engine

    def _market(self, name: str) -> Market:
        self._engine.check_spot_shard()
        return spot_requests.market_of(self._engine.markets, name)

    def _account(self) -> str:
        return self._engine.spot_caller()[0]

    async def _submit(self, command: Command, account_missing: str | None = None) -> Result:
        result = await self._engine.submit(command)
        if not result.ok:
            raise rejection(result, account_missing)
        return result

    async def ListMarkets(
        self, request: exchange_pb2.ListMarketsRequest, context: Context
    ) -> exchange_pb2.ListMarketsResponse:
        """List the spot markets with their grids and fees."""
        self._engine.check_spot_shard()
        fees = self._engine.fees
        return exchange_pb2.ListMarketsResponse(
            markets=[
                exchange_pb2.Market(
                    name=market.name,
                    base_asset=market.base_asset,
                    quote_asset="USD",
                    tick_size=market.scale.tick_size,
                    lot_step=market.scale.lot_step,
                    taker_fee_bps=fees.taker_bps,
                    maker_fee_bps=fees.maker_bps,
                )
                for market in self._engine.markets.values()
            ]
        )

    async def GetOrderBook(
        self, request: exchange_pb2.GetOrderBookRequest, context: Context
    ) -> exchange_pb2.GetOrderBookResponse:
        """Return a market's aggregated depth, best levels first."""
        market = self._market(request.market)
        view = self._engine.order_book(market.name, spot_requests.depth(request.depth))
        assert view is not None
        return exchange_pb2.GetOrderBookResponse(
            market=view.market,
            bids=level_messages(view.bids, market),
            asks=level_messages(view.asks, market),
            sequence=view.sequence,
        )

    async def ListMarketTrades(
        self, request: exchange_pb2.ListMarketTradesRequest, context: Context
    ) -> exchange_pb2.ListMarketTradesResponse:
        """Return a market's latest public trades, newest first."""
        market = self._market(request.market)
        limit = spot_requests.trades_page(request.page_size)
        trades = self._engine.market_trades(market.name, limit)
        return exchange_pb2.ListMarketTradesResponse(
            trades=[_trade_message(trade, market) for trade in trades]
        )

    def _wallet(self, account: str) -> list[exchange_pb2.WalletBalance]:
        markets = self._engine.markets
        return [balance_message(view, markets) for view in self._engine.wallet(account)]

    async def GetWallet(
        self, request: exchange_pb2.GetWalletRequest, context: Context
    ) -> exchange_pb2.GetWalletResponse:
        """Return every asset of the caller's wallet."""
        return exchange_pb2.GetWalletResponse(balances=self._wallet(self._account()))

    async def TransferFunds(
        self, request: exchange_pb2.TransferFundsRequest, context: Context
    ) -> exchange_pb2.TransferFundsResponse:
        """Move USD between the CFD balance and the spot wallet: in one command when this
        shard holds both, else as a cross-shard transfer with the caller's home shard."""
        account, home = self._engine.spot_caller()
        command = spot_requests.transfer_funds(request, account)
        if home != self._engine.shard:
            return await self._transfer_across(command, home)
        result = await self._submit(command)
        summary = result.payload
        if not isinstance(summary, AccountSummary):
            raise validation_error("clientOrderId", "was already used for another kind of request")
        return exchange_pb2.TransferFundsResponse(
            balances=self._wallet(account), cfd_balance=format_money(summary.balance)
        )

    async def _transfer_across(
        self, command: TransferCommand, home: int
    ) -> exchange_pb2.TransferFundsResponse:
        """Move USD between this shard's wallet and the CFD balance on shard `home`.

        The transfer id comes from the client_order_id, so a retry names the same transfer:
        TO_CFD debits the wallet here and the driver credits `home`; TO_SPOT asks `home` to
        debit the CFD balance, and its driver credits the wallet here.
        """
        account = command.account_id
        transfer = transfer_id(account, command.client_order_id)
        if command.direction is TransferDirection.TO_CFD:
            send = SendTransfer(0, 0, account, transfer, command.amount, command.direction, home)
            reply = await send_transfer(self._engine, send)
        else:
            reply = await self._engine.send_on_shard(
                home,
                engine_admin_pb2.SendTransferRequest(
                    user_id=account,
                    transfer_id=transfer,
                    amount=format_money(command.amount),
                    direction=exchange_pb2.TRANSFER_DIRECTION_TO_SPOT,
                    peer_shard=self._engine.shard,
                ),
            )
        return exchange_pb2.TransferFundsResponse(
            balances=reply.balances, cfd_balance=reply.cfd_balance
        )

    async def PlaceSpotOrder(
        self, request: exchange_pb2.PlaceSpotOrderRequest, context: Context
    ) -> exchange_pb2.PlaceSpotOrderResponse:
        """Place a limit or market order; return it after matching with its own fills."""
        command = spot_requests.place_spot_order(request, self._account(), self._engine.markets)
        placement = (await self._submit(command)).payload
        if not isinstance(placement, SpotPlacement):
            raise validation_error("clientOrderId", "was already used for another kind of request")
        market = self._engine.markets[placement.order.market]
        return exchange_pb2.PlaceSpotOrderResponse(
            order=spot_order_message(placement.order, market),
            fills=[spot_fill_message(fill, market) for fill in placement.fills],
        )

    async def CancelSpotOrder(
        self, request: exchange_pb2.CancelSpotOrderRequest, context: Context
    ) -> exchange_pb2.CancelSpotOrderResponse:
        """Cancel an own open order; another user's order is ORDER_NOT_FOUND."""
        command = spot_requests.cancel_spot_order(request, self._account())
        view = (await self._submit(command, "ORDER_NOT_FOUND")).payload
        if not isinstance(view, SpotOrderView):
            raise validation_error("clientOrderId", "was already used for another kind of request")
        market = self._engine.markets[view.market]
        return exchange_pb2.CancelSpotOrderResponse(order=spot_order_message(view, market))

    async def ListSpotOrders(
        self, request: exchange_pb2.ListSpotOrdersRequest, context: Context
    ) -> exchange_pb2.ListSpotOrdersResponse:
        """List the caller's open orders (of one market when given)."""
        name = self._market(request.market).name if request.market else None
        markets = self._engine.markets
        return exchange_pb2.ListSpotOrdersResponse(
            orders=[
                spot_order_message(view, markets[view.market])
                for view in self._engine.spot_orders(self._account(), name)
            ]
        )

    async def ListSpotFills(
        self, request: exchange_pb2.ListSpotFillsRequest, context: Context
    ) -> exchange_pb2.ListSpotFillsResponse:
        """List the caller's fills, newest first, a page at a time."""
        size = requests.page_size(request.page_size)
        name = self._market(request.market).name if request.market else None
        after: tuple[int, int] | None = None
        if request.page_token:
            try:
                after = decode_page_token(request.page_token)
            except PageTokenError:
                raise validation_error("pageToken", "is not a token of this list") from None
        rows = await self._engine.spot_fills_page(self._account(), name, after, size + 1)
        page = rows[:size]
        token = encode_page_token(page[-1][0], page[-1][1]) if len(rows) > size else ""
        return exchange_pb2.ListSpotFillsResponse(
            fills=[exchange_pb2.SpotFill.FromString(data) for _, _, data in page],
            next_page_token=token,
        )

    async def StreamOrderBook(
        self, request: exchange_pb2.StreamOrderBookRequest, context: Context
    ) -> AsyncIterator[exchange_pb2.StreamOrderBookResponse]:
        """Stream the book: its depth first, then every change, sequences one apart."""
        market = self._market(request.market)
        depth = spot_requests.depth(request.depth)
        engine = self._engine
        # Subscribing and reading the depth in one step of the event loop: no batch can
        # commit between them, so the changes start right after the depth's sequence.
        with engine.book_changes(market.name) as subscription:
            view = engine.order_book(market.name, depth)
            assert view is not None
            sequence = view.sequence
            yield _book_message(view, market)
            while True:
                batch = await subscription.next_batch()
                if subscription.overflowed:
                    raise _overflowed()
                for change in batch:
                    if change.sequence <= sequence:
                        continue
                    sequence = change.sequence
                    yield exchange_pb2.StreamOrderBookResponse(
                        market=market.name,
                        sequence=change.sequence,
                        snapshot=False,
                        bids=level_messages(change.bids, market),
                        asks=level_messages(change.asks, market),
                    )

    async def StreamMarketTrades(
        self, request: exchange_pb2.StreamMarketTradesRequest, context: Context
    ) -> AsyncIterator[exchange_pb2.StreamMarketTradesResponse]:
        """Stream a market's public trades as they happen."""
        market = self._market(request.market)
        with self._engine.trade_stream(market.name) as subscription:
            while True:
                batch = await subscription.next_batch()
                if subscription.overflowed:
                    raise _overflowed()
                yield exchange_pb2.StreamMarketTradesResponse(
                    market=market.name, trades=[_trade_message(t, market) for t in batch]
                )
