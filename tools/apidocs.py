"""Generate the API reference pages of the documentation site from the contracts.

Everything comes from what the code itself uses, so the reference cannot drift: services, RPCs,
their HTTP bindings, messages, fields and enums from the descriptor set (compiled with its
source comments by tools/protogen.py), error reasons from `mesh.errors.REASON_CODES` and the
WebSocket channels from `edge.channels.CHANNEL_DATA`. The site's configuration page takes the
README's "Configuration" section, the one place the settings are listed.

mkdocs.yml loads this file as a hook: every build generates the pages afresh into the site, and
nothing generated is committed.

Usage: python tools/apidocs.py OUT_DIR   write the generated pages under OUT_DIR (to read them)
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2

from edge.channels import CHANNEL_DATA
from edge.errors import HTTP_STATUS
from edge.ws import RESUME_REQUIRED
from mesh.auth import INTERNAL_SERVICES
from mesh.errors import REASON_CODES

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files
    from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parent.parent
DESCRIPTOR_SET = ROOT / "gen" / "cfd" / "v1" / "cfd.binpb"
README = ROOT / "README.md"
PACKAGE = "cfd.v1"
REFERENCE_DIR = "api/reference"
# The nav entry of mkdocs.yml that the generated pages replace.
NAV_PLACEHOLDER = f"{REFERENCE_DIR}/index.md"
# The part of a docs page that receives the README's configuration section.
README_SECTION = re.compile(
    r"<!-- README:(?P<name>[A-Za-z ]+) -->\n.*?<!-- /README:(?P=name) -->", re.DOTALL
)

# What each reason means; the build fails when a reason of the code has no entry here or an
# entry names a reason the code no longer has.
REASON_TEXT = {
    "VALIDATION_FAILED": "A field is missing, malformed or out of range; a "
    "`google.rpc.BadRequest` detail names each offending field.",
    "UNKNOWN_SYMBOL": "The instrument symbol is not one the platform trades.",
    "INVALID_LEVERAGE": "The leverage is below 1 or above the instrument's maximum.",
    "QUANTITY_TOO_SMALL": "The quantity (given, given in lots or derived from a margin) is "
    "below one lot step.",
    "INVALID_STOPS": "A take profit, stop loss or trailing distance is on the wrong side of "
    "the price it is checked against, or already crossed.",
    "INSUFFICIENT_BALANCE": "The free balance does not cover the margin (or the amount) asked.",
    "SLIPPAGE_EXCEEDED": "The fill price is further from `expectedPrice` than "
    "`maxSlippageBps` allows.",
    "PRICE_UNAVAILABLE": "The instrument has no fresh price, so nothing can fill or be "
    "checked against it.",
    "FEED_NOT_MANUAL": "Prices can be published only while the market service runs the "
    "`manual` feed.",
    "POSITION_NOT_FOUND": "No position of the caller has this id (another account's "
    "positions are not found either).",
    "ORDER_NOT_FOUND": "No pending order of the caller has this id.",
    "UNKNOWN_MARKET": "The spot market is not one the exchange runs.",
    "INVALID_PRICE": "A spot order's price is not positive or not a multiple of the tick size.",
    "NO_LIQUIDITY": "A spot market order found no resting order on the side it takes from.",
    "POST_ONLY_WOULD_TAKE": "A post-only spot order would have traded on arrival, so it was "
    "rejected instead of resting.",
    "WRONG_SHARD": "The engine called does not hold the caller's account (`CFD_ENGINE_SHARDS` "
    "above 1): CFD trading calls go to the shard the access token's `shard` claim names, "
    "spot exchange calls to shard 0.",
    "IDEMPOTENCY_KEY_REUSED": "The `clientOrderId` was first used for another kind of request "
    "or another position or order; an exact repeat returns the first result instead.",
    "ACCOUNT_NOT_FOUND": "Internal calls only: no trading account has this id.",
    "USER_NOT_FOUND": "The user of a valid token no longer exists.",
    "EMAIL_TAKEN": "A user with this email already exists.",
    "INVALID_CREDENTIALS": "The email and password do not match a user, or a password, TOTP "
    "code or recovery code given to prove who the caller is is wrong (or already used).",
    "TOTP_REQUIRED": "The password is right but the user has two-factor authentication "
    "enabled: sign in again with `totpCode` (or `recoveryCode`). From a provider sign-in, the "
    "ErrorInfo metadata carries a `signinTicket` for VerifyProviderSignin.",
    "SIGNIN_TICKET_INVALID": "The sign-in ticket is unknown, expired (after 5 minutes) or "
    "already used; start the provider sign-in again.",
    "TOTP_NOT_ENROLLED": "No TOTP secret is waiting for confirmation; enrol first.",
    "TOTP_NOT_ENABLED": "Two-factor authentication is not enabled for this user.",
    "TOTP_ALREADY_ENABLED": "Two-factor authentication is already enabled; disable it first.",
    "SESSION_NOT_FOUND": "No active session of the caller has this id.",
    "EMAIL_TOKEN_INVALID": "The emailed verification or reset token was not issued by the "
    "platform for this use (mistyped, cut short, or meant for the other one).",
    "EMAIL_TOKEN_EXPIRED": "The emailed token is past its expiry; ask for a new message.",
    "EMAIL_TOKEN_USED": "The emailed token was already used, or a newer one replaced it; ask "
    "for a new message.",
    "EMAIL_ALREADY_VERIFIED": "The user's email address is verified already.",
    "EMAIL_NOT_VERIFIED": "Verification is required (`CFD_REQUIRE_EMAIL_VERIFICATION`) and "
    "the access token's user had not verified their email when it was issued: verify, then "
    "refresh the token.",
    "PROVIDER_NOT_FOUND": "No identity provider of this name is configured on the server.",
    "OIDC_STATE_INVALID": "The `state` is unknown, expired, already used, or belongs to "
    "another flow (a link completed as a sign-in, or another user's link); start again.",
    "OIDC_IDENTITY_INVALID": "The identity provider refused the code, or its ID token failed "
    "verification (signature, issuer, audience, expiry or nonce).",
    "PROVIDER_EMAIL_NOT_VERIFIED": "An account with the provider's email exists and the "
    "provider does not say the email is verified: sign in with the password, then link the "
    "provider.",
    "IDENTITY_LINK_REQUIRED": "The account with the provider's email has two-factor "
    "authentication: sign in with the password and code, then link the provider.",
    "PROVIDER_EMAIL_MISSING": "The identity provider shared no usable email address.",
    "IDENTITY_TAKEN": "The provider's identity is linked to another user, or the caller "
    "already has an identity of this provider linked.",
    "IDENTITY_NOT_FOUND": "The caller has no identity of this provider linked.",
    "LAST_SIGNIN_METHOD": "The identity is the user's only way to sign in (no password, no "
    "other provider): it cannot be unlinked.",
    "TOKEN_INVALID": "The access or refresh token is missing, malformed, revoked or not "
    "signed by the platform.",
    "TOKEN_EXPIRED": "The token is past its expiry; refresh it or sign in again.",
    "RATE_LIMITED": "Too many requests; a `google.rpc.RetryInfo` detail (and the "
    "`Retry-After` header over HTTP) says when to retry.",
    "SERVICE_UNAVAILABLE": "A service the call needs cannot be reached or its database is "
    "down; retrying later is safe.",
    "INTERNAL": "An unexpected failure; the service's log has the details.",
    RESUME_REQUIRED: "WebSocket only: the connection fell too far behind on its `events` "
    "subscription; subscribe again with the `fromSequence` the error frame carries.",
}
# Reasons that are not in REASON_CODES because they never leave a gRPC service.
WEBSOCKET_REASONS = {RESUME_REQUIRED: "ABORTED"}

_SCALARS = {
    descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE: "double",
    descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT: "float",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT64: "int64",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT64: "uint64",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT32: "int32",
    descriptor_pb2.FieldDescriptorProto.TYPE_FIXED64: "fixed64",
    descriptor_pb2.FieldDescriptorProto.TYPE_FIXED32: "fixed32",
    descriptor_pb2.FieldDescriptorProto.TYPE_BOOL: "bool",
    descriptor_pb2.FieldDescriptorProto.TYPE_STRING: "string",
    descriptor_pb2.FieldDescriptorProto.TYPE_BYTES: "bytes",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT32: "uint32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SFIXED32: "sfixed32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SFIXED64: "sfixed64",
    descriptor_pb2.FieldDescriptorProto.TYPE_SINT32: "sint32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SINT64: "sint64",
}
# 64-bit integers are strings in the protobuf JSON mapping.
_STRING_IN_JSON = frozenset({"int64", "uint64", "fixed64", "sfixed64", "sint64"})
# How the well-known types the contracts use look in JSON.
_WELL_KNOWN_JSON = {
    "google.protobuf.Timestamp": "RFC 3339 timestamp string",
    "google.protobuf.Duration": 'duration string such as "1.5s"',
}
_MESSAGE_PATH, _FIELD_PATH, _NESTED_PATH, _ENUM_PATH = 4, 2, 3, 5
_NESTED_ENUM_PATH, _VALUE_PATH, _SERVICE_PATH, _METHOD_PATH = 4, 2, 6, 2


class ApiDocsError(ValueError):
    """The sources of the reference disagree (e.g. an error reason without a description)."""


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a message."""

    name: str
    json_name: str
    type_name: str  # a scalar name or the full name of a message or enum
    is_scalar: bool
    repeated: bool
    optional: bool
    oneof: str
    comment: str


