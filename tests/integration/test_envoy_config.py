"""The rendered Envoy configuration: `envoy --mode validate`, and routes against the contracts."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from envoy_front import runner as envoy
from envoy_front.runner import EnvoyOptions
from envoy_support import EnvoyProcess
from mesh.auth import INTERNAL_SERVICES, PUBLIC_METHODS, PUBLIC_SERVICES
from mesh.config import Settings
from mesh.tokens import TokenConfig, load_signing_key
from support import mesh_env

CLUSTERS = {
    "cfd.v1.AccountService": "accounts",
    "cfd.v1.TradingService": "engine",
    "cfd.v1.MarketDataService": "market",
    "cfd.v1.ExchangeService": "engine",
}
# The service each cluster's health check asks for.
HEALTH_CHECKED = {
    "cfd.v1.AccountService": "accounts",
    "cfd.v1.TradingService": "engine",
    "cfd.v1.MarketDataService": "market",
}


@dataclass(frozen=True)
class Rpc:
    """One RPC of the contracts with its REST mapping."""

    service: str
    name: str
    streaming: bool
    http_path: str | None

    @property
    def grpc_path(self) -> str:
        return f"/{self.service}/{self.name}"

    @property
    def public(self) -> bool:
        return self.service in PUBLIC_SERVICES or self.grpc_path in PUBLIC_METHODS


def _contract_rpcs() -> list[Rpc]:
    files = descriptor_pb2.FileDescriptorSet.FromString(envoy.descriptor_path().read_bytes())
    rpcs = []
    for file in files.file:
        if file.package != "cfd.v1":
            continue
        for service in file.service:
            for method in service.method:
                rule = method.options.Extensions[annotations_pb2.http]
                pattern = rule.WhichOneof("pattern")
                http_path = getattr(rule, pattern) if pattern and pattern != "custom" else None
                rpcs.append(
                    Rpc(
                        service=f"cfd.v1.{service.name}",
                        name=method.name,
                        streaming=method.server_streaming,
                        http_path=http_path,
                    )
                )
    return rpcs


def _matches(match: dict[str, Any], path: str) -> bool:
    if "path" in match:
        return bool(match["path"] == path)
    if "prefix" in match:
        return path.startswith(match["prefix"])
    if "safe_regex" in match:
        return re.fullmatch(match["safe_regex"]["regex"], path) is not None
    raise AssertionError(f"unexpected route match {match}")


def _route_for(routes: list[dict[str, Any]], path: str) -> dict[str, Any] | None:
    """Return the route of a well-formed call to `path`.

    Routes that match on headers too answer malformed requests directly (415): not the one.
    """
    for route in routes:
        if "headers" not in route["match"] and _matches(route["match"], path):
            return route
    return None


def test_rest_bodies_not_declared_json_are_answered_415(routes: list[dict[str, Any]]) -> None:
    refusing = [route for route in routes if "headers" in route["match"]]
    assert [(r["match"]["prefix"], r["direct_response"]["status"]) for r in refusing] == [
        ("/v1/", 415)
    ]


def _needs_token(route: dict[str, Any]) -> bool:
    per_filter = route.get("typed_per_filter_config", {})
    jwt = per_filter.get("envoy.filters.http.jwt_authn")
    return jwt is not None and jwt.get("requirement_name") == "user"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    base = tmp_path_factory.mktemp("envoy-config")
    result = Settings.from_env(mesh_env(base / "data"))
    load_signing_key(result, TokenConfig())
    return result


@pytest.fixture(scope="module")
def dump(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Run Envoy (no upstream needed) and return its configuration as it understood it."""
    front = EnvoyProcess(settings, tmp_path_factory.mktemp("envoy-log") / "envoy.log", {})
    try:
        front.wait_ready()
        config: dict[str, Any] = httpx.get(
            f"http://127.0.0.1:{settings.envoy_admin_port}/config_dump", timeout=5
        ).json()
    finally:
        front.stop()
    yield config


def _section(dump: dict[str, Any], kind: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [c for c in dump["configs"] if c["@type"].endswith(f".{kind}")]
    (section,) = found
    return section


@pytest.fixture(scope="module")
def routes(dump: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the routes of the public listener."""
    (config,) = _section(dump, "RoutesConfigDump")["static_route_configs"]
    (virtual_host,) = config["route_config"]["virtual_hosts"]
    routes: list[dict[str, Any]] = virtual_host["routes"]
    return routes


def test_envoy_validates_the_rendered_config(settings: Settings) -> None:
    result = subprocess.run(
        envoy.validate_command(settings, EnvoyOptions.from_env({})),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout + result.stderr


def test_envoy_refuses_the_config_when_the_jwks_file_is_missing(tmp_path: Path) -> None:
    settings = Settings.from_env(mesh_env(tmp_path / "data"))
    result = subprocess.run(
        envoy.validate_command(settings, EnvoyOptions.from_env({})),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert "jwks.json" in result.stdout + result.stderr


def test_every_public_rpc_has_a_route_to_its_service(routes: list[dict[str, Any]]) -> None:
    public = [rpc for rpc in _contract_rpcs() if rpc.service in CLUSTERS]
    assert len(public) >= 20
    for rpc in public:
        paths = [rpc.grpc_path] + ([] if rpc.http_path is None else [rpc.http_path])
        for path in paths:
            concrete = re.sub(r"\{[^}]+\}", "some-id", path)
            route = _route_for(routes, concrete)
            assert route is not None, f"no route for {rpc.grpc_path} at {concrete}"
            assert route["route"]["cluster"] == CLUSTERS[rpc.service], concrete
            assert _needs_token(route) is not rpc.public, concrete


def test_server_streams_have_no_timeout_and_unary_calls_have_one(
    routes: list[dict[str, Any]],
) -> None:
    for rpc in _contract_rpcs():
        if rpc.service not in CLUSTERS:
            continue
        for path in (rpc.grpc_path, rpc.http_path):
            if path is None:
                continue
            route = _route_for(routes, re.sub(r"\{[^}]+\}", "some-id", path))
            assert route is not None
            action = route["route"]
            if rpc.streaming:
                assert action["timeout"] == "0s", path
                assert action["idle_timeout"] == "0s", path
            else:
                # CFD_UPSTREAM_TIMEOUT's default, the edge's deadline for unary calls.
                assert action["timeout"] == "10s", path


def test_internal_services_have_no_route(routes: list[dict[str, Any]]) -> None:
    internal = [rpc for rpc in _contract_rpcs() if rpc.service in INTERNAL_SERVICES]

    assert {rpc.service for rpc in internal} == set(INTERNAL_SERVICES)
    for rpc in internal:
        assert _route_for(routes, rpc.grpc_path) is None, rpc.grpc_path


def test_admin_is_on_loopback_and_upstreams_are_health_checked_http2(
    settings: Settings, dump: dict[str, Any]
) -> None:
    bootstrap = _section(dump, "BootstrapConfigDump")["bootstrap"]
    admin = bootstrap["admin"]["address"]["socket_address"]
    assert (admin["address"], admin["port_value"]) == ("127.0.0.1", settings.envoy_admin_port)
    clusters = {
        c["cluster"]["name"]: c["cluster"]
        for c in _section(dump, "ClustersConfigDump")["static_clusters"]
    }
    assert set(clusters) == set(CLUSTERS.values())
    for service, name in HEALTH_CHECKED.items():
        cluster = clusters[name]
        (check,) = cluster["health_checks"]
        assert check["grpc_health_check"]["service_name"] == service
        options = cluster["typed_extension_protocol_options"]
        http = options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
        assert "http2_protocol_options" in http["explicit_http_config"]
