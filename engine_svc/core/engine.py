"""The deterministic trading core: `Core.apply(command) -> Result` plus read queries.

See the package docstring for scales, trigger order and idempotency.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable, Mapping
from heapq import heappop, heappush
from typing import Any, Final

from .codec import (
    CodecError,
    decode_payload,
    dumps_canonical,
    encode_payload,
    loads_strict,
    pack_int_column,
    unpack_int_column,
)
from .commands import (
    AddMargin,
    ApplyQuote,
    CancelOrder,
    ClosePosition,
    Command,
    CreateAccount,
    Deposit,
    ExpireOrders,
    ModifyPosition,
    OpenPosition,
    PlaceOrder,
)
from .enums import BalanceKind, CloseReason, OrderStatus, OrderType, Side, check_order_transition
from .events import (
    AccountCreated,
    BalanceChanged,
    Event,
    MarginAdded,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderPlaced,
    OrderRejected,
    PositionClosed,
    PositionModified,
    PositionOpened,
)
from .indexes import (
    ASK_ABOVE,
    ASK_BELOW,
    BID_ABOVE,
    BID_BELOW,
    KEY_SHIFT,
    KIND_LIQUIDATION,
    KIND_ORDER,
    KIND_STOP_LOSS,
    KIND_TAKE_PROFIT,
    MAX_KEY,
    PRICE_SHIFT,
    TRAIL_KEY_SHIFT,
    SymbolBook,
    entry_key,
    entry_kind,
)
from .instruments import Instrument, default_instruments
from .reasons import Reason
from .results import Result, accepted, rejected
from .state import (
    LEGACY_POSITION_EDIT,
    Account,
    Order,
    Position,
    Receipt,
    StoredPayload,
    TrailLevel,
)
from .units import MAX_MONEY_MICROS, MAX_PRICE_TICKS, MAX_QUANTITY_LOTS
from .views import (
    AccountSummary,
    ClosedPosition,
    CoreStats,
    OrderView,
    PositionView,
    QuoteView,
)

MAX_CLIENT_ORDER_ID: Final = 64
MAX_ACCOUNT_ID: Final = 128
MAX_SLIPPAGE_BPS: Final = 10_000_000
MAX_TIME_NS: Final = (1 << 63) - 1
_EXPIRY_SHIFT: Final = 48

# Building the hottest immutable records through tuple.__new__ skips NamedTuple's
# Python-level __new__; the field order is the class's, as the tests check.
_new = tuple.__new__

# Enum members bound once: attribute access on an enum class is comparatively slow.
_BUY: Final = Side.BUY
_SELL: Final = Side.SELL
_USER: Final = CloseReason.USER
_MARGIN_RESERVED: Final = BalanceKind.MARGIN_RESERVED
_CLOSE_SETTLED: Final = BalanceKind.CLOSE_SETTLED

# Close reason priority when several triggers of one position fire in the same tick.
_PRIORITY_LIQUIDATION: Final = 0
_PRIORITY_STOP_LOSS: Final = 1
_PRIORITY_TRAILING: Final = 2
_PRIORITY_TAKE_PROFIT: Final = 3
_PRIORITY_REASONS = (
    CloseReason.LIQUIDATION,
    CloseReason.STOP_LOSS,
    CloseReason.TRAILING_STOP,
    CloseReason.TAKE_PROFIT,
)


class SequenceError(ValueError):
    """A command's seq is not an integer above the last applied one (a caller bug)."""


