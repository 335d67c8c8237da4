"""Engine settings: the replicated journal, its lease and the standby flag."""

from __future__ import annotations

import pytest

from engine_svc.config import EngineConfig, MarginDefaults
from engine_svc.core import MarginMode, PositionMode
from mesh.config import ConfigError


def test_without_a_journal_url_the_file_journal_is_used() -> None:
    config = EngineConfig.from_env({})
    assert config.journal_url == ""
    assert (config.journal_stream, config.journal_replicas) == ("CFD_ENGINE", 3)
    assert not config.standby


def test_the_replicated_journal_settings_are_read() -> None:
    config = EngineConfig.from_env(
        {
            "CFD_JOURNAL_URL": "nats://127.0.0.1:4222, nats://127.0.0.1:4223",
            "CFD_JOURNAL_STREAM": "SHARD_0",
            "CFD_JOURNAL_REPLICAS": "5",
            "CFD_JOURNAL_TIMEOUT_MS": "800",
            "CFD_LEASE_TTL_MS": "1500",
            "CFD_ENGINE_STANDBY": "on",
        }
    )
    assert config.journal_url == "nats://127.0.0.1:4222, nats://127.0.0.1:4223"
    assert config.journal_stream == "SHARD_0"
    assert (config.journal_replicas, config.journal_timeout_ms) == (5, 800)
    assert config.lease_ttl_ms == 1500 and config.standby


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("CFD_JOURNAL_URL", "http://127.0.0.1:4222"),
        ("CFD_JOURNAL_URL", "nats://a:1,redis://b:2"),
        ("CFD_JOURNAL_STREAM", "a.b"),
        ("CFD_JOURNAL_STREAM", "журнал"),
        ("CFD_JOURNAL_REPLICAS", "0"),
        ("CFD_JOURNAL_REPLICAS", "6"),
        ("CFD_LEASE_TTL_MS", "100"),
        ("CFD_ENGINE_STANDBY", "maybe"),
    ],
)
def test_a_bad_replication_setting_is_refused_with_its_name(var: str, value: str) -> None:
    with pytest.raises(ConfigError, match=var):
        EngineConfig.from_env({var: value})


def test_new_accounts_are_isolated_with_exness_levels_by_default() -> None:
    margin = EngineConfig.from_env({}).margin
    assert margin == MarginDefaults(MarginMode.ISOLATED, 60, 0)


def test_the_margin_defaults_are_read() -> None:
    env = {"CFD_MARGIN_MODE": "Cross", "CFD_MARGIN_CALL_LEVEL": "100", "CFD_STOP_OUT_LEVEL": "50"}
    assert EngineConfig.from_env(env).margin == MarginDefaults(MarginMode.CROSS, 100, 50)


def test_the_position_mode_default_is_hedging_and_is_read() -> None:
    assert EngineConfig.from_env({}).margin.position_mode is PositionMode.HEDGING
    netting = EngineConfig.from_env({"CFD_POSITION_MODE": " Netting "}).margin
    assert netting == MarginDefaults(position_mode=PositionMode.NETTING)


@pytest.mark.parametrize(
    ("env", "var"),
    [
        ({"CFD_MARGIN_MODE": "hedged"}, "CFD_MARGIN_MODE"),
        ({"CFD_POSITION_MODE": "isolated"}, "CFD_POSITION_MODE"),
        ({"CFD_MARGIN_CALL_LEVEL": "-1"}, "CFD_MARGIN_CALL_LEVEL"),
        ({"CFD_STOP_OUT_LEVEL": "10001"}, "CFD_STOP_OUT_LEVEL"),
        ({"CFD_MARGIN_CALL_LEVEL": "40", "CFD_STOP_OUT_LEVEL": "50"}, "CFD_STOP_OUT_LEVEL"),
    ],
)
def test_a_bad_margin_setting_is_refused_with_its_name(env: dict[str, str], var: str) -> None:
    with pytest.raises(ConfigError, match=var):
        EngineConfig.from_env(env)
