"""The spot fee rates: configured, recorded, and refused when they would change the replay."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine_svc.config import EngineConfig
from engine_svc.core import Core
from engine_svc.core.spot import FeeSchedule
from engine_svc.fee_schedule import FEES_FILE, FeeChangeError, adopt_fees, read_recorded
from engine_svc.runtime import EngineRuntime
from mesh.config import ConfigError, Settings
from support import mesh_env


def test_the_rates_are_read_from_the_environment() -> None:
    assert EngineConfig.from_env({}).fees == FeeSchedule(10, 0)
    fees = EngineConfig.from_env({"CFD_TAKER_FEE_BPS": "25", "CFD_MAKER_FEE_BPS": "5"}).fees
    assert fees == FeeSchedule(25, 5)


@pytest.mark.parametrize(
    ("taker", "maker", "named"),
    [("x", "0", "CFD_TAKER_FEE_BPS"), ("10", "10000", "CFD_MAKER_FEE_BPS"), ("5", "6", "exceed")],
)
def test_bad_rates_are_a_configuration_error(taker: str, maker: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        EngineConfig.from_env({"CFD_TAKER_FEE_BPS": taker, "CFD_MAKER_FEE_BPS": maker})


def test_the_first_start_records_the_rates_and_the_same_rates_start_again(tmp_path: Path) -> None:
    fees = FeeSchedule(20, 2)
    adopt_fees(Core(None, fees), fees, tmp_path, fsync=False)
    assert read_recorded(tmp_path / FEES_FILE) == fees
    adopt_fees(Core(None, fees), fees, tmp_path, fsync=False)


def test_other_rates_than_the_recorded_ones_are_refused(tmp_path: Path) -> None:
    adopt_fees(Core(), FeeSchedule(), tmp_path, fsync=False)
    changed = FeeSchedule(30, 0)
    with pytest.raises(FeeChangeError, match=r"taker 10 / maker 0 bps in .*fees\.json"):
        adopt_fees(Core(None, changed), changed, tmp_path, fsync=False)


def test_other_rates_than_the_snapshots_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FeeChangeError, match="engine snapshot"):
        adopt_fees(Core(None, FeeSchedule(10, 0)), FeeSchedule(12, 0), tmp_path, fsync=False)
    assert not (tmp_path / FEES_FILE).exists()


def test_a_damaged_record_is_refused(tmp_path: Path) -> None:
    (tmp_path / FEES_FILE).write_text('{"taker_bps": "ten"}')
    with pytest.raises(FeeChangeError, match="damaged"):
        adopt_fees(Core(), FeeSchedule(), tmp_path, fsync=False)


async def test_the_engine_trades_at_the_configured_rates_and_refuses_a_change(
    tmp_path: Path,
) -> None:
    settings = Settings.from_env(mesh_env(tmp_path, CFD_MARKET_ADDR="127.0.0.1:9"))
    url = f"sqlite+aiosqlite:///{tmp_path / 'history.sqlite3'}"
    first = EngineRuntime(settings, EngineConfig(fsync=False, fees=FeeSchedule(25, 5)), db_url=url)
    await first.start()
    try:
        assert first.core.spot.fees == FeeSchedule(25, 5)
    finally:
        await first.stop()
    again = EngineRuntime(settings, EngineConfig(fsync=False), db_url=url)
    try:
        with pytest.raises(FeeChangeError, match="configured as 10 / 0"):
            await again.start()
    finally:
        await again.stop()
