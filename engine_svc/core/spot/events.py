"""Immutable past-tense spot events, each with the producing command's `seq` and `ts`.

Own-account events (orders, fills, wallet moves) carry the account id for `StreamEvents`;
`SpotTradeExecuted` feeds the public tape and `SpotBookChanged` the depth stream.
"""

from __future__ import annotations

from typing import NamedTuple

from ..enums import Side
from .views import BookLevel, SpotFillView, SpotOrderView


class SpotOrderPlaced(NamedTuple):
    """An order was accepted (before it matched anything)."""

    seq: int
    ts: int
    account_id: str
    order: SpotOrderView


class SpotOrderUpdated(NamedTuple):
    """An order was partially filled or expired; `order` is its state after the command."""

    seq: int
    ts: int
    account_id: str
    order: SpotOrderView


class SpotOrderFilled(NamedTuple):
    """An order was filled completely."""

    seq: int
    ts: int
    account_id: str
    order: SpotOrderView


class SpotOrderCancelled(NamedTuple):
    """An order was cancelled by its owner or, `self_trade`, by self-trade prevention."""

    seq: int
    ts: int
    account_id: str
    order: SpotOrderView
    self_trade: bool


class SpotFillExecuted(NamedTuple):
    """One of the account's orders traded."""

    seq: int
    ts: int
    account_id: str
    fill: SpotFillView


class SpotTradeExecuted(NamedTuple):
    """A public trade on the tape: the maker's price, the quantity and the taker's side."""

    seq: int
    ts: int
    market: str
    trade_id: str
    price: int
    quantity: int
    taker_side: Side


class SpotBookChanged(NamedTuple):
    """The book's levels changed: new aggregate quantities (0 = removed), best first.

    `sequence` rises by exactly one per event of a market.
    """

    seq: int
    ts: int
    market: str
    sequence: int
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]


class WalletChanged(NamedTuple):
    """A transfer moved signed `amount` of `asset` into the wallet; `available` is after it."""

    seq: int
    ts: int
    account_id: str
    asset: str
    amount: int
    available: int


SpotEvent = (
    SpotOrderPlaced
    | SpotOrderUpdated
    | SpotOrderFilled
    | SpotOrderCancelled
    | SpotFillExecuted
    | SpotTradeExecuted
    | SpotBookChanged
    | WalletChanged
)
