"""The OpenAPI 3.0 document of the REST surface, generated from the same descriptors as routes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf import descriptor

from edge.descriptors import Contracts, resolve_field
from edge.rest import Route
from edge.transcode import SCALAR_MESSAGES
from mesh.auth import PUBLIC_METHODS

FD = descriptor.FieldDescriptor
STATUS = "google.rpc.Status"
# RPCs callable without an access token; every other one needs `authorization: Bearer`.
ANONYMOUS_SERVICES = frozenset({"cfd.v1.MarketDataService"})
ANONYMOUS_METHODS = PUBLIC_METHODS
_INT32 = {"type": "integer", "format": "int32", "minimum": -(2**31), "maximum": 2**31 - 1}
_UINT32 = {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1}
_INT64 = {"type": "string", "format": "int64", "pattern": "^-?[0-9]{1,19}$"}
_UINT64 = {"type": "string", "format": "uint64", "pattern": "^[0-9]{1,20}$"}
_SCALARS: dict[int, dict[str, Any]] = {
    FD.TYPE_STRING: {"type": "string"},
    FD.TYPE_BYTES: {"type": "string", "format": "byte"},
    FD.TYPE_BOOL: {"type": "boolean"},
    FD.TYPE_INT32: _INT32,
    FD.TYPE_SINT32: _INT32,
    FD.TYPE_SFIXED32: _INT32,
    FD.TYPE_UINT32: _UINT32,
    FD.TYPE_FIXED32: _UINT32,
    FD.TYPE_INT64: _INT64,
    FD.TYPE_SINT64: _INT64,
    FD.TYPE_SFIXED64: _INT64,
    FD.TYPE_UINT64: _UINT64,
    FD.TYPE_FIXED64: _UINT64,
    FD.TYPE_FLOAT: {"type": "number", "format": "float"},
    FD.TYPE_DOUBLE: {"type": "number", "format": "double"},
}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.DoubleValue": {"type": "number", "format": "double"},
    "google.protobuf.FloatValue": {"type": "number", "format": "float"},
    "google.protobuf.Int64Value": _INT64,
    "google.protobuf.UInt64Value": _UINT64,
    "google.protobuf.Int32Value": _INT32,
    "google.protobuf.UInt32Value": _UINT32,
    "google.protobuf.BoolValue": {"type": "boolean"},
    "google.protobuf.StringValue": {"type": "string"},
    "google.protobuf.BytesValue": {"type": "string", "format": "byte"},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
        "additionalProperties": True,
    },
}


class _Builder:
    def __init__(self, contracts: Contracts) -> None:
        self.contracts = contracts
        self.schemas: dict[str, Any] = {}

    def ref(self, message_type: descriptor.Descriptor) -> dict[str, Any]:
        name = message_type.full_name
        if name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[name])
        if name not in self.schemas:
            self.schemas[name] = {}  # reserve first: messages may refer to themselves
            self.schemas[name] = self.message_schema(message_type, exclude=())
        return {"$ref": f"#/components/schemas/{name}"}

    def message_schema(
        self, message_type: descriptor.Descriptor, exclude: Sequence[str]
    ) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        for field in message_type.fields:
            if field.name in exclude:
                continue
            schema = self.field_schema(field)
            comment = self.contracts.comment(f"{message_type.full_name}.{field.name}")
            if comment and "$ref" not in schema:
                schema["description"] = comment
            properties[field.json_name] = schema
        out: dict[str, Any] = {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
        }
        comment = self.contracts.comment(message_type.full_name)
        if comment:
            out["description"] = comment
        return out

    def field_schema(self, field: descriptor.FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value = field.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self.single(value)}
        single = self.single(field)
        if field.is_repeated:
            return {"type": "array", "items": single}
        return single

    def single(self, field: descriptor.FieldDescriptor) -> dict[str, Any]:
        if field.enum_type is not None:
            return {"type": "string", "enum": [v.name for v in field.enum_type.values]}
        if field.message_type is not None:
            return self.ref(field.message_type)
        return dict(_SCALARS[field.type])


def build_openapi(contracts: Contracts, routes: Sequence[Route]) -> dict[str, Any]:
    """Return the OpenAPI document of every route, with schemas of the messages and errors."""
    builder = _Builder(contracts)
    builder.ref(contracts.pool.FindMessageTypeByName(STATUS))
    paths: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    for route in routes:
        path = route.binding.template.openapi_path()
        operation = _operation(builder, route)
        operation_id = f"{route.rpc.service.rsplit('.', 1)[-1]}_{route.rpc.name}"
        while operation_id in operation_ids:
            operation_id += "_"
        operation_ids.add(operation_id)
        operation["operationId"] = operation_id
        paths.setdefault(path, {})[route.binding.method.lower()] = operation
    paths.update(_edge_paths())
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "CFD Mesh API",
            "version": "v1",
            "description": (
                "REST/JSON transcoding of the cfd.v1 gRPC services (protobuf JSON, "
                "lowerCamelCase). Errors are google.rpc.Status bodies. Live data: the WebSocket "
                "at /v1/ws."
            ),
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": name.rsplit(".", 1)[-1], "description": comment}
            for name, comment in sorted(contracts.service_comments.items())
        ],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(builder.schemas.items())),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _operation(builder: _Builder, route: Route) -> dict[str, Any]:
    rpc, binding = route.rpc, route.binding
    comment = rpc.comment
    operation: dict[str, Any] = {
        "tags": [rpc.service.rsplit(".", 1)[-1]],
        "summary": comment.split("\n", 1)[0],
        "description": comment,
        "parameters": [],
    }
    bound = {v.field_path for v in binding.template.variables}
    for variable in binding.template.variables:
        field = resolve_field(rpc.input, variable.field_path)[-1]
        schema = builder.single(field)
        if schema.get("type") == "string":
            # A path segment is never empty and never contains a slash.
            schema["pattern"] = "^[^/]+$"
        operation["parameters"].append(
            {"name": variable.field_path, "in": "path", "required": True, "schema": schema}
        )
    if binding.body == "*":
        top_bound = [p for p in bound if "." not in p]
        operation["requestBody"] = {
            "required": False,
            "content": {
                "application/json": {"schema": builder.message_schema(rpc.input, top_bound)}
            },
        }
    else:
        if binding.body:
            body_field = resolve_field(rpc.input, binding.body)[-1]
            operation["requestBody"] = {
                "required": False,
                "content": {"application/json": {"schema": builder.field_schema(body_field)}},
            }
        for name, field in _query_fields(rpc.input, ("", ""), bound | {binding.body}, depth=0):
            schema = builder.field_schema(field)
            parameter: dict[str, Any] = {"name": name, "in": "query", "schema": schema}
            comment = builder.contracts.comment(field.full_name)
            if comment:
                parameter["description"] = comment
            if field.is_repeated:
                parameter["style"], parameter["explode"] = "form", True
            operation["parameters"].append(parameter)
    output = builder.ref(rpc.output)
    if binding.response_body:
        output = builder.field_schema(resolve_field(rpc.output, binding.response_body)[-1])
    content_type = "application/x-ndjson" if rpc.server_streaming else "application/json"
    description = "one JSON message per line" if rpc.server_streaming else "OK"
    operation["responses"] = {
        "200": {"description": description, "content": {content_type: {"schema": output}}},
        "default": {
            "description": "an error (google.rpc.Status)",
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{STATUS}"}}},
        },
    }
    if rpc.server_streaming:
        operation["x-streaming"] = True
    if rpc.service not in ANONYMOUS_SERVICES and rpc.path not in ANONYMOUS_METHODS:
        operation["security"] = [{"bearerAuth": []}]
    return operation


def _query_fields(
    message_type: descriptor.Descriptor, prefix: tuple[str, str], bound: set[str], depth: int
) -> list[tuple[str, descriptor.FieldDescriptor]]:
    """Return the (dotted JSON name, field) pairs a GET may set through the query string."""
    found: list[tuple[str, descriptor.FieldDescriptor]] = []
    proto_prefix, json_prefix = prefix
    for field in message_type.fields:
        proto_path = f"{proto_prefix}{field.name}"
        if proto_path in bound:
            continue
        name = f"{json_prefix}{field.json_name}"
        nested = field.message_type
        if nested is None or nested.full_name in SCALAR_MESSAGES:
            found.append((name, field))
        elif not field.is_repeated and not nested.GetOptions().map_entry and depth < 3:
            found.extend(_query_fields(nested, (f"{proto_path}.", f"{name}."), bound, depth + 1))
    return found


def _edge_paths() -> dict[str, dict[str, Any]]:
    plain = {"type": "object", "additionalProperties": True}

    def simple(operation_id: str, summary: str) -> dict[str, Any]:
        return {
            "get": {
                "tags": ["Edge"],
                "summary": summary,
                "operationId": operation_id,
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"application/json": {"schema": plain}},
                    },
                    "503": {
                        "description": "not ready",
                        "content": {"application/json": {"schema": plain}},
                    },
                },
            }
        }

    return {
        "/healthz": simple("Edge_Healthz", "Liveness of the edge"),
        "/readyz": simple("Edge_Readyz", "Readiness: every upstream service SERVING"),
        "/.well-known/jwks.json": simple("Edge_Jwks", "Public keys verifying access tokens"),
    }