class RejectionError(Exception):
    """Raised inside a command handler to reject it before anything changed."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _type_error(name: str, expected: str, value: object) -> TypeError:
    return TypeError(f"{name} must be {expected}, not {type(value).__name__}")


def position_id(key: int) -> str:
    """Return the public id of the position with internal key `key`."""
    return f"p-{key}"


def order_id(key: int) -> str:
    """Return the public id of the order with internal key `key`."""
    return f"o-{key}"


def parse_id(text: object, prefix: str) -> int:
    """Return the key in an id like ``p-42`` for prefix ``p-``, or -1 if it is not one."""
    if not isinstance(text, str):
        raise _type_error("id", "str", text)
    if not text.startswith(prefix) or len(text) > 24:
        return -1
    digits = text[len(prefix) :]
    if not digits.isdigit() or not digits.isascii() or (digits[0] == "0" and digits != "0"):
        return -1
    return int(digits)


def _optional(value: int) -> int | None:
    return value if value != 0 else None


def _check_int(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise RejectionError(Reason.VALIDATION_FAILED, f"{name} must be a number, not a bool")
    if not isinstance(value, int):
        raise _type_error(name, "int", value)
    if value < low or value > high:
        raise RejectionError(Reason.VALIDATION_FAILED, f"{name} must be within {low}..{high}")
    return value


def _check_optional_price(value: object, name: str, allow_clear: bool) -> int | None:
    if value is None:
        return None
    low = 0 if allow_clear else 1
    return _check_int(value, name, low, MAX_PRICE_TICKS)


class Core:
    """The whole trading state and the only code that changes it.

    Build it with the instrument configuration (API.md defaults when omitted), feed it
    commands in sequence order through `apply`, read it through the query methods.
    """

    def __init__(self, instruments: Mapping[str, Instrument] | None = None) -> None:
        chosen = default_instruments() if instruments is None else dict(instruments)
        for symbol, instrument in chosen.items():
            if symbol != instrument.symbol:
                raise ValueError(f"instrument {instrument.symbol} registered as {symbol}")
        self.instruments: dict[str, Instrument] = dict(sorted(chosen.items()))
        self.accounts: dict[str, Account] = {}
        self.positions: dict[int, Position] = {}
        self.orders: dict[int, Order] = {}
        self.books: dict[str, SymbolBook] = {
            symbol: SymbolBook(self.positions, self.orders) for symbol in self.instruments
        }
        self.quotes: dict[str, QuoteView] = {}
        self.expiry: list[int] = []
        self.house_balance = 0
        self.total_deposits = 0
        self.last_seq = 0

    # ----------------------------------------------------------------- entry point

    def apply(self, command: Command) -> Result:
        """Apply one command; return its result. A rejection changes no state but `last_seq`.

        Raises `SequenceError` when `command.seq` is not above the last applied seq, and
        `TypeError` for an object that is not a command or a field that does not have its
        declared type (a caller bug: the codec and the service build well-typed commands;
        the mypyc-compiled core raises the same TypeError). Values of the right type that
        are out of range or inconsistent are rejections.
        """
        handler = _HANDLERS.get(type(command))
        if handler is None:
            raise TypeError(f"not a core command: {type(command).__name__}")
        seq = command.seq
        ts = command.ts
        if type(seq) is not int or type(ts) is not int:
            raise _type_error("seq and ts", "int", seq if type(seq) is not int else ts)
        if seq <= self.last_seq or seq > MAX_KEY:
            raise SequenceError(f"seq {seq!r} must be above {self.last_seq} and below 2**48")
        self.last_seq = seq
        if ts < 0 or ts > MAX_TIME_NS:
            return rejected(Reason.VALIDATION_FAILED, "ts must be epoch nanoseconds")
        try:
            return handler(self, command)
        except RejectionError as rejection:
            return Result(rejection.reason, rejection.message, None, (), False)

    def _expire_command(self, command: ExpireOrders) -> Result:
        events: list[Event] = []
        self._expire_orders(command.seq, command.ts, events)
        return Result(None, "", None, tuple(events), False)

    # ----------------------------------------------------------------- accounts

    def _create_account(self, command: CreateAccount) -> Result:
        account_id = self._check_account_id(command.account_id)
        existing = self.accounts.get(account_id)
        if existing is not None:
            return Result(None, "", self._summary(existing), (), True)
        amount = _check_int(command.initial_balance, "initial_balance", 0, MAX_MONEY_MICROS)
        if self.total_deposits + amount > MAX_MONEY_MICROS * 1000:
            raise RejectionError(Reason.VALIDATION_FAILED, "total deposits would be too large")
        account = Account(account_id, amount)
        self.accounts[account_id] = account
        self.total_deposits += amount
        event = AccountCreated(command.seq, command.ts, account_id, amount)
        return accepted(self._summary(account), (event,))

    def _deposit(self, command: Deposit) -> Result:
        account = self._account(command.account_id)
        duplicate = self._duplicate(account, command.client_order_id, "Deposit", "")
        if duplicate is not None:
            return duplicate
        amount = _check_int(command.amount, "amount", 1, MAX_MONEY_MICROS)
        if account.balance + amount > MAX_MONEY_MICROS * 1000:
            raise RejectionError(Reason.VALIDATION_FAILED, "balance would be too large")
        account.balance += amount
        self.total_deposits += amount
        event = BalanceChanged(
            command.seq,
            command.ts,
            account.account_id,
            BalanceKind.DEPOSIT,
            amount,
            account.balance,
            "",
        )
        return self._remember(
            account, command.client_order_id, "Deposit", "", self._summary(account), (event,)
        )

    def _check_account_id(self, account_id: object) -> str:
        if not isinstance(account_id, str):
            raise _type_error("account_id", "str", account_id)
        if (
            not 0 < len(account_id) <= MAX_ACCOUNT_ID
            or not account_id.isprintable()
            or " " in account_id
        ):
            raise RejectionError(Reason.VALIDATION_FAILED, "account_id must be 1-128 visible chars")
        return account_id

    def _account(self, account_id: object) -> Account:
        if not isinstance(account_id, str):
            raise _type_error("account_id", "str", account_id)
        account = self.accounts.get(account_id)
        if account is None:
            raise RejectionError(Reason.ACCOUNT_NOT_FOUND, f"account {account_id!r} not found")
        return account

    def _duplicate(
        self, account: Account, client_order_id: object, kind: str, target: str
    ) -> Result | None:
        """Return the stored result of an exact repeat; reject a key used for another request."""
        if client_order_id is None:
            return None
        if not isinstance(client_order_id, str):
            raise _type_error("client_order_id", "str or None", client_order_id)
        if not 0 < len(client_order_id) <= MAX_CLIENT_ORDER_ID:
            raise RejectionError(
                Reason.VALIDATION_FAILED, "client_order_id must be 1-64 characters"
            )
        receipt = account.receipts.get(client_order_id)
        if receipt is None:
            return None
        if not receipt.matches(kind, target):
            on = f" on {receipt.target}" if receipt.target else ""
            raise RejectionError(
                Reason.IDEMPOTENCY_KEY_REUSED,
                f"client_order_id {client_order_id!r} was already used for {receipt.kind}{on}",
            )
        return Result(None, "", receipt.payload, (), True)

    def _remember(
        self,
        account: Account,
        client_order_id: str | None,
        kind: str,
        target: str,
        payload: StoredPayload,
        events: tuple[Event, ...],
    ) -> Result:
        if client_order_id is not None:
            account.receipts[client_order_id] = Receipt(kind, target, payload)
        return accepted(payload, events)

    # ----------------------------------------------------------------- validation helpers

    def _instrument(self, symbol: object) -> Instrument:
        if not isinstance(symbol, str):
            raise _type_error("symbol", "str", symbol)
        instrument = self.instruments.get(symbol)
        if instrument is None:
            raise RejectionError(Reason.UNKNOWN_SYMBOL, f"unknown symbol {symbol!r}")
        return instrument

    def _quote(self, symbol: str) -> QuoteView:
        quote = self.quotes.get(symbol)
        if quote is None:
            raise RejectionError(Reason.PRICE_UNAVAILABLE, f"no price for {symbol} yet")
        return quote

    @staticmethod
    def _side(side: object) -> bool:
        if side is _BUY:
            return True
        if side is _SELL:
            return False
        raise _type_error("side", "a Side", side)

    @staticmethod
    def _leverage(leverage: object, instrument: Instrument) -> int:
        if not isinstance(leverage, int):
            raise _type_error("leverage", "int", leverage)
        if isinstance(leverage, bool) or not 1 <= leverage <= instrument.max_leverage:
            raise RejectionError(
                Reason.INVALID_LEVERAGE,
                f"leverage must be an integer within 1..{instrument.max_leverage}",
            )
        return leverage

    @staticmethod
    def _sizing(quantity: object, margin: object) -> tuple[int, int]:
        if (quantity is None) == (margin is None):
            raise RejectionError(
                Reason.VALIDATION_FAILED, "give exactly one of quantity and margin"
            )
        if quantity is not None:
            lots = _check_int(quantity, "quantity", -(2**63), 2**63)
            if lots < 1:
                raise RejectionError(Reason.QUANTITY_TOO_SMALL, "quantity is below the lot step")
            if lots > MAX_QUANTITY_LOTS:
                raise RejectionError(Reason.VALIDATION_FAILED, "quantity is too large")
            return lots, 0
        return 0, _check_int(margin, "margin", 1, MAX_MONEY_MICROS)

    @staticmethod
    def _check_stops(is_buy: bool, reference: int, tp: int, sl: int) -> None:
        """Require SL < reference < TP for a buy and TP < reference < SL for a sell."""
        if is_buy:
            if (sl and sl >= reference) or (tp and tp <= reference):
                raise RejectionError(
                    Reason.INVALID_STOPS, "a buy needs stop loss < price < take profit"
                )
        elif (tp and tp >= reference) or (sl and sl <= reference):
            raise RejectionError(
                Reason.INVALID_STOPS, "a sell needs take profit < price < stop loss"
            )

    # ----------------------------------------------------------------- positions

    def _open_position(self, command: OpenPosition) -> Result:
        account = self.accounts.get(command.account_id)
        if account is None:
            account = self._account(command.account_id)
        client_order_id = command.client_order_id
        if client_order_id is not None:
            duplicate = self._duplicate(account, client_order_id, "OpenPosition", "")
            if duplicate is not None:
                return duplicate
        instrument = self.instruments.get(command.symbol)
        if instrument is None:
            instrument = self._instrument(command.symbol)
        side = command.side
        is_buy = side is _BUY
        if not is_buy and side is not _SELL:
            raise _type_error("side", "a Side", side)
        leverage = command.leverage
        if type(leverage) is not int or not 1 <= leverage <= instrument.max_leverage:
            leverage = self._leverage(leverage, instrument)
        lots = command.quantity
        budget = 0
        if type(lots) is not int or command.margin is not None or not 0 < lots <= MAX_QUANTITY_LOTS:
            lots, budget = self._sizing(command.quantity, command.margin)
        tp = sl = trail = 0
        if command.take_profit is not None:
            tp = _check_int(command.take_profit, "take_profit", 1, MAX_PRICE_TICKS)
        if command.stop_loss is not None:
            sl = _check_int(command.stop_loss, "stop_loss", 1, MAX_PRICE_TICKS)
        if command.trailing_distance is not None:
            trail = _check_int(command.trailing_distance, "trailing_distance", 1, MAX_PRICE_TICKS)
        quote = self.quotes.get(instrument.symbol)
        if quote is None:
            quote = self._quote(instrument.symbol)
        fill = quote.ask if is_buy else quote.bid
        if command.expected_price is not None or command.max_slippage_bps is not None:
            self._check_slippage(command, instrument, fill)
        if budget:
            lots = instrument.lots_floor_for_margin(budget, leverage, fill)
            if lots < 1:
                raise RejectionError(
                    Reason.QUANTITY_TOO_SMALL, "margin buys less than one lot step"
                )
            if lots > MAX_QUANTITY_LOTS:
                raise RejectionError(Reason.VALIDATION_FAILED, "quantity is too large")
        if tp or sl:
            self._check_stops(is_buy, quote.bid if is_buy else quote.ask, tp, sl)
        margin = instrument.margin_ceil_micros(fill, lots, leverage)
        if margin > account.balance:
            raise RejectionError(
                Reason.INSUFFICIENT_BALANCE,
                f"margin {margin} micro-USD exceeds the balance {account.balance}",
            )
        changed, opened = self._create_position(
            account,
            instrument,
            quote,
            command.seq,
            command.seq,
            command.ts,
            is_buy,
            lots,
            leverage,
            margin,
            tp,
            sl,
            trail,
            client_order_id,
            0,
        )
        view = opened.position
        if client_order_id is not None:
            account.receipts[client_order_id] = Receipt("OpenPosition", "", view)
        return _new(Result, (None, "", view, (changed, opened), False))

    @staticmethod
    def _check_slippage(command: OpenPosition, instrument: Instrument, fill: int) -> None:
        expected = _check_optional_price(command.expected_price, "expected_price", False)
        bps = command.max_slippage_bps
        if bps is not None:
            bps = _check_int(bps, "max_slippage_bps", 0, MAX_SLIPPAGE_BPS)
        if (
            expected is not None
            and bps is not None
            and abs(fill - expected) * 10_000 > (bps * expected)
        ):
            raise RejectionError(
                Reason.SLIPPAGE_EXCEEDED,
                f"fill price {instrument.format_price(fill)} is more than {bps} bps from "
                f"the expected {instrument.format_price(expected)}",
            )

    def _create_position(
        self,
        account: Account,
        instrument: Instrument,
        quote: QuoteView,
        key: int,
        seq: int,
        ts: int,
        is_buy: bool,
        lots: int,
        leverage: int,
        margin: int,
        tp: int,
        sl: int,
        trail: int,
        client_order_id: str | None,
        order_key: int,
    ) -> tuple[BalanceChanged, PositionOpened]:
        """Open a validated position; return its events (the view is the second's)."""
        book = self.books[instrument.symbol]
        if is_buy:
            level = book.long_trail.attach(quote.bid)
            entry = quote.ask
        else:
            level = book.short_trail.attach(-quote.ask)
            entry = quote.bid
        position = Position(
            key,
            account.account_id,
            instrument.symbol,
            is_buy,
            lots,
            leverage,
            entry,
            margin,
            seq,
            ts,
            client_order_id,
            order_key,
            level,
        )
        account.balance -= margin
        account.used_margin += margin
        self.positions[key] = position
        account.positions[key] = position
        liq = self._liquidation_price(position, instrument)
        position.liq = liq
        book.push(BID_BELOW if is_buy else ASK_ABOVE, liq, key, KIND_LIQUIDATION)
        if tp or sl or trail:
            position.tp = tp
            position.sl = sl
            position.trail = trail
            self._index_stops(position, book)
        view = self._position_view(position)
        owner = account.account_id
        changed = _new(
            BalanceChanged, (seq, ts, owner, _MARGIN_RESERVED, -margin, account.balance, view.id)
        )
        return changed, _new(PositionOpened, (seq, ts, owner, view))

    @staticmethod
    def _liquidation_price(position: Position, instrument: Instrument) -> int:
        """Set the position's maintenance margin and return its liquidation price."""
        maintenance = 0
        if instrument.maintenance_num:
            maintenance = instrument.maintenance_ceil_micros(position.entry, position.quantity)
            position.maintenance = maintenance
        move = instrument.ticks_floor_for_money(position.margin - maintenance, position.quantity)
        # A buy's entry - x rounded up to the tick is entry - floor(x); a sell's rounds down.
        return position.entry - move if position.is_buy else position.entry + move

    def _set_liquidation(
        self, position: Position, instrument: Instrument, book: SymbolBook
    ) -> None:
        """Recompute maintenance margin and liquidation price and index a changed price."""
        liq = self._liquidation_price(position, instrument)
        if liq != position.liq:
            position.liq = liq
            book.push(
                BID_BELOW if position.is_buy else ASK_ABOVE, liq, position.key, KIND_LIQUIDATION
            )

    def _index_stops(self, position: Position, book: SymbolBook) -> None:
        if position.sl:
            book.push(BID_BELOW if position.is_buy else ASK_ABOVE, position.sl, position.key, 1)
        if position.tp:
            book.push(BID_ABOVE if position.is_buy else ASK_BELOW, position.tp, position.key, 2)
        if position.trail:
            trail_book = book.long_trail if position.is_buy else book.short_trail
            trail_book.add_trailing(position)

    def _find_position(self, account: Account, text: object) -> Position:
        position = account.positions.get(parse_id(text, "p-"))
        if position is None:
            raise RejectionError(Reason.POSITION_NOT_FOUND, f"position {text!r} not found")
        return position

    def _close_position(self, command: ClosePosition) -> Result:
        account = self.accounts.get(command.account_id)
        if account is None:
            account = self._account(command.account_id)
        client_order_id = command.client_order_id
        if client_order_id is not None:
            duplicate = self._duplicate(
                account, client_order_id, "ClosePosition", command.position_id
            )
            if duplicate is not None:
                return duplicate
        position = account.positions.get(parse_id(command.position_id, "p-"))
        if position is None:
            position = self._find_position(account, command.position_id)
        lots = position.quantity
        if command.quantity is not None:
            lots = _check_int(command.quantity, "quantity", -(2**63), 2**63)
            if lots < 1:
                raise RejectionError(Reason.QUANTITY_TOO_SMALL, "quantity is below the lot step")
            if lots > position.quantity:
                raise RejectionError(
                    Reason.VALIDATION_FAILED, "quantity exceeds the position's quantity"
                )
        quote = self._quote(position.symbol)
        price = quote.bid if position.is_buy else quote.ask
        event, settled = self._settle_close(position, lots, price, _USER, command.seq, command.ts)
        closed = event.close
        if client_order_id is not None:
            account.receipts[client_order_id] = Receipt(
                "ClosePosition", command.position_id, closed
            )
        return _new(Result, (None, "", closed, (event, settled), False))

    def _settle_close(
        self,
        position: Position,
        lots: int,
        price: int,
        reason: CloseReason,
        seq: int,
        ts: int,
    ) -> tuple[PositionClosed, BalanceChanged]:
        """Close `lots` of a position at `price`; settle margin, PnL and the house's share."""
        instrument = self.instruments[position.symbol]
        account = self.accounts[position.account_id]
        book = self.books[position.symbol]
        full = lots == position.quantity
        released = position.margin if full else (position.margin * lots) // position.quantity
        move = price - position.entry if position.is_buy else position.entry - price
        pnl = instrument.pnl_floor_micros(move, lots)
        credited = released + pnl
        absorbed = 0
        if credited < 0:
            absorbed = -credited
            credited = 0
        account.used_margin -= released
        account.balance += credited
        self.house_balance += released - credited
        remaining: PositionView | None = None
        if full:
            del self.positions[position.key]
            del account.positions[position.key]
            trail_book = book.long_trail if position.is_buy else book.short_trail
            trail_book.detach(position)
        else:
            position.quantity -= lots
            position.margin -= released
            self._set_liquidation(position, instrument, book)
            remaining = self._position_view(position)
        pid = position_id(position.key)
        closed = _new(
            ClosedPosition,
            (
                pid,
                account.account_id,
                position.symbol,
                _BUY if position.is_buy else _SELL,
                position.leverage,
                position.entry,
                lots,
                price,
                released,
                pnl,
                absorbed,
                credited,
                reason,
                position.open_ts,
                ts,
                seq,
                position.client_order_id,
                remaining,
            ),
        )
        owner = account.account_id
        settled = _new(
            BalanceChanged, (seq, ts, owner, _CLOSE_SETTLED, credited, account.balance, pid)
        )
        return _new(PositionClosed, (seq, ts, owner, closed)), settled

    def _add_margin(self, command: AddMargin) -> Result:
        account = self._account(command.account_id)
        duplicate = self._duplicate(
            account, command.client_order_id, "AddMargin", command.position_id
        )
        if duplicate is not None:
            return duplicate
        position = self._find_position(account, command.position_id)
        amount = _check_int(command.amount, "amount", 1, MAX_MONEY_MICROS)
        if amount > account.balance:
            raise RejectionError(
                Reason.INSUFFICIENT_BALANCE,
                f"amount {amount} micro-USD exceeds the balance {account.balance}",
            )
        account.balance -= amount
        account.used_margin += amount
        position.margin += amount
        self._set_liquidation(
            position, self.instruments[position.symbol], self.books[position.symbol]
        )
        view = self._position_view(position)
        events: tuple[Event, ...] = (
            BalanceChanged(
                command.seq,
                command.ts,
                account.account_id,
                BalanceKind.MARGIN_ADDED,
                -amount,
                account.balance,
                position_id(position.key),
            ),
            MarginAdded(command.seq, command.ts, account.account_id, amount, view),
        )
        return self._remember(
            account, command.client_order_id, "AddMargin", command.position_id, view, events
        )

    def _modify_position(self, command: ModifyPosition) -> Result:
        account = self._account(command.account_id)
        duplicate = self._duplicate(
            account, command.client_order_id, "ModifyPosition", command.position_id
        )
        if duplicate is not None:
            return duplicate
        position = self._find_position(account, command.position_id)
        tp = _check_optional_price(command.take_profit, "take_profit", True)
        sl = _check_optional_price(command.stop_loss, "stop_loss", True)
        trail = _check_optional_price(command.trailing_distance, "trailing_distance", True)
        if tp is None and sl is None and trail is None:
            raise RejectionError(Reason.VALIDATION_FAILED, "nothing to modify")
        quote = self._quote(position.symbol)
        reference = quote.bid if position.is_buy else quote.ask
        self._check_stops(position.is_buy, reference, tp or 0, sl or 0)
        book = self.books[position.symbol]
        if tp is not None and tp != position.tp:
            position.tp = tp
            if tp:
                book.push(BID_ABOVE if position.is_buy else ASK_BELOW, tp, position.key, 2)
        if sl is not None and sl != position.sl:
            position.sl = sl
            if sl:
                book.push(BID_BELOW if position.is_buy else ASK_ABOVE, sl, position.key, 1)
        if trail:
            # A distance set now trails from the current quote, not from the best since open.
            trail_book = book.long_trail if position.is_buy else book.short_trail
            trail_book.detach(position)
            position.level = trail_book.attach(reference if position.is_buy else -reference)
            position.trail = trail
            trail_book.add_trailing(position)
        elif trail is not None:
            position.trail = 0
        view = self._position_view(position)
        event = PositionModified(command.seq, command.ts, account.account_id, view)
        return self._remember(
            account, command.client_order_id, "ModifyPosition", command.position_id, view, (event,)
        )

    # ----------------------------------------------------------------- orders

    def _place_order(self, command: PlaceOrder) -> Result:
        account = self._account(command.account_id)
        duplicate = self._duplicate(account, command.client_order_id, "PlaceOrder", "")
        if duplicate is not None:
            return duplicate
        instrument = self._instrument(command.symbol)
        is_buy = self._side(command.side)
        if command.order_type is OrderType.LIMIT:
            is_limit = True
        elif command.order_type is OrderType.STOP:
            is_limit = False
        else:
            raise _type_error("order_type", "an OrderType", command.order_type)
        leverage = self._leverage(command.leverage, instrument)
        lots, margin = self._sizing(command.quantity, command.margin)
        trigger = _check_int(command.trigger_price, "trigger_price", 1, MAX_PRICE_TICKS)
        tp = _check_optional_price(command.take_profit, "take_profit", False) or 0
        sl = _check_optional_price(command.stop_loss, "stop_loss", False) or 0
        trail = _check_optional_price(command.trailing_distance, "trailing_distance", False) or 0
        expire = 0
        if command.expire_time is not None:
            expire = _check_int(command.expire_time, "expire_time", 1, MAX_TIME_NS)
            if expire <= command.ts:
                raise RejectionError(Reason.VALIDATION_FAILED, "expire_time is not in the future")
        quote = self._quote(instrument.symbol)
        current = quote.ask if is_buy else quote.bid
        # A limit must be better than the current price and a stop worse.
        lower = trigger < current
        higher = trigger > current
        if not (lower if is_buy == is_limit else higher):
            kind = "limit" if is_limit else "stop"
            direction = "below" if is_buy == is_limit else "above"
            raise RejectionError(
                Reason.VALIDATION_FAILED,
                f"a {'buy' if is_buy else 'sell'} {kind} trigger must be {direction} "
                f"the current {'ask' if is_buy else 'bid'}",
            )
        self._check_stops(is_buy, trigger, tp, sl)
        key = command.seq
        order = Order(
            key,
            account.account_id,
            instrument.symbol,
            is_buy,
            is_limit,
            trigger,
            leverage,
            lots,
            margin,
            tp,
            sl,
            trail,
            expire,
            command.ts,
            command.client_order_id,
        )
        self.orders[key] = order
        account.orders[key] = order
        self._index_order(order)
        view = self._order_view(order, OrderStatus.PENDING, 0, None)
        event = OrderPlaced(command.seq, command.ts, account.account_id, view)
        return self._remember(account, command.client_order_id, "PlaceOrder", "", view, (event,))

    def _index_order(self, order: Order) -> None:
        book = self.books[order.symbol]
        if order.is_buy:
            which = ASK_BELOW if order.is_limit else ASK_ABOVE
        else:
            which = BID_ABOVE if order.is_limit else BID_BELOW
        book.push(which, order.trigger, order.key, KIND_ORDER)
        if order.expire:
            heappush(self.expiry, (order.expire << _EXPIRY_SHIFT) | order.key)

    def _remove_order(self, order: Order) -> None:
        del self.orders[order.key]
        del self.accounts[order.account_id].orders[order.key]

    def _cancel_order(self, command: CancelOrder) -> Result:
        account = self._account(command.account_id)
        duplicate = self._duplicate(
            account, command.client_order_id, "CancelOrder", command.order_id
        )
        if duplicate is not None:
            return duplicate
        order = account.orders.get(parse_id(command.order_id, "o-"))
        if order is None:
            raise RejectionError(Reason.ORDER_NOT_FOUND, f"order {command.order_id!r} not found")
        self._remove_order(order)
        view = self._order_view(order, OrderStatus.CANCELLED, 0, None)
        event = OrderCancelled(command.seq, command.ts, account.account_id, view)
        return self._remember(
            account, command.client_order_id, "CancelOrder", command.order_id, view, (event,)
        )

    def _expire_orders(self, seq: int, ts: int, events: list[Event]) -> None:
        heap = self.expiry
        limit = ts << _EXPIRY_SHIFT | MAX_KEY
        while heap and heap[0] <= limit:
            entry = heappop(heap)
            order = self.orders.get(entry & MAX_KEY)
            if order is None or order.expire != entry >> _EXPIRY_SHIFT:
                continue
            self._remove_order(order)
            view = self._order_view(order, OrderStatus.EXPIRED, 0, None)
            events.append(OrderExpired(seq, ts, order.account_id, view))

    def _fill_order(self, order: Order, quote: QuoteView, events: list[Event]) -> None:
        """Open the position of a triggered order, or reject the order."""
        instrument = self.instruments[order.symbol]
        account = self.accounts[order.account_id]
        self._remove_order(order)
        fill = quote.ask if order.is_buy else quote.bid
        lots = order.quantity
        try:
            if lots == 0:
                lots = instrument.lots_floor_for_margin(order.margin, order.leverage, fill)
                if lots < 1:
                    raise RejectionError(Reason.QUANTITY_TOO_SMALL, "margin buys less than one lot")
                if lots > MAX_QUANTITY_LOTS:
                    raise RejectionError(Reason.VALIDATION_FAILED, "quantity is too large")
            reference = quote.bid if order.is_buy else quote.ask
            self._check_stops(order.is_buy, reference, order.tp, order.sl)
            margin = instrument.margin_ceil_micros(fill, lots, order.leverage)
            if margin > account.balance:
                raise RejectionError(
                    Reason.INSUFFICIENT_BALANCE,
                    f"margin {margin} micro-USD exceeds the balance {account.balance}",
                )
        except RejectionError as rejection:
            view = self._order_view(order, OrderStatus.REJECTED, 0, rejection.reason)
            events.append(
                OrderRejected(
                    quote.seq,
                    quote.ts,
                    account.account_id,
                    view,
                    rejection.reason,
                    rejection.message,
                )
            )
            return
        view = self._order_view(order, OrderStatus.FILLED, order.key, None)
        events.append(OrderFilled(quote.seq, quote.ts, account.account_id, view))
        events.extend(
            self._create_position(
                account,
                instrument,
                quote,
                order.key,
                quote.seq,
                quote.ts,
                order.is_buy,
                lots,
                order.leverage,
                margin,
                order.tp,
                order.sl,
                order.trail,
                order.client_order_id,
                order.key,
            )
        )

    # ----------------------------------------------------------------- quotes

    def _apply_quote(self, command: ApplyQuote) -> Result:
        instrument = self._instrument(command.symbol)
        bid = _check_int(command.bid, "bid", 1, MAX_PRICE_TICKS)
        ask = _check_int(command.ask, "ask", 1, MAX_PRICE_TICKS)
        if bid >= ask:
            raise RejectionError(Reason.VALIDATION_FAILED, "bid must be below ask")
        seq = command.seq
        ts = command.ts
        events: list[Event] = []
        if self.expiry:
            self._expire_orders(seq, ts, events)
        quote = QuoteView(instrument.symbol, bid, ask, seq, ts)
        self.quotes[instrument.symbol] = quote
        book = self.books[instrument.symbol]
        book.long_trail.on_quote(bid)
        book.short_trail.on_quote(-ask)
        crossed: list[int] = []
        book.pop_crossed(bid, ask, crossed)
        fired: list[int] = []
        book.long_trail.pop_fired(bid, fired)
        book.short_trail.pop_fired(-ask, fired)
        if crossed or fired:
            self._fire(quote, crossed, fired, events)
        return accepted(quote, tuple(events))

    def _fire(
        self, quote: QuoteView, crossed: list[int], fired: list[int], events: list[Event]
    ) -> None:
        """Close triggered positions (by key, with the highest-priority reason), then fill
        triggered orders (by key)."""
        priority: dict[int, int] = {}
        order_keys: list[int] = []
        for entry in crossed:
            kind = entry_kind(entry)
            key = entry_key(entry)
            if kind == KIND_ORDER:
                order_keys.append(key)
                continue
            rank = (
                _PRIORITY_LIQUIDATION
                if kind == KIND_LIQUIDATION
                else _PRIORITY_STOP_LOSS
                if kind == KIND_STOP_LOSS
                else _PRIORITY_TAKE_PROFIT
            )
            if priority.get(key, 9) > rank:
                priority[key] = rank
        for key in fired:
            if priority.get(key, 9) > _PRIORITY_TRAILING:
                priority[key] = _PRIORITY_TRAILING
        for key in sorted(priority):
            position = self.positions[key]
            price = quote.bid if position.is_buy else quote.ask
            events.extend(
                self._settle_close(
                    position,
                    position.quantity,
                    price,
                    _PRIORITY_REASONS[priority[key]],
                    quote.seq,
                    quote.ts,
                )
            )
        for key in sorted(set(order_keys)):
            order = self.orders.get(key)
            if order is not None:
                self._fill_order(order, quote, events)

    # ----------------------------------------------------------------- views and queries

    def _unrealized(self, position: Position) -> int | None:
        quote = self.quotes.get(position.symbol)
        if quote is None:
            return None
        move = quote.bid - position.entry if position.is_buy else position.entry - quote.ask
        return self.instruments[position.symbol].pnl_floor_micros(move, position.quantity)

    def _position_view(self, position: Position) -> PositionView:
        is_buy = position.is_buy
        quantity = position.quantity
        entry = position.entry
        tp = position.tp
        sl = position.sl
        trail = position.trail
        unrealized: int | None = None
        quote = self.quotes.get(position.symbol)
        if quote is not None:
            move = quote.bid - entry if is_buy else entry - quote.ask
            unrealized = self.instruments[position.symbol].pnl_floor_micros(move, quantity)
        order_key = position.order_key
        return _new(
            PositionView,
            (
                f"p-{position.key}",
                position.account_id,
                position.symbol,
                _BUY if is_buy else _SELL,
                quantity,
                position.leverage,
                entry,
                position.margin,
                position.maintenance,
                position.liq,
                tp if tp else None,
                sl if sl else None,
                trail if trail else None,
                position.trailing_stop() if trail else None,
                unrealized,
                position.open_seq,
                position.open_ts,
                position.client_order_id,
                f"o-{order_key}" if order_key else None,
            ),
        )

    def _order_view(
        self, order: Order, status: OrderStatus, filled_key: int, reason: Reason | None
    ) -> OrderView:
        if status is not OrderStatus.PENDING:
            check_order_transition(OrderStatus.PENDING, status)
        return OrderView(
            order_id(order.key),
            order.account_id,
            order.symbol,
            _BUY if order.is_buy else _SELL,
            OrderType.LIMIT if order.is_limit else OrderType.STOP,
            order.trigger,
            order.leverage,
            _optional(order.quantity),
            _optional(order.margin),
            _optional(order.tp),
            _optional(order.sl),
            _optional(order.trail),
            _optional(order.expire),
            status,
            position_id(filled_key) if filled_key else None,
            reason,
            order.key,
            order.create_ts,
            order.client_order_id,
        )

    def _summary(self, account: Account) -> AccountSummary:
        unrealized = 0
        for position in account.positions.values():
            pnl = self._unrealized(position)
            if pnl is not None:
                unrealized += pnl
        used = account.used_margin
        equity = account.balance + used + unrealized
        level = (equity * 100_000_000) // used if account.positions and used > 0 else None
        return AccountSummary(
            account.account_id,
            account.balance,
            used,
            unrealized,
            equity,
            account.balance,
            level,
            len(account.positions),
            len(account.orders),
        )

    def account_summary(self, account_id: str) -> AccountSummary | None:
        """Return the API.md account figures, or None for an unknown account."""
        account = self.accounts.get(account_id)
        return None if account is None else self._summary(account)

    def list_positions(self, account_id: str) -> list[PositionView]:
        """Return an account's open positions (oldest first) with live unrealized PnL."""
        account = self.accounts.get(account_id)
        if account is None:
            return []
        return [self._position_view(account.positions[key]) for key in sorted(account.positions)]

    def get_position(self, account_id: str, position_id_text: str) -> PositionView | None:
        """Return one of the account's open positions, None if it has no such position."""
        account = self.accounts.get(account_id)
        if account is None:
            return None
        position = account.positions.get(parse_id(position_id_text, "p-"))
        return None if position is None else self._position_view(position)

    def list_orders(self, account_id: str) -> list[OrderView]:
        """Return an account's pending orders, oldest first."""
        account = self.accounts.get(account_id)
        if account is None:
            return []
        return [
            self._order_view(account.orders[key], OrderStatus.PENDING, 0, None)
            for key in sorted(account.orders)
        ]

    def get_order(self, account_id: str, order_id_text: str) -> OrderView | None:
        """Return one of the account's pending orders, None if it has no such order."""
        account = self.accounts.get(account_id)
        if account is None:
            return None
        order = account.orders.get(parse_id(order_id_text, "o-"))
        return None if order is None else self._order_view(order, OrderStatus.PENDING, 0, None)

    def get_quote(self, symbol: str) -> QuoteView | None:
        """Return the last quote applied for a symbol."""
        return self.quotes.get(symbol)

    def list_quotes(self) -> list[QuoteView]:
        """Return the last quote of every symbol that has one, by symbol."""
        return [self.quotes[symbol] for symbol in sorted(self.quotes)]

    def has_account(self, account_id: str) -> bool:
        """Return True when the account exists."""
        return account_id in self.accounts

    def stats(self) -> CoreStats:
        """Return counts for monitoring."""
        return CoreStats(
            self.last_seq,
            len(self.accounts),
            len(self.positions),
            len(self.orders),
            self.house_balance,
            self.total_deposits,
        )

    def total_user_money(self) -> int:
        """Return the sum over accounts of balance plus used margin."""
        return sum(account.balance + account.used_margin for account in self.accounts.values())

    # ----------------------------------------------------------------- snapshots

    def _small_state(self) -> list[object]:
        """Return everything but the positions as canonical JSON-ready rows."""
        instruments = [
            [
                i.symbol,
                i.tick_units,
                i.price_decimals,
                i.lot_units,
                i.quantity_decimals,
                i.max_leverage,
                i.maintenance_num,
                i.maintenance_den,
            ]
            for i in self.instruments.values()
        ]
        quotes = [[q.symbol, q.bid, q.ask, q.seq, q.ts] for q in self.list_quotes()]
        accounts: list[object] = []
        for account_id in sorted(self.accounts):
            account = self.accounts[account_id]
            receipts = [
                [coid, receipt.kind, receipt.target, encode_payload(receipt.payload)]
                for coid, receipt in sorted(account.receipts.items())
            ]
            accounts.append([account_id, account.balance, account.used_margin, receipts])
        orders = [
            [
                o.key,
                o.account_id,
                o.symbol,
                1 if o.is_buy else 0,
                1 if o.is_limit else 0,
                o.trigger,
                o.leverage,
                o.quantity,
                o.margin,
                o.tp,
                o.sl,
                o.trail,
                o.expire,
                o.create_ts,
                o.client_order_id,
            ]
            for o in (self.orders[key] for key in sorted(self.orders))
        ]
        return [instruments, self.house_balance, self.total_deposits, quotes, accounts, orders]

    def _state_parts(self) -> list[bytes]:
        """Return the canonical encoding of the whole state except `last_seq`, in pieces.

        Layout: JSON length (8 bytes) + JSON of the small state and the positions' client
        order ids + position count (8 bytes) + one integer column per position field, in
        position key order (account and symbol as indexes into the sorted id lists).
        The pieces are hashed or joined by the caller, so the 100 MB of columns of a large
        state are built once and never copied for the digest.
        """
        # Millions of short-lived integers would make the cycle collector rescan the whole
        # heap again and again; pause it (nothing here builds cycles).
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._build_state_parts()
        finally:
            if collecting:
                gc.enable()

    def _build_state_parts(self) -> list[bytes]:
        owners = {account_id: index for index, account_id in enumerate(sorted(self.accounts))}
        symbols = {symbol: index for index, symbol in enumerate(self.instruments)}
        positions = self.positions
        # Positions are mostly created in key order, so this sort is close to linear.
        ordered = [positions[key] for key in sorted(positions)]
        coids = [[p.key, p.client_order_id] for p in ordered if p.client_order_id is not None]
        small = dumps_canonical([*self._small_state(), coids])
        buys = [1 if p.is_buy else 0 for p in ordered]
        # The best price since open lives in the position's trailing level (its root after
        # merges); a level that was never merged is its own root, so skip the call then.
        roots = [p.level if p.level.parent is None else p.level.root() for p in ordered]
        bests = [level.best if buy else -level.best for level, buy in zip(roots, buys, strict=True)]
        columns: list[list[int]] = [
            [p.key for p in ordered],
            [owners[p.account_id] for p in ordered],
            [symbols[p.symbol] for p in ordered],
            buys,
            [p.quantity for p in ordered],
            [p.leverage for p in ordered],
            [p.entry for p in ordered],
            [p.margin for p in ordered],
            [p.tp for p in ordered],
            [p.sl for p in ordered],
            [p.trail for p in ordered],
            bests,
            [p.open_seq for p in ordered],
            [p.open_ts for p in ordered],
            [p.order_key for p in ordered],
        ]
        parts = [len(small).to_bytes(8, "big"), small, len(ordered).to_bytes(8, "big")]
        parts.extend(pack_int_column(column) for column in columns)
        return parts

    def _encode_state(self) -> bytes:
        """Return the canonical encoding of the whole state except `last_seq`."""
        return b"".join(self._state_parts())

    def digest(self) -> str:
        """Return the sha256 hex digest of the canonical state encoding (`last_seq` excluded)."""
        return _digest_parts(self._state_parts())

    def snapshot(self) -> bytes:
        """Return the whole state, `last_seq` included, as bytes for `Core.restore`."""
        return b"".join(self.snapshot_parts())

    def snapshot_parts(self) -> list[bytes]:
        """Return `snapshot()` in pieces (joined they are the snapshot), without the copy.

        The first piece is the header line; `snapshot_digest` takes the pieces too, so a
        caller can hash, checksum and write them on another thread.
        """
        header = dumps_canonical(
            {"format": SNAPSHOT_FORMAT, "version": SNAPSHOT_VERSION, "last_seq": self.last_seq}
        )
        return [header + b"\n", *self._state_parts()]

    def snapshot_with_digest(self) -> tuple[bytes, str]:
        """Return `snapshot()` and `digest()` from one encoding of the state.

        The snapshot is a header line followed by the canonical state encoding, and the
        digest is the sha256 of exactly that encoding, so one pass gives both.
        """
        parts = self.snapshot_parts()
        return b"".join(parts), _digest_parts(parts[1:])

    @staticmethod
    def restore(data: bytes) -> Core:
        """Rebuild a core from `snapshot` bytes; raise `CodecError` for anything else."""
        header_bytes, newline, body = bytes(data).partition(b"\n")
        header = loads_strict(header_bytes)
        if (
            not newline
            or not isinstance(header, dict)
            or header.get("format") != SNAPSHOT_FORMAT
            or type(header.get("version")) is not int
            or header.get("version") not in READABLE_VERSIONS
        ):
            raise CodecError("not a core snapshot of a supported version")
        last_seq = header.get("last_seq")
        if not isinstance(last_seq, int) or isinstance(last_seq, bool) or last_seq < 0:
            raise CodecError("snapshot last_seq must be a non-negative integer")
        # Millions of fresh acyclic objects would make the cycle collector rescan the growing
        # heap again and again; pause it for the bulk build and restore its previous state.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return _restore_state(last_seq, header["version"], body)
        except CodecError:
            raise
        except (TypeError, ValueError, KeyError, IndexError, AssertionError) as error:
            raise CodecError(f"inconsistent snapshot: {error}") from None
        finally:
            if collecting:
                gc.enable()


# Command type -> handler; one dictionary lookup dispatches a command.
_HANDLERS: dict[type, Callable[[Core, Any], Result]] = {
    ApplyQuote: Core._apply_quote,
    OpenPosition: Core._open_position,
    ClosePosition: Core._close_position,
    ModifyPosition: Core._modify_position,
    AddMargin: Core._add_margin,
    PlaceOrder: Core._place_order,
    CancelOrder: Core._cancel_order,
    ExpireOrders: Core._expire_command,
    CreateAccount: Core._create_account,
    Deposit: Core._deposit,
}

SNAPSHOT_FORMAT = "cfd-core-snapshot"
# Version 2 binds each stored client_order_id to its request kind and target; version 1
# snapshots still load (`_restore_receipt` infers the binding).
SNAPSHOT_VERSION = 2
READABLE_VERSIONS = (1, 2)


def _digest_parts(parts: list[bytes]) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part)
    return hasher.hexdigest()