@dataclass(frozen=True, slots=True)
class Definition:
    """A message, enum or service: its full name, contract file and comment."""

    full_name: str
    file: str
    comment: str

    @property
    def name(self) -> str:
        """Return the name without the package."""
        return _short(self.full_name)


@dataclass(frozen=True, slots=True)
class Message(Definition):
    """A message with its fields."""

    fields: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class EnumValue:
    """One value of an enum."""

    name: str
    number: int
    comment: str


@dataclass(frozen=True, slots=True)
class Enum(Definition):
    """An enum with its values."""

    values: tuple[EnumValue, ...]


@dataclass(frozen=True, slots=True)
class HttpRoute:
    """One HTTP binding of an RPC."""

    method: str
    path: str
    body: str


@dataclass(frozen=True, slots=True)
class Method:
    """An RPC."""

    name: str
    comment: str
    input: str
    output: str
    server_streaming: bool
    client_streaming: bool
    routes: tuple[HttpRoute, ...]


@dataclass(frozen=True, slots=True)
class Service(Definition):
    """A service with its RPCs."""

    methods: tuple[Method, ...]

    @property
    def internal(self) -> bool:
        """Tell whether the service is internal (never routed by the edge or Envoy)."""
        return self.full_name in INTERNAL_SERVICES

    @property
    def page(self) -> str:
        """Return the path of the service's page, relative to the docs root."""
        slug = re.sub(r"(?<!^)(?=[A-Z])", "-", self.name).lower()
        return f"{REFERENCE_DIR}/{slug}.md"


