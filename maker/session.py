"""One round of quoting over the public ExchangeService, and putting the book right after a break.

A round places the new quotes first and then cancels the previous round's orders, so the book is
never empty in between. Every order carries a clientOrderId naming its round, side and level: a
round retried after a failure (the engine restarting, a lost reply) places nothing twice. After
a reconnection, `reconcile` reads the maker's open orders with ListSpotOrders and cancels those
that no longer belong to the current round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from decimal import Decimal

import grpc

from cfd.v1 import common_pb2, exchange_pb2, exchange_pb2_grpc
from maker.quotes import MarketSteps, Quote, QuoteConfig, quotes

log = logging.getLogger("maker.session")

# Failures that mean "the engine is away for now": retry with backoff.
RETRYABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
)
BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 5.0


def _text(value: Decimal) -> str:
    return format(value, "f")


class MakerSession:
    """The maker's orders on every market, as one account."""

    def __init__(
        self,
        stub: exchange_pb2_grpc.ExchangeServiceAsyncStub,
        token: str,
        config: QuoteConfig,
        timeout_s: float = 5.0,
    ) -> None:
        self._stub = stub
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._config = config
        self._timeout_s = timeout_s
        self._generation: dict[str, int] = {}
        # Each market's round: its number and the quotes it wants resting.
        self._current: dict[str, list[Quote]] = {}

    def generation(self, market: str) -> int:
        """Return the number of the latest round on `market` (0 before the first)."""
        return self._generation.get(market, 0)

    async def quote(self, market: MarketSteps, mid: Decimal) -> None:
        """Start a new round on `market` around `mid` and carry it out."""
        self._generation[market.name] = self.generation(market.name) + 1
        self._current[market.name] = quotes(mid, market, self._config)
        await self.reconcile(market.name)

    async def reconcile(self, market: str) -> None:
        """Make the resting orders of `market` exactly the current round's; safe to repeat."""
        wanted = self._current.get(market, [])
        generation = self.generation(market)
        keys = {q.client_order_id(generation) for q in wanted}
        for quote in wanted:
            await self._place(quote, generation)
        listed = await self._stub.ListSpotOrders(
            exchange_pb2.ListSpotOrdersRequest(market=market),
            metadata=self._metadata,
            timeout=self._timeout_s,
        )
        for order in listed.orders:
            if order.client_order_id not in keys:
                await self._cancel(order.id)

    async def _place(self, quote: Quote, generation: int) -> None:
        request = exchange_pb2.PlaceSpotOrderRequest(
            market=quote.market,
            side=common_pb2.SIDE_BUY if quote.buy else common_pb2.SIDE_SELL,
            type=exchange_pb2.SPOT_ORDER_TYPE_LIMIT,
            price=_text(quote.price),
            quantity=_text(quote.quantity),
            time_in_force=exchange_pb2.TIME_IN_FORCE_GTC,
            post_only=True,
            client_order_id=quote.client_order_id(generation),
        )
        try:
            await self._stub.PlaceSpotOrder(
                request, metadata=self._metadata, timeout=self._timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in RETRYABLE:
                raise
            # A quote the book refuses (it would take, or funds ran short) is skipped this round.
            log.info("quote %s refused: %s", request.client_order_id, exc.details())

    async def _cancel(self, order_id: str) -> None:
        try:
            await self._stub.CancelSpotOrder(
                exchange_pb2.CancelSpotOrderRequest(order_id=order_id),
                metadata=self._metadata,
                timeout=self._timeout_s,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise  # NOT_FOUND: it filled or was cancelled meanwhile, as wanted


async def with_backoff(session: MakerSession, markets: Sequence[str], stop: asyncio.Event) -> None:
    """Reconcile every market until all succeed, waiting longer after each failure."""
    backoff = BACKOFF_START_S
    while not stop.is_set():
        try:
            for market in markets:
                await session.reconcile(market)
            return
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in RETRYABLE:
                raise
            log.info("the exchange is unavailable (%s); retrying", exc.code().name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), backoff)
        backoff = min(backoff * 2, BACKOFF_MAX_S)
