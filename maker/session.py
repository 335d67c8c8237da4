"""The maker's rounds of quoting over the public ExchangeService.

A round reads the maker's open orders of a market with ListSpotOrders and carries out the plan
that turns them into the wanted quotes (`maker.plan`). Because every round starts from what
the exchange holds, a round repeated after a failure (the engine restarting, a lost reply)
places nothing twice and removes what a half-done round left behind. Every placed order also
carries a clientOrderId of its own naming the process, its number, side and level, so a retried
call is idempotent too (a level put back after a fill is a new order with a new key).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import grpc

from cfd.v1 import common_pb2, exchange_pb2, exchange_pb2_grpc
from maker.plan import Plan, Resting, plan
from maker.quotes import MarketSteps, Quote, QuoteConfig, quotes
from mesh.errors import reason_of

log = logging.getLogger("maker.session")

# Failures that mean "the engine is away for now": retry with backoff.
RETRYABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
)
Metadata = Callable[[], Sequence[tuple[str, str]]]


def _text(value: Decimal) -> str:
    return format(value, "f")


@dataclass
class MarketState:
    """The maker's round on one market: its number, the quotes it wants resting, the number of
    orders placed so far."""

    steps: MarketSteps
    mid: Decimal | None = None
    round: int = 0
    wanted: list[Quote] = field(default_factory=list)
    placed: int = 0


class MakerSession:
    """The maker's orders on every market, as one account."""

    def __init__(
        self,
        stub: exchange_pb2_grpc.ExchangeServiceAsyncStub,
        metadata: Metadata,
        config: QuoteConfig,
        run: str,
        markets: dict[str, MarketState] | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        self._stub = stub
        self._metadata = metadata
        self._config = config
        self._run = run
        self._timeout_s = timeout_s
        # Shared with the sessions of later connections: the rounds outlive a connection.
        self.markets: dict[str, MarketState] = {} if markets is None else markets
        # Set when the exchange refused a quote for want of funds: time to top up.
        self.short_of_funds = False

    def add_market(self, steps: MarketSteps) -> None:
        """Quote `steps.name` from now on (a market added again keeps its round)."""
        state = self.markets.get(steps.name)
        if state is None:
            self.markets[steps.name] = MarketState(steps)
        else:
            state.steps = steps

    def mid(self, market: str) -> Decimal | None:
        """Return the mid the current quotes of `market` were built around."""
        return self.markets[market].mid

    def want(self, market: str, mid: Decimal) -> None:
        """Start a new round on `market`: the quotes around `mid` (carried out by `sync`)."""
        state = self.markets[market]
        state.mid = mid
        state.round += 1
        try:
            state.wanted = quotes(mid, state.steps, self._config)
        except ValueError as exc:
            log.warning("%s is not quoted: %s", market, exc)
            state.wanted = []

    def withdraw(self, market: str) -> None:
        """Start a round on `market` that wants no order at all."""
        state = self.markets[market]
        state.round += 1
        state.wanted = []

    async def quote(self, market: str, mid: Decimal) -> Plan:
        """Start a new round on `market` around `mid` and carry it out."""
        self.want(market, mid)
        return await self.sync(market)

    async def sync(self, market: str) -> Plan:
        """Make the resting orders of `market` exactly the current round's; safe to repeat."""
        state = self.markets[market]
        listed = await self._stub.ListSpotOrders(
            exchange_pb2.ListSpotOrdersRequest(market=market),
            metadata=self._metadata(),
            timeout=self._timeout_s,
        )
        resting = [
            Resting(
                order.id,
                order.side == common_pb2.SIDE_BUY,
                Decimal(order.price),
                Decimal(order.quantity) - Decimal(order.filled_quantity or "0"),
            )
            for order in listed.orders
        ]
        steps = plan(state.wanted, resting)
        for order_id in steps.cancel_first:
            await self._cancel(order_id)
        for quote in steps.place:
            state.placed += 1
            await self._place(quote, f"{self._run}-{state.placed}")
        for order_id in steps.cancel_after:
            await self._cancel(order_id)
        return steps

    async def _place(self, quote: Quote, key: str) -> None:
        request = exchange_pb2.PlaceSpotOrderRequest(
            market=quote.market,
            side=common_pb2.SIDE_BUY if quote.buy else common_pb2.SIDE_SELL,
            type=exchange_pb2.SPOT_ORDER_TYPE_LIMIT,
            price=_text(quote.price),
            quantity=_text(quote.quantity),
            time_in_force=exchange_pb2.TIME_IN_FORCE_GTC,
            post_only=True,
            client_order_id=quote.client_order_id(key),
        )
        try:
            await self._stub.PlaceSpotOrder(
                request, metadata=self._metadata(), timeout=self._timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in RETRYABLE or exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise
            # A quote the book refuses (another user's order in the way, funds short) is
            # skipped this round; the next refresh tries again.
            reason = reason_of(exc)
            if reason == "INSUFFICIENT_BALANCE":
                self.short_of_funds = True
            log.info("quote %s refused: %s", request.client_order_id, reason or exc.details())

    async def _cancel(self, order_id: str) -> None:
        try:
            await self._stub.CancelSpotOrder(
                exchange_pb2.CancelSpotOrderRequest(order_id=order_id),
                metadata=self._metadata(),
                timeout=self._timeout_s,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise  # NOT_FOUND: it filled or was cancelled meanwhile, as wanted
