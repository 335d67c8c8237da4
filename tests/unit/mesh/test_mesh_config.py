"""Settings from the environment: defaults, validation, the shared internal token."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.config import ConfigError, FrontLimits, Settings


def test_defaults_match_the_documented_ones(tmp_path: Path) -> None:
    settings = Settings.from_env({"CFD_DATA_DIR": str(tmp_path / "data")})
    assert settings.data_dir == (tmp_path / "data").resolve()
    assert (settings.engine_port, settings.market_port, settings.account_port) == (
        50051,
        50052,
        50053,
    )
    assert (settings.edge_port, settings.envoy_port, settings.envoy_admin_port) == (
        8000,
        8080,
        9901,
    )
    assert settings.engine_addr == "127.0.0.1:50051"
    assert settings.feed == "simulator"
    assert settings.demo_balance == "5000"
    assert settings.database_url is None
    assert settings.redis_url is None
    assert settings.require_email_verification is False


def test_internal_token_is_generated_once_and_shared(tmp_path: Path) -> None:
    first = Settings.from_env({"CFD_DATA_DIR": str(tmp_path)})
    second = Settings.from_env({"CFD_DATA_DIR": str(tmp_path)})
    assert len(first.internal_token) >= 32
    assert first.internal_token == second.internal_token
    assert (tmp_path / "internal_token").stat().st_mode & 0o777 == 0o600
    configured = Settings.from_env(
        {"CFD_DATA_DIR": str(tmp_path), "CFD_INTERNAL_TOKEN": "configured-token-123456"}
    )
    assert configured.internal_token == "configured-token-123456"


def test_addresses_and_ports_can_be_overridden(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "CFD_DATA_DIR": str(tmp_path),
            "CFD_ENGINE_PORT": "6001",
            "CFD_MARKET_ADDR": "market.internal:7000",
            "CFD_FEED": "manual",
            "CFD_DATABASE_URL": "postgresql+psycopg://u@h/db",
            "CFD_REDIS_URL": "redis://localhost:6379/0",
            "CFD_DEMO_BALANCE": "100.25",
        }
    )
    assert settings.engine_port == 6001
    assert settings.engine_addr == "127.0.0.1:6001"
    assert settings.market_addr == "market.internal:7000"
    assert settings.feed == "manual"
    assert settings.database_url == "postgresql+psycopg://u@h/db"
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.demo_balance == "100.25"


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("CFD_ENGINE_PORT", "70000", "CFD_ENGINE_PORT"),
        ("CFD_EDGE_PORT", "http", "CFD_EDGE_PORT"),
        ("CFD_FEED", "nasdaq", "CFD_FEED"),
        ("CFD_DATABASE_URL", "mysql://x", "CFD_DATABASE_URL"),
        ("CFD_REDIS_URL", "localhost:6379", "CFD_REDIS_URL"),
        ("CFD_DEMO_BALANCE", "lots", "CFD_DEMO_BALANCE"),
        ("CFD_DEMO_BALANCE", "1.0000001", "CFD_DEMO_BALANCE"),
        ("CFD_DEMO_BALANCE", "-5", "CFD_DEMO_BALANCE"),
        ("CFD_DEMO_BALANCE", "NaN", "CFD_DEMO_BALANCE"),
        ("CFD_ENGINE_ADDR", "no-port", "CFD_ENGINE_ADDR"),
        ("CFD_ENGINE_ADDR", "ipv4:127.0.0.1:1,no-port", "CFD_ENGINE_ADDR"),
        ("CFD_ENGINE_ADDR", "127.0.0.1:1,127.0.0.1:2", "CFD_ENGINE_ADDR"),
        ("CFD_INTERNAL_TOKEN", "short", "CFD_INTERNAL_TOKEN"),
        ("CFD_LOG_LEVEL", "LOUD", "CFD_LOG_LEVEL"),
        ("CFD_REQUIRE_EMAIL_VERIFICATION", "maybe", "CFD_REQUIRE_EMAIL_VERIFICATION"),
    ],
)
def test_bad_values_are_clear_errors(tmp_path: Path, var: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({"CFD_DATA_DIR": str(tmp_path), var: value})


@pytest.mark.parametrize(("value", "expected"), [("on", True), ("TRUE", True), ("off", False)])
def test_email_verification_is_required_when_switched_on(
    tmp_path: Path, value: str, expected: bool
) -> None:
    env = {"CFD_DATA_DIR": str(tmp_path), "CFD_REQUIRE_EMAIL_VERIFICATION": value}
    assert Settings.from_env(env).require_email_verification is expected


def test_front_limits_read_the_shared_variables() -> None:
    limits = FrontLimits.from_env(
        {
            "CFD_CORS_ORIGINS": "http://a.example:3000, https://b.example/",
            "CFD_MAX_BODY_BYTES": "1024",
            "CFD_UPSTREAM_TIMEOUT": "2.5",
            "CFD_RATE_LIMIT_IP": "30",
        }
    )
    assert limits.cors_origins == ("http://a.example:3000", "https://b.example")
    assert limits.max_body_bytes == 1024
    assert limits.upstream_timeout_ms == 2500
    assert (limits.rate_limit_ip, limits.rate_limit_user) == (30, 600)
    assert FrontLimits.from_env({}) == FrontLimits()


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("CFD_CORS_ORIGINS", "ftp://x"),
        ("CFD_MAX_BODY_BYTES", "12"),
        ("CFD_MAX_BODY_BYTES", "١٠٠"),
        ("CFD_UPSTREAM_TIMEOUT", "soon"),
        ("CFD_UPSTREAM_TIMEOUT", "0"),
        ("CFD_RATE_LIMIT_USER", "-1"),
    ],
)
def test_front_limits_reject_bad_values(var: str, value: str) -> None:
    with pytest.raises(ConfigError, match=var):
        FrontLimits.from_env({var: value})


def test_a_service_address_may_list_replicas_as_a_grpc_target(tmp_path: Path) -> None:
    target = "ipv4:127.0.0.1:50051,127.0.0.1:50061"
    settings = Settings.from_env({"CFD_DATA_DIR": str(tmp_path), "CFD_ENGINE_ADDR": target})
    assert settings.engine_addr == target
