"""Canonical byte encodings: commands for the journal, result payloads for snapshots.

A command is compact JSON ``[tag, field, ...]`` in the command's field order: integers,
strings, null, and enum values as their strings. Decoding checks the tag, the field count and
every field's type, so a corrupt or foreign record raises `CodecError` instead of becoming a
command. The encoding is canonical: equal commands give equal bytes.

A record that gained fields keeps its older rows readable: its trailing fields have defaults
(`_TRAILING_DEFAULTS`), the encoding leaves out a trailing run equal to them, and decoding
fills in what a row leaves out. So an isolated hedging account's CreateAccount and summary
encode as they did before margin and position modes existed.
"""

from __future__ import annotations

import json
import sys
from array import array
from enum import Enum
from typing import cast

from .commands import (
    DEFAULT_MARGIN_CALL_LEVEL,
    DEFAULT_STOP_OUT_LEVEL,
    AddMargin,
    ApplyQuote,
    CancelOrder,
    ChargeSwaps,
    ClosePosition,
    Command,
    CreateAccount,
    Deposit,
    DepositAsset,
    ExpireOrders,
    ModifyOrder,
    ModifyPosition,
    OpenPosition,
    PlaceOrder,
    ReceiveTransfer,
    SendTransfer,
    SettleTransfer,
    TransferFunds,
)
from .enums import CloseReason, MarginMode, OrderStatus, OrderType, PositionMode, Side
from .reasons import Reason
from .spot.commands import CancelSpotOrder, PlaceSpotOrder
from .spot.enums import SpotOrderType, TimeInForce, TransferDirection
from .views import AccountSummary, ClosedPosition, OrderView, PositionView

MAX_RECORD_BYTES = 1 << 16

Payload = PositionView | ClosedPosition | OrderView | AccountSummary


class CodecError(ValueError):
    """Bytes that do not decode to a valid command, payload or snapshot."""


class FieldType:
    """One kind of record field: how a value is written to JSON and read back.

    Both directions live here, so a record's encoding and decoding come from its one schema in
    `_COMMANDS` or `_PAYLOADS`. `plain` is the JSON type an already-valid value has (int or
    str), which lets decoding skip the full check for the common fields.
    """

    __slots__ = ("optional", "plain", "what")

    def __init__(self, what: str, optional: bool, plain: type | None) -> None:
        self.what = what
        self.optional = optional
        self.plain = plain

    def encode(self, value: object, where: str) -> object:
        """Return the JSON form of a field value; raise `CodecError` for a wrong one."""
        if value is None and self.optional:
            return None
        return self._encode(value, where)

    def decode(self, value: object, where: str) -> object:
        """Return the field value of its JSON form; raise `CodecError` for a wrong one."""
        if value is None and self.optional:
            return None
        return self._decode(value, where)

    def _encode(self, value: object, where: str) -> object:
        if self.plain is not None and type(value) is self.plain:
            return value
        if self.plain is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if self.plain is str and isinstance(value, str):
            return value
        raise CodecError(f"{where} must be {self.what}")

    def _decode(self, value: object, where: str) -> object:
        return self._encode(value, where)


class EnumField(FieldType):
    """An enum field, written as its member's value."""

    __slots__ = ("enum_type",)

    def __init__(self, enum_type: type[Enum], optional: bool = False) -> None:
        super().__init__(f"a {enum_type.__name__}", optional, None)
        self.enum_type = enum_type

    def _encode(self, value: object, where: str) -> object:
        if isinstance(value, Enum) and value in self.enum_type:
            return value.value
        raise CodecError(f"{where} must be {self.what}")

    def _decode(self, value: object, where: str) -> object:
        if isinstance(value, str):
            try:
                return self.enum_type(value)
            except ValueError:
                pass
        raise CodecError(f"{where} must be {self.what} value")


