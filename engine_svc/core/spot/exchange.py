"""The spot exchange: `SpotExchange.apply(command) -> SpotResult` plus read queries.

See the package docstring for the matching rules and the choices made where API.md leaves room.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ..enums import Side
from ..instruments import default_instruments
from ..reasons import Reason
from ..units import MAX_MONEY_MICROS, MAX_PRICE_TICKS, MAX_QUANTITY_LOTS
from .book import ORDER_ID_PREFIX, Book, BookSide, Level, SpotOrder
from .commands import CancelSpotOrder, CreditWallet, DebitWallet, PlaceSpotOrder, SpotCommand
from .enums import (
    SPOT_TRANSITIONS,
    Liquidity,
    SpotOrderStatus,
    SpotOrderType,
    TimeInForce,
    check_spot_transition,
)
from .events import (
    SpotBookChanged,
    SpotEvent,
    SpotFillExecuted,
    SpotOrderCancelled,
    SpotOrderFilled,
    SpotOrderPlaced,
    SpotOrderUpdated,
    SpotTradeExecuted,
    WalletChanged,
)
from .markets import BPS_PER_UNIT, QUOTE_ASSET, FeeSchedule, Market, markets_from_instruments
from .results import SpotPayload, SpotResult
from .views import BalanceView, BookLevel, BookView, SpotFillView, SpotOrderView, SpotPlacement

MAX_CLIENT_ORDER_ID: Final = 64
MAX_ACCOUNT_ID: Final = 128
MAX_TIME_NS: Final = (1 << 63) - 1
MAX_SEQ: Final = 1 << 48
# No wallet balance may grow beyond this, so every product stays far from any limit.
MAX_BALANCE: Final = MAX_MONEY_MICROS * 1000
TRADE_ID_PREFIX: Final = "t-"

# Idempotency kinds: a client_order_id is bound to the kind and target of its first command.
KIND_PLACE: Final = "place"
KIND_CANCEL: Final = "cancel"
KIND_CREDIT: Final = "credit"
KIND_DEBIT: Final = "debit"

_new: Final = tuple.__new__
_TRANSFERS: Final = (CreditWallet, DebitWallet)

# The command, event and view types as Final names: compiled, the core reads them as native
# statics rather than looking them up in the module's dictionary on every use.
_PLACE_TYPE: Final = PlaceSpotOrder
_CANCEL_TYPE: Final = CancelSpotOrder
_ORDER_VIEW_TYPE: Final = SpotOrderView
_FILL_VIEW_TYPE: Final = SpotFillView
_PLACEMENT_TYPE: Final = SpotPlacement
_LEVEL_TYPE: Final = BookLevel
_RESULT_TYPE: Final = SpotResult
_PLACED_TYPE: Final = SpotOrderPlaced
_UPDATED_TYPE: Final = SpotOrderUpdated
_FILLED_TYPE: Final = SpotOrderFilled
_CANCELLED_TYPE: Final = SpotOrderCancelled
_FILL_TYPE: Final = SpotFillExecuted
_TRADE_TYPE: Final = SpotTradeExecuted
_BOOK_TYPE: Final = SpotBookChanged

_BUY: Final = Side.BUY
_SELL: Final = Side.SELL
_LIMIT: Final = SpotOrderType.LIMIT
_MARKET: Final = SpotOrderType.MARKET
_GTC: Final = TimeInForce.GTC
_IOC: Final = TimeInForce.IOC
_FOK: Final = TimeInForce.FOK
_PARTIAL: Final = SpotOrderStatus.PARTIALLY_FILLED
_FILLED: Final = SpotOrderStatus.FILLED
_CANCELLED: Final = SpotOrderStatus.CANCELLED
_REJECTED: Final = SpotOrderStatus.REJECTED
_EXPIRED: Final = SpotOrderStatus.EXPIRED
_MAKER: Final = Liquidity.MAKER
_TAKER: Final = Liquidity.TAKER


class SpotSequenceError(ValueError):
    """A command's seq is not an integer above the last applied one (a caller bug)."""


