"""The maker's second account, which takes a little from the books now and then.

On a demo mesh nobody else trades, so the tape, the spot candles and the tickers would stand
still. Every CFD_MAKER_TRADE_MS (0: never) this account sends one market order of a quarter
level (at least one lot) to one market after another, buying and selling in turn, so its
inventory stays about level. It is an account of its own because an account never trades with
its own resting orders. Its wallet is topped up like the maker's.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from decimal import ROUND_FLOOR, Decimal

import grpc

from cfd.v1 import common_pb2, exchange_pb2, exchange_pb2_grpc
from maker.account import Login
from maker.funding import Funder
from maker.quotes import Quote
from mesh.errors import reason_of

log = logging.getLogger("maker.tape")

# Price headroom of the funds a market buy needs over the mid: it takes the asks above it.
_BUY_HEADROOM = Decimal("1.05")


def taker_email(email: str) -> str:
    """Return the second account's email: the maker's with ``+taker`` in its local part."""
    local, _, domain = email.rpartition("@")
    return f"{local}+taker@{domain}"


def trade_quantity(level: Decimal, lot_step: Decimal) -> Decimal:
    """Return a quarter of a level's quantity, floored to the lot, at least one lot."""
    quarter = ((level / 4) / lot_step).to_integral_value(ROUND_FLOOR) * lot_step
    return max(quarter, lot_step).quantize(lot_step)


class Taker:
    """Sends the small market orders that keep the tape moving."""

    def __init__(self, login: Login, funder: Funder, run: str, timeout_s: float = 5.0) -> None:
        self.login = login
        self.funder = funder
        self._run = run
        self._timeout_s = timeout_s
        self._turns = itertools.count()
        self._orders = itertools.count(1)
        # Set until its wallet was topped up (first) and when a trade lacked the funds.
        self.short_of_funds = True

    def next_order(
        self, mids: Mapping[str, Decimal], levels: Mapping[str, Sequence[Quote]]
    ) -> tuple[str, bool] | None:
        """Return the market and the side (True: buy) of the next trade, if any is quoted."""
        quoted = sorted(name for name in mids if levels.get(name))
        if not quoted:
            return None
        turn = next(self._turns)
        return quoted[turn % len(quoted)], (turn // len(quoted)) % 2 == 0

    @staticmethod
    def needs(mid: Decimal, quantity: Decimal, market: str) -> list[Quote]:
        """Return the quotes whose funds one trade each way needs (for `maker.funding`)."""
        return [
            Quote(market, True, 1, mid * _BUY_HEADROOM, quantity),
            Quote(market, False, 1, mid, quantity),
        ]

    async def trade(
        self,
        stub: exchange_pb2_grpc.ExchangeServiceAsyncStub,
        market: str,
        buy: bool,
        quantity: Decimal,
    ) -> bool:
        """Send one market order; return whether it traded."""
        request = exchange_pb2.PlaceSpotOrderRequest(
            market=market,
            side=common_pb2.SIDE_BUY if buy else common_pb2.SIDE_SELL,
            type=exchange_pb2.SPOT_ORDER_TYPE_MARKET,
            quantity=format(quantity, "f"),
            client_order_id=f"mt-{self._run}-{next(self._orders)}",
        )
        try:
            reply = await stub.PlaceSpotOrder(
                request, metadata=self.login.metadata(), timeout=self._timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            reason = reason_of(exc)
            if reason not in ("INSUFFICIENT_BALANCE", "NO_LIQUIDITY"):
                raise
            self.short_of_funds = reason == "INSUFFICIENT_BALANCE"
            log.info("no trade on %s: %s", market, reason)
            return False
        return bool(reply.fills)
