"""Decimal string boundary: exact parsing, strict rejection, formatting."""

from __future__ import annotations

import pytest

from engine_svc.core import DecimalFormatError, default_instruments, format_money, parse_money
from engine_svc.core.decimals import format_scaled, parse_rate, parse_scaled, parse_step_size

BTC = default_instruments()["BTCUSD"]
SOL = default_instruments()["SOLUSD"]


def test_parse_money_is_exact_to_the_micro_dollar() -> None:
    assert parse_money("5000") == 5_000_000_000
    assert parse_money("0.000001") == 1
    assert parse_money("12.345678") == 12_345_678
    assert parse_money("12.3456780000") == 12_345_678


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "NaN",
        "nan",
        "inf",
        "-inf",
        "Infinity",
        "1e5",
        "+1",
        " 1",
        "1 ",
        "1.",
        ".5",
        "1_000",
        "0x10",
        "1,5",
        "--1",
        "١",
    ],
)
def test_parse_money_rejects_non_numbers(text: str) -> None:
    with pytest.raises(DecimalFormatError, match="not a plain decimal"):
        parse_money(text)


def test_parse_money_rejects_too_many_decimals_negative_zero_and_huge() -> None:
    with pytest.raises(DecimalFormatError, match="more than 6 decimal places"):
        parse_money("0.0000001")
    with pytest.raises(DecimalFormatError, match="must not be negative"):
        parse_money("-1")
    with pytest.raises(DecimalFormatError, match="greater than zero"):
        parse_money("0")
    with pytest.raises(DecimalFormatError, match="too large"):
        parse_money("1" + "0" * 40)
    with pytest.raises(DecimalFormatError, match="longer than"):
        parse_money("1" * 60)
    assert parse_money("-2.5", allow_negative=True) == -2_500_000


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(DecimalFormatError, match="must be a decimal string"):
        parse_scaled(1.5, 2)


def test_prices_must_lie_on_the_tick_grid() -> None:
    assert BTC.parse_price("64250.15") == 6_425_015
    assert BTC.parse_price("64250.150") == 6_425_015
    assert SOL.parse_price("150.125") == 150_125
    with pytest.raises(DecimalFormatError, match="more than 2 decimal places"):
        BTC.parse_price("64250.153")
    with pytest.raises(DecimalFormatError, match="greater than zero"):
        BTC.parse_price("0")


def test_quantities_must_be_multiples_of_the_lot_step() -> None:
    assert BTC.parse_quantity("0.0015") == 15
    assert SOL.parse_quantity("2.5") == 250
    with pytest.raises(DecimalFormatError) as error:
        BTC.parse_quantity("0.00005")
    assert error.value.below_step
    with pytest.raises(DecimalFormatError) as error:
        BTC.parse_quantity("0.00015")
    assert not error.value.below_step


def test_step_not_a_power_of_ten() -> None:
    assert parse_step_size("0.05", field="tick") == (5, 2)
    assert parse_scaled("1.10", 2) == 110
    with pytest.raises(DecimalFormatError, match=r"not a multiple of 0\.05"):
        from engine_svc.core.decimals import parse_steps

        parse_steps("1.12", 2, 5, field="price", max_steps=10**9)


def test_parse_rate() -> None:
    assert parse_rate("0") == (0, 1)
    assert parse_rate("0.005") == (5, 1000)
    with pytest.raises(DecimalFormatError, match="less than 1"):
        parse_rate("1")


def test_formatting() -> None:
    assert format_money(5_000_000_000) == "5000.00"
    assert format_money(12_345_678) == "12.345678"
    assert format_money(-1) == "-0.000001"
    assert format_money(10_100_000) == "10.10"
    assert format_scaled(123, 0) == "123"
    assert BTC.format_price(6_425_010) == "64250.10"
    assert BTC.format_quantity(15) == "0.0015"
    assert SOL.format_price(150_125) == "150.125"
    assert BTC.tick_size == "0.01"
    assert BTC.lot_step == "0.0001"
    assert SOL.maintenance_rate == "0"