def snapshot_digest(data: bytes | list[bytes]) -> str:
    """Return the `Core.digest` of the state a snapshot holds, without restoring it.

    `data` is `Core.snapshot()` bytes or `Core.snapshot_parts()` pieces. The digest is the
    sha256 of the state encoding after the header line; this does not check that the snapshot
    is valid (`Core.restore` does).
    """
    if isinstance(data, list):
        if not data or not data[0].endswith(b"\n") or data[0].count(b"\n") != 1:
            raise CodecError("snapshot pieces must start with the header line")
        return _digest_parts(data[1:])
    view = memoryview(data)
    newline = bytes(view[:4096]).find(b"\n")
    if newline < 0:
        raise CodecError("not a core snapshot of a supported version")
    return hashlib.sha256(view[newline + 1 :]).hexdigest()


def _restore_receipt(row: list[object], version: int) -> tuple[str, Receipt]:
    """Return a client_order_id and its receipt from a snapshot row of `version`."""
    client_order_id = _text(row[0])
    if version >= 2:
        return client_order_id, Receipt(_text(row[1]), _text(row[2]), decode_payload(row[3]))
    # Version 1 stored the payload alone; its type and content name the request.
    payload = decode_payload(row[1])
    if isinstance(payload, AccountSummary):
        return client_order_id, Receipt("Deposit", "", payload)
    if isinstance(payload, ClosedPosition):
        return client_order_id, Receipt("ClosePosition", payload.position_id, payload)
    if isinstance(payload, OrderView):
        if payload.status is OrderStatus.PENDING:
            return client_order_id, Receipt("PlaceOrder", "", payload)
        return client_order_id, Receipt("CancelOrder", payload.id, payload)
    # A position's own open stored the key on the position; any other stored view is an
    # AddMargin or ModifyPosition of it.
    if payload.client_order_id == client_order_id:
        return client_order_id, Receipt("OpenPosition", "", payload)
    return client_order_id, Receipt(LEGACY_POSITION_EDIT, payload.id, payload)


