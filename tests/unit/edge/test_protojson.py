"""The compiled JSON encoder gives exactly what json_format.MessageToDict gives, on any message."""

from __future__ import annotations

from typing import Any, cast

import pytest
from google.protobuf import (
    descriptor,
    descriptor_pb2,
    descriptor_pool,
    json_format,
    message,
    message_factory,
    struct_pb2,
    timestamp_pb2,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfd.v1 import common_pb2, trading_pb2
from edge.descriptors import load
from edge.protojson import message_to_dict

FD = descriptor.FieldDescriptor
FDP = descriptor_pb2.FieldDescriptorProto
MAX_DEPTH = 2
INT_RANGES = {
    FD.TYPE_INT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FD.TYPE_UINT32: (0, 2**32 - 1),
    FD.TYPE_FIXED32: (0, 2**32 - 1),
    FD.TYPE_INT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FD.TYPE_UINT64: (0, 2**64 - 1),
    FD.TYPE_FIXED64: (0, 2**64 - 1),
}
# Nanos that make Timestamp print 0, 3, 6 and 9 fraction digits.
NANOS = (
    st.sampled_from([0, 1, 999_999_999])
    | st.integers(0, 999).map(lambda n: n * 1_000_000)
    | st.integers(0, 999_999).map(lambda n: n * 1000)
    | st.integers(0, 999_999_999)
)


def _every_field_kind() -> type[message.Message]:
    """Return a proto3 message class with a field of every kind the JSON mapping treats apart."""
    pool = descriptor_pool.DescriptorPool()
    for dependency in (timestamp_pb2, struct_pb2):
        pool.AddSerializedFile(dependency.DESCRIPTOR.serialized_pb)
    file = descriptor_pb2.FileDescriptorProto(
        name="every_kind.proto",
        package="test.v1",
        syntax="proto3",
        dependency=["google/protobuf/timestamp.proto", "google/protobuf/struct.proto"],
    )
    colour = file.enum_type.add(name="Colour")
    for number, name in enumerate(["COLOUR_UNSPECIFIED", "COLOUR_RED", "COLOUR_BLUE"]):
        colour.value.add(name=name, number=number)
    kinds = file.message_type.add(name="Kinds")
    fields: list[tuple[str, int, str]] = [
        ("f_" + FDP.Type.Name(cast(Any, kind)).lower().removeprefix("type_"), kind, "")
        for kind in sorted(INT_RANGES)
    ]
    fields += [
        ("f_bool", FDP.TYPE_BOOL, ""),
        ("f_string", FDP.TYPE_STRING, ""),
        ("f_bytes", FDP.TYPE_BYTES, ""),
        ("f_double", FDP.TYPE_DOUBLE, ""),
        ("f_float", FDP.TYPE_FLOAT, ""),
        ("f_colour", FDP.TYPE_ENUM, ".test.v1.Colour"),
        ("f_time", FDP.TYPE_MESSAGE, ".google.protobuf.Timestamp"),
        ("f_struct", FDP.TYPE_MESSAGE, ".google.protobuf.Struct"),
        ("f_child", FDP.TYPE_MESSAGE, ".test.v1.Kinds"),
    ]
    number = 0
    for name, kind, type_name in fields:
        for label, suffix in ((FDP.LABEL_OPTIONAL, ""), (FDP.LABEL_REPEATED, "_list")):
            number += 1
            kinds.field.add(name=name + suffix, number=number, label=label, type=kind)
            if type_name:
                kinds.field[-1].type_name = type_name
    kinds.oneof_decl.add(name="choice")
    for name, kind, type_name in (
        ("choice_text", FDP.TYPE_STRING, ""),
        ("choice_child", FDP.TYPE_MESSAGE, ".test.v1.Kinds"),
    ):
        number += 1
        kinds.field.add(
            name=name,
            number=number,
            label=FDP.LABEL_OPTIONAL,
            type=kind,
            oneof_index=len(kinds.oneof_decl) - 1,
        )
        if type_name:
            kinds.field[-1].type_name = type_name
    for name in ("f_maybe_int64", "f_maybe_string", "f_maybe_colour"):
        number += 1
        kinds.oneof_decl.add(name=f"_{name}")
        base = next(f for f in kinds.field if f.name == name.replace("maybe_", ""))
        kinds.field.add(
            name=name,
            number=number,
            label=FDP.LABEL_OPTIONAL,
            type=base.type,
            proto3_optional=True,
            oneof_index=len(kinds.oneof_decl) - 1,
        )
        if base.HasField("type_name"):
            kinds.field[-1].type_name = base.type_name
    for name, key, value, value_type in (
        ("by_name", FDP.TYPE_STRING, FDP.TYPE_INT64, ""),
        ("by_flag", FDP.TYPE_BOOL, FDP.TYPE_MESSAGE, ".test.v1.Kinds"),
        ("by_number", FDP.TYPE_INT32, FDP.TYPE_ENUM, ".test.v1.Colour"),
        ("by_id", FDP.TYPE_UINT64, FDP.TYPE_BYTES, ""),
    ):
        entry_name = f"{name.title().replace('_', '')}Entry"
        entry = kinds.nested_type.add(name=entry_name)
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, label=FDP.LABEL_OPTIONAL, type=key)
        entry.field.add(name="value", number=2, label=FDP.LABEL_OPTIONAL, type=value)
        if value_type:
            entry.field[-1].type_name = value_type
        number += 1
        kinds.field.add(
            name=name,
            number=number,
            label=FDP.LABEL_REPEATED,
            type=FDP.TYPE_MESSAGE,
            type_name=f".test.v1.Kinds.{entry_name}",
        )
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("test.v1.Kinds"))


