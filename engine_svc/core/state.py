"""Mutable state records owned by `Core`: accounts, open positions, pending orders.

Inside these records an absent take profit, stop loss, trailing distance, expire time or
order reference is 0 (every real value is positive); the views turn 0 into None.
"""

from __future__ import annotations

from .enums import OrderStatus, check_order_transition
from .spot.views import BalanceView, SpotOrderView, SpotPlacement
from .views import AccountSummary, ClosedPosition, OrderView, PositionView

StoredPayload = (
    PositionView
    | ClosedPosition
    | OrderView
    | AccountSummary
    | SpotPlacement
    | SpotOrderView
    | BalanceView
)
STORED_PAYLOADS = (
    PositionView,
    ClosedPosition,
    OrderView,
    AccountSummary,
    SpotPlacement,
    SpotOrderView,
    BalanceView,
)

# The kind of a receipt restored from a version 1 snapshot whose payload, a position view
# that a position's open did not produce, cannot tell AddMargin from ModifyPosition.
LEGACY_POSITION_EDIT = "AddMargin or ModifyPosition"
_POSITION_EDITS = frozenset({"AddMargin", "ModifyPosition"})


class TrailLevel:
    """A group of positions on one symbol and side sharing the same best price since open.

    `best` is the highest bid (long side) or the negated lowest ask (short side). When a new
    quote passes a level, the level is merged into the level at the new price (`parent`).
    `heap` holds ``distance << 48 | position key`` entries of the trailing positions.
    """

    __slots__ = ("best", "gkey", "heap", "ident", "members", "parent")

    def __init__(self, best: int, ident: int) -> None:
        self.best = best
        self.ident = ident
        self.parent: TrailLevel | None = None
        self.heap: list[int] = []
        # Stop value of this level's live entry in the book's level heap; None when absent.
        self.gkey: int | None = None
        # Open positions in this level and in every level merged into it.
        self.members = 0

    def root(self) -> TrailLevel:
        """Return the level this one was merged into, compressing the path on the way."""
        top = self
        while top.parent is not None:
            top = top.parent
        node = self
        while node.parent is not None and node.parent is not top:
            following = node.parent
            node.parent = top
            node = following
        return top


class Position:
    """An open position. Prices in ticks, quantity in lots, money in micro-dollars.

    `swap` (signed) and `commission` are what its rollovers and its open charged, less the
    shares its partial closes took (`views.PositionView`).
    """

    __slots__ = (
        "account_id",
        "client_order_id",
        "commission",
        "entry",
        "is_buy",
        "key",
        "level",
        "leverage",
        "liq",
        "maintenance",
        "margin",
        "open_seq",
        "open_ts",
        "order_key",
        "quantity",
        "sl",
        "swap",
        "symbol",
        "tp",
        "trail",
    )

    def __init__(
        self,
        key: int,
        account_id: str,
        symbol: str,
        is_buy: bool,
        quantity: int,
        leverage: int,
        entry: int,
        margin: int,
        open_seq: int,
        open_ts: int,
        client_order_id: str | None,
        order_key: int,
        level: TrailLevel,
    ) -> None:
        self.key = key
        self.account_id = account_id
        self.symbol = symbol
        self.is_buy = is_buy
        self.quantity = quantity
        self.leverage = leverage
        self.entry = entry
        self.margin = margin
        self.maintenance = 0
        self.liq = 0
        self.tp = 0
        self.sl = 0
        self.trail = 0
        self.open_seq = open_seq
        self.open_ts = open_ts
        self.client_order_id = client_order_id
        self.order_key = order_key
        self.level = level
        self.swap = 0
        self.commission = 0

    def best_price(self) -> int:
        """Return the highest bid (buy) or lowest ask (sell) seen since the position opened."""
        best = self.level.root().best
        return best if self.is_buy else -best

    def trailing_stop(self) -> int:
        """Return the current trailing stop price, or 0 without a trailing distance."""
        if self.trail == 0:
            return 0
        return self.best_price() - self.trail if self.is_buy else self.best_price() + self.trail


class Order:
    """A pending limit or stop order. Exactly one of quantity (lots) and margin is nonzero."""

    __slots__ = (
        "account_id",
        "client_order_id",
        "create_ts",
        "expire",
        "is_buy",
        "is_limit",
        "key",
        "leverage",
        "margin",
        "quantity",
        "sl",
        "status",
        "symbol",
        "tp",
        "trail",
        "trigger",
    )

    def __init__(
        self,
        key: int,
        account_id: str,
        symbol: str,
        is_buy: bool,
        is_limit: bool,
        trigger: int,
        leverage: int,
        quantity: int,
        margin: int,
        tp: int,
        sl: int,
        trail: int,
        expire: int,
        create_ts: int,
        client_order_id: str | None,
    ) -> None:
        self.key = key
        self.account_id = account_id
        self.symbol = symbol
        self.is_buy = is_buy
        self.is_limit = is_limit
        self.trigger = trigger
        self.leverage = leverage
        self.quantity = quantity
        self.margin = margin
        self.tp = tp
        self.sl = sl
        self.trail = trail
        self.expire = expire
        self.create_ts = create_ts
        self.client_order_id = client_order_id
        self.status = OrderStatus.PENDING

    def move_to(self, status: OrderStatus) -> None:
        """Change the status as `enums.ORDER_TRANSITIONS` allows, or raise."""
        self.status = check_order_transition(self.status, status)


class Receipt:
    """The first accepted request of a client_order_id: its kind, its target and its payload.

    `kind` is the command's type name and `target` the position or order id the command acted
    on ("" for a command that creates its object); a key repeats only with both equal.
    """

    __slots__ = ("kind", "payload", "target")

    def __init__(self, kind: str, target: str, payload: StoredPayload) -> None:
        self.kind = kind
        self.target = target
        self.payload = payload

    def matches(self, kind: str, target: str) -> bool:
        """Return True when a request of `kind` on `target` repeats this one."""
        if target != self.target:
            return False
        return kind == self.kind or (self.kind == LEGACY_POSITION_EDIT and kind in _POSITION_EDITS)


class Account:
    """A user's trading account: balance, used margin, own positions and orders.

    `receipts` maps each accepted client_order_id to its first request (idempotency).
    An isolated account's `balance` is its free cash (margins are debited from it); a cross
    account's `balance` is its whole cash and `used_margin` only a reservation out of its
    equity. A cross account also has its margin call and stop-out levels (whole percent),
    `margin_call` (True from a margin call until the level recovers), its `number` (the seq
    that created it: its key in the stop-out index) and `watch`, the stop-out index prices it
    has in each symbol's book by heap number (0 for none; derived state, never encoded).
    A `netting` account holds at most one position per symbol (`netting`).
    """

    __slots__ = (
        "account_id",
        "balance",
        "cross",
        "margin_call",
        "margin_call_level",
        "netting",
        "number",
        "orders",
        "positions",
        "receipts",
        "stop_out_level",
        "used_margin",
        "watch",
    )

    def __init__(self, account_id: str, balance: int) -> None:
        self.account_id = account_id
        self.balance = balance
        self.used_margin = 0
        self.positions: dict[int, Position] = {}
        self.orders: dict[int, Order] = {}
        self.receipts: dict[str, Receipt] = {}
        self.cross = False
        self.margin_call_level = 0
        self.stop_out_level = 0
        self.margin_call = False
        self.number = 0
        self.netting = False
        self.watch: dict[str, list[int]] = {}

    def funds(self) -> int:
        """Return the money the account holds: balance, plus used margin when isolated."""
        return self.balance if self.cross else self.balance + self.used_margin
