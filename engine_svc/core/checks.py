"""Input checks shared by every command: each failure names its reason and its field.

A value of the right type that is out of range or inconsistent raises `RejectionError`, which
`Core.apply` turns into a rejected `Result` (nothing changed); a value of the wrong Python type
raises TypeError (a caller bug, see `Core.apply`).
"""

from __future__ import annotations

from typing import Final

from .enums import Side
from .instruments import Instrument
from .reasons import Reason
from .units import MAX_MONEY_MICROS, MAX_PRICE_TICKS, MAX_QUANTITY_LOTS

MAX_CLIENT_ORDER_ID: Final = 64
MAX_ACCOUNT_ID: Final = 128
MAX_SLIPPAGE_BPS: Final = 10_000_000
MAX_TIME_NS: Final = (1 << 63) - 1

# Enum members bound once: attribute access on an enum class is comparatively slow.
BUY: Final = Side.BUY
SELL: Final = Side.SELL


class RejectionError(Exception):
    """Raised inside a command handler to reject it before anything changed.

    `field` is the command field at fault ("" when the command as a whole is), so the
    service can name it without reading the message.
    """

    def __init__(self, reason: Reason, message: str, field: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.field = field


def type_error(name: str, expected: str, value: object) -> TypeError:
    """Return the TypeError for a field that does not have its declared type."""
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
        raise type_error("id", "str", text)
    if not text.startswith(prefix) or len(text) > 24:
        return -1
    digits = text[len(prefix) :]
    if not digits.isdigit() or not digits.isascii() or (digits[0] == "0" and digits != "0"):
        return -1
    return int(digits)


def optional(value: int) -> int | None:
    """Return a state value with 0 for absent as a view value with None for absent."""
    return value if value != 0 else None


def check_int(value: object, name: str, low: int, high: int) -> int:
    """Return an integer field within low..high; reject it otherwise."""
    if isinstance(value, bool):
        raise RejectionError(
            Reason.VALIDATION_FAILED, f"{name} must be a number, not a bool", name
        )
    if not isinstance(value, int):
        raise type_error(name, "int", value)
    if value < low or value > high:
        raise RejectionError(Reason.VALIDATION_FAILED, f"{name} is out of range", name)
    return value


def check_optional_price(value: object, name: str, allow_clear: bool) -> int | None:
    """Return an optional price or distance (0 allowed only with `allow_clear`)."""
    if value is None:
        return None
    low = 0 if allow_clear else 1
    return check_int(value, name, low, MAX_PRICE_TICKS)


def check_account_id(account_id: object) -> str:
    """Return a well-formed account id for a new account."""
    if not isinstance(account_id, str):
        raise type_error("account_id", "str", account_id)
    if (
        not 0 < len(account_id) <= MAX_ACCOUNT_ID
        or not account_id.isprintable()
        or " " in account_id
    ):
        raise RejectionError(
            Reason.VALIDATION_FAILED, "account_id must be 1-128 visible chars", "account_id"
        )
    return account_id


def check_client_order_id(client_order_id: object) -> str:
    """Return a well-formed client_order_id."""
    if not isinstance(client_order_id, str):
        raise type_error("client_order_id", "str or None", client_order_id)
    if not 0 < len(client_order_id) <= MAX_CLIENT_ORDER_ID:
        raise RejectionError(
            Reason.VALIDATION_FAILED,
            "client_order_id must be 1-64 characters",
            "client_order_id",
        )
    return client_order_id


def check_instrument(instruments: dict[str, Instrument], symbol: object) -> Instrument:
    """Return the instrument of a symbol; reject an unknown one."""
    if not isinstance(symbol, str):
        raise type_error("symbol", "str", symbol)
    instrument = instruments.get(symbol)
    if instrument is None:
        raise RejectionError(Reason.UNKNOWN_SYMBOL, f"unknown symbol {symbol!r}", "symbol")
    return instrument


def check_side(side: object) -> bool:
    """Return True for a buy and False for a sell."""
    if side is BUY:
        return True
    if side is SELL:
        return False
    raise type_error("side", "a Side", side)


def check_leverage(leverage: object, instrument: Instrument) -> int:
    """Return a leverage within the instrument's range."""
    if not isinstance(leverage, int):
        raise type_error("leverage", "int", leverage)
    if isinstance(leverage, bool) or not 1 <= leverage <= instrument.max_leverage:
        raise RejectionError(
            Reason.INVALID_LEVERAGE,
            f"leverage must be an integer within 1..{instrument.max_leverage}",
            "leverage",
        )
    return leverage


def check_lots(lots: int, too_small: str) -> int:
    """Return a lot count between one lot step and the largest quantity."""
    if lots < 1:
        raise RejectionError(Reason.QUANTITY_TOO_SMALL, too_small, "quantity")
    if lots > MAX_QUANTITY_LOTS:
        raise RejectionError(Reason.VALIDATION_FAILED, "quantity is too large", "quantity")
    return lots


def check_sizing(quantity: object, margin: object) -> tuple[int, int]:
    """Return (lots, 0) for a quantity or (0, margin) for a margin budget."""
    if (quantity is None) == (margin is None):
        raise RejectionError(
            Reason.VALIDATION_FAILED, "give exactly one of quantity and margin", "quantity"
        )
    if quantity is not None:
        lots = check_int(quantity, "quantity", -(2**63), 2**63)
        return check_lots(lots, "quantity is below the lot step"), 0
    return 0, check_int(margin, "margin", 1, MAX_MONEY_MICROS)


def check_stops(is_buy: bool, reference: int, tp: int, sl: int) -> None:
    """Require SL < reference < TP for a buy and TP < reference < SL for a sell."""
    if is_buy:
        if (sl and sl >= reference) or (tp and tp <= reference):
            raise RejectionError(
                Reason.INVALID_STOPS,
                "a buy needs stop loss < price < take profit",
                "stop_loss" if sl and sl >= reference else "take_profit",
            )
    elif (tp and tp >= reference) or (sl and sl <= reference):
        raise RejectionError(
            Reason.INVALID_STOPS,
            "a sell needs take profit < price < stop loss",
            "take_profit" if tp and tp >= reference else "stop_loss",
        )