class PositionViewField(FieldType):
    """An optional position view nested in a payload, written as its own payload row."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("a position view", True, None)

    def _encode(self, value: object, where: str) -> object:
        if isinstance(value, PositionView):
            return encode_payload(value)
        raise CodecError(f"{where} must be {self.what}")

    def _decode(self, value: object, where: str) -> object:
        payload = decode_payload(value)
        if not isinstance(payload, PositionView):
            raise CodecError(f"{where} must be {self.what}")
        return payload


INT = FieldType("an integer", False, int)
OPT_INT = FieldType("an integer", True, int)
STR = FieldType("a string", False, str)
OPT_STR = FieldType("a string", True, str)
BOOL = FieldType("a boolean", False, bool)
SIDE = EnumField(Side)
ORDER_TYPE = EnumField(OrderType)
ORDER_STATUS = EnumField(OrderStatus)
CLOSE_REASON = EnumField(CloseReason)
OPT_REASON = EnumField(Reason, optional=True)
OPT_POSITION_VIEW = PositionViewField()
SPOT_ORDER_TYPE = EnumField(SpotOrderType)
TIME_IN_FORCE = EnumField(TimeInForce)
TRANSFER_DIRECTION = EnumField(TransferDirection)
MARGIN_MODE = EnumField(MarginMode)
POSITION_MODE = EnumField(PositionMode)

Schema = tuple[FieldType, ...]

# Every record the codec writes, with its fields' types in the record's field order; the tag
# of a record is its class name.
_COMMANDS: dict[str, tuple[type, Schema]] = {
    record.__name__: (record, schema)
    for record, schema in (
        (CreateAccount, (INT, INT, STR, INT, MARGIN_MODE, INT, INT, POSITION_MODE)),
        (Deposit, (INT, INT, STR, INT, OPT_STR)),
        (ApplyQuote, (INT, INT, STR, INT, INT)),
        (OpenPosition, (INT, INT, STR, STR, SIDE, INT, *[OPT_INT] * 7, OPT_STR)),
        (ClosePosition, (INT, INT, STR, STR, OPT_INT, OPT_STR)),
        (AddMargin, (INT, INT, STR, STR, INT, OPT_STR)),
        (ModifyPosition, (INT, INT, STR, STR, OPT_INT, OPT_INT, OPT_INT, OPT_STR)),
        (PlaceOrder, (INT, INT, STR, STR, SIDE, ORDER_TYPE, INT, INT, *[OPT_INT] * 6, OPT_STR)),
        (CancelOrder, (INT, INT, STR, STR, OPT_STR)),
        (ExpireOrders, (INT, INT)),
        (ChargeSwaps, (INT, INT, INT, INT, INT)),
        (TransferFunds, (INT, INT, STR, INT, TRANSFER_DIRECTION, OPT_STR)),
        (PlaceSpotOrder, (INT, INT, STR, STR, SIDE, SPOT_ORDER_TYPE, *[OPT_INT] * 3,
                          TIME_IN_FORCE, BOOL, OPT_STR)),
        (CancelSpotOrder, (INT, INT, STR, STR, OPT_STR)),
        (DepositAsset, (INT, INT, STR, STR, INT, OPT_STR)),
        (ModifyOrder, (INT, INT, STR, STR, *[OPT_INT] * 7, OPT_STR)),
        (SendTransfer, (INT, INT, STR, STR, INT, TRANSFER_DIRECTION, INT)),
        (ReceiveTransfer, (INT, INT, STR, STR, INT, TRANSFER_DIRECTION, INT)),
        (SettleTransfer, (INT, INT, STR)),
    )
}
_PAYLOADS: dict[str, tuple[type, Schema]] = {
    record.__name__: (record, schema)
    for record, schema in (
        (PositionView, (STR, STR, STR, SIDE, *[INT] * 6, *[OPT_INT] * 5, INT, INT, OPT_STR,
                        OPT_STR, INT, INT)),
        (ClosedPosition, (STR, STR, STR, SIDE, *[INT] * 8, CLOSE_REASON, INT, INT, INT, OPT_STR,
                          OPT_POSITION_VIEW, INT, INT)),
        (OrderView, (STR, STR, STR, SIDE, ORDER_TYPE, INT, INT, *[OPT_INT] * 6, ORDER_STATUS,
                     OPT_STR, OPT_REASON, INT, INT, OPT_STR)),
        (AccountSummary, (STR, INT, INT, INT, INT, INT, OPT_INT, INT, INT, MARGIN_MODE, INT,
                          INT, OPT_INT, BOOL, POSITION_MODE, INT, INT)),
    )
}  # fmt: skip
# The defaults of the fields records gained after their first version, last field last.
_TRAILING_DEFAULTS: dict[str, tuple[object, ...]] = {
    "CreateAccount": (
        MarginMode.ISOLATED, DEFAULT_MARGIN_CALL_LEVEL, DEFAULT_STOP_OUT_LEVEL,
        PositionMode.HEDGING,
    ),
    "AccountSummary": (MarginMode.ISOLATED, 0, 0, None, False, PositionMode.HEDGING, 0, 0),
    "PositionView": (0, 0),
    "ClosedPosition": (0, 0),
}  # fmt: skip


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


def _encode_fields(tag: str, schema: Schema, values: tuple[object, ...]) -> list[object]:
    if len(values) != len(schema):
        raise CodecError(f"{tag} has {len(values)} fields, expected {len(schema)}")
    count = len(schema)
    defaults = _TRAILING_DEFAULTS.get(tag)
    if defaults is not None:
        first = count - len(defaults)
        while count > first and _same(values[count - 1], defaults[count - 1 - first]):
            count -= 1
    row: list[object] = [tag]
    for index in range(count):
        row.append(schema[index].encode(values[index], f"{tag} field {index}"))
    return row


def _same(value: object, default: object) -> bool:
    """Return True when a field value is its default (a bool is never an int's default)."""
    return type(value) is type(default) and value == default


def _decode_record(row: object, records: dict[str, tuple[type, Schema]]) -> object:
    """Return the record a ``[tag, field, ...]`` row holds, every field checked."""
    if not isinstance(row, list) or not row or not isinstance(row[0], str):
        raise CodecError("record must be a list starting with a type tag")
    tag = row[0]
    record = records.get(tag)
    if record is None:
        raise CodecError(f"unknown record type {tag[:40]!r}")
    cls, schema = record
    values = row[1:]
    if len(values) != len(schema):
        defaults = _TRAILING_DEFAULTS.get(tag, ())
        missing = len(schema) - len(values)
        if not 0 < missing <= len(defaults):
            raise CodecError(f"{tag} has {len(values)} fields, expected {len(schema)}")
        values.extend(defaults[len(defaults) - missing :])
    for index, field in enumerate(schema):
        value = values[index]
        # Fast path: an integer or string field that already has its JSON type.
        plain = field.plain
        if plain is not None and (type(value) is plain or (value is None and field.optional)):
            continue
        values[index] = field.decode(value, f"{tag} field {index}")
    # Every value now has its field's type, in the class's field order: build the tuple
    # directly (NamedTuple's Python-level constructor would check nothing more).
    return tuple.__new__(cls, values)


def encode_command(command: Command) -> bytes:
    """Return the canonical bytes of a command; raise `CodecError` for a malformed one."""
    tag = type(command).__name__
    record = _COMMANDS.get(tag)
    if record is None or type(command) is not record[0]:
        raise CodecError(f"not a core command: {tag}")
    return dumps_canonical(_encode_fields(tag, record[1], tuple(command)))


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
    return cast(Command, _decode_record(loads_strict(text), _COMMANDS))


def encode_payload(payload: Payload) -> list[object]:
    """Return a result payload as a JSON-ready list ``[tag, field, ...]``."""
    tag = type(payload).__name__
    record = _PAYLOADS.get(tag)
    if record is None or type(payload) is not record[0]:
        raise CodecError(f"not a storable payload: {tag}")
    return _encode_fields(tag, record[1], tuple(payload))


def decode_payload(row: object) -> Payload:
    """Rebuild a payload from `encode_payload` output."""
    return cast(Payload, _decode_record(row, _PAYLOADS))


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