@dataclass(frozen=True, slots=True)
class Contracts:
    """Every service, message and enum of the package, in file order."""

    services: tuple[Service, ...]
    messages: dict[str, Message]
    enums: dict[str, Enum]
    file_notes: dict[str, str]


@dataclass(frozen=True, slots=True)
class GeneratedPage:
    """A page of the reference: its navigation title, path and Markdown."""

    title: str
    path: str
    markdown: str


def read_contracts(path: Path = DESCRIPTOR_SET) -> Contracts:
    """Read the package's services, messages and enums with their comments."""
    files = descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())
    services: list[Service] = []
    messages: dict[str, Message] = {}
    enums: dict[str, Enum] = {}
    notes: dict[str, str] = {}
    for file in files.file:
        if file.package != PACKAGE:
            continue
        comments = _Comments(file)
        notes[file.name] = "\n\n".join(comments.detached)
        for index, msg in enumerate(file.message_type):
            _collect_message(
                file.name, msg, PACKAGE, (_MESSAGE_PATH, index), comments, messages, enums
            )
        for index, enum in enumerate(file.enum_type):
            enums_item = _enum(file.name, enum, PACKAGE, (_ENUM_PATH, index), comments)
            enums[enums_item.full_name] = enums_item
        for index, service in enumerate(file.service):
            services.append(_service(file.name, service, (_SERVICE_PATH, index), comments))
    if not services:
        raise ApiDocsError(f"{path} holds no service of package {PACKAGE}")
    return Contracts(tuple(services), messages, enums, notes)


