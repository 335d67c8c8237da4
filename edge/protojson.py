"""Protobuf messages to JSON values, exactly as `json_format.MessageToDict` maps them, faster.

`MessageToDict` decides, for every field of every message, how to convert it. Here that
decision is made once per message type from its descriptor: each type gets a table from field
to (JSON name, converter), and a message is converted by walking only its set fields
(`ListFields`, the same walk `MessageToDict` makes). Output is the proto3 JSON mapping with
lowerCamelCase names and default-valued fields omitted: 64-bit integers as strings, enums by
name (an unknown number of an open enum as the number), bytes as base64, Timestamp, Duration
and FieldMask as their JSON strings. Whatever this module does not convert itself (other
well-known types, 32-bit floats, enum values with JSON options, extensions) goes through
`MessageToDict`, so the result is the same for every message.

With `all_fields`, fields without presence (plain proto3 scalars, enums, lists and maps) are
printed at their default value too (`""`, `0`, `false`, the zero enum's name, `[]`, `{}`), as
`MessageToDict(always_print_fields_with_no_presence=True)` and Envoy's
`always_print_primitive_fields` print them; unset messages, oneof members and `optional`
fields stay out.
"""

from __future__ import annotations

import base64
import datetime
import math
from collections.abc import Callable
from typing import Any, cast

from google.protobuf import descriptor, json_format, message

Convert = Callable[[Any], Any]
Encoder = Callable[[message.Message], Any]
FD = descriptor.FieldDescriptor

# Well-known types whose JSON is their own `ToJsonString()`, as `MessageToDict` prints them.
_STRING_TYPES = frozenset(
    {"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"}
)
_INT64_TYPES = frozenset({FD.CPPTYPE_INT64, FD.CPPTYPE_UINT64})
_SAME_TYPES = frozenset({FD.CPPTYPE_INT32, FD.CPPTYPE_UINT32, FD.CPPTYPE_BOOL})
_encoders: dict[tuple[str, bool], Encoder] = {}
_EPOCH = datetime.datetime(1970, 1, 1)
# The range `Timestamp.ToJsonString` accepts; outside it, it raises its own error.
_TIMESTAMP_SECONDS = range(-62_135_596_800, 253_402_300_800)
_NANOS = range(1_000_000_000)


class _UnsupportedError(Exception):
    """A field this module leaves to `MessageToDict`."""


def message_to_dict(msg: message.Message, *, all_fields: bool = False) -> Any:
    """Return the JSON value of `msg`, as `MessageToDict(msg)` with JSON field names does;
    with `all_fields`, as it does with `always_print_fields_with_no_presence=True`."""
    return encoder_for(cast(descriptor.Descriptor, msg.DESCRIPTOR), all_fields)(msg)


def encoder_for(desc: descriptor.Descriptor, all_fields: bool = False) -> Encoder:
    """Return the converter of messages of type `desc`, built on first use."""
    key = (desc.full_name, all_fields)
    encoder = _encoders.get(key)
    if encoder is None:
        encoder = _compile(desc, all_fields)
        _encoders[key] = encoder
    return encoder


def _generic_printer(all_fields: bool) -> Encoder:
    def generic(msg: message.Message) -> Any:
        return json_format.MessageToDict(
            msg, always_print_fields_with_no_presence=all_fields, preserving_proto_field_name=False
        )

    return generic


_generic = _generic_printer(False)


def _compile(desc: descriptor.Descriptor, all_fields: bool) -> Encoder:
    if desc.full_name == "google.protobuf.Timestamp":
        return _timestamp
    if desc.full_name in _STRING_TYPES:
        return lambda msg: cast(Any, msg).ToJsonString()
    generic = _generic_printer(all_fields)
    if desc.full_name.startswith("google.protobuf."):
        return generic
    try:
        plan = {
            field: (field.json_name, _field_converter(field, all_fields)) for field in desc.fields
        }
    except _UnsupportedError:
        return generic
    defaults = _defaults(desc) if all_fields else ()

    def encode(msg: message.Message) -> Any:
        out: dict[str, Any] = {name: fresh() for name, fresh in defaults}
        for field, value in msg.ListFields():
            entry = plan.get(field)
            if entry is None:
                # An extension: rare enough to leave whole to the generic printer.
                return generic(msg)
            out[entry[0]] = entry[1](value)
        return out

    return encode


