"""The instrument configuration every service reads: defaults and CFD_INSTRUMENTS_FILE."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesh.config import ConfigError
from mesh.instruments import (
    DEFAULT_SPECS,
    MAX_INSTRUMENTS,
    InstrumentSpec,
    load_instruments,
    parse_instruments,
)

XRP = {"symbol": "XRPUSD", "tick_size": "0.0001", "lot_step": "1", "max_leverage": 50}


def _file(tmp_path: Path, content: object) -> dict[str, str]:
    path = tmp_path / "instruments.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return {"CFD_INSTRUMENTS_FILE": str(path)}


def test_defaults_match_the_api_table() -> None:
    assert load_instruments({}) == DEFAULT_SPECS
    assert load_instruments({"CFD_INSTRUMENTS_FILE": "  "}) == DEFAULT_SPECS
    table = [(s.symbol, s.tick_size, s.lot_step, s.max_leverage) for s in DEFAULT_SPECS]
    assert table == [
        ("BTCUSD", "0.01", "0.0001", 100),
        ("ETHUSD", "0.01", "0.001", 100),
        ("SOLUSD", "0.001", "0.01", 100),
    ]
    assert all(s.maintenance_margin_rate == "0" for s in DEFAULT_SPECS)
    # One coin per lot, as brokers quote BTC, ETH and SOL CFDs.
    assert all(s.contract_size == "1" for s in DEFAULT_SPECS)
    assert [s.base_currency for s in DEFAULT_SPECS] == ["BTC", "ETH", "SOL"]


def test_a_file_replaces_the_defaults_and_fills_optional_fields(tmp_path: Path) -> None:
    btc = DEFAULT_SPECS[0].to_json()
    specs = load_instruments(_file(tmp_path, [btc, XRP]))
    assert specs == (
        DEFAULT_SPECS[0],
        InstrumentSpec("XRPUSD", "XRP vs US Dollar", "XRP", "0.0001", "1", 50, "0"),
    )


def test_every_field_can_be_given() -> None:
    entry = {
        "symbol": "GOLD1",
        "display_name": "Gold (troy ounce)",
        "base_currency": "XAU",
        "tick_size": "0.1",
        "lot_step": "10",
        "max_leverage": 1000,
        "maintenance_margin_rate": "0.005",
        "contract_size": "100",
        "swap_long_bps": "-2.5",
        "swap_short_bps": "0.0001",
        "commission_per_million": "30",
        "commission_per_lot": "0.000001",
    }
    (spec,) = parse_instruments([entry])
    assert spec.to_json() == entry
    assert spec.contract_size == "100"


def test_the_specs_are_immutable() -> None:
    with pytest.raises(AttributeError):
        DEFAULT_SPECS[0].tick_size = "0.1"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "unknown field"),
        ({"symbol": "xrpusd"}, "upper-case"),
        ({"symbol": "X" * 17}, "upper-case"),
        ({"tick_size": "0.00025"}, "tick_size must be a power of ten"),
        ({"tick_size": "0.010"}, "tick_size must be a power of ten"),
        ({"tick_size": "0"}, "tick_size must be a power of ten"),
        ({"tick_size": "-0.01"}, "tick_size must be a power of ten"),
        ({"tick_size": "0.0000000000001"}, "tick_size must be a power of ten"),
        ({"lot_step": "10000000"}, "lot_step must be a power of ten"),
        ({"lot_step": 1}, "lot_step must be a JSON string"),
        ({"max_leverage": 0}, "max_leverage must be an integer from 1 to 1000"),
        ({"max_leverage": 1001}, "max_leverage"),
        ({"max_leverage": True}, "max_leverage"),
        ({"max_leverage": "50"}, "max_leverage"),
        ({"maintenance_margin_rate": "1"}, "maintenance_margin_rate"),
        ({"maintenance_margin_rate": "-0.1"}, "maintenance_margin_rate"),
        ({"maintenance_margin_rate": "0.0000000000001"}, "maintenance_margin_rate"),
        ({"contract_size": "1500"}, "contract_size must be a power of ten"),
        ({"contract_size": "0"}, "contract_size must be a power of ten"),
        ({"contract_size": 1000}, "contract_size must be a JSON string"),
        ({"base_currency": "xrp"}, "base_currency"),
        ({"symbol": "XRPEUR"}, "does not end in USD"),
        ({"display_name": ""}, "display_name"),
        ({"display_name": "a\nb"}, "display_name"),
        ({"swap_long_bps": "-0.00001"}, "swap_long_bps must be a signed decimal"),
        ({"swap_short_bps": "10000.5"}, "within -10000 and 10000"),
        ({"swap_short_bps": -1}, "swap_short_bps must be a JSON string"),
        ({"commission_per_million": "-1"}, "commission_per_million must be a decimal"),
        ({"commission_per_lot": "0.0000001"}, "commission_per_lot must be a decimal"),
        ({"lot_size": "1"}, "unknown field"),
    ],
)
def test_bad_fields_are_refused_with_the_reason(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_instruments([{**XRP, **change}])


def test_missing_fields_are_named() -> None:
    with pytest.raises(ConfigError, match=r"missing field.*'lot_step'"):
        parse_instruments([{"symbol": "XRPUSD", "tick_size": "0.0001", "max_leverage": 50}])


def test_duplicate_symbols_are_refused() -> None:
    with pytest.raises(ConfigError, match="instrument #2: duplicate symbol XRPUSD"):
        parse_instruments([XRP, XRP])


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"instruments": []}, "JSON list"),
        ([], "1 to 100 instruments"),
        ([XRP] * (MAX_INSTRUMENTS + 1), "1 to 100 instruments"),
        (["XRPUSD"], "must be a JSON object"),
    ],
)
def test_bad_documents_are_refused(document: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_instruments(document)


def test_a_hundred_instruments_are_allowed() -> None:
    document = [{**XRP, "symbol": f"X{i}USD"} for i in range(MAX_INSTRUMENTS)]
    assert len(parse_instruments(document)) == MAX_INSTRUMENTS


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[", "not valid JSON"),
        ('[{"symbol": "XRPUSD", "tick_size": 0.0001}]', "0.0001 is not allowed"),
        ('[{"symbol": "A", "symbol": "B"}]', "appears twice"),
        ('[{"symbol": "XRPUSD", "max_leverage": NaN}]', "NaN is not allowed"),
    ],
)
def test_bad_files_name_the_variable_and_the_problem(
    tmp_path: Path, content: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=f"CFD_INSTRUMENTS_FILE=.*{message}"):
        load_instruments(_file(tmp_path, content))


def test_a_missing_file_is_a_configuration_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    with pytest.raises(ConfigError, match="cannot be read"):
        load_instruments({"CFD_INSTRUMENTS_FILE": str(missing)})


def test_errors_name_the_file_and_the_instrument(tmp_path: Path) -> None:
    env = _file(tmp_path, [DEFAULT_SPECS[0].to_json(), {**XRP, "max_leverage": 5000}])
    with pytest.raises(ConfigError, match=r"instrument #2 \(XRPUSD\): max_leverage"):
        load_instruments(env)
