"""Immutable spot commands; each carries the `seq` and `ts` the sequencer assigned.

Prices are tick counts and quantities lot counts of the market; USD amounts are micro-USD;
a base asset amount is a count of its market's lots.
"""

from __future__ import annotations

from typing import NamedTuple

from ..enums import Side
from .enums import SpotOrderType, TimeInForce


class PlaceSpotOrder(NamedTuple):
    """Place a limit (`price`) or market order sized by `quantity` or, market buys only,
    by `quote_quantity` (the most USD to spend on price x quantity, fees on top)."""

    seq: int
    ts: int
    account_id: str
    market: str
    side: Side
    order_type: SpotOrderType
    price: int | None = None
    quantity: int | None = None
    quote_quantity: int | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    client_order_id: str | None = None


class CancelSpotOrder(NamedTuple):
    """Cancel an own open spot order and release what it locked."""

    seq: int
    ts: int
    account_id: str
    order_id: str
    client_order_id: str | None = None


class CreditWallet(NamedTuple):
    """Add `amount` of `asset` to a spot wallet's available balance (a transfer in)."""

    seq: int
    ts: int
    account_id: str
    asset: str
    amount: int
    client_order_id: str | None = None


class DebitWallet(NamedTuple):
    """Take `amount` of `asset` from a spot wallet's available balance (a transfer out)."""

    seq: int
    ts: int
    account_id: str
    asset: str
    amount: int
    client_order_id: str | None = None


SpotCommand = PlaceSpotOrder | CancelSpotOrder | CreditWallet | DebitWallet