def _defaults(desc: descriptor.Descriptor) -> tuple[tuple[str, Callable[[], Any]], ...]:
    """Return (JSON name, maker of the default value) of each field without presence, in
    field order, the order `MessageToDict` prints them in."""
    found: list[tuple[str, Callable[[], Any]]] = []
    for field in desc.fields:
        if field.has_presence:
            continue
        if field.is_repeated:
            is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
            found.append((field.json_name, dict if is_map else list))
            continue
        found.append((field.json_name, _constant(_convert_default(field))))
    return tuple(found)


def _constant(value: Any) -> Callable[[], Any]:
    """Return a maker of `value` (an immutable scalar: the same object every time)."""
    return lambda: value


def _convert_default(field: descriptor.FieldDescriptor) -> Any:
    if field.cpp_type == FD.CPPTYPE_ENUM:
        return _enum_converter(cast(descriptor.EnumDescriptor, field.enum_type))(0)
    if field.type == FD.TYPE_BYTES:
        return ""
    return _value_converter(field, False)(field.default_value)


def _field_converter(field: descriptor.FieldDescriptor, all_fields: bool) -> Convert:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        return _map_converter(field, all_fields)
    convert = _value_converter(field, all_fields)
    if not field.is_repeated:
        return convert
    if convert is _same:
        return list
    return lambda values: [convert(value) for value in values]


def _map_converter(field: descriptor.FieldDescriptor, all_fields: bool) -> Convert:
    entry = cast(descriptor.Descriptor, field.message_type)
    key_field = entry.fields_by_name["key"]
    convert_value = _value_converter(entry.fields_by_name["value"], all_fields)

    def key_text(key: Any) -> str:
        return ("true" if key else "false") if key_field.type == FD.TYPE_BOOL else str(key)

    return lambda mapping: {key_text(k): convert_value(mapping[k]) for k in mapping}


def _value_converter(field: descriptor.FieldDescriptor, all_fields: bool) -> Convert:
    kind = field.cpp_type
    if kind == FD.CPPTYPE_MESSAGE:
        return _message_converter(cast(descriptor.Descriptor, field.message_type), all_fields)
    if kind == FD.CPPTYPE_ENUM:
        return _enum_converter(cast(descriptor.EnumDescriptor, field.enum_type))
    if kind in _INT64_TYPES:
        return str
    if kind == FD.CPPTYPE_STRING:
        if field.type == FD.TYPE_BYTES:
            return lambda value: base64.b64encode(value).decode("utf-8")
        return _same
    if kind in _SAME_TYPES:
        return _same
    if kind == FD.CPPTYPE_DOUBLE:
        return _double
    # 32-bit floats print as their shortest decimal form: left to MessageToDict.
    raise _UnsupportedError(field.full_name)


def _timestamp(value: Any) -> Any:
    """Return `value.ToJsonString()`, without its float arithmetic and repeated checks."""
    seconds, nanos = value.seconds, value.nanos
    if seconds not in _TIMESTAMP_SECONDS or nanos not in _NANOS:
        return value.ToJsonString()
    text = (_EPOCH + datetime.timedelta(seconds=seconds)).isoformat()
    if nanos == 0:
        return text + "Z"
    if nanos % 1_000_000 == 0:
        return f"{text}.{nanos // 1_000_000:03d}Z"
    if nanos % 1000 == 0:
        return f"{text}.{nanos // 1000:06d}Z"
    return f"{text}.{nanos:09d}Z"


def _same(value: Any) -> Any:
    return value


def _double(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _message_converter(desc: descriptor.Descriptor, all_fields: bool) -> Convert:
    def convert(value: message.Message) -> Any:
        # Looked up at call time: message types may refer to themselves.
        return encoder_for(desc, all_fields)(value)

    return convert


def _enum_converter(enum: descriptor.EnumDescriptor) -> Convert:
    if enum.full_name == "google.protobuf.NullValue":
        return lambda _value: None
    if any(value.GetOptions().ListFields() for value in enum.values):
        # Values with options may carry their own JSON names.
        raise _UnsupportedError(enum.full_name)
    names = {value.number: value.name for value in enum.values}
    if enum.is_closed:
        return names.__getitem__
    return lambda number: names.get(number, number)
