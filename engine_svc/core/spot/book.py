"""Order book structure: FIFO price levels of intrusive doubly linked orders.

Each side keeps its levels in a dict by price and the level keys in an ascending list whose
last entry is the best (the price for bids, the negated price for asks), so the best level
is O(1), removing it is a list pop, and adding or removing another level is a bisection.
An order knows its neighbours and its level, so cancelling by id is O(1) within the level.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import Final

from ..enums import Side
from .enums import SpotOrderStatus, SpotOrderType, TimeInForce

ORDER_ID_PREFIX: Final = "s-"


class SpotOrder:
    """A spot order; while open it is also a node of its price level's queue.

    `locked` is what it holds in the owner's wallet: for a buy limit the USD for the
    remaining quantity at its price plus the taker fee on that, for a sell the remaining lots.
    `order_id` is its public id (``s-<key>``), formatted once.
    """

    __slots__ = (
        "account_id",
        "client_order_id",
        "create_ts",
        "fee",
        "filled",
        "filled_quote",
        "is_buy",
        "is_limit",
        "key",
        "level",
        "locked",
        "market",
        "next",
        "order_id",
        "post_only",
        "prev",
        "price",
        "quantity",
        "quote_quantity",
        "remaining",
        "status",
        "tif",
        "update_ts",
    )

    def __init__(
        self,
        key: int,
        account_id: str,
        market: str,
        is_buy: bool,
        is_limit: bool,
        price: int,
        quantity: int,
        quote_quantity: int,
        tif: TimeInForce,
        post_only: bool,
        ts: int,
        client_order_id: str | None,
    ) -> None:
        self.key = key
        self.order_id = f"{ORDER_ID_PREFIX}{key}"
        self.account_id = account_id
        self.market = market
        self.is_buy = is_buy
        self.is_limit = is_limit
        self.price = price
        self.quantity = quantity
        self.quote_quantity = quote_quantity
        self.remaining = quantity
        self.filled = 0
        self.filled_quote = 0
        self.fee = 0
        self.locked = 0
        self.tif = tif
        self.post_only = post_only
        self.status = SpotOrderStatus.OPEN
        self.create_ts = ts
        self.update_ts = ts
        self.client_order_id = client_order_id
        self.prev: SpotOrder | None = None
        self.next: SpotOrder | None = None
        self.level: Level | None = None

    @property
    def side(self) -> Side:
        """Return the order's side."""
        return Side.BUY if self.is_buy else Side.SELL

    @property
    def order_type(self) -> SpotOrderType:
        """Return the order's type."""
        return SpotOrderType.LIMIT if self.is_limit else SpotOrderType.MARKET


class Level:
    """The FIFO queue of open orders at one price, with their total remaining quantity."""

    __slots__ = ("count", "head", "price", "tail", "total")

    def __init__(self, price: int) -> None:
        self.price = price
        self.head: SpotOrder | None = None
        self.tail: SpotOrder | None = None
        self.total = 0
        self.count = 0


class BookSide:
    """The bids or the asks of one market."""

    __slots__ = ("is_bid", "keys", "levels")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.levels: dict[int, Level] = {}
        # Ascending level keys; the last one is the best level.
        self.keys: list[int] = []

    def best(self) -> Level | None:
        """Return the best level, or None when the side is empty."""
        keys = self.keys
        if not keys:
            return None
        return self.levels[keys[-1] if self.is_bid else -keys[-1]]

    def append(self, order: SpotOrder) -> Level:
        """Queue an order at the back of its price level, creating the level if needed."""
        price = order.price
        level = self.levels.get(price)
        if level is None:
            level = Level(price)
            self.levels[price] = level
            key = price if self.is_bid else -price
            keys = self.keys
            if not keys or key > keys[-1]:
                keys.append(key)
            else:
                insort(keys, key)
        tail = level.tail
        order.prev = tail
        order.next = None
        if tail is None:
            level.head = order
        else:
            tail.next = order
        level.tail = order
        level.total += order.remaining
        level.count += 1
        order.level = level
        return level

    def unlink(self, order: SpotOrder) -> Level:
        """Take an order out of its level (dropping the level when it empties); return it."""
        level = order.level
        assert level is not None
        before = order.prev
        after = order.next
        if before is None:
            level.head = after
        else:
            before.next = after
        if after is None:
            level.tail = before
        else:
            after.prev = before
        order.prev = None
        order.next = None
        order.level = None
        level.total -= order.remaining
        level.count -= 1
        if level.count == 0:
            self.drop(level)
        return level

    def drop(self, level: Level) -> None:
        """Remove an empty level."""
        price = level.price
        del self.levels[price]
        key = price if self.is_bid else -price
        keys = self.keys
        if keys[-1] == key:
            keys.pop()
        else:
            del keys[bisect_left(keys, key)]

    def depth(self, limit: int) -> list[tuple[int, int]]:
        """Return up to `limit` levels as (price, total quantity), best first."""
        keys = self.keys
        levels = self.levels
        chosen = keys[-limit:] if limit < len(keys) else keys
        result: list[tuple[int, int]] = []
        for key in reversed(chosen):
            level = levels[key if self.is_bid else -key]
            result.append((level.price, level.total))
        return result


class Book:
    """Both sides of one market and its depth `sequence` (one step per change)."""

    __slots__ = ("asks", "bids", "market", "sequence")

    def __init__(self, market: str) -> None:
        self.market = market
        self.bids = BookSide(True)
        self.asks = BookSide(False)
        self.sequence = 0
