"""Canonical byte encodings: commands for the journal, result payloads for snapshots.

A command is compact JSON ``[tag, field, ...]`` in the command's field order: integers,
strings, null, and enum values as their strings. Decoding checks the tag, the field count and
every field's type, so a corrupt or foreign record raises `CodecError` instead of becoming a
command. The encoding is canonical: equal commands give equal bytes.
"""

from __future__ import annotations

import json
import sys
from array import array
from enum import Enum

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
from .enums import CloseReason, OrderStatus, OrderType, Side
from .reasons import Reason
from .views import AccountSummary, ClosedPosition, OrderView, PositionView

MAX_RECORD_BYTES = 1 << 16


class CodecError(ValueError):
    """Bytes that do not decode to a valid command, payload or snapshot."""


# Field type codes of the schemas below.
INT = 0
OPT_INT = 1
STR = 2
OPT_STR = 3
SIDE = 4
ORDER_TYPE = 5
ORDER_STATUS = 6
CLOSE_REASON = 7
OPT_REASON = 8
OPT_POSITION_VIEW = 9

_COMMAND_SCHEMAS: dict[str, tuple[int, ...]] = {
    "CreateAccount": (INT, INT, STR, INT),
    "Deposit": (INT, INT, STR, INT, OPT_STR),
    "ApplyQuote": (INT, INT, STR, INT, INT),
    "OpenPosition": (
        INT,
        INT,
        STR,
        STR,
        SIDE,
        INT,
        OPT_INT,
        OPT_INT,
        OPT_INT,
        OPT_INT,
        OPT_INT,
        OPT_INT,
        OPT_INT,
        OPT_STR,
    ),
    "ClosePosition": (INT, INT, STR, STR, OPT_INT, OPT_STR),
    "AddMargin": (INT, INT, STR, STR, INT, OPT_STR),
    "ModifyPosition": (INT, INT, STR, STR, OPT_INT, OPT_INT, OPT_INT, OPT_STR),
    "PlaceOrder": (
        INT,
        INT,
        STR,
        STR,
        SIDE,
        ORDER_TYPE,
        INT,
        INT,
        OPT_INT,
        OPT_INT,
        OPT_INT,
        OPT_INT,
        OPT_INT,
        OPT_INT,
        OPT_STR,
    ),
    "CancelOrder": (INT, INT, STR, STR, OPT_STR),
    "ExpireOrders": (INT, INT),
}

_PAYLOAD_SCHEMAS: dict[str, tuple[int, ...]] = {
    "PositionView": (
        STR,
        STR,
        STR,
        SIDE,
        INT,
        INT,
        INT,
        INT,
        INT,
        INT,
        OPT_INT,
        OPT_INT,
        OPT_INT,
        OPT_INT,
        OPT_INT,
        INT,
        INT,
        OPT_STR,
        OPT_STR,
    ),
    "ClosedPosition": (
        STR,
        STR,
        STR,
        SIDE,
        INT,
        INT,
        INT,
        INT,
        INT,
        INT,
        INT,
        INT,
        CLOSE_REASON,
        INT,
        INT,
        INT,
        OPT_STR,
        OPT_POSITION_VIEW,
    ),
    "OrderView": (
        STR,
        STR,
        STR,
        SIDE,
        ORDER_TYPE,
        INT,
        INT,
        OPT_INT,
        OPT_INT,
        OPT_INT,
        OPT_INT,
        OPT_INT,
        OPT_INT,
        ORDER_STATUS,
        OPT_STR,
        OPT_REASON,
        INT,
        INT,
        OPT_STR,
    ),
    "AccountSummary": (STR, INT, INT, INT, INT, INT, OPT_INT, INT, INT),
}


def _reject_constant(name: str) -> object:
    raise CodecError(f"non-finite number {name} in record")


def _reject_fraction(text: str) -> object:
    raise CodecError(f"fraction {text} in record; only integers are allowed")


# Built once: `json.loads` with hooks would build a new decoder for every record.
_STRICT_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_reject_fraction)


