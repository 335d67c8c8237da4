"""Instrument scales and the rounding direction of every money formula."""

from __future__ import annotations

import pytest

from engine_svc.core import (
    ApplyQuote,
    ClosedPosition,
    ClosePosition,
    Core,
    CreateAccount,
    DecimalFormatError,
    OpenPosition,
    PositionView,
    Side,
    default_instruments,
    make_instrument,
)
from unit.engine_svc.core.core_harness import Harness


def test_default_instruments_match_the_api_table() -> None:
    table = {
        symbol: (i.tick_size, i.lot_step, i.max_leverage, i.maintenance_rate)
        for symbol, i in default_instruments().items()
    }
    assert table == {
        "BTCUSD": ("0.01", "0.0001", 100, "0"),
        "ETHUSD": ("0.01", "0.001", 100, "0"),
        "SOLUSD": ("0.001", "0.01", 100, "0"),
    }
    btc = default_instruments()["BTCUSD"]
    # One tick times one lot is 0.000001 USD: exactly one micro-dollar.
    assert (btc.notional_num, btc.notional_den) == (1, 1)


def test_instrument_validation() -> None:
    with pytest.raises(DecimalFormatError):
        make_instrument("XRPUSD", "0", "1")
    with pytest.raises(DecimalFormatError):
        make_instrument("XRPUSD", "0.01", "abc")
    with pytest.raises(ValueError, match="max leverage"):
        make_instrument("XRPUSD", "0.01", "1", 0)
    with pytest.raises(ValueError, match="symbol"):
        make_instrument("xrp", "0.01", "1")
    with pytest.raises(ValueError, match="registered as"):
        Core({"BTC": default_instruments()["BTCUSD"]})


def test_sub_micro_notional_rounds_each_way() -> None:
    # Tick 0.0001 x lot 0.001 = 0.0000001 USD: a tenth of a micro-dollar.
    xrp = make_instrument("XRPUSD", "0.0001", "0.001", 50, "0.01")
    assert (xrp.notional_num, xrp.notional_den) == (1, 10)
    # 0.5123 x 1.001 = 0.5128123 USD.
    assert xrp.notional_floor_micros(5123, 1001) == 512_812
    # / 3 = 0.17093743.. -> margin rounded up.
    assert xrp.margin_ceil_micros(5123, 1001, 3) == 170_938
    # 1 x 3 / 0.5123 = 5.8559.. -> 5.855 rounded down to the lot step.
    assert xrp.lots_floor_for_margin(1_000_000, 3, 5123) == 5855
    # -0.0001 x 1.001 = -0.0001001 USD -> toward -infinity; +0.0001001 -> down too.
    assert xrp.pnl_floor_micros(-1, 1001) == -101
    assert xrp.pnl_floor_micros(1, 1001) == 100
    # 1% of 0.5128123 = 0.005128123 -> maintenance rounded up.
    assert xrp.maintenance_ceil_micros(5123, 1001) == 5129
    assert xrp.maintenance_rate == "0.01"


def test_sub_micro_instrument_through_the_core() -> None:
    xrp = make_instrument("XRPUSD", "0.0001", "0.001", 50, "0.01")
    harness = Harness(Core({"XRPUSD": xrp}))
    harness.run(CreateAccount, account_id="a", initial_balance=1_000_000)
    harness.run(ApplyQuote, symbol="XRPUSD", bid=5122, ask=5123)
    result = harness.run(
        OpenPosition, account_id="a", symbol="XRPUSD", side=Side.BUY, leverage=3, quantity=1001
    )
    position = result.payload
    assert isinstance(position, PositionView)
    assert position.margin == 170_938 and position.maintenance_margin == 5129
    # 0.5123 - (0.170938 - 0.005129) / 1.001 = 0.34666.. rounded up to the tick.
    assert position.liquidation_price == 3467
    assert position.unrealized_pnl == -101
    closed = harness.run(ClosePosition, account_id="a", position_id=position.id).payload
    assert isinstance(closed, ClosedPosition)
    assert closed.realized_pnl == -101 and closed.credited == 170_837
    assert harness.core.total_user_money() + harness.core.house_balance == 1_000_000


def test_volume_in_lots_is_the_quantity_over_the_contract_size() -> None:
    btc = default_instruments()["BTCUSD"]
    assert (btc.contract_size, btc.volume_step) == ("1", "0.0001")
    assert btc.parse_volume_lots("0.0015") == 15
    assert btc.format_volume_lots(15) == "0.0015"
    # 1000 XRP a lot, lot step 1 XRP: the smallest volume is 0.001 lots.
    xrp = make_instrument("XRPUSD", "0.0001", "1", 50, contract_size="1000")
    assert (xrp.contract_size, xrp.volume_step) == ("1000", "0.001")
    assert xrp.parse_volume_lots("2.5") == 2500
    assert xrp.format_quantity(2500) == "2500" and xrp.format_volume_lots(2500) == "2.500"
    # A contract below the lot step: 0.01 coin a lot, lot step 10: volumes step by 1000 lots.
    tiny = make_instrument("ABCUSD", "0.01", "10", 10, contract_size="0.01")
    assert tiny.volume_step == "1000"
    assert tiny.parse_volume_lots("3000") == 3 and tiny.format_volume_lots(3) == "3000"
    with pytest.raises(DecimalFormatError, match="not a multiple of 1000"):
        tiny.parse_volume_lots("1500")


def test_a_volume_off_the_lot_grid_is_refused_not_rounded() -> None:
    xrp = make_instrument("XRPUSD", "0.0001", "1", 50, contract_size="1000")
    with pytest.raises(DecimalFormatError, match="more than 3 decimal places") as caught:
        xrp.parse_volume_lots("0.0015")
    assert not caught.value.below_step
    with pytest.raises(DecimalFormatError) as caught:
        xrp.parse_volume_lots("0.0005")
    assert caught.value.below_step
    for bad in ("0", "-1", "1e3", ""):
        with pytest.raises(DecimalFormatError):
            xrp.parse_volume_lots(bad)


def test_contract_size_must_be_a_power_of_ten() -> None:
    for bad in ("2", "0.5", "0", "abc", "25"):
        with pytest.raises(ValueError):
            make_instrument("XRPUSD", "0.0001", "1", contract_size=bad)