class _Comments:
    """The leading and detached comments of one file, by source path."""

    def __init__(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        if not file.source_code_info.location:
            raise ApiDocsError(f"{file.name}: the descriptor set has no source info")
        self._leading = {
            tuple(loc.path): _clean(loc.leading_comments) for loc in file.source_code_info.location
        }
        self.detached = [
            _clean(text)
            for loc in file.source_code_info.location
            for text in loc.leading_detached_comments
        ]

    def of(self, path: tuple[int, ...]) -> str:
        return self._leading.get(path, "")


def _clean(comment: str) -> str:
    lines = [line[1:] if line.startswith(" ") else line for line in comment.strip("\n").split("\n")]
    return "\n".join(lines).strip()


def _collect_message(
    file: str,
    msg: descriptor_pb2.DescriptorProto,
    scope: str,
    path: tuple[int, ...],
    comments: _Comments,
    messages: dict[str, Message],
    enums: dict[str, Enum],
) -> None:
    full = f"{scope}.{msg.name}"
    if msg.options.map_entry:
        return
    fields = []
    for index, field in enumerate(msg.field):
        oneof = ""
        if field.HasField("oneof_index") and not field.proto3_optional:
            oneof = msg.oneof_decl[field.oneof_index].name
        is_scalar = field.type in _SCALARS
        fields.append(
            Field(
                name=field.name,
                json_name=field.json_name,
                type_name=_SCALARS[field.type] if is_scalar else field.type_name.lstrip("."),
                is_scalar=is_scalar,
                repeated=field.label == descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
                optional=field.proto3_optional,
                oneof=oneof,
                comment=comments.of((*path, _FIELD_PATH, index)),
            )
        )
    messages[full] = Message(full, file, comments.of(path), tuple(fields))
    for index, nested in enumerate(msg.nested_type):
        _collect_message(
            file, nested, full, (*path, _NESTED_PATH, index), comments, messages, enums
        )
    for index, enum in enumerate(msg.enum_type):
        item = _enum(file, enum, full, (*path, _NESTED_ENUM_PATH, index), comments)
        enums[item.full_name] = item


def _enum(
    file: str,
    enum: descriptor_pb2.EnumDescriptorProto,
    scope: str,
    path: tuple[int, ...],
    comments: _Comments,
) -> Enum:
    values = tuple(
        EnumValue(value.name, value.number, comments.of((*path, _VALUE_PATH, index)))
        for index, value in enumerate(enum.value)
    )
    return Enum(f"{scope}.{enum.name}", file, comments.of(path), values)


def _service(
    file: str,
    service: descriptor_pb2.ServiceDescriptorProto,
    path: tuple[int, ...],
    comments: _Comments,
) -> Service:
    methods = []
    for index, method in enumerate(service.method):
        rule: http_pb2.HttpRule = method.options.Extensions[annotations_pb2.http]
        methods.append(
            Method(
                name=method.name,
                comment=comments.of((*path, _METHOD_PATH, index)),
                input=method.input_type.lstrip("."),
                output=method.output_type.lstrip("."),
                server_streaming=method.server_streaming,
                client_streaming=method.client_streaming,
                routes=tuple(_routes(rule)),
            )
        )
    return Service(f"{PACKAGE}.{service.name}", file, comments.of(path), tuple(methods))


def _routes(rule: http_pb2.HttpRule) -> Iterator[HttpRoute]:
    for current in (rule, *rule.additional_bindings):
        kind = current.WhichOneof("pattern")
        if kind is None:
            continue
        if kind == "custom":
            yield HttpRoute(current.custom.kind.upper(), current.custom.path, current.body)
        else:
            yield HttpRoute(kind.upper(), str(getattr(current, kind)), current.body)


def _short(full_name: str) -> str:
    return full_name.removeprefix(f"{PACKAGE}.")


# Rendering.


def anchor(full_name: str) -> str:
    """Return the HTML id of a message, enum or RPC on its page."""
    return _short(full_name).replace(".", "-")


def _cell(text: str) -> str:
    """Return text fit for one table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _summary(comment: str) -> str:
    """Return the first sentence of a comment."""
    text = " ".join(comment.split())
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


def _prose(text: str) -> str:
    """Return a comment as Markdown paragraphs; an `Errors:` line starts its own paragraph."""
    return re.sub(r"\n(?=Errors:)", "\n\n", text)


class _Linker:
    """Render type names as links to the message and enum pages (every generated page sits
    beside them)."""

    def __init__(self, contracts: Contracts) -> None:
        self._contracts = contracts

    def type_link(self, type_name: str) -> str:
        """Return a type as Markdown, linked when it is a message or enum of the package."""
        if type_name in self._contracts.messages:
            return f"[{_short(type_name)}](messages.md#{anchor(type_name)})"
        if type_name in self._contracts.enums:
            return f"[{_short(type_name)}](enums.md#{anchor(type_name)})"
        return f"`{type_name}`"

    def field_type(self, field: Field) -> str:
        """Return a field's type with its label and JSON form."""
        text = f"`{field.type_name}`" if field.is_scalar else self.type_link(field.type_name)
        if field.type_name in _STRING_IN_JSON:
            text += " (string in JSON)"
        elif field.type_name in _WELL_KNOWN_JSON:
            text += f" ({_WELL_KNOWN_JSON[field.type_name]})"
        elif field.type_name in self._contracts.enums:
            text += " (value name in JSON)"
        if field.repeated:
            text = f"repeated {text}"
        if field.optional:
            text = f"optional {text}"
        if field.oneof:
            text += f", one of `{field.oneof}`"
        return text


def render_fields(message: Message, linker: _Linker) -> str:
    """Return the field table of a message."""
    if not message.fields:
        return "No fields.\n"
    rows = ["| field | JSON name | type | description |", "|---|---|---|---|"]
    for field in message.fields:
        rows.append(
            f"| `{field.name}` | `{field.json_name}` | {linker.field_type(field)} "
            f"| {_cell(field.comment)} |"
        )
    return "\n".join(rows) + "\n"


def json_shape(
    contracts: Contracts, type_name: str, indent: int = 0, seen: frozenset[str] = frozenset()
) -> str:
    """Return a JSON skeleton of a message: every field by JSON name with its type as a value."""
    message = contracts.messages[type_name]
    if type_name in seen:
        return f'"<{message.name}>"'
    pad = "  " * (indent + 1)
    lines = []
    for field in message.fields:
        if field.type_name in contracts.messages:
            value = json_shape(contracts, field.type_name, indent + 1, seen | {type_name})
        elif field.type_name in contracts.enums:
            value = f'"<{_short(field.type_name)} value name>"'
        elif field.type_name in _WELL_KNOWN_JSON:
            value = f'"<{_WELL_KNOWN_JSON[field.type_name]}>"'
        elif field.type_name == "bool":
            value = "<true|false>"
        elif field.type_name in _STRING_IN_JSON or field.type_name == "string":
            value = f'"<{field.type_name}>"'
        else:
            value = f"<{field.type_name}>"
        if field.repeated:
            value = f"[{value}, …]"
        lines.append(f'{pad}"{field.json_name}": {value}')
    if not lines:
        return "{}"
    return "{\n" + ",\n".join(lines) + "\n" + "  " * indent + "}"


def returned_reasons(service: Service, method: Method) -> list[str]:
    """Return the error reasons the comments of an RPC and its service name, in table order."""
    words = set(re.findall(r"[A-Z][A-Z_]+", f"{service.comment}\n{method.comment}"))
    return [reason for reason in REASON_TEXT if reason in words]


def _rpc_table(service: Service, page: str) -> str:
    """Return the table of a service's RPCs, linking to their sections on `page` ("": here)."""
    rows = ["| RPC | HTTP | what it does |", "|---|---|---|"]
    for method in service.methods:
        http = "<br>".join(f"`{r.method} {r.path}`" for r in method.routes) or "gRPC only"
        link = f"[{method.name}]({page}#{anchor(f'{service.name}.{method.name}')})"
        summary = _summary(method.comment)
        if method.server_streaming:
            summary = f"(server stream) {summary}"
        rows.append(f"| {link} | {http} | {_cell(summary)} |")
    return "\n".join(rows) + "\n"


def _service_page(contracts: Contracts, service: Service) -> str:
    linker = _Linker(contracts)
    out = [f"# {service.name}\n", f"`{service.full_name}`, defined in `proto/{service.file}`.\n"]
    if service.internal:
        out.append(
            '!!! note "Internal service"\n    Never routed by the edge or Envoy: it is reached '
            "over gRPC only, with the internal token.\n"
        )
    out.append(_prose(service.comment) + "\n")
    out.append(_rpc_table(service, ""))
    for method in service.methods:
        out.append(f"## {method.name} {{#{anchor(f'{service.name}.{method.name}')}}}\n")
        kind = "server streaming" if method.server_streaming else "unary"
        if method.client_streaming:
            kind = "client streaming"
        out.append(f"- gRPC: `/{service.full_name}/{method.name}` ({kind})")
        for route in method.routes:
            body = {"": "request fields in the path and query", "*": "request as JSON body"}.get(
                route.body, f"body field `{route.body}`"
            )
            out.append(f"- HTTP: `{route.method} {route.path}` ({body})")
        out.append("")
        out.append(_prose(method.comment) + "\n")
        stream = "a stream of " if method.server_streaming else ""
        out.append(
            f"Request {linker.type_link(method.input)}, response "
            f"{stream}{linker.type_link(method.output)}.\n"
        )
        reasons = returned_reasons(service, method)
        if reasons:
            links = ", ".join(f"[{r}](errors.md#{r.lower()})" for r in reasons)
            out.append(f"Error reasons: {links}.\n")
        request = contracts.messages[method.input]
        out.append(render_fields(request, linker))
    return "\n".join(out)


_Item = TypeVar("_Item", Message, Enum)


def _by_file(items: dict[str, _Item]) -> dict[str, list[_Item]]:
    grouped: dict[str, list[_Item]] = {}
    for item in items.values():
        grouped.setdefault(item.file, []).append(item)
    return grouped


def _messages_page(contracts: Contracts) -> str:
    linker = _Linker(contracts)
    out = [
        "# Messages\n",
        "Every message of the contracts, by file. JSON names are what REST and WebSocket "
        "clients see; an unset field is omitted from JSON output.\n",
    ]
    for file, messages in _by_file(contracts.messages).items():
        out.append(f"## `{file}`\n")
        if contracts.file_notes.get(file):
            out.append(contracts.file_notes[file] + "\n")
        for message in messages:
            out.append(f"### {message.name} {{#{anchor(message.full_name)}}}\n")
            if message.comment:
                out.append(message.comment + "\n")
            out.append(render_fields(message, linker))
    return "\n".join(out)


def _enums_page(contracts: Contracts) -> str:
    out = [
        "# Enums\n",
        'Enum values travel by name in JSON (`"SIDE_BUY"`) and by number over gRPC. The zero '
        '`*_UNSPECIFIED` value means "not set" and is rejected wherever a value is required.\n',
    ]
    for file, enums in _by_file(contracts.enums).items():
        out.append(f"## `{file}`\n")
        for enum in enums:
            out.append(f"### {enum.name} {{#{anchor(enum.full_name)}}}\n")
            if enum.comment:
                out.append(enum.comment + "\n")
            out.append("| value | number | meaning |\n|---|---|---|")
            for value in enum.values:
                out.append(f"| `{value.name}` | {value.number} | {_cell(value.comment)} |")
            out.append("")
    return "\n".join(out)


def _endpoints_page(contracts: Contracts) -> str:
    out = [
        "# Endpoints\n",
        "Every RPC of every service, with its REST binding where it has one. The edge and "
        "Envoy route the same bindings, generated from the `google.api.http` annotations of "
        "the contracts; internal services are gRPC only.\n",
    ]
    for service in contracts.services:
        page = service.page.removeprefix(f"{REFERENCE_DIR}/")
        out.append(f"## [{service.name}]({page})\n")
        summary = service.comment.split("\n\n")[0]
        out.append(" ".join(summary.split()) + "\n")
        out.append(_rpc_table(service, page))
    return "\n".join(out)


def reason_codes() -> dict[str, str]:
    """Return every error reason the code can send, with the name of its gRPC code."""
    return {reason: code.name for reason, code in REASON_CODES.items()} | WEBSOCKET_REASONS


def _errors_page(contracts: Contracts, codes: Mapping[str, str]) -> str:
    missing = sorted(set(codes) - set(REASON_TEXT))
    stale = sorted(set(REASON_TEXT) - set(codes))
    if missing or stale:
        raise ApiDocsError(
            f"error reasons without a description in tools/apidocs.py: {missing}; "
            f"described but unknown to the code: {stale}"
        )
    http = {code.name: status for code, status in HTTP_STATUS.items()}
    users: dict[str, list[str]] = {reason: [] for reason in REASON_TEXT}
    for service in contracts.services:
        page = service.page.removeprefix(f"{REFERENCE_DIR}/")
        for method in service.methods:
            target = anchor(f"{service.name}.{method.name}")
            for reason in returned_reasons(service, method):
                users[reason].append(f"[{service.name}.{method.name}]({page}#{target})")
    out = [
        "# Error reasons\n",
        "A failed call carries a gRPC status code and a `google.rpc.ErrorInfo` detail whose "
        "`domain` is `cfd.v1` and whose `reason` is one of the names below; validation errors "
        "add a `google.rpc.BadRequest` with one violation per field, and rate limits a "
        "`google.rpc.RetryInfo`. Over REST the HTTP status follows grpc-gateway's mapping "
        'and the body is `{"code": <gRPC code number>, "message": "…", "details": '
        "[…]}`, each detail with its `@type`. The WebSocket's error frames carry "
        '`{"code", "reason", "message"}`.\n',
        "| reason | gRPC code | HTTP | meaning | named by |\n|---|---|---|---|---|",
    ]
    for reason, text in REASON_TEXT.items():
        code = codes[reason]
        named_by = ", ".join(users[reason]) or "—"
        out.append(
            f'| <span id="{reason.lower()}"></span>`{reason}` | `{code}` | {http[code]} '
            f"| {_cell(text)} | {named_by} |"
        )
    return "\n".join(out) + "\n"


def _channels_page(contracts: Contracts) -> str:
    linker = _Linker(contracts)
    out = [
        "# WebSocket channels\n",
        'The data frames of each channel of `GET /v1/ws`: `{"channel": <name>, "data": '
        "<message>}`, where the message is the protobuf JSON of the type below (unset fields "
        "omitted). The [WebSocket protocol](../websocket.md) page explains the operations, "
        "acknowledgements and errors.\n",
    ]
    for channel, type_name in CHANNEL_DATA.items():
        if type_name not in contracts.messages:
            raise ApiDocsError(f"channel {channel}: unknown message {type_name}")
        out.append(f"## `{channel}` {{#channel-{channel}}}\n")
        out.append(f"`data` is a {linker.type_link(type_name)}.\n")
        shape = json_shape(contracts, type_name, 1)
        out.append(f'```\n{{\n  "channel": "{channel}",\n  "data": {shape}\n}}\n```\n')
        out.append(render_fields(contracts.messages[type_name], linker))
    return "\n".join(out)


def generate(contracts: Contracts | None = None) -> list[GeneratedPage]:
    """Return every page of the reference, in navigation order."""
    contracts = read_contracts() if contracts is None else contracts
    pages = [GeneratedPage("Endpoints", NAV_PLACEHOLDER, _endpoints_page(contracts))]
    for service in contracts.services:
        pages.append(GeneratedPage(service.name, service.page, _service_page(contracts, service)))
    pages += [
        GeneratedPage("Messages", f"{REFERENCE_DIR}/messages.md", _messages_page(contracts)),
        GeneratedPage("Enums", f"{REFERENCE_DIR}/enums.md", _enums_page(contracts)),
        GeneratedPage(
            "Error reasons", f"{REFERENCE_DIR}/errors.md", _errors_page(contracts, reason_codes())
        ),
        GeneratedPage(
            "WebSocket channels",
            f"{REFERENCE_DIR}/websocket-channels.md",
            _channels_page(contracts),
        ),
    ]
    return pages


def readme_section(title: str, readme: str) -> str:
    """Return the body of a `## title` section of the README, its subsections one level down."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    if match is None:
        raise ApiDocsError(f"the README has no section '## {title}'")
    return re.sub(r"^(#{3,}) ", r"\1# ", match.group(1), flags=re.M).strip() + "\n"


def include_readme(markdown: str, readme: str) -> str:
    """Replace each `<!-- README:Title -->…<!-- /README:Title -->` part with that section."""
    return README_SECTION.sub(lambda m: readme_section(m.group("name"), readme), markdown)


# MkDocs hooks (mkdocs.yml `hooks:`).


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Replace the reference's placeholder in the navigation with the generated pages."""
    entries = [{page.title: page.path} for page in generate()]

    def expand(items: list[Any]) -> list[Any]:
        out: list[Any] = []
        for item in items:
            if isinstance(item, dict):
                ((title, value),) = item.items()
                if value == NAV_PLACEHOLDER:
                    out.append({title: entries})
                    continue
                if isinstance(value, list):
                    out.append({title: expand(value)})
                    continue
            out.append(item)
        return out

    config.nav = expand(config.nav or [])
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated reference pages to the site."""
    from mkdocs.structure.files import File

    for page in generate():
        files.append(File.generated(config, page.path, content=page.markdown))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Fill the README-sourced parts of a page."""
    if "<!-- README:" not in markdown:
        return markdown
    return include_readme(markdown, README.read_text())


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    out = Path(sys.argv[1])
    for page in generate():
        target = out / page.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(page.markdown)
        print(target)


if __name__ == "__main__":
    main()
