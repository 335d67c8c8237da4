import json
from decimal import Decimal
from pathlib import Path

import pytest

from market_svc.instruments import DEFAULT_INSTRUMENTS, DEFAULT_REFERENCE_PRICE, Instruments
from mesh.config import ConfigError
from mesh.instruments import DEFAULT_SPECS


def test_defaults_match_the_api_table() -> None:
    instruments = Instruments()
    assert instruments.symbols == ("BTCUSD", "ETHUSD", "SOLUSD")
    btc, eth, sol = (instruments[s] for s in instruments.symbols)
    assert (btc.tick_size, btc.lot_step, btc.max_leverage) == (
        Decimal("0.01"),
        Decimal("0.0001"),
        100,
    )
    assert (eth.tick_size, eth.lot_step, eth.max_leverage) == (
        Decimal("0.01"),
        Decimal("0.001"),
        100,
    )
    assert (sol.tick_size, sol.lot_step, sol.max_leverage) == (
        Decimal("0.001"),
        Decimal("0.01"),
        100,
    )
    assert all(i.min_quantity == i.lot_step for i in instruments.values())


def test_rounding_directions() -> None:
    sol = Instruments()["SOLUSD"]
    assert sol.round_down_to_tick(Decimal("182.12399")) == Decimal("182.123")
    assert sol.round_up_to_tick(Decimal("182.12301")) == Decimal("182.124")
    assert sol.round_up_to_tick(Decimal("182.123")) == Decimal("182.123")
    assert sol.is_on_tick(Decimal("182.123"))
    assert not sol.is_on_tick(Decimal("182.1235"))


def test_duplicate_symbols_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        Instruments([DEFAULT_INSTRUMENTS[0], DEFAULT_INSTRUMENTS[0]])


def test_the_defaults_come_from_the_shared_specs() -> None:
    assert Instruments.from_env({}) == Instruments()
    assert [i.symbol for i in DEFAULT_INSTRUMENTS] == [s.symbol for s in DEFAULT_SPECS]


def test_a_configured_instrument_gets_simulator_defaults(tmp_path: Path) -> None:
    path = tmp_path / "instruments.json"
    xrp = {"symbol": "XRPUSD", "tick_size": "0.0001", "lot_step": "1", "max_leverage": 50}
    path.write_text(json.dumps([xrp]))
    instruments = Instruments.from_env({"CFD_INSTRUMENTS_FILE": str(path)})
    assert instruments.symbols == ("XRPUSD",)
    only = instruments["XRPUSD"]
    assert (only.tick_size, only.lot_step, only.max_leverage) == (Decimal("0.0001"), Decimal(1), 50)
    assert (only.base_asset, only.quote_asset, only.display_name) == (
        "XRP",
        "USD",
        "XRP vs US Dollar",
    )
    assert only.reference_price == DEFAULT_REFERENCE_PRICE
    assert only.is_on_tick(only.reference_price)


def test_a_bad_instruments_file_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "instruments.json"
    path.write_text("[]")
    with pytest.raises(ConfigError, match="CFD_INSTRUMENTS_FILE"):
        Instruments.from_env({"CFD_INSTRUMENTS_FILE": str(path)})
