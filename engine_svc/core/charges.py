"""Swaps and commissions: each instrument's rates and the exact amounts they give.

Rates, all per instrument:

- ``swap_long`` and ``swap_short``: the daily swap of a long or short position, signed, in
  units of 0.0001 basis point (1e-8) of the position's entry notional; negative is charged to
  the account, positive credited to it. A rollover charges it times its multiplier (3 on the
  triple swap weekday).
- ``commission_per_million``: micro-dollars per 1,000,000 USD of notional (fill price x
  quantity), charged on every open and every close, partial closes included.
- ``commission_per_lot``: micro-dollars per lot, a lot being the instrument's contract size
  of the base asset (`Instrument.contract_size`), charged with the per-notional commission.

Rounding is in the house's favour: a commission is rounded up (`commission_ceil_micros`), a
swap toward -infinity (`swap_floor_micros`: a charge rounds up in size, a credit down).
"""

from __future__ import annotations

from dataclasses import dataclass

from .decimals import format_scaled, parse_scaled
from .units import MICROS_PER_USD, ceil_div, floor_div

# Swap rates are held in 1e-4 basis points: 10**8 of them make the whole notional.
SWAP_DECIMALS = 4
SWAP_SCALE = 10_000 * 10**SWAP_DECIMALS
# A daily swap rate is at most 100% of the notional.
MAX_SWAP_RATE = SWAP_SCALE
MAX_COMMISSION_MICROS = 10**12
# The most a rollover may multiply the daily swap by (a weekend's triple swap is 3).
MAX_SWAP_MULTIPLIER = 7


@dataclass(frozen=True, slots=True)
class Charges:
    """An instrument's swap and commission rates; `NO_CHARGES` charges nothing.

    `commission_per_lot` is quoted per lot of the instrument's contract size.
    """

    swap_long: int = 0
    swap_short: int = 0
    commission_per_million: int = 0
    commission_per_lot: int = 0

    def __post_init__(self) -> None:
        for name in ("swap_long", "swap_short"):
            value = getattr(self, name)
            if type(value) is not int or abs(value) > MAX_SWAP_RATE:
                raise ValueError(f"{name} must be an integer within +-{MAX_SWAP_RATE}")
        for name in ("commission_per_million", "commission_per_lot"):
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value <= MAX_COMMISSION_MICROS:
                raise ValueError(f"{name} must be an integer within 0..{MAX_COMMISSION_MICROS}")

    @property
    def is_free(self) -> bool:
        """Return True when the instrument charges neither swaps nor commissions."""
        return self == NO_CHARGES

    def row(self) -> list[int]:
        """Return the rates as the integers a snapshot holds, in field order."""
        return [
            self.swap_long,
            self.swap_short,
            self.commission_per_million,
            self.commission_per_lot,
        ]

    def texts(self) -> dict[str, str]:
        """Return the rates as the decimal strings the configuration spells them in."""
        return {
            "swap_long_bps": format_scaled(self.swap_long, SWAP_DECIMALS),
            "swap_short_bps": format_scaled(self.swap_short, SWAP_DECIMALS),
            "commission_per_million": format_scaled(self.commission_per_million, 6),
            "commission_per_lot": format_scaled(self.commission_per_lot, 6),
        }


NO_CHARGES = Charges()


def make_charges(
    swap_long_bps: str = "0",
    swap_short_bps: str = "0",
    commission_per_million: str = "0",
    commission_per_lot: str = "0",
    *,
    symbol: str = "",
) -> Charges:
    """Build charges from decimal strings: swaps in basis points per day (signed, at most 4
    decimals), commissions in USD (at most 6 decimals; per lot: per lot of the contract size).

    Raises `decimals.DecimalFormatError` for a malformed or out-of-range figure.
    """
    prefix = f"{symbol}." if symbol else ""
    swap_long = parse_scaled(
        swap_long_bps, SWAP_DECIMALS, field=f"{prefix}swap_long_bps", allow_negative=True,
        max_abs=MAX_SWAP_RATE,
    )  # fmt: skip
    swap_short = parse_scaled(
        swap_short_bps, SWAP_DECIMALS, field=f"{prefix}swap_short_bps", allow_negative=True,
        max_abs=MAX_SWAP_RATE,
    )  # fmt: skip
    per_million = parse_scaled(
        commission_per_million, 6, field=f"{prefix}commission_per_million",
        max_abs=MAX_COMMISSION_MICROS,
    )  # fmt: skip
    per_lot = parse_scaled(
        commission_per_lot, 6, field=f"{prefix}commission_per_lot", max_abs=MAX_COMMISSION_MICROS
    )
    return Charges(swap_long, swap_short, per_million, per_lot)


def commission_ceil_micros(
    charges: Charges, notional_num: int, notional_den: int, ticks: int, lots: int,
    lot_units: int, quantity_decimals: int, contract_units: int = 1, contract_decimals: int = 0,
) -> int:  # fmt: skip
    """Return the commission of trading `lots` at `ticks`, in micro-dollars, rounded up.

    The notional is ``ticks x lots x notional_num / notional_den`` micro-dollars and the
    quantity ``lots x lot_units / 10**quantity_decimals`` base units, which is that over the
    contract size ``contract_units / 10**contract_decimals`` in lots; both parts are summed
    exactly before the one rounding.
    """
    if charges.commission_per_million == 0 and charges.commission_per_lot == 0:
        return 0
    # Per notional: notional x rate / 10**12 (rate in micro-dollars per 10**6 USD).
    num_a = ticks * lots * notional_num * charges.commission_per_million
    den_a = notional_den * MICROS_PER_USD * MICROS_PER_USD
    # Per lot: units / contract size x rate.
    num_b = lots * lot_units * 10**contract_decimals * charges.commission_per_lot
    den_b = 10**quantity_decimals * contract_units
    return ceil_div(num_a * den_b + num_b * den_a, den_a * den_b)


def swap_floor_micros(
    charges: Charges, is_buy: bool, notional_num: int, notional_den: int, entry_ticks: int,
    lots: int, multiplier: int,
) -> int:  # fmt: skip
    """Return the signed swap of a position for one rollover, in micro-dollars, rounded
    toward -infinity: a charge (negative) rounds up in size, a credit down."""
    rate = charges.swap_long if is_buy else charges.swap_short
    if rate == 0:
        return 0
    num = entry_ticks * lots * notional_num * rate * multiplier
    return floor_div(num, notional_den * SWAP_SCALE)


def share_toward_zero(total: int, part: int, whole: int) -> int:
    """Return ``total x part / whole`` rounded toward zero: the share of an accumulated
    figure a partial close takes (a full close takes it all)."""
    if part == whole:
        return total
    share = abs(total) * part // whole
    return share if total >= 0 else -share
