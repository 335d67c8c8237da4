"""HTTP/JSON to protobuf and back, as grpc-gateway and Envoy's transcoder map them."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

from google.protobuf import descriptor, json_format, message

from edge.descriptors import HttpBinding, resolve_field
from edge.protojson import message_to_dict
from mesh.errors import ApiError, validation_error

# Well-known types whose JSON form is a single string or number, usable in paths and queries.
SCALAR_MESSAGES = frozenset(
    {
        "google.protobuf.Timestamp",
        "google.protobuf.Duration",
        "google.protobuf.FieldMask",
        "google.protobuf.DoubleValue",
        "google.protobuf.FloatValue",
        "google.protobuf.Int64Value",
        "google.protobuf.UInt64Value",
        "google.protobuf.Int32Value",
        "google.protobuf.UInt32Value",
        "google.protobuf.BoolValue",
        "google.protobuf.StringValue",
        "google.protobuf.BytesValue",
    }
)
_PARSE_FIELD = re.compile(r'Failed to parse (\w+) field|no field named "(\w+)"')


def build_request(
    binding: HttpBinding,
    request_class: type[message.Message],
    path_values: Mapping[str, str],
    query: Sequence[tuple[str, str]],
    body: bytes,
) -> message.Message:
    """Return the request message of one HTTP request; raise ApiError VALIDATION_FAILED."""
    request = request_class()
    desc = cast(descriptor.Descriptor, request.DESCRIPTOR)
    if binding.body == "*":
        request.MergeFrom(parse_body(body, request_class))
    elif binding.body:
        field = resolve_field(desc, binding.body)[-1]
        wrapped = decode_json(body) if body.strip() else None
        if wrapped is not None:
            value = {field.name: wrapped}
            _check_fields(value, desc, "")
            request.MergeFrom(_parse_dict(value, request_class, binding.body))
    elif body.strip():
        raise validation_error("body", "this endpoint takes no request body")

    bound = {v.field_path for v in binding.template.variables}
    values: dict[str, Any] = {}
    for path, text in path_values.items():
        fields = resolve_field(desc, path)
        _set_path(values, fields, _scalar(fields[-1], text, path))
    seen: set[str] = set()
    for key, text in query:
        fields = _query_field(desc, key)
        canonical = ".".join(f.name for f in fields)
        if binding.body == "*" or canonical in bound or _covers(binding.body, canonical):
            raise validation_error(key, "this field cannot be given as a query parameter")
        leaf = fields[-1]
        if leaf.is_repeated:
            _append_path(values, fields, _scalar(leaf, text, key))
            continue
        if canonical in seen:
            raise validation_error(key, "this query parameter may appear only once")
        seen.add(canonical)
        _set_path(values, fields, _scalar(leaf, text, key))
    if values:
        request.MergeFrom(_parse_dict(values, request_class, "query"))
    return request


def parse_body(body: bytes, request_class: type[message.Message]) -> message.Message:
    """Parse a JSON object body into a message; an empty body is an empty message."""
    if not body.strip():
        return request_class()
    value = decode_json(body)
    if not isinstance(value, dict):
        raise validation_error("body", "the request body must be a JSON object")
    _check_fields(value, cast(descriptor.Descriptor, request_class.DESCRIPTOR), "")
    return _parse_dict(value, request_class, "body")


def to_json(msg: message.Message, response_body: str = "") -> Any:
    """Return the protobuf JSON of a REST response. Fields without presence are printed even
    at their default value (an empty list as `[]`, a zero as `0`), as Envoy's transcoder prints
    them with `always_print_primitive_fields`; unset messages and optional fields stay out."""
    if response_body:
        field = resolve_field(cast(descriptor.Descriptor, msg.DESCRIPTOR), response_body)[-1]
        whole = message_to_dict(msg, all_fields=True)
        return whole.get(field.json_name, _empty_json(field))
    return message_to_dict(msg, all_fields=True)


def _empty_json(field: descriptor.FieldDescriptor) -> Any:
    if field.is_repeated:
        return []
    return {} if field.message_type is not None else None


class _DuplicateKeyError(Exception):
    """An object of the document names one key twice."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class _NotJsonError(Exception):
    """The document uses a constant JSON does not have (NaN, Infinity)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A JSON parser keeping the last of two equal keys lets `"stopLoss": ""` after a stop
    # silently undo it: refuse the object instead.
    value: dict[str, Any] = {}
    for key, item in pairs:
        if key in value:
            raise _DuplicateKeyError(key)
        value[key] = item
    return value


def _no_constants(name: str) -> Any:
    raise _NotJsonError(name)


def decode_json(data: bytes | str, where: str = "body") -> Any:
    """Decode a request body or a WebSocket frame: the one place the edge reads client JSON.

    A key given twice in any object, NaN and Infinity are refused as VALIDATION_FAILED; the
    duplicate key is the field of the violation.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constants)
    except _DuplicateKeyError as exc:
        raise validation_error(exc.key, "this key is given more than once") from None
    except _NotJsonError as exc:
        raise validation_error(where, f"malformed JSON: {exc} is not a JSON value") from None
    except UnicodeDecodeError:
        raise validation_error(where, "not UTF-8") from None
    except RecursionError:
        raise validation_error(where, "nested too deeply") from None
    except ValueError as exc:
        raise validation_error(where, f"malformed JSON: {exc}") from None


