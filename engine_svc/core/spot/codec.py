"""Canonical JSON rows for spot commands (the journal) and spot views (stored results).

A record is ``[tag, field, ...]`` in the type's field order: integers, strings, booleans,
null, and enum members as their values. Decoding checks the tag, the field count and every
field's type, so a corrupt or foreign record raises `CodecError` instead of becoming a value.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from ..codec import CodecError, dumps_canonical, loads_strict
from ..enums import Side
from ..reasons import Reason
from .commands import CancelSpotOrder, CreditWallet, DebitWallet, PlaceSpotOrder, SpotCommand
from .enums import Liquidity, SpotOrderStatus, SpotOrderType, TimeInForce
from .views import BalanceView, SpotFillView, SpotOrderView, SpotPlacement

MAX_RECORD_BYTES: Final = 1 << 16

# Field kinds: a plain code or an enum type (``Reason`` fields are optional).
INT: Final = "int"
OPT_INT: Final = "int?"
STR: Final = "str"
OPT_STR: Final = "str?"
BOOL: Final = "bool"

Schema = tuple[str | type[Enum], ...]

COMMAND_SCHEMAS: Final[dict[str, Schema]] = {
    "PlaceSpotOrder": (
        INT, INT, STR, STR, Side, SpotOrderType, OPT_INT, OPT_INT, OPT_INT, TimeInForce, BOOL,
        OPT_STR,
    ),
    "CancelSpotOrder": (INT, INT, STR, STR, OPT_STR),
    "CreditWallet": (INT, INT, STR, STR, INT, OPT_STR),
    "DebitWallet": (INT, INT, STR, STR, INT, OPT_STR),
}  # fmt: skip

VIEW_SCHEMAS: Final[dict[str, Schema]] = {
    "SpotOrderView": (
        STR, STR, STR, Side, SpotOrderType, OPT_INT, OPT_INT, OPT_INT, INT, INT, INT, INT, INT,
        TimeInForce, BOOL, SpotOrderStatus, Reason, INT, INT, INT, OPT_STR,
    ),
    "SpotFillView": (
        STR, STR, STR, STR, STR, Side, INT, INT, INT, INT, Liquidity, INT, INT,
    ),
    "BalanceView": (STR, INT, INT),
}  # fmt: skip


def _check(kind: str | type[Enum], value: object, where: str) -> object:
    """Return `value` as a field of `kind` (enum values become members) or raise."""
    if kind in (INT, OPT_INT):
        if type(value) is int or (value is None and kind == OPT_INT):
            return value
        raise CodecError(f"{where} must be an integer")
    if kind in (STR, OPT_STR):
        if type(value) is str or (value is None and kind == OPT_STR):
            return value
        raise CodecError(f"{where} must be a string")
    if kind == BOOL:
        if type(value) is bool:
            return value
        raise CodecError(f"{where} must be a boolean")
    assert not isinstance(kind, str)
    if isinstance(value, kind):
        return value
    if value is None and kind is Reason:
        return None
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            pass
    raise CodecError(f"{where} must be a {kind.__name__} value")


def encode_row(tag: str, schema: Schema, values: tuple[object, ...]) -> list[object]:
    """Return ``[tag, field, ...]`` after checking every field against the schema."""
    if len(values) != len(schema):
        raise CodecError(f"{tag} has {len(values)} fields, expected {len(schema)}")
    row: list[object] = [tag]
    for index, kind in enumerate(schema):
        value = _check(kind, values[index], f"{tag} field {index}")
        row.append(value.value if isinstance(value, Enum) else value)
    return row


def decode_row(row: object, schemas: dict[str, Schema]) -> tuple[str, list[object]]:
    """Return the tag and the checked fields of an `encode_row` row."""
    if not isinstance(row, list) or not row or not isinstance(row[0], str):
        raise CodecError("record must be a list starting with a type tag")
    tag = row[0]
    schema = schemas.get(tag)
    if schema is None:
        raise CodecError(f"unknown record type {tag[:40]!r}")
    if len(row) != len(schema) + 1:
        raise CodecError(f"{tag} has {len(row) - 1} fields, expected {len(schema)}")
    return tag, [_check(kind, row[i + 1], f"{tag} field {i}") for i, kind in enumerate(schema)]


def encode_spot_command(command: SpotCommand) -> bytes:
    """Return the canonical bytes of a spot command; raise `CodecError` for a malformed one."""
    tag = type(command).__name__
    schema = COMMAND_SCHEMAS.get(tag)
    if schema is None or not isinstance(command, tuple):
        raise CodecError(f"not a spot command: {tag}")
    return dumps_canonical(encode_row(tag, schema, tuple(command)))


def decode_spot_command(data: bytes) -> SpotCommand:
    """Rebuild a command from `encode_spot_command` bytes; raise `CodecError` otherwise."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CodecError("a command record must be bytes")
    if len(data) > MAX_RECORD_BYTES:
        raise CodecError("command record is too large")
    tag, values = decode_row(loads_strict(bytes(data)), COMMAND_SCHEMAS)
    if tag == "PlaceSpotOrder":
        return PlaceSpotOrder._make(values)
    if tag == "CancelSpotOrder":
        return CancelSpotOrder._make(values)
    if tag == "CreditWallet":
        return CreditWallet._make(values)
    return DebitWallet._make(values)


StoredPayload = SpotPlacement | SpotOrderView | BalanceView


def encode_payload(payload: StoredPayload) -> list[object]:
    """Return a stored result payload as a JSON-ready row."""
    if isinstance(payload, SpotPlacement):
        order = encode_payload(payload.order)
        fills = [encode_row("SpotFillView", VIEW_SCHEMAS["SpotFillView"], f) for f in payload.fills]
        return ["SpotPlacement", order, fills]
    tag = type(payload).__name__
    return encode_row(tag, VIEW_SCHEMAS[tag], tuple(payload))


def decode_payload(row: object) -> StoredPayload:
    """Rebuild a payload from `encode_payload` output; raise `CodecError` otherwise."""
    if isinstance(row, list) and len(row) == 3 and row[0] == "SpotPlacement":
        order = decode_payload(row[1])
        if not isinstance(order, SpotOrderView) or not isinstance(row[2], list):
            raise CodecError("a placement needs an order and a list of fills")
        fills = tuple(_decode_fill(fill) for fill in row[2])
        return SpotPlacement(order, fills)
    tag, values = decode_row(row, VIEW_SCHEMAS)
    if tag == "SpotOrderView":
        return SpotOrderView._make(values)
    if tag == "BalanceView":
        return BalanceView._make(values)
    raise CodecError("a fill is not a stored payload")


def _decode_fill(row: object) -> SpotFillView:
    tag, values = decode_row(row, VIEW_SCHEMAS)
    if tag != "SpotFillView":
        raise CodecError("a placement's fills must be fills")
    return SpotFillView._make(values)