def _ints(row: list[object], start: int, stop: int) -> list[int]:
    values: list[int] = []
    for value in row[start:stop]:
        if not isinstance(value, int) or isinstance(value, bool):
            raise CodecError("snapshot field must be an integer")
        values.append(value)
    return values


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise CodecError("snapshot field must be a string")
    return value


def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _rows(value: object) -> list[list[object]]:
    if not isinstance(value, list) or not all(isinstance(row, list) for row in value):
        raise CodecError("snapshot section must be a list of rows")
    return value


def _restore_positions(core: Core, columns: list[list[int]], coids: dict[int, str]) -> None:
    """Rebuild positions and their indexes in bulk.

    Positions are visited once, in decreasing best price per symbol and side (the order
    trailing levels must be rebuilt in); heap entries are appended and every heap is
    heapified once at the end.
    """
    owners = sorted(core.accounts)
    symbols = list(core.instruments)
    positions = core.positions
    (keys, owner_ids, symbol_ids, buys, quantities, leverages, entries, margins) = columns[:8]
    (tps, sls, trails, bests, open_seqs, open_tss, order_keys) = columns[8:]
    if len(set(keys)) != len(keys) or (keys and not 0 < min(keys) <= max(keys) <= MAX_KEY):
        raise CodecError("position keys must be distinct and in range")
    if min(quantities, default=1) < 1 or min(margins, default=1) < 1:
        raise CodecError("positions must have a positive quantity and margin")
    if min(owner_ids, default=0) < 0 or min(symbol_ids, default=0) < 0 or not set(buys) <= {0, 1}:
        raise CodecError("position account, symbol or side out of range")
    # Trailing levels are rebuilt per symbol and side from the best price down: sort by the
    # signed best price (the long side's best bid, the short side's negated best ask).
    signed_bests = [best if buy == 1 else -best for best, buy in zip(bests, buys, strict=True)]
    order = sorted(range(len(keys)), key=signed_bests.__getitem__, reverse=True)
    account_list = [core.accounts[owner] for owner in owners]
    instrument_list = [core.instruments[symbol] for symbol in symbols]
    book_list = [core.books[symbol] for symbol in symbols]
    # First pass, in best-price order, touching only three columns: each position's level.
    trail_books = [(book.short_trail, book.long_trail) for book in book_list]
    level_of: list[TrailLevel | None] = [None] * len(keys)
    for index in order:
        trail_book = trail_books[symbol_ids[index]][buys[index]]
        signed = signed_bests[index]
        levels = trail_book.levels
        if levels and levels[-1].best == signed:
            level = levels[-1]
            level.members += 1
        else:
            level = trail_book.restore_level(signed)
        level_of[index] = level
    # Second pass, in key order: the columns are read sequentially, which keeps a million
    # positions from costing a cache miss per field.
    used = [0] * len(account_list)
    price_shift = PRICE_SHIFT
    key_shift = KEY_SHIFT
    trail_shift = TRAIL_KEY_SHIFT
    for (
        key, owner_id, symbol_id, buy_flag, quantity, leverage, entry, margin, tp, sl, trail,
        open_seq, open_ts, order_key, level,
    ) in zip(
        keys, owner_ids, symbol_ids, buys, quantities, leverages, entries, margins, tps, sls,
        trails, open_seqs, open_tss, order_keys, level_of, strict=True,
    ):  # fmt: skip
        assert level is not None
        account = account_list[owner_id]
        used[owner_id] += margin
        instrument = instrument_list[symbol_id]
        buy = buy_flag == 1
        position = Position(
            key,
            account.account_id,
            instrument.symbol,
            buy,
            quantity,
            leverage,
            entry,
            margin,
            open_seq,
            open_ts,
            coids.get(key),
            order_key,
            level,
        )
        position.tp = tp
        position.sl = sl
        position.trail = trail
        positions[key] = position
        account.positions[key] = position
        # As `Core._liquidation_price`, inlined.
        maintenance = 0
        if instrument.maintenance_num:
            maintenance = instrument.maintenance_ceil_micros(entry, quantity)
            position.maintenance = maintenance
        move = instrument.ticks_floor_for_money(margin - maintenance, quantity)
        shifted_key = key << key_shift
        heaps = book_list[symbol_id].heaps
        # As `SymbolBook.push_unordered`, inlined: below-heaps hold the negated price.
        if buy:
            liq = position.liq = entry - move
            heaps[BID_BELOW].append(((-liq) << price_shift) | shifted_key | KIND_LIQUIDATION)
            if sl:
                heaps[BID_BELOW].append(((-sl) << price_shift) | shifted_key | KIND_STOP_LOSS)
            if tp:
                heaps[BID_ABOVE].append((tp << price_shift) | shifted_key | KIND_TAKE_PROFIT)
        else:
            liq = position.liq = entry + move
            heaps[ASK_ABOVE].append((liq << price_shift) | shifted_key | KIND_LIQUIDATION)
            if sl:
                heaps[ASK_ABOVE].append((sl << price_shift) | shifted_key | KIND_STOP_LOSS)
            if tp:
                heaps[ASK_BELOW].append(((-tp) << price_shift) | shifted_key | KIND_TAKE_PROFIT)
        if trail:
            # As `TrailBook.add_trailing_unordered`; `level` is a root while restoring.
            level.heap.append((trail << trail_shift) | key)
    for account, margin_sum in zip(account_list, used, strict=True):
        if account.used_margin != margin_sum:
            raise CodecError(f"account {account.account_id}: used margin != sum of margins")
    for book in core.books.values():
        book.heapify_all()


