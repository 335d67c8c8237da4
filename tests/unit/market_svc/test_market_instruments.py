from decimal import Decimal

import pytest

from market_svc.instruments import DEFAULT_INSTRUMENTS, Instruments


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
