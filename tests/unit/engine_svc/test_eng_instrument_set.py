"""The engine's instruments: conversion from specs and the replay-safety check at start-up."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from engine_svc.core import (
    ApplyQuote,
    Core,
    CreateAccount,
    Instrument,
    OpenPosition,
    Side,
    default_instruments,
    make_instrument,
)
from engine_svc.instrument_set import (
    INSTRUMENTS_FILE,
    InstrumentChangeError,
    adopt_instruments,
    core_instruments,
    read_recorded,
)
from mesh.config import ConfigError
from mesh.instruments import DEFAULT_SPECS, InstrumentSpec

XRP = make_instrument("XRPUSD", "0.0001", "1", 50)


def _with_xrp() -> dict[str, Instrument]:
    return {**default_instruments(), "XRPUSD": XRP}


def test_the_default_specs_are_the_core_defaults() -> None:
    assert core_instruments(DEFAULT_SPECS) == default_instruments()


def test_a_spec_the_core_cannot_use_is_a_configuration_error() -> None:
    spec = InstrumentSpec("XRPUSD", "XRP", "XRP", "0.0001", "1", 5000)
    with pytest.raises(ConfigError, match="XRPUSD"):
        core_instruments([spec])


def test_the_first_start_records_the_configured_instruments(tmp_path: Path) -> None:
    configured = _with_xrp()
    core = adopt_instruments(Core(configured), configured, tmp_path, fsync=False)
    assert list(core.instruments) == ["BTCUSD", "ETHUSD", "SOLUSD", "XRPUSD"]
    assert read_recorded(tmp_path / INSTRUMENTS_FILE) == configured


def test_without_a_snapshot_the_recorded_file_guards_the_journal(tmp_path: Path) -> None:
    configured = _with_xrp()
    adopt_instruments(Core(configured), configured, tmp_path, fsync=False)
    finer = {**configured, "XRPUSD": make_instrument("XRPUSD", "0.00001", "1", 50)}
    with pytest.raises(InstrumentChangeError, match=r"XRPUSD: tick_size is 0.0001 in .*0.00001"):
        adopt_instruments(Core(finer), finer, tmp_path, fsync=False)
    lots = {**configured, "XRPUSD": make_instrument("XRPUSD", "0.0001", "10", 50)}
    with pytest.raises(InstrumentChangeError, match="XRPUSD: lot_step is 1 in"):
        adopt_instruments(Core(lots), lots, tmp_path, fsync=False)
    capped = {**configured, "XRPUSD": make_instrument("XRPUSD", "0.0001", "1", 20)}
    with pytest.raises(InstrumentChangeError, match="XRPUSD: max_leverage is 50 in"):
        adopt_instruments(Core(capped), capped, tmp_path, fsync=False)
    assert read_recorded(tmp_path / INSTRUMENTS_FILE) == configured


def test_a_snapshot_without_a_recorded_file_is_checked_too(tmp_path: Path) -> None:
    restored = Core.restore(Core().snapshot())
    changed = {**default_instruments(), "SOLUSD": make_instrument("SOLUSD", "0.01", "0.01")}
    with pytest.raises(InstrumentChangeError, match=r"SOLUSD: tick_size is 0.001 in the engine"):
        adopt_instruments(restored, changed, tmp_path, fsync=False)
    assert not (tmp_path / INSTRUMENTS_FILE).exists()


def test_an_instrument_added_to_a_restored_core_trades_and_survives_a_snapshot(
    tmp_path: Path,
) -> None:
    core = Core()
    core.apply(CreateAccount(1, 1, "a", 1_000_000_000))
    restored = adopt_instruments(Core.restore(core.snapshot()), _with_xrp(), tmp_path, False)
    assert list(restored.instruments) == ["BTCUSD", "ETHUSD", "SOLUSD", "XRPUSD"]
    restored.apply(ApplyQuote(2, 2, "XRPUSD", 5000, 5001))
    result = restored.apply(OpenPosition(3, 3, "a", "XRPUSD", Side.BUY, 50, quantity=1000))
    assert result.reason is None, result.message
    again = Core.restore(restored.snapshot())
    assert again.digest() == restored.digest()
    assert [p.symbol for p in again.list_positions("a")] == ["XRPUSD"]


def test_a_damaged_record_is_refused(tmp_path: Path) -> None:
    (tmp_path / INSTRUMENTS_FILE).write_text('{"BTCUSD": 1}')
    with pytest.raises(InstrumentChangeError, match="damaged"):
        adopt_instruments(Core(), None, tmp_path, fsync=False)


def test_the_configured_contract_size_replaces_the_restored_one(tmp_path: Path) -> None:
    # A snapshot holds no contract size: the restored core has the default one, and a record
    # written before contract sizes existed has none either.
    (tmp_path / INSTRUMENTS_FILE).write_text(
        '[{"symbol": "XRPUSD", "tick_size": "0.0001", "lot_step": "1", "max_leverage": 50,'
        ' "maintenance_margin_rate": "0"}]'
    )
    configured = {"XRPUSD": make_instrument("XRPUSD", "0.0001", "1", 50, contract_size="1000")}
    core = adopt_instruments(Core({"XRPUSD": XRP}), configured, tmp_path, fsync=False)
    assert core.instruments["XRPUSD"].contract_size == "1000"
    assert core.instruments["XRPUSD"].format_volume_lots(1500) == "1.500"
    recorded = read_recorded(tmp_path / INSTRUMENTS_FILE)
    assert recorded is not None and recorded["XRPUSD"].contract_size == "1000"


def test_swap_and_commission_rates_are_recorded_and_refused_when_changed(
    tmp_path: Path,
) -> None:
    spec = InstrumentSpec(
        "XRPUSD", "XRP", "XRP", "0.0001", "1", 50, "0", "100", "-2.5", "1", "30", "0.5"
    )
    configured = {**default_instruments(), **core_instruments([spec])}
    charges = configured["XRPUSD"].charges
    assert (charges.swap_long, charges.swap_short) == (-25_000, 10_000)
    assert (charges.commission_per_million, charges.commission_per_lot) == (30_000_000, 500_000)
    assert configured["XRPUSD"].contract_size == "100"
    adopt_instruments(Core(configured), configured, tmp_path, fsync=False)
    assert read_recorded(tmp_path / INSTRUMENTS_FILE) == configured
    cheaper = {
        **configured,
        "XRPUSD": core_instruments([dataclasses.replace(spec, commission_per_million="20")])[
            "XRPUSD"
        ],
    }
    with pytest.raises(InstrumentChangeError, match="XRPUSD: commission_per_million is 30 in"):
        adopt_instruments(Core(cheaper), cheaper, tmp_path, fsync=False)
    swapless = {**configured, "XRPUSD": XRP}
    with pytest.raises(InstrumentChangeError, match=r"XRPUSD: swap_long_bps is -2\.5 in"):
        adopt_instruments(Core(swapless), swapless, tmp_path, fsync=False)


def test_a_file_recorded_before_charges_reads_as_free_of_them(tmp_path: Path) -> None:
    path = tmp_path / INSTRUMENTS_FILE
    path.write_text(
        '[{"symbol": "XRPUSD", "tick_size": "0.0001", "lot_step": "1", "max_leverage": 50,'
        ' "maintenance_margin_rate": "0"}]'
    )
    assert read_recorded(path) == {"XRPUSD": XRP}


def test_a_contract_size_change_is_refused_only_with_a_commission_per_lot(
    tmp_path: Path,
) -> None:
    # The commission per lot is per lot of the contract size: replay depends on it.
    spec = InstrumentSpec("XRPUSD", "XRP", "XRP", "0.0001", "1", 50, "0", "1000")
    per_lot = dataclasses.replace(spec, commission_per_lot="0.5")
    configured = core_instruments([per_lot])
    adopt_instruments(Core(configured), configured, tmp_path, fsync=False)
    bigger = core_instruments([dataclasses.replace(per_lot, contract_size="10000")])
    with pytest.raises(InstrumentChangeError, match="XRPUSD: contract_size is 1000 in"):
        adopt_instruments(Core(configured), bigger, tmp_path, fsync=False)
    # A snapshot holds the contract size of such an instrument, so it refuses it too.
    restored = Core.restore(Core(configured).snapshot())
    assert restored.instruments["XRPUSD"].contract_size == "1000"
    with pytest.raises(InstrumentChangeError, match="contract_size is 1000 in the engine snapshot"):
        adopt_instruments(restored, bigger, tmp_path / "missing", fsync=False)
    # Without a commission per lot the contract size may change, as before charges.
    other = tmp_path / "free"
    other.mkdir()
    free = core_instruments([spec])
    adopt_instruments(Core(free), free, other, fsync=False)
    resized = core_instruments([dataclasses.replace(spec, contract_size="10")])
    core = adopt_instruments(Core.restore(Core(free).snapshot()), resized, other, fsync=False)
    assert core.instruments["XRPUSD"].contract_size == "10"