class RejectionError(Exception):
    """Raised inside a command handler to reject it before anything changed."""

    def __init__(self, reason: Reason, message: str, payload: SpotPayload = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.payload = payload


def spot_order_id(key: int) -> str:
    """Return the public id of the spot order with internal key `key`."""
    return f"{ORDER_ID_PREFIX}{key}"


def parse_spot_order_id(text: str) -> int:
    """Return the key in an id like ``s-42``, or -1 if `text` is not one."""
    if not text.startswith(ORDER_ID_PREFIX) or len(text) > 24:
        return -1
    digits = text[len(ORDER_ID_PREFIX) :]
    if not digits.isdigit() or not digits.isascii() or (digits[0] == "0" and digits != "0"):
        return -1
    return int(digits)


def _type_error(name: str, expected: str, value: object) -> TypeError:
    return TypeError(f"{name} must be {expected}, not {type(value).__name__}")


def _check_count(value: object, name: str, high: int, low_reason: Reason) -> int:
    """Return a positive integer field; zero or less is `low_reason`, above `high` invalid."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(name, "int", value)
    if value <= 0:
        raise RejectionError(low_reason, f"{name} must be positive")
    if value > high:
        raise RejectionError(Reason.VALIDATION_FAILED, f"{name} must be at most {high}")
    return value


def _sources(target: SpotOrderStatus) -> frozenset[SpotOrderStatus]:
    """Return the statuses the transition table lets an order leave for `target`."""
    return frozenset(source for source, targets in SPOT_TRANSITIONS.items() if target in targets)


# The transition table read by target, for the checks on the matching path.
_INTO_FILLED: Final = _sources(_FILLED)
_INTO_PARTIAL: Final = _sources(_PARTIAL)
_INTO_CANCELLED: Final = _sources(_CANCELLED)


def _check_transition(order: SpotOrder, target: SpotOrderStatus) -> None:
    """Move an order to `target` if the transition table allows it, else raise."""
    if target not in SPOT_TRANSITIONS[order.status]:
        check_spot_transition(order.status, target)
    order.status = target


class SpotAccount:
    """A spot wallet (available and locked per asset), open orders and stored results.

    `results` maps each accepted client_order_id to (kind, target, first result).
    """

    __slots__ = ("account_id", "available", "locked", "orders", "results")

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self.available: dict[str, int] = {}
        self.locked: dict[str, int] = {}
        self.orders: dict[int, SpotOrder] = {}
        self.results: dict[str, tuple[str, str, SpotResult]] = {}


class SpotExchange:
    """Every spot order book and wallet, and the only code that changes them.

    Build it with the markets (one per API.md default instrument when omitted) and the fee
    schedule, feed it commands in sequence order through `apply`, read it through queries.
    """

    def __init__(
        self, markets: Mapping[str, Market] | None = None, fees: FeeSchedule | None = None
    ) -> None:
        chosen = markets_from_instruments(default_instruments()) if markets is None else markets
        bases: dict[str, str] = {}
        for name, market in chosen.items():
            if name != market.name:
                raise ValueError(f"market {market.name} registered as {name}")
            if market.base_asset in bases:
                raise ValueError(f"asset {market.base_asset} is the base of two markets")
            bases[market.base_asset] = name
        self.markets: dict[str, Market] = dict(sorted(chosen.items()))
        self._fees = FeeSchedule() if fees is None else fees
        self._taker_bps = self._fees.taker_bps
        self._maker_bps = self._fees.maker_bps
        # Every asset a wallet may hold, sorted; a base asset amount is in its market's lots.
        self.assets: tuple[str, ...] = tuple(sorted([QUOTE_ASSET, *bases]))
        self.books: dict[str, Book] = {name: Book(name) for name in self.markets}
        self.orders: dict[int, SpotOrder] = {}
        self.accounts: dict[str, SpotAccount] = {}
        self.house: dict[str, int] = dict.fromkeys(self.assets, 0)
        self.credited: dict[str, int] = dict.fromkeys(self.assets, 0)
        self.debited: dict[str, int] = dict.fromkeys(self.assets, 0)
        self.trades = 0
        self.last_seq = 0
        # False when the caller keeps the results of client_order_ids itself (the `Core`
        # does, one rule for every command); the exchange then stores none.
        self.keeps_results = True

    @property
    def fees(self) -> FeeSchedule:
        """Return the fee schedule (fixed for the exchange's life)."""
        return self._fees

    # ----------------------------------------------------------------- entry point

    def apply(self, command: SpotCommand) -> SpotResult:
        """Apply one command; return its result. A rejection changes nothing but `last_seq`.

        Raises `SpotSequenceError` when `command.seq` is not above the last applied seq and
        `TypeError` for a non-command or a field of the wrong type (caller bugs); values of
        the right type that are out of range or inconsistent are rejections.
        """
        kind = type(command)
        if kind is not _PLACE_TYPE and kind is not _CANCEL_TYPE and kind not in _TRANSFERS:
            raise TypeError(f"not a spot command: {kind.__name__}")
        seq = command.seq
        ts = command.ts
        if type(seq) is not int or type(ts) is not int:
            raise _type_error("seq and ts", "int", seq if type(seq) is not int else ts)
        if seq <= self.last_seq or seq >= MAX_SEQ:
            raise SpotSequenceError(f"seq {seq!r} must be above {self.last_seq} and below 2**48")
        self.last_seq = seq
        if ts < 0 or ts > MAX_TIME_NS:
            return SpotResult(Reason.VALIDATION_FAILED, "ts must be epoch nanoseconds", None, ())
        try:
            if isinstance(command, _PLACE_TYPE):
                return self._place(command)
            if isinstance(command, _CANCEL_TYPE):
                return self._cancel(command)
            kind_name = KIND_CREDIT if isinstance(command, CreditWallet) else KIND_DEBIT
            return self._transfer(command, kind_name)
        except RejectionError as rejection:
            return SpotResult(rejection.reason, rejection.message, rejection.payload, ())

    # ----------------------------------------------------------------- shared checks

    @staticmethod
    def _check_account_id(account_id: object) -> str:
        if not isinstance(account_id, str):
            raise _type_error("account_id", "str", account_id)
        if (
            not 0 < len(account_id) <= MAX_ACCOUNT_ID
            or not account_id.isprintable()
            or " " in account_id
        ):
            raise RejectionError(Reason.VALIDATION_FAILED, "account_id must be 1-128 visible chars")
        return account_id

    @staticmethod
    def _duplicate(
        account: SpotAccount | None, client_order_id: object, kind: str, target: str
    ) -> SpotResult | None:
        """Return the stored result of a repeated request, or None for a new one."""
        if client_order_id is None:
            return None
        if not isinstance(client_order_id, str):
            raise _type_error("client_order_id", "str or None", client_order_id)
        if not 0 < len(client_order_id) <= MAX_CLIENT_ORDER_ID:
            raise RejectionError(Reason.VALIDATION_FAILED, "client_order_id must be 1-64 chars")
        if account is None:
            return None
        stored = account.results.get(client_order_id)
        if stored is None:
            return None
        if stored[0] != kind or stored[1] != target:
            raise RejectionError(
                Reason.VALIDATION_FAILED,
                f"client_order_id {client_order_id!r} was used for another request",
            )
        return stored[2]

    def _open_account(self, account_id: str) -> SpotAccount:
        account = self.accounts.get(account_id)
        if account is None:
            account = SpotAccount(account_id)
            self.accounts[account_id] = account
        return account

    def _remember(
        self,
        account: SpotAccount,
        client_order_id: str | None,
        kind: str,
        target: str,
        payload: SpotPayload,
        events: list[SpotEvent],
    ) -> SpotResult:
        if client_order_id is not None and self.keeps_results:
            stored = SpotResult(None, "", payload, (), True)
            account.results[client_order_id] = (kind, target, stored)
        return _new(_RESULT_TYPE, (None, "", payload, tuple(events), False))

    def _check_asset(self, asset: object) -> str:
        if not isinstance(asset, str):
            raise _type_error("asset", "str", asset)
        if asset not in self.house:
            raise RejectionError(Reason.VALIDATION_FAILED, f"unknown asset {asset[:16]!r}")
        return asset

    def _asset_limit(self, asset: str) -> int:
        return MAX_MONEY_MICROS if asset == QUOTE_ASSET else MAX_QUANTITY_LOTS

    # ----------------------------------------------------------------- wallet transfers

    def _transfer(self, command: CreditWallet | DebitWallet, kind: str) -> SpotResult:
        """Credit or debit the available balance of one asset."""
        account_id = self._check_account_id(command.account_id)
        account = self.accounts.get(account_id)
        asset = self._check_asset(command.asset)
        duplicate = self._duplicate(account, command.client_order_id, kind, asset)
        if duplicate is not None:
            return duplicate
        amount = _check_count(
            command.amount, "amount", self._asset_limit(asset), Reason.VALIDATION_FAILED
        )
        available = 0 if account is None else account.available.get(asset, 0)
        locked = 0 if account is None else account.locked.get(asset, 0)
        if kind == KIND_DEBIT:
            if amount > available:
                raise RejectionError(
                    Reason.INSUFFICIENT_BALANCE,
                    f"{amount} {asset} exceeds the available {available}",
                )
            self.debited[asset] += amount
            amount = -amount
        else:
            if available + locked + amount > MAX_BALANCE:
                raise RejectionError(
                    Reason.VALIDATION_FAILED, "the wallet balance would be too large"
                )
            self.credited[asset] += amount
        if account is None:
            account = self._open_account(account_id)
        available += amount
        account.available[asset] = available
        event = WalletChanged(command.seq, command.ts, account_id, asset, amount, available)
        payload = BalanceView(asset, available, locked)
        return self._remember(account, command.client_order_id, kind, asset, payload, [event])

    # ----------------------------------------------------------------- placing orders

    def _market(self, name: object) -> Market:
        if not isinstance(name, str):
            raise _type_error("market", "str", name)
        market = self.markets.get(name)
        if market is None:
            raise RejectionError(Reason.UNKNOWN_MARKET, f"unknown market {name[:24]!r}")
        return market

    def buy_lock(self, price: int, quantity: int, market: Market) -> int:
        """Return what a buy limit locks: price x quantity plus the taker fee on it."""
        quote = price * quantity * market.quote_unit
        return quote - ((-quote * self._taker_bps) // BPS_PER_UNIT)

    def _place(self, command: PlaceSpotOrder) -> SpotResult:
        (
            seq, ts, account_id, market_name, side, order_type, price_value, quantity_value,
            quote_value, tif, post_only, client_order_id,
        ) = command  # fmt: skip
        # A known account's id was checked when it was opened.
        account = self.accounts.get(account_id) if type(account_id) is str else None
        if account is None:
            account_id = self._check_account_id(account_id)
        market = self.markets.get(market_name) if type(market_name) is str else None
        if market is None:
            market = self._market(market_name)
        if client_order_id is not None:
            duplicate = self._duplicate(account, client_order_id, KIND_PLACE, market.name)
            if duplicate is not None:
                return duplicate
        is_buy = side is _BUY
        if not is_buy and side is not _SELL:
            raise _type_error("side", "a Side", side)
        is_limit = order_type is _LIMIT
        if not is_limit and order_type is not _MARKET:
            raise _type_error("order_type", "a SpotOrderType", order_type)
        if tif is not _GTC and tif is not _IOC and tif is not _FOK:
            raise _type_error("time_in_force", "a TimeInForce", tif)
        if type(post_only) is not bool:
            raise _type_error("post_only", "bool", post_only)
        if (
            is_limit
            and type(price_value) is int
            and 0 < price_value <= MAX_PRICE_TICKS
            and type(quantity_value) is int
            and 0 < quantity_value <= MAX_QUANTITY_LOTS
            and quote_value is None
            and (tif is _GTC or not post_only)
        ):
            # The common well-formed limit order, which `_check_terms` would return as is.
            price, quantity, quote_quantity = price_value, quantity_value, 0
        else:
            price, quantity, quote_quantity = self._check_terms(command, is_buy, is_limit, tif)
        order = SpotOrder(
            seq,
            account_id,
            market.name,
            is_buy,
            is_limit,
            price,
            quantity,
            quote_quantity,
            tif,
            post_only,
            ts,
            client_order_id,
        )
        book = self.books[market.name]
        opposite = book.asks if is_buy else book.bids
        keys = opposite.keys
        best = opposite.levels[-keys[-1] if is_buy else keys[-1]] if keys else None
        if is_limit and is_buy:
            lock = self.buy_lock(price, quantity, market)
        elif not is_buy:
            lock = quantity
        else:
            lock = 0
        self._check_acceptance(order, account, market, best, lock)
        if account is None:
            account = self._open_account(account_id)
        if quote_quantity:
            # Sized by the budget: the quantity is whatever the budget buys.
            order.remaining = MAX_QUANTITY_LOTS
        if lock:
            asset = QUOTE_ASSET if is_buy else market.base_asset
            account.available[asset] -= lock
            locked = account.locked
            locked[asset] = locked.get(asset, 0) + lock
            order.locked = lock
        placed = self._view(order)
        events: list[SpotEvent] = [_new(_PLACED_TYPE, (seq, ts, account_id, placed))]
        # The order as the result shows it: as placed while it rests untouched, else the view
        # of its last own event (nothing changes it after that).
        final = placed
        fills: list[SpotFillView] = []
        # The touched opposite levels, best first, and this order's own level if it rests.
        taken: list[BookLevel] = []
        rested: tuple[BookLevel, ...] = ()
        last_price = 0
        crosses = best is not None and (
            not is_limit or (best.price <= price if is_buy else best.price >= price)
        )
        if crosses and (
            tif is not _FOK or self._fillable(opposite, order, account, market) >= quantity
        ):
            last_price = self._match(
                opposite, market, order, account, seq, ts, events, fills, taken
            )
        if quote_quantity:
            # Spent when what is left of the budget buys less than a lot at the last price.
            order.remaining = 0
            spare = quote_quantity - order.filled_quote
            spent = last_price != 0 and spare < last_price * market.quote_unit
            _check_transition(order, _FILLED if spent else _EXPIRED)
            final = self._view(order)
            event_type = SpotOrderFilled if spent else SpotOrderUpdated
            events.append(event_type(seq, ts, account_id, final))
        elif order.remaining == 0:
            _check_transition(order, _FILLED)
            final = self._view(order)
            events.append(_new(_FILLED_TYPE, (seq, ts, account_id, final)))
        elif is_limit and tif is _GTC:
            level = (book.bids if is_buy else book.asks).append(order)
            self.orders[order.key] = order
            account.orders[order.key] = order
            rested = (_new(_LEVEL_TYPE, (price, level.total)),)
            if order.filled:
                _check_transition(order, _PARTIAL)
                final = self._view(order)
                events.append(_new(_UPDATED_TYPE, (seq, ts, account_id, final)))
        else:
            order.remaining = 0
            self._release(order, account, market)
            _check_transition(order, _EXPIRED)
            final = self._view(order)
            events.append(_new(_UPDATED_TYPE, (seq, ts, account_id, final)))
        if taken or rested:
            opposite_levels = tuple(taken)
            bids = rested if is_buy else opposite_levels
            asks = opposite_levels if is_buy else rested
            events.append(self._book_event(book, seq, ts, bids, asks))
        payload = _new(_PLACEMENT_TYPE, (final, tuple(fills) if fills else ()))
        return self._remember(account, client_order_id, KIND_PLACE, market.name, payload, events)

    @staticmethod
    def _check_terms(
        command: PlaceSpotOrder, is_buy: bool, is_limit: bool, tif: TimeInForce
    ) -> tuple[int, int, int]:
        """Return (price, quantity, quote quantity) with 0 for an absent one."""
        price = 0
        if is_limit:
            value = command.price
            if value is None:
                raise RejectionError(Reason.INVALID_PRICE, "a limit order needs a price")
            if isinstance(value, bool) or not isinstance(value, int):
                raise _type_error("price", "int", value)
            if not 0 < value <= MAX_PRICE_TICKS:
                raise RejectionError(Reason.INVALID_PRICE, "price must be a positive tick multiple")
            price = value
            if command.post_only and tif is not _GTC:
                raise RejectionError(Reason.VALIDATION_FAILED, "post-only orders must be GTC")
        else:
            if command.price is not None:
                raise RejectionError(Reason.VALIDATION_FAILED, "a market order takes no price")
            if command.post_only:
                raise RejectionError(Reason.VALIDATION_FAILED, "a market order cannot be post-only")
        if (command.quantity is None) == (command.quote_quantity is None):
            raise RejectionError(
                Reason.VALIDATION_FAILED, "give exactly one of quantity and quote_quantity"
            )
        if command.quantity is not None:
            quantity = _check_count(
                command.quantity, "quantity", MAX_QUANTITY_LOTS, Reason.QUANTITY_TOO_SMALL
            )
            return price, quantity, 0
        if is_limit or not is_buy:
            raise RejectionError(
                Reason.VALIDATION_FAILED, "quote_quantity is only for market buy orders"
            )
        if tif is _FOK:
            raise RejectionError(Reason.VALIDATION_FAILED, "a fill-or-kill order needs a quantity")
        quote = _check_count(
            command.quote_quantity, "quote_quantity", MAX_MONEY_MICROS, Reason.QUANTITY_TOO_SMALL
        )
        return 0, 0, quote

    def _check_acceptance(
        self,
        order: SpotOrder,
        account: SpotAccount | None,
        market: Market,
        best: Level | None,
        lock: int,
    ) -> None:
        """Reject (with the order as REJECTED) what cannot be accepted; change nothing.

        `lock` is what the order would lock (for a buy limit, `buy_lock` of its terms).
        """
        is_buy = order.is_buy
        if not order.is_limit and best is None:
            self._reject(order, Reason.NO_LIQUIDITY, "the other side of the book is empty")
        if (
            order.post_only
            and best is not None
            and (best.price <= order.price if is_buy else best.price >= order.price)
        ):
            self._reject(order, Reason.POST_ONLY_WOULD_TAKE, "post-only order would take")
        wallet = {} if account is None else account.available
        if is_buy:
            available = wallet.get(QUOTE_ASSET, 0)
            if order.is_limit:
                needed = lock
            else:
                assert best is not None
                one_lot = best.price * market.quote_unit
                if order.quote_quantity and order.quote_quantity < one_lot:
                    self._reject(
                        order, Reason.QUANTITY_TOO_SMALL, "quote_quantity buys less than one lot"
                    )
                needed = one_lot - ((-one_lot * self._taker_bps) // BPS_PER_UNIT)
            if needed > available:
                self._reject(
                    order,
                    Reason.INSUFFICIENT_BALANCE,
                    f"needs {needed} micro-USD, {available} available",
                )
        elif order.quantity > wallet.get(market.base_asset, 0):
            self._reject(
                order,
                Reason.INSUFFICIENT_BALANCE,
                f"needs {order.quantity} lots of {market.base_asset}, "
                f"{wallet.get(market.base_asset, 0)} available",
            )

    def _reject(self, order: SpotOrder, reason: Reason, message: str) -> None:
        _check_transition(order, _REJECTED)
        order.remaining = 0
        raise RejectionError(reason, message, self._view(order, reason))

    def _fillable(
        self, opposite: BookSide, order: SpotOrder, account: SpotAccount, market: Market
    ) -> int:
        """Return how much of a fill-or-kill order would trade now (up to its quantity)."""
        is_buy = order.is_buy
        limit = order.price
        wanted = order.quantity
        budget = account.available.get(QUOTE_ASSET, 0)
        spend = is_buy and not order.is_limit
        taker_bps = self._taker_bps
        found = 0
        levels = opposite.levels
        keys = opposite.keys
        for index in range(len(keys) - 1, -1, -1):
            price = -keys[index] if is_buy else keys[index]
            if order.is_limit and (price > limit if is_buy else price < limit):
                break
            node = levels[price].head
            while node is not None:
                if node.account_id != order.account_id:
                    take = min(node.remaining, wanted - found)
                    if spend:
                        affordable = self._affordable(price, budget, market, taker_bps)
                        if affordable < take:
                            return found + affordable
                        quote = price * take * market.quote_unit
                        budget -= quote - ((-quote * taker_bps) // BPS_PER_UNIT)
                    found += take
                    if found >= wanted:
                        return found
                node = node.next
        return found

    @staticmethod
    def _affordable(price: int, budget: int, market: Market, bps: int) -> int:
        """Return the most lots whose price x quantity plus fee fits in `budget` micro-USD."""
        unit = price * market.quote_unit
        lots = budget * BPS_PER_UNIT // (unit * (BPS_PER_UNIT + bps))
        while lots > 0:
            quote = unit * lots
            if quote - ((-quote * bps) // BPS_PER_UNIT) <= budget:
                break
            lots -= 1
        while True:
            quote = unit * (lots + 1)
            if quote - ((-quote * bps) // BPS_PER_UNIT) > budget:
                return lots
            lots += 1

    def _match(
        self,
        side: BookSide,
        market: Market,
        taker: SpotOrder,
        account: SpotAccount,
        seq: int,
        ts: int,
        events: list[SpotEvent],
        fills: list[SpotFillView],
        taken: list[BookLevel],
    ) -> int:
        """Trade the taker against the best opposite levels while they cross its limit.

        Append each touched level's new total to `taken` (best first, each level once: a
        level is left either empty or with the taker done); return the last trade's price.
        """
        is_buy = taker.is_buy
        is_limit = taker.is_limit
        limit = taker.price
        taker_id = taker.account_id
        keys = side.keys
        levels = side.levels
        accounts = self.accounts
        orders = self.orders
        taker_bps = self._taker_bps
        spend = is_buy and not is_limit
        budget = taker.quote_quantity
        quote_unit = market.quote_unit
        last_price = 0
        while taker.remaining > 0 and keys:
            key = keys[-1]
            price = -key if is_buy else key
            if is_limit and (price > limit if is_buy else price < limit):
                break
            level = levels[price]
            maker = level.head
            stopped = False
            while maker is not None and taker.remaining > 0:
                following = maker.next
                if maker.account_id == taker_id:
                    self._cancel_resting(side, maker, account, market, seq, ts, events, True)
                    maker = following
                    continue
                quantity = maker.remaining
                if taker.remaining < quantity:
                    quantity = taker.remaining
                if spend:
                    available = account.available.get(QUOTE_ASSET, 0)
                    if budget:
                        spare = budget - taker.filled_quote
                        unit = price * quote_unit
                        if spare // unit < quantity:
                            quantity = spare // unit
                    affordable = self._affordable(price, available, market, taker_bps)
                    if affordable < quantity:
                        quantity = affordable
                    if quantity == 0:
                        stopped = True
                        break
                maker_account = accounts[maker.account_id]
                self._fill(
                    market, level, maker, maker_account, taker, account, price, quantity, seq,
                    ts, events, fills,
                )  # fmt: skip
                last_price = price
                if maker.remaining == 0:
                    side.unlink(maker)
                    del orders[maker.key]
                    del maker_account.orders[maker.key]
                    maker = following
            taken.append(_new(_LEVEL_TYPE, (price, level.total if level.count else 0)))
            if stopped:
                break
        return last_price

    def _fill(
        self,
        market: Market,
        level: Level,
        maker: SpotOrder,
        maker_account: SpotAccount,
        taker: SpotOrder,
        taker_account: SpotAccount,
        price: int,
        quantity: int,
        seq: int,
        ts: int,
        events: list[SpotEvent],
        fills: list[SpotFillView],
    ) -> None:
        """Execute one trade at the maker's price and settle both wallets and the fees."""
        quote = price * quantity * market.quote_unit
        taker_fee = -((-quote * self._taker_bps) // BPS_PER_UNIT)
        maker_fee = -((-quote * self._maker_bps) // BPS_PER_UNIT)
        taker_buys = taker.is_buy
        if taker_buys:
            buyer, seller = taker, maker
            buyer_account, seller_account = taker_account, maker_account
            buyer_fee, seller_fee = taker_fee, maker_fee
        else:
            buyer, seller = maker, taker
            buyer_account, seller_account = maker_account, taker_account
            buyer_fee, seller_fee = maker_fee, taker_fee
        maker.remaining -= quantity
        taker.remaining -= quantity
        level.total -= quantity
        base = market.base_asset
        # The seller gives locked base and receives the quote less its fee.
        seller.locked -= quantity
        seller_account.locked[base] -= quantity
        seller_available = seller_account.available
        seller_available[QUOTE_ASSET] = seller_available.get(QUOTE_ASSET, 0) + quote - seller_fee
        buyer_available = buyer_account.available
        buyer_available[base] = buyer_available.get(base, 0) + quantity
        if buyer.is_limit:
            buyer_fee = self._settle_buy_lock(market, buyer, buyer_account, quote, buyer_fee)
        else:
            buyer_available[QUOTE_ASSET] -= quote + buyer_fee
        if taker_buys:
            taker_fee = buyer_fee
        else:
            maker_fee = buyer_fee
        self.house[QUOTE_ASSET] += taker_fee + maker_fee
        maker.filled += quantity
        maker.filled_quote += quote
        maker.fee += maker_fee
        maker.update_ts = ts
        taker.filled += quantity
        taker.filled_quote += quote
        taker.fee += taker_fee
        taker.update_ts = ts
        self.trades += 1
        trade_id = f"{TRADE_ID_PREFIX}{self.trades}"
        taker_side = _BUY if taker_buys else _SELL
        maker_side = _SELL if taker_buys else _BUY
        name = market.name
        maker_fill = _new(_FILL_VIEW_TYPE, (
            f"{trade_id}-m", trade_id, maker.order_id, maker.account_id, name,
            maker_side, price, quantity, quote, maker_fee, _MAKER, seq, ts,
        ))  # fmt: skip
        taker_fill = _new(_FILL_VIEW_TYPE, (
            f"{trade_id}-t", trade_id, taker.order_id, taker.account_id, name,
            taker_side, price, quantity, quote, taker_fee, _TAKER, seq, ts,
        ))  # fmt: skip
        fills.append(taker_fill)
        events.append(_new(_TRADE_TYPE, (seq, ts, name, trade_id, price, quantity, taker_side)))
        events.append(_new(_FILL_TYPE, (seq, ts, maker.account_id, maker_fill)))
        events.append(_new(_FILL_TYPE, (seq, ts, taker.account_id, taker_fill)))
        status = maker.status
        if maker.remaining == 0:
            if status not in _INTO_FILLED:
                check_spot_transition(status, _FILLED)
            maker.status = _FILLED
            events.append(_new(_FILLED_TYPE, (seq, ts, maker.account_id, self._view(maker))))
        else:
            if status not in _INTO_PARTIAL:
                check_spot_transition(status, _PARTIAL)
            maker.status = _PARTIAL
            events.append(_new(_UPDATED_TYPE, (seq, ts, maker.account_id, self._view(maker))))

    def _settle_buy_lock(
        self, market: Market, buyer: SpotOrder, account: SpotAccount, quote: int, fee: int
    ) -> int:
        """Pay a buy limit's fill from its lock, keep the lock of its rest; return the fee.

        A fill below the limit price releases the difference. Fees rounded up per fill can
        exceed the fee locked on the whole quantity by a micro-USD per fill at the limit
        price; that comes from the available balance, and only when that is empty too does
        the house forgo it (so no balance ever goes negative).
        """
        keep = self.buy_lock(buyer.price, buyer.remaining, market)
        spare = buyer.locked - quote - fee - keep
        available = account.available
        if spare < 0:
            cover = min(-spare, available.get(QUOTE_ASSET, 0))
            fee -= -spare - cover
            spare = -cover
        account.locked[QUOTE_ASSET] -= buyer.locked - keep
        available[QUOTE_ASSET] = available.get(QUOTE_ASSET, 0) + spare
        buyer.locked = keep
        return fee

    def _release(self, order: SpotOrder, account: SpotAccount, market: Market) -> None:
        """Return what an order still locks to the available balance."""
        locked = order.locked
        if locked:
            asset = QUOTE_ASSET if order.is_buy else market.base_asset
            account.locked[asset] -= locked
            account.available[asset] += locked
            order.locked = 0

    def _cancel_resting(
        self,
        side: BookSide,
        order: SpotOrder,
        account: SpotAccount,
        market: Market,
        seq: int,
        ts: int,
        events: list[SpotEvent],
        self_trade: bool,
    ) -> Level:
        """Take an open order off the book, release its lock, mark it CANCELLED."""
        level = side.unlink(order)
        order.remaining = 0
        self._release(order, account, market)
        if order.status not in _INTO_CANCELLED:
            check_spot_transition(order.status, _CANCELLED)
        order.status = _CANCELLED
        order.update_ts = ts
        del self.orders[order.key]
        del account.orders[order.key]
        events.append(
            _new(_CANCELLED_TYPE, (seq, ts, order.account_id, self._view(order), self_trade))
        )
        return level

    # ----------------------------------------------------------------- cancelling

    def _cancel(self, command: CancelSpotOrder) -> SpotResult:
        seq, ts, account_id, text, client_order_id = command
        account = self.accounts.get(account_id) if type(account_id) is str else None
        if account is None:
            account_id = self._check_account_id(account_id)
        if not isinstance(text, str):
            raise _type_error("order_id", "str", text)
        if client_order_id is not None:
            duplicate = self._duplicate(account, client_order_id, KIND_CANCEL, text)
            if duplicate is not None:
                return duplicate
        key = parse_spot_order_id(text)
        order = None if account is None else account.orders.get(key)
        if account is None or order is None:
            raise RejectionError(Reason.ORDER_NOT_FOUND, f"no open spot order {text[:24]!r}")
        book = self.books[order.market]
        is_buy = order.is_buy
        events: list[SpotEvent] = []
        level = self._cancel_resting(
            book.bids if is_buy else book.asks, order, account, self.markets[order.market], seq,
            ts, events, False,
        )  # fmt: skip
        changed = (_new(_LEVEL_TYPE, (level.price, level.total if level.count else 0)),)
        events.append(
            self._book_event(book, seq, ts, changed if is_buy else (), () if is_buy else changed)
        )
        cancelled = events[0]
        assert isinstance(cancelled, SpotOrderCancelled)
        return self._remember(account, client_order_id, KIND_CANCEL, text, cancelled.order, events)

    # ----------------------------------------------------------------- views

    def _view(self, order: SpotOrder, reject_reason: Reason | None = None) -> SpotOrderView:
        quote_sized = order.quote_quantity != 0
        return _new(
            _ORDER_VIEW_TYPE,
            (
                order.order_id,
                order.account_id,
                order.market,
                _BUY if order.is_buy else _SELL,
                _LIMIT if order.is_limit else _MARKET,
                order.price if order.is_limit else None,
                None if quote_sized else order.quantity,
                order.quote_quantity if quote_sized else None,
                order.filled,
                order.filled_quote,
                order.fee,
                0 if quote_sized else order.remaining,
                order.locked,
                order.tif,
                order.post_only,
                order.status,
                reject_reason,
                order.key,
                order.create_ts,
                order.update_ts,
                order.client_order_id,
            ),
        )

    @staticmethod
    def _book_event(
        book: Book,
        seq: int,
        ts: int,
        bids: tuple[BookLevel, ...],
        asks: tuple[BookLevel, ...],
    ) -> SpotBookChanged:
        """Return the book's next change event with the new totals of touched levels."""
        book.sequence += 1
        return _new(_BOOK_TYPE, (seq, ts, book.market, book.sequence, bids, asks))

    # ----------------------------------------------------------------- queries

    def book_view(self, market: str, depth: int = 50) -> BookView | None:
        """Return up to `depth` (at least 1) aggregated levels a side, or None if unknown."""
        book = self.books.get(market)
        if book is None:
            return None
        depth = max(1, depth)
        bids = tuple(BookLevel(p, q) for p, q in book.bids.depth(depth))
        asks = tuple(BookLevel(p, q) for p, q in book.asks.depth(depth))
        return BookView(market, bids, asks, book.sequence)

    def best_bid(self, market: str) -> int | None:
        """Return the best bid price in ticks, or None."""
        level = self.books[market].bids.best()
        return None if level is None else level.price

    def best_ask(self, market: str) -> int | None:
        """Return the best ask price in ticks, or None."""
        level = self.books[market].asks.best()
        return None if level is None else level.price

    def wallet(self, account_id: str) -> list[BalanceView]:
        """Return every asset of an account's wallet (zeros for an unknown account)."""
        account = self.accounts.get(account_id)
        if account is None:
            return [BalanceView(asset, 0, 0) for asset in self.assets]
        return [
            BalanceView(asset, account.available.get(asset, 0), account.locked.get(asset, 0))
            for asset in self.assets
        ]

    def open_orders(self, account_id: str, market: str | None = None) -> list[SpotOrderView]:
        """Return an account's open orders (optionally of one market) in placing order."""
        account = self.accounts.get(account_id)
        if account is None:
            return []
        return [
            self._view(account.orders[key])
            for key in sorted(account.orders)
            if market is None or account.orders[key].market == market
        ]

    def get_order(self, account_id: str, order_id: str) -> SpotOrderView | None:
        """Return an account's open order by id; another account's order is None."""
        account = self.accounts.get(account_id)
        if account is None:
            return None
        order = account.orders.get(parse_spot_order_id(order_id))
        return None if order is None else self._view(order)

    def resting_orders(self, market: str, side: Side) -> list[SpotOrderView]:
        """Return one side's open orders in matching priority (best price, then oldest)."""
        book = self.books[market]
        book_side = book.bids if side is _BUY else book.asks
        views: list[SpotOrderView] = []
        for key in reversed(book_side.keys):
            node = book_side.levels[key if book_side.is_bid else -key].head
            while node is not None:
                views.append(self._view(node))
                node = node.next
        return views

    def asset_totals(self, asset: str) -> tuple[int, int, int]:
        """Return (sum of wallets, house fees, credited minus debited) of one asset."""
        held = sum(
            account.available.get(asset, 0) + account.locked.get(asset, 0)
            for account in self.accounts.values()
        )
        return held, self.house[asset], self.credited[asset] - self.debited[asset]
