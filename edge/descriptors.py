"""The contracts as the edge sees them: RPCs and their HTTP bindings, from the descriptor set."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool, message, message_factory

from edge.pathtemplate import PathTemplate, parse
from mesh.auth import INTERNAL_SERVICES

# Only these services are routed; the admin services never are.
PUBLIC_SERVICES = (
    "cfd.v1.AccountService",
    "cfd.v1.TradingService",
    "cfd.v1.MarketDataService",
    "cfd.v1.ExchangeService",
)
_HTTP_METHODS = ("get", "put", "post", "delete", "patch")


class DescriptorError(ValueError):
    """The descriptor set cannot be read or an HTTP binding is invalid."""


@dataclass(frozen=True, slots=True)
class HttpBinding:
    """One HTTP rule of an RPC: verb, path template and body mapping."""

    method: str
    template: PathTemplate
    body: str
    response_body: str


@dataclass(frozen=True, slots=True)
class Rpc:
    """A public RPC with its message classes and HTTP bindings."""

    service: str
    name: str
    input: descriptor.Descriptor
    output: descriptor.Descriptor
    input_class: type[message.Message]
    output_class: type[message.Message]
    server_streaming: bool
    bindings: tuple[HttpBinding, ...]
    comment: str

    @property
    def path(self) -> str:
        """Return the gRPC method path, `/package.Service/Method`."""
        return f"/{self.service}/{self.name}"


@dataclass(frozen=True, slots=True)
class Contracts:
    """The pool built from the descriptor set, with every routable RPC."""

    pool: descriptor_pool.DescriptorPool
    rpcs: tuple[Rpc, ...]
    service_comments: dict[str, str]
    comments: dict[str, str]

    def message_class(self, full_name: str) -> type[message.Message]:
        """Return the message class of a type of the pool."""
        return message_factory.GetMessageClass(self.pool.FindMessageTypeByName(full_name))

    def comment(self, full_name: str) -> str:
        """Return the leading comment of a message, field or enum, or ''."""
        return self.comments.get(full_name, "")


def default_descriptor_path() -> Path:
    """Return the descriptor set shipped with the generated code."""
    return Path(str(resources.files("cfd.v1") / "cfd.binpb"))


def load(path: Path | None = None, services: tuple[str, ...] = PUBLIC_SERVICES) -> Contracts:
    """Read the descriptor set and return the RPCs of `services` that have HTTP bindings."""
    path = default_descriptor_path() if path is None else path
    try:
        files = descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise DescriptorError(f"cannot read the descriptor set {path}: {exc}") from exc
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    comments: dict[str, str] = {}
    rpcs: list[Rpc] = []
    service_comments: dict[str, str] = {}
    for file in files.file:
        comments.update(_file_comments(file))
        for service_index, service in enumerate(file.service):
            full = f"{file.package}.{service.name}" if file.package else service.name
            if full not in services or full in INTERNAL_SERVICES:
                continue
            service_comments[full] = _leading(file, [6, service_index])
            for method_index, method in enumerate(service.method):
                rule: http_pb2.HttpRule = method.options.Extensions[annotations_pb2.http]
                bindings = tuple(_bindings(rule, f"{full}.{method.name}"))
                if not bindings:
                    continue
                in_desc = pool.FindMessageTypeByName(method.input_type.lstrip("."))
                out_desc = pool.FindMessageTypeByName(method.output_type.lstrip("."))
                for binding in bindings:
                    _check_binding(binding, in_desc, out_desc, f"{full}.{method.name}")
                rpcs.append(
                    Rpc(
                        service=full,
                        name=method.name,
                        input=in_desc,
                        output=out_desc,
                        input_class=message_factory.GetMessageClass(in_desc),
                        output_class=message_factory.GetMessageClass(out_desc),
                        server_streaming=method.server_streaming,
                        bindings=bindings,
                        comment=_leading(file, [6, service_index, 2, method_index]),
                    )
                )
                if method.client_streaming:
                    raise DescriptorError(f"{full}.{method.name}: client streaming is not routable")
    return Contracts(pool, tuple(rpcs), service_comments, comments)


def _bindings(rule: http_pb2.HttpRule, where: str) -> list[HttpBinding]:
    found: list[HttpBinding] = []
    for current in (rule, *rule.additional_bindings):
        kind = current.WhichOneof("pattern")
        if kind is None:
            continue
        if kind == "custom":
            verb, text = current.custom.kind.upper(), current.custom.path
        elif kind in _HTTP_METHODS:
            verb, text = kind.upper(), str(getattr(current, kind))
        else:
            raise DescriptorError(f"{where}: unsupported http pattern {kind}")
        try:
            template = parse(text)
        except ValueError as exc:
            raise DescriptorError(f"{where}: {exc}") from exc
        found.append(HttpBinding(verb, template, current.body, current.response_body))
    return found


def resolve_field(
    message_type: descriptor.Descriptor, path: str
) -> list[descriptor.FieldDescriptor]:
    """Return the fields along a dotted path of proto or JSON names; raise KeyError if absent."""
    fields: list[descriptor.FieldDescriptor] = []
    current: descriptor.Descriptor | None = message_type
    for part in path.split("."):
        if current is None:
            raise KeyError(path)
        field = current.fields_by_name.get(part) or _by_json_name(current, part)
        if field is None:
            raise KeyError(path)
        fields.append(field)
        current = field.message_type
    return fields


def _by_json_name(
    message_type: descriptor.Descriptor, name: str
) -> descriptor.FieldDescriptor | None:
    for field in message_type.fields:
        if field.json_name == name:
            return field
    return None


def _check_binding(
    binding: HttpBinding,
    in_desc: descriptor.Descriptor,
    out_desc: descriptor.Descriptor,
    where: str,
) -> None:
    try:
        for variable in binding.template.variables:
            resolve_field(in_desc, variable.field_path)
        if binding.body not in ("", "*"):
            resolve_field(in_desc, binding.body)
        if binding.response_body:
            resolve_field(out_desc, binding.response_body)
    except KeyError as exc:
        raise DescriptorError(f"{where}: the http rule names an unknown field {exc}") from None


def _file_comments(file: descriptor_pb2.FileDescriptorProto) -> dict[str, str]:
    """Map the full names of messages, fields, enums and enum values to their comments."""
    by_path = {
        tuple(loc.path): loc.leading_comments.strip() for loc in file.source_code_info.location
    }
    prefix = f"{file.package}." if file.package else ""
    out: dict[str, str] = {}

    def visit_message(
        msg: descriptor_pb2.DescriptorProto, path: tuple[int, ...], name: str
    ) -> None:
        out[name] = by_path.get(path, "")
        for index, field in enumerate(msg.field):
            out[f"{name}.{field.name}"] = by_path.get((*path, 2, index), "")
        for index, nested in enumerate(msg.nested_type):
            visit_message(nested, (*path, 3, index), f"{name}.{nested.name}")
        for index, enum in enumerate(msg.enum_type):
            visit_enum(enum, (*path, 4, index), f"{name}.{enum.name}")

    def visit_enum(
        enum: descriptor_pb2.EnumDescriptorProto, path: tuple[int, ...], name: str
    ) -> None:
        out[name] = by_path.get(path, "")

    for index, msg in enumerate(file.message_type):
        visit_message(msg, (4, index), prefix + msg.name)
    for index, enum in enumerate(file.enum_type):
        visit_enum(enum, (5, index), prefix + enum.name)
    return out


def _leading(file: descriptor_pb2.FileDescriptorProto, path: list[int]) -> str:
    for location in file.source_code_info.location:
        if list(location.path) == path:
            return location.leading_comments.strip()
    return ""