def loads_strict(data: bytes | str) -> object:
    """Parse JSON that may hold only integers, strings, null, booleans, arrays and objects."""
    try:
        text = data if isinstance(data, str) else bytes(data).decode("utf-8")
        return _STRICT_DECODER.decode(text)
    except UnicodeDecodeError as error:
        raise CodecError(f"malformed record: {error}") from None
    except CodecError:
        raise
    except (ValueError, RecursionError) as error:
        raise CodecError(f"malformed record: {error}") from None


def dumps_canonical(value: object) -> bytes:
    """Serialize JSON-ready data compactly and deterministically."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _encode_value(code: int, value: object, where: str) -> object:
    if code in (INT, OPT_INT):
        if value is None and code == OPT_INT:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise CodecError(f"{where} must be an integer")
    if code in (STR, OPT_STR):
        if value is None and code == OPT_STR:
            return None
        if isinstance(value, str):
            return value
        raise CodecError(f"{where} must be a string")
    if code == OPT_POSITION_VIEW:
        if value is None:
            return None
        if isinstance(value, PositionView):
            return encode_payload(value)
        raise CodecError(f"{where} must be a position view")
    if value is None and code == OPT_REASON:
        return None
    if isinstance(value, Enum) and value in _ENUM_TYPES[code]:
        return value.value
    raise CodecError(f"{where} must be a {_ENUM_TYPES[code].__name__}")


def _decode_value(code: int, value: object, where: str) -> object:
    if code in (INT, OPT_INT):
        if value is None and code == OPT_INT:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise CodecError(f"{where} must be an integer")
    if code in (STR, OPT_STR):
        if value is None and code == OPT_STR:
            return None
        if isinstance(value, str):
            return value
        raise CodecError(f"{where} must be a string")
    if code == OPT_POSITION_VIEW:
        if value is None:
            return None
        payload = decode_payload(value)
        if not isinstance(payload, PositionView):
            raise CodecError(f"{where} must be a position view")
        return payload
    if value is None and code == OPT_REASON:
        return None
    enum_type = _ENUM_TYPES[code]
    if isinstance(value, str):
        try:
            return enum_type(value)
        except ValueError:
            pass
    raise CodecError(f"{where} must be a {enum_type.__name__} value")


_ENUM_TYPES: dict[int, type[Enum]] = {
    SIDE: Side,
    ORDER_TYPE: OrderType,
    ORDER_STATUS: OrderStatus,
    CLOSE_REASON: CloseReason,
    OPT_REASON: Reason,
}


def _encode_fields(tag: str, schema: tuple[int, ...], values: tuple[object, ...]) -> list[object]:
    if len(values) != len(schema):
        raise CodecError(f"{tag} has {len(values)} fields, expected {len(schema)}")
    row: list[object] = [tag]
    for index, code in enumerate(schema):
        row.append(_encode_value(code, values[index], f"{tag} field {index}"))
    return row


def _decode_fields(row: object, schemas: dict[str, tuple[int, ...]]) -> tuple[str, list[object]]:
    if not isinstance(row, list) or not row or not isinstance(row[0], str):
        raise CodecError("record must be a list starting with a type tag")
    tag = row[0]
    schema = schemas.get(tag)
    if schema is None:
        raise CodecError(f"unknown record type {tag[:40]!r}")
    if len(row) != len(schema) + 1:
        raise CodecError(f"{tag} has {len(row) - 1} fields, expected {len(schema)}")
    values = row[1:]
    # Fast path for the common codes; anything else (and every failure) goes through
    # `_decode_value`, which converts enums and raises the descriptive error.
    for index, code in enumerate(schema):
        value = values[index]
        if code == INT:
            valid = type(value) is int
        elif code == OPT_INT:
            valid = value is None or type(value) is int
        elif code == STR:
            valid = type(value) is str
        elif code == OPT_STR:
            valid = value is None or type(value) is str
        else:
            valid = False
        if not valid:
            values[index] = _decode_value(code, value, f"{tag} field {index}")
    return tag, values


def encode_command(command: Command) -> bytes:
    """Return the canonical bytes of a command; raise `CodecError` for a malformed one."""
    tag = type(command).__name__
    schema = _COMMAND_SCHEMAS.get(tag)
    if schema is None or not isinstance(command, tuple):
        raise CodecError(f"not a core command: {tag}")
    return dumps_canonical(_encode_fields(tag, schema, tuple(command)))


def decode_command(data: bytes) -> Command:
    """Rebuild a command from `encode_command` bytes; raise `CodecError` for anything else."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CodecError("a command record must be bytes")
    if len(data) > MAX_RECORD_BYTES:
        raise CodecError("command record is too large")
    try:
        text = bytes(data).decode("ascii")
    except UnicodeDecodeError:
        raise CodecError("command record is not ASCII JSON") from None
    tag, v = _decode_fields(loads_strict(text), _COMMAND_SCHEMAS)
    # The schemas above fixed every value's type, so the fields build the command directly
    # (tuple.__new__ skips NamedTuple's Python-level __new__; the field order is the schema's).
    if tag == "ApplyQuote":
        return _new(ApplyQuote, v)
    if tag == "OpenPosition":
        return _new(OpenPosition, v)
    if tag == "ClosePosition":
        return _new(ClosePosition, v)
    if tag == "AddMargin":
        return _new(AddMargin, v)
    if tag == "ModifyPosition":
        return _new(ModifyPosition, v)
    if tag == "PlaceOrder":
        return _new(PlaceOrder, v)
    if tag == "CancelOrder":
        return _new(CancelOrder, v)
    if tag == "ExpireOrders":
        return _new(ExpireOrders, v)
    if tag == "CreateAccount":
        return _new(CreateAccount, v)
    return _new(Deposit, v)


