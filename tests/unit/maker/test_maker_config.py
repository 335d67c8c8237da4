"""The maker's settings from the environment."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from maker.config import PASSWORD_FILE, MakerConfig
from mesh.config import ConfigError


def test_defaults_and_a_password_generated_once_into_the_data_dir(tmp_path: Path) -> None:
    first = MakerConfig.from_env(tmp_path, {})
    again = MakerConfig.from_env(tmp_path, {})
    assert (first.quotes.levels, first.quotes.level_size) == (5, Decimal(1000))
    assert (first.quotes.spread_bps, first.quotes.step_bps) == (Decimal(5), Decimal(5))
    assert (first.requote_bps, first.refresh_ms) == (Decimal(5), 5000)
    assert first.email == "maker@cfd-mesh.dev"
    assert first.password == again.password == (tmp_path / PASSWORD_FILE).read_text()
    assert first.password not in repr(first)


def test_every_setting_is_read(tmp_path: Path) -> None:
    config = MakerConfig.from_env(
        tmp_path,
        {
            "CFD_MAKER_LEVELS": "3",
            "CFD_MAKER_LEVEL_SIZE": "250.5",
            "CFD_MAKER_SPREAD_BPS": "2.5",
            "CFD_MAKER_STEP_BPS": "0",
            "CFD_MAKER_REQUOTE_BPS": "1",
            "CFD_MAKER_REFRESH_MS": "750",
            "CFD_MAKER_EMAIL": "bot@example.com",
            "CFD_MAKER_PASSWORD": "a long secret",
        },
    )
    assert config.quotes.levels == 3
    assert config.quotes.level_size == Decimal("250.5")
    assert (config.quotes.spread_bps, config.quotes.step_bps) == (Decimal("2.5"), Decimal(0))
    assert (config.requote_bps, config.refresh_ms) == (Decimal(1), 750)
    assert (config.email, config.password) == ("bot@example.com", "a long secret")
    assert not (tmp_path / PASSWORD_FILE).exists()


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("CFD_MAKER_LEVELS", "0"),
        ("CFD_MAKER_LEVEL_SIZE", "ten"),
        ("CFD_MAKER_SPREAD_BPS", "0"),
        ("CFD_MAKER_STEP_BPS", "-1"),
        ("CFD_MAKER_REQUOTE_BPS", "NaN"),
        ("CFD_MAKER_REFRESH_MS", "5"),
        ("CFD_MAKER_PASSWORD", "short"),
    ],
)
def test_a_bad_value_names_its_variable(tmp_path: Path, var: str, value: str) -> None:
    with pytest.raises(ConfigError, match=var):
        MakerConfig.from_env(tmp_path, {var: value})


def test_trading_every_few_milliseconds_is_refused(tmp_path: Path) -> None:
    assert MakerConfig.from_env(tmp_path, {"CFD_MAKER_TRADE_MS": "0"}).trade_ms == 0
    with pytest.raises(ConfigError, match="CFD_MAKER_TRADE_MS"):
        MakerConfig.from_env(tmp_path, {"CFD_MAKER_TRADE_MS": "50"})