def _check_fields(value: Any, desc: descriptor.Descriptor, path: str) -> None:
    """Refuse at any depth what protobuf's JSON parser would take loosely.

    It keeps the last of one field given under both its names (`stopLoss` and `stop_loss`),
    truncates enum numbers (`"side": 1.5` would be SIDE_BUY), takes numeric strings for enums
    and passes unknown enum numbers through: a body gets none of that.
    """
    if not isinstance(value, dict) or desc.full_name.startswith("google.protobuf."):
        return  # well-known types have JSON forms of their own (Struct, Any, Timestamp...)
    named: dict[int, str] = {}
    for key, item in value.items():
        field = desc.fields_by_camelcase_name.get(key) or desc.fields_by_name.get(key)
        if field is None:
            continue  # unknown fields are the JSON parser's to report
        where = f"{path}.{key}" if path else key
        if field.number in named:
            raise validation_error(where, f"the same field as {named[field.number]!r}")
        named[field.number] = key
        if item is None:
            continue
        items: list[Any] = [item]
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            field = entry.fields_by_name["value"]
            items = list(item.values()) if isinstance(item, dict) else []
        elif field.is_repeated:
            items = item if isinstance(item, list) else []
        for element in items:
            if field.enum_type is not None:
                _check_enum(element, field.enum_type, where)
            elif field.message_type is not None:
                _check_fields(element, field.message_type, where)


def _check_enum(value: Any, enum: descriptor.EnumDescriptor, where: str) -> None:
    if value is None:
        return
    if isinstance(value, str):
        known = value in enum.values_by_name
    else:
        known = type(value) is int and value in enum.values_by_number
    if not known:
        names = ", ".join(v.name for v in enum.values)
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "…"
        raise validation_error(where, f"must be one of {names} (or its number), not {shown}")


def _parse_dict(
    value: dict[str, Any], request_class: type[message.Message], where: str
) -> message.Message:
    target = request_class()
    try:
        json_format.ParseDict(value, target, ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        text = str(exc).split("\n", 1)[0]
        field = _field_of(text) or where
        raise ApiError("VALIDATION_FAILED", f"{field}: {text}", [(field, text)]) from None
    except RecursionError:
        raise validation_error(where, "nested too deeply") from None
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        # The JSON parser reports some shape errors with built-in exceptions.
        raise validation_error(where, f"invalid value: {exc}") from None
    return target


def _field_of(text: str) -> str:
    found = _PARSE_FIELD.search(text)
    if found is None:
        return ""
    return found.group(1) or found.group(2) or ""


def _query_field(desc: descriptor.Descriptor, key: str) -> list[descriptor.FieldDescriptor]:
    try:
        fields = resolve_field(desc, key)
    except KeyError:
        raise validation_error(key, "unknown query parameter") from None
    for field in fields[:-1]:
        if field.is_repeated:
            raise validation_error(key, "cannot address a field inside a repeated field")
    leaf = fields[-1]
    if leaf.message_type is not None and leaf.message_type.full_name not in SCALAR_MESSAGES:
        raise validation_error(key, "a message field cannot be given as a query parameter")
    return fields


def _covers(body_field: str, field_path: str) -> bool:
    return bool(body_field) and (
        field_path == body_field or field_path.startswith(body_field + ".")
    )


def _scalar(field: descriptor.FieldDescriptor, text: str, where: str) -> Any:
    """Return the JSON value the protobuf JSON parser expects for a text from a path or query."""
    if field.type == descriptor.FieldDescriptor.TYPE_BOOL:
        if text in ("true", "false"):
            return text == "true"
        raise validation_error(where, "must be true or false")
    if field.message_type is not None and field.message_type.full_name in (
        "google.protobuf.BoolValue",
    ):
        if text in ("true", "false"):
            return text == "true"
        raise validation_error(where, "must be true or false")
    return text


def _set_path(values: dict[str, Any], fields: list[descriptor.FieldDescriptor], value: Any) -> None:
    node = values
    for field in fields[:-1]:
        child = node.setdefault(field.name, {})
        if not isinstance(child, dict):
            raise validation_error(field.name, "conflicting values")
        node = child
    node[fields[-1].name] = value


def _append_path(
    values: dict[str, Any], fields: list[descriptor.FieldDescriptor], value: Any
) -> None:
    node = values
    for field in fields[:-1]:
        node = node.setdefault(field.name, {})
    node.setdefault(fields[-1].name, []).append(value)