_new = tuple.__new__


Payload = PositionView | ClosedPosition | OrderView | AccountSummary


def encode_payload(payload: Payload) -> list[object]:
    """Return a result payload as a JSON-ready list ``[tag, field, ...]``."""
    tag = type(payload).__name__
    schema = _PAYLOAD_SCHEMAS.get(tag)
    if schema is None or not isinstance(payload, tuple):
        raise CodecError(f"not a storable payload: {tag}")
    return _encode_fields(tag, schema, tuple(payload))


def decode_payload(row: object) -> Payload:
    """Rebuild a payload from `encode_payload` output."""
    tag, values = _decode_fields(row, _PAYLOAD_SCHEMAS)
    if tag == "PositionView":
        return PositionView._make(values)
    if tag == "ClosedPosition":
        return ClosedPosition._make(values)
    if tag == "OrderView":
        return OrderView._make(values)
    return AccountSummary._make(values)


def pack_int_column(values: list[int]) -> bytes:
    """Encode a list of integers: int64 little-endian when they fit, JSON otherwise.

    The result is ``kind (1 byte) + length (8 bytes, big-endian) + body``.
    """
    try:
        packed = array("q", values)
    except OverflowError:
        body = dumps_canonical(values)
        return b"J" + len(body).to_bytes(8, "big") + body
    if sys.byteorder != "little":
        packed.byteswap()
    body = packed.tobytes()
    return b"Q" + len(body).to_bytes(8, "big") + body


def unpack_int_column(data: bytes, offset: int, count: int) -> tuple[list[int], int]:
    """Decode a `pack_int_column` block of `count` integers at `offset`; return it and the end."""
    header_end = offset + 9
    if header_end > len(data):
        raise CodecError("truncated integer column")
    kind = data[offset : offset + 1]
    end = header_end + int.from_bytes(data[offset + 1 : header_end], "big")
    if end > len(data):
        raise CodecError("truncated integer column")
    if kind == b"Q":
        if end - header_end != 8 * count:
            raise CodecError("integer column has the wrong length")
        packed = array("q")
        packed.frombytes(data[header_end:end])
        if sys.byteorder != "little":
            packed.byteswap()
        return packed.tolist(), end
    if kind == b"J":
        values = loads_strict(data[header_end:end])
        if (
            not isinstance(values, list)
            or len(values) != count
            or not all(type(value) is int for value in values)
        ):
            raise CodecError("integer column is malformed")
        return values, end
    raise CodecError("unknown integer column kind")