def _restore_state(last_seq: int, version: int, body: bytes) -> Core:
    small_end = 8 + int.from_bytes(body[:8], "big")
    if len(body) < small_end + 8:
        raise CodecError("truncated snapshot")
    state = loads_strict(body[8:small_end])
    count = int.from_bytes(body[small_end : small_end + 8], "big")
    offset = small_end + 8
    columns: list[list[int]] = []
    for _ in range(15):
        column, offset = unpack_int_column(body, offset, count)
        columns.append(column)
    if offset != len(body):
        raise CodecError("trailing bytes after the snapshot")
    if not isinstance(state, list) or len(state) != 7:
        raise CodecError("snapshot state must have 7 sections")
    instruments: dict[str, Instrument] = {}
    for row in _rows(state[0]):
        symbol = _text(row[0])
        instruments[symbol] = Instrument.create(symbol, *_ints(row, 1, 8))
    core = Core(instruments)
    core.last_seq = last_seq
    house, deposits = _ints(state, 1, 3)
    core.house_balance = house
    core.total_deposits = deposits
    for row in _rows(state[3]):
        symbol = _text(row[0])
        bid, ask, seq, ts = _ints(row, 1, 5)
        core._instrument(symbol)
        core.quotes[symbol] = QuoteView(symbol, bid, ask, seq, ts)
    for row in _rows(state[4]):
        account = Account(_text(row[0]), 0)
        account.balance, account.used_margin = _ints(row, 1, 3)
        for stored in _rows(row[3]):
            client_order_id, receipt = _restore_receipt(stored, version)
            account.receipts[client_order_id] = receipt
        core.accounts[account.account_id] = account
    coids: dict[int, str] = {}
    for row in _rows(state[6]):
        coids[_ints(row, 0, 1)[0]] = _text(row[1])
    _restore_positions(core, columns, coids)
    for row in _rows(state[5]):
        (key,) = _ints(row, 0, 1)
        symbol = _text(row[2])
        core._instrument(symbol)
        account = core.accounts[_text(row[1])]
        is_buy, is_limit, trigger, leverage, quantity, margin, tp, sl, trail, expire, create = (
            _ints(row, 3, 14)
        )
        order = Order(
            key,
            account.account_id,
            symbol,
            is_buy == 1,
            is_limit == 1,
            trigger,
            leverage,
            quantity,
            margin,
            tp,
            sl,
            trail,
            expire,
            create,
            _optional_text(row[14]),
        )
        core.orders[key] = order
        account.orders[key] = order
        core._index_order(order)
    if core.total_user_money() + core.house_balance != core.total_deposits:
        raise CodecError("snapshot does not conserve money")
    return core
