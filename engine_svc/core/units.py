"""Scaled-integer arithmetic with the rounding direction in every name.

`floor_div` and `ceil_div` are the only way the core rounds a money, price or quantity
figure; every other integer division in the core is exact.

Money is an integer number of micro-dollars (1e-6 USD). A price is an integer number of its
instrument's ticks, a quantity an integer number of its instrument's lot steps; the
`Instrument` methods turn those into money.
"""

from __future__ import annotations

from typing import Final

MICROS_PER_USD: Final = 1_000_000
MONEY_DECIMALS: Final = 6

# Bounds that keep every product far from any practical limit and reject absurd inputs early.
MAX_MONEY_MICROS: Final = 10**18
MAX_PRICE_TICKS: Final = 10**15
MAX_QUANTITY_LOTS: Final = 10**15
MAX_DURATION_NS: Final = 10**19


def floor_div(numerator: int, denominator: int) -> int:
    """Divide, rounding toward negative infinity; the denominator must be positive."""
    return numerator // denominator


def ceil_div(numerator: int, denominator: int) -> int:
    """Divide, rounding toward positive infinity; the denominator must be positive."""
    return -((-numerator) // denominator)

