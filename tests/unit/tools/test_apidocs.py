"""The API reference generated from the contracts documents every part of them."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace

import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor

import cfd.v1
from edge.errors import HTTP_STATUS
from mesh.errors import REASON_CODES
from support import load_tool

apidocs = load_tool("apidocs")


def contract_modules() -> Iterator[ModuleType]:
    """Yield every generated *_pb2 module, so a new contract file is covered by itself."""
    for info in pkgutil.iter_modules(cfd.v1.__path__):
        if info.name.endswith("_pb2"):
            yield importlib.import_module(f"cfd.v1.{info.name}")


def all_methods() -> Iterator[tuple[descriptor.ServiceDescriptor, descriptor.MethodDescriptor]]:
    for module in contract_modules():
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                yield service, method


def all_messages() -> Iterator[descriptor.Descriptor]:
    for module in contract_modules():
        for message in module.DESCRIPTOR.message_types_by_name.values():
            yield message
            yield from message.nested_types


def all_enums() -> Iterator[descriptor.EnumDescriptor]:
    for module in contract_modules():
        yield from module.DESCRIPTOR.enum_types_by_name.values()
        for message in module.DESCRIPTOR.message_types_by_name.values():
            yield from message.enum_types


def http_routes(method: descriptor.MethodDescriptor) -> list[str]:
    rule = method.GetOptions().Extensions[annotations_pb2.http]
    routes = []
    for current in (rule, *rule.additional_bindings):
        kind = current.WhichOneof("pattern")
        if kind is not None and kind != "custom":
            routes.append(f"{kind.upper()} {getattr(current, kind)}")
    return routes


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return {page.path: page.markdown for page in apidocs.generate()}


def test_every_rpc_has_a_section_with_its_grpc_path_and_http_routes(
    pages: dict[str, str],
) -> None:
    contracts = apidocs.read_contracts()
    page_of = {s.full_name: s.page for s in contracts.services}
    endpoints = pages[apidocs.NAV_PLACEHOLDER]
    methods = list(all_methods())
    assert sorted(f"{s.full_name}.{m.name}" for s, m in methods) == sorted(
        f"{s.full_name}.{m.name}" for s in contracts.services for m in s.methods
    )
    for service, method in methods:
        page = pages[page_of[service.full_name]]
        assert f"{{#{service.name}-{method.name}}}" in page
        assert f"`/{service.full_name}/{method.name}`" in page
        assert f"#{service.name}-{method.name})" in endpoints
        for route in http_routes(method):
            assert f"`{route}`" in page, route
            assert f"`{route}`" in endpoints, route


def test_rpcs_without_http_rules_are_marked_grpc_only(pages: dict[str, str]) -> None:
    internal = pages["api/reference/engine-admin-service.md"]
    assert "Internal service" in internal
    assert "| [CreateAccount](#EngineAdminService-CreateAccount) | gRPC only |" in internal


def test_every_message_field_and_enum_value_is_documented(pages: dict[str, str]) -> None:
    messages = pages["api/reference/messages.md"]
    enums = pages["api/reference/enums.md"]
    for message in all_messages():
        section = messages.split(f"{{#{message.name}}}", 1)[1].split("\n### ", 1)[0]
        for field in message.fields:
            assert f"| `{field.name}` | `{field.json_name}` |" in section, message.full_name
    for enum in all_enums():
        section = enums.split(f"{{#{enum.name}}}", 1)[1].split("\n### ", 1)[0]
        for value in enum.values:
            assert f"| `{value.name}` | {value.number} |" in section, enum.full_name


def test_comments_and_json_forms_come_from_the_contracts(pages: dict[str, str]) -> None:
    trading = pages["api/reference/trading-service.md"]
    assert "Open a position at the current quote: a buy fills at the ask" in trading
    messages = pages["api/reference/messages.md"]
    assert "| `open_time` | `openTime` | `google.protobuf.Timestamp` (RFC 3339" in messages
    assert "| `sequence` | `sequence` | `int64` (string in JSON)" in messages
    assert "[Side](enums.md#Side) (value name in JSON)" in messages
    assert "`string`, one of `size`" in messages
    assert "optional `string`" in messages
    # The file-level note of common.proto (a detached comment) introduces its messages.
    assert "exact decimal strings" in messages


def test_every_error_reason_has_its_code_http_status_and_the_rpcs_naming_it(
    pages: dict[str, str],
) -> None:
    errors = pages["api/reference/errors.md"]
    for reason, code in REASON_CODES.items():
        assert f"`{reason}` | `{code.name}` | {HTTP_STATUS[code]} |" in errors
    row = next(line for line in errors.splitlines() if "`EMAIL_TAKEN`" in line)
    assert "[AccountService.Signup](account-service.md#AccountService-Signup)" in row
    assert "`RESUME_REQUIRED` | `ABORTED` | 409 |" in errors


def test_a_reason_without_a_description_or_a_stale_one_fails_the_generation() -> None:
    contracts = apidocs.read_contracts()
    codes = apidocs.reason_codes()
    with pytest.raises(apidocs.ApiDocsError, match="NEW_REASON"):
        apidocs._errors_page(contracts, {**codes, "NEW_REASON": "INTERNAL"})
    fewer = {reason: code for reason, code in codes.items() if reason != "EMAIL_TAKEN"}
    with pytest.raises(apidocs.ApiDocsError, match="EMAIL_TAKEN"):
        apidocs._errors_page(contracts, fewer)


def test_the_websocket_channels_show_the_shape_of_their_data(pages: dict[str, str]) -> None:
    channels = pages["api/reference/websocket-channels.md"]
    candles = channels.split("## `candles`", 1)[1].split("\n## ", 1)[0]
    assert '"channel": "candles"' in candles
    assert '"interval": "<CandleInterval value name>"' in candles
    assert '"candle": {\n      "openTime": "<RFC 3339 timestamp string>"' in candles
    assert '"closed": <true|false>' in candles
    positions = channels.split("## `positions`", 1)[1].split("\n## ", 1)[0]
    assert '"positions": [{' in positions


def test_the_navigation_placeholder_becomes_the_generated_pages() -> None:
    nav = [
        {"Home": "index.md"},
        {"API": [{"Overview": "api/index.md"}, {"API reference": apidocs.NAV_PLACEHOLDER}]},
    ]
    config = apidocs.on_config(SimpleNamespace(nav=nav))
    reference = config.nav[1]["API"][1]["API reference"]
    paths = [next(iter(entry.values())) for entry in reference]
    assert paths[0] == apidocs.NAV_PLACEHOLDER
    assert "api/reference/trading-service.md" in paths
    assert paths[-1] == "api/reference/websocket-channels.md"


def test_a_readme_section_replaces_its_marked_part_of_a_page() -> None:
    readme = "# Title\n\n## Configuration\n\nText.\n\n### Engine\n\n| a |\n\n## Layout\n\nNo.\n"
    page = (
        "# Settings\n\nBefore.\n\n<!-- README:Configuration -->\nSee the README.\n"
        "<!-- /README:Configuration -->\n\nAfter.\n"
    )
    out = apidocs.include_readme(page, readme)
    assert out == "# Settings\n\nBefore.\n\nText.\n\n#### Engine\n\n| a |\n\n\nAfter.\n"
    with pytest.raises(apidocs.ApiDocsError, match="Missing"):
        apidocs.include_readme("<!-- README:Missing -->\nx\n<!-- /README:Missing -->", readme)
