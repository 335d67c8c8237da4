"""Immutable spot read models: orders, fills, balances, book depth and placement results.

Figures use the market's scales (ticks, lots) and micro-USD; times are epoch nanoseconds.
"""

from __future__ import annotations

from typing import NamedTuple

from ..enums import Side
from ..reasons import Reason
from .enums import Liquidity, SpotOrderStatus, SpotOrderType, TimeInForce


class SpotOrderView(NamedTuple):
    """A spot order as its owner sees it.

    `price` is None for a market order; exactly one of `quantity` and `quote_quantity` is set.
    `filled_quote` is the micro-USD sum of price x quantity over its fills, so the average
    price is ``filled_quote / filled_quantity`` (in micro-USD per lot). `remaining` is what
    is still open (0 once the order left the book) and `locked` what it holds in the wallet.
    """

    id: str
    account_id: str
    market: str
    side: Side
    order_type: SpotOrderType
    price: int | None
    quantity: int | None
    quote_quantity: int | None
    filled_quantity: int
    filled_quote: int
    fee: int
    remaining: int
    locked: int
    time_in_force: TimeInForce
    post_only: bool
    status: SpotOrderStatus
    reject_reason: Reason | None
    create_seq: int
    create_time: int
    update_time: int
    client_order_id: str | None


class SpotFillView(NamedTuple):
    """One side of one trade: `quote` is price x quantity and `fee` what this side paid."""

    id: str
    trade_id: str
    order_id: str
    account_id: str
    market: str
    side: Side
    price: int
    quantity: int
    quote: int
    fee: int
    liquidity: Liquidity
    seq: int
    time: int


class SpotPlacement(NamedTuple):
    """The result of placing an order: the order after matching and its own fills."""

    order: SpotOrderView
    fills: tuple[SpotFillView, ...]


class BalanceView(NamedTuple):
    """One asset of a spot wallet (USD in micro-USD, a base asset in its market's lots)."""

    asset: str
    available: int
    locked: int


class BookLevel(NamedTuple):
    """An aggregated price level: the total open quantity at `price`; 0 means removed."""

    price: int
    quantity: int


class BookView(NamedTuple):
    """Aggregated depth of one market, best levels first, at book `sequence`."""

    market: str
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]
    sequence: int