KINDS = _every_field_kind()


def _scalar(field: descriptor.FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type in INT_RANGES:
        low, high = INT_RANGES[field.type]
        return st.sampled_from([0, low, high]) | st.integers(low, high)
    if field.type == FD.TYPE_BOOL:
        return st.booleans()
    if field.type == FD.TYPE_STRING:
        return st.text(max_size=8)
    if field.type == FD.TYPE_BYTES:
        return st.binary(max_size=8)
    if field.type == FD.TYPE_DOUBLE:
        return st.floats()
    if field.type == FD.TYPE_FLOAT:
        return st.floats(width=32)
    enum = cast(descriptor.EnumDescriptor, field.enum_type)
    known = st.sampled_from([value.number for value in enum.values])
    return known if enum.is_closed else known | st.integers(-(2**31), 2**31 - 1)


def _value(field: descriptor.FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.message_type is None:
        return _scalar(field)
    return messages(field.message_type, depth + 1)


def messages(desc: descriptor.Descriptor, depth: int = 0) -> st.SearchStrategy[Any]:
    """Return a strategy of messages of type `desc`: any field set or not, any value."""
    cls = message_factory.GetMessageClass(desc)
    if desc.full_name == "google.protobuf.Timestamp":
        return st.builds(cls, seconds=st.integers(-62_135_596_800, 253_402_300_799), nanos=NANOS)
    if desc.full_name == "google.protobuf.Struct":
        return st.builds(
            lambda d: json_format.ParseDict(d, cls()),
            st.dictionaries(st.text(max_size=4), st.none() | st.booleans() | st.text(max_size=4)),
        )
    if depth >= MAX_DEPTH:
        return st.just(cls())
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for field in desc.fields:
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            key = _scalar(entry.fields_by_name["key"])
            value = _value(entry.fields_by_name["value"], depth)
            parts[field.name] = st.dictionaries(key, value, max_size=3)
        elif field.is_repeated:
            parts[field.name] = st.lists(_value(field, depth), max_size=3)
        else:
            parts[field.name] = st.none() | _value(field, depth)
    return st.fixed_dictionaries(parts).map(lambda values: _build(cls, values))


def _build(cls: type[message.Message], values: dict[str, Any]) -> message.Message:
    msg = cls()
    for name, value in values.items():
        field = msg.DESCRIPTOR.fields_by_name[name]
        target = getattr(msg, name)
        entry = field.message_type
        if value is None or value == [] or value == {}:
            continue
        if entry is not None and entry.GetOptions().map_entry:
            for key, item in value.items():
                if isinstance(item, message.Message):
                    target[key].CopyFrom(item)
                else:
                    target[key] = item
        elif field.is_repeated:
            for item in value:
                if isinstance(item, message.Message):
                    target.add().CopyFrom(item)
                else:
                    target.append(item)
        elif isinstance(value, message.Message):
            target.CopyFrom(value)
        else:
            setattr(msg, name, value)
    return msg


def _expected(msg: message.Message, all_fields: bool = False) -> Any:
    return json_format.MessageToDict(
        msg, always_print_fields_with_no_presence=all_fields, preserving_proto_field_name=False
    )


def _response_types() -> list[descriptor.Descriptor]:
    contracts = load()
    found: dict[str, descriptor.Descriptor] = {}
    pending = [cast(descriptor.Descriptor, rpc.output_class.DESCRIPTOR) for rpc in contracts.rpcs]
    while pending:
        desc = pending.pop()
        if desc.full_name not in found:
            found[desc.full_name] = desc
            pending += [f.message_type for f in desc.fields if f.message_type is not None]
    return sorted(found.values(), key=lambda d: d.full_name)


RESPONSE_TYPES = _response_types()


def test_every_response_type_of_the_edge_is_covered() -> None:
    names = {desc.full_name for desc in RESPONSE_TYPES}
    assert {"cfd.v1.OpenPositionResponse", "cfd.v1.Position", "cfd.v1.Order"} <= names
    assert "google.protobuf.Timestamp" in names


@pytest.mark.parametrize("all_fields", [False, True], ids=["set-fields", "all-fields"])
@pytest.mark.parametrize("desc", RESPONSE_TYPES, ids=lambda d: d.full_name)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_each_response_type_converts_as_message_to_dict(
    desc: descriptor.Descriptor, all_fields: bool, data: st.DataObject
) -> None:
    msg = data.draw(messages(desc))
    assert message_to_dict(msg, all_fields=all_fields) == _expected(msg, all_fields)


@pytest.mark.parametrize("all_fields", [False, True], ids=["set-fields", "all-fields"])
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(msg=messages(cast(descriptor.Descriptor, KINDS.DESCRIPTOR)))
def test_every_field_kind_converts_as_message_to_dict(
    all_fields: bool, msg: message.Message
) -> None:
    assert _same_json(message_to_dict(msg, all_fields=all_fields), _expected(msg, all_fields))


@pytest.mark.parametrize("all_fields", [False, True], ids=["set-fields", "all-fields"])
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(msg=messages(descriptor_pb2.UninterpretedOption.DESCRIPTOR))
def test_proto2_messages_convert_as_message_to_dict(all_fields: bool, msg: message.Message) -> None:
    assert _same_json(message_to_dict(msg, all_fields=all_fields), _expected(msg, all_fields))


def test_all_fields_prints_empty_lists_and_defaults_but_not_unset_messages_or_optionals() -> None:
    listed = trading_pb2.ListPositionsResponse()
    assert message_to_dict(listed) == {}
    assert message_to_dict(listed, all_fields=True) == {"positions": []}
    out = message_to_dict(KINDS(f_int32=0), all_fields=True)
    assert (out["fInt32"], out["fInt64"], out["fString"], out["fBool"]) == (0, "0", "", False)
    assert (out["fColour"], out["fInt64List"], out["byName"]) == ("COLOUR_UNSPECIFIED", [], {})
    assert not {"fChild", "fTime", "fMaybeInt64", "choiceText", "choiceChild"} & out.keys()


def _same_json(ours: Any, theirs: Any) -> bool:
    """Compare JSON values, NaN equal to NaN (both sides print it as the string "NaN")."""
    if isinstance(ours, float) and isinstance(theirs, float) and ours != ours:
        return theirs != theirs
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return ours.keys() == theirs.keys() and all(_same_json(ours[k], theirs[k]) for k in ours)
    if isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(map(_same_json, ours, theirs))
    return type(ours) is type(theirs) and ours == theirs


def test_the_json_mapping_rules_the_edge_relies_on() -> None:
    position = trading_pb2.OpenPositionResponse()
    position.position.id = "p-1"
    position.position.side = common_pb2.SIDE_SELL
    position.position.leverage = 0
    position.position.open_time.FromNanoseconds(1_700_000_000_123_000_000)
    out = message_to_dict(position)
    assert out == {
        "position": {
            "id": "p-1",
            "side": "SIDE_SELL",
            "openTime": "2023-11-14T22:13:20.123Z",
        }
    }
    kinds = KINDS(f_int64=-5, f_uint64=2**64 - 1, f_int32=7, f_colour=9)
    assert message_to_dict(kinds) == {
        "fInt64": "-5",
        "fUint64": str(2**64 - 1),
        "fInt32": 7,
        "fColour": 9,
    }
    assert message_to_dict(KINDS(f_maybe_int64=0, f_bool=False)) == {"fMaybeInt64": "0"}
