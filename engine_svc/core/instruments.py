"""Instrument configuration: tick size, lot step, contract size, leverage cap, maintenance
margin rate and the swap and commission rates (`charges`).

A price is held as a count of ticks and a quantity as a count of lot steps. With tick size
``t`` and lot step ``s``, ``ticks * lots * t * s`` USD is ``ticks * lots * notional_num /
notional_den`` micro-dollars; both factors are kept as a reduced fraction so every money figure
is one exact integer division with an explicit rounding direction.

The contract size is the quantity of the base asset in one lot (MT5's "volume"): a power of
ten, so a quantity's volume in lots is an exact decimal with a fixed number of digits. The lot
step divided by the contract size is the volume step, and a volume of n volume steps is a
quantity of n lot steps: the core's integer quantities count both. The per-lot commission
(`Charges.commission_per_lot`) is charged per lot of the contract size, so the contract size
is part of the core's state when that commission is configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd

from .charges import NO_CHARGES, Charges, commission_ceil_micros, swap_floor_micros
from .decimals import (
    DecimalFormatError,
    format_scaled,
    format_steps,
    parse_rate,
    parse_step_size,
    parse_steps,
)
from .units import MAX_PRICE_TICKS, MAX_QUANTITY_LOTS, MICROS_PER_USD, ceil_div, floor_div


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable symbol; build it with `Instrument.create` or `make_instrument`."""

    symbol: str
    tick_units: int
    price_decimals: int
    lot_units: int
    quantity_decimals: int
    max_leverage: int
    maintenance_num: int
    maintenance_den: int
    notional_num: int
    notional_den: int
    contract_units: int
    contract_decimals: int
    volume_units: int
    volume_decimals: int
    charges: Charges = NO_CHARGES

    @staticmethod
    def create(
        symbol: str,
        tick_units: int,
        price_decimals: int,
        lot_units: int,
        quantity_decimals: int,
        max_leverage: int,
        maintenance_num: int = 0,
        maintenance_den: int = 1,
        contract_units: int = 1,
        contract_decimals: int = 0,
        charges: Charges = NO_CHARGES,
    ) -> Instrument:
        """Validate the scales and derive the ticks-times-lots to micro-dollars fraction.

        The contract size is ``contract_units * 10**-contract_decimals``, a power of ten.
        """
        if not symbol or not symbol.isalnum() or not symbol.isupper() or len(symbol) > 16:
            raise ValueError(f"symbol must be 1-16 upper-case letters or digits: {symbol!r}")
        if tick_units <= 0 or lot_units <= 0 or price_decimals < 0 or quantity_decimals < 0:
            raise ValueError(f"{symbol}: tick size and lot step must be positive")
        if not 1 <= max_leverage <= 1000:
            raise ValueError(f"{symbol}: max leverage must be within 1..1000")
        if maintenance_den <= 0 or not 0 <= maintenance_num < maintenance_den:
            raise ValueError(f"{symbol}: maintenance rate must be within [0, 1)")
        if (
            not _is_power_of_ten(contract_units)
            or contract_decimals < 0
            or (contract_units != 1 and contract_decimals != 0)
        ):
            raise ValueError(f"{symbol}: contract size must be a power of ten")
        # The volume step, lot step / contract size, is volume_units * 10**-volume_decimals.
        volume_decimals = quantity_decimals + len(str(contract_units)) - 1 - contract_decimals
        volume_units = lot_units
        if volume_decimals < 0:
            volume_units, volume_decimals = lot_units * 10**-volume_decimals, 0
        num = tick_units * lot_units * MICROS_PER_USD
        den = 10 ** (price_decimals + quantity_decimals)
        common = gcd(num, den)
        mcommon = gcd(maintenance_num, maintenance_den)
        return Instrument(
            symbol,
            tick_units,
            price_decimals,
            lot_units,
            quantity_decimals,
            max_leverage,
            maintenance_num // mcommon,
            maintenance_den // mcommon,
            num // common,
            den // common,
            contract_units,
            contract_decimals,
            volume_units,
            volume_decimals,
            charges,
        )

    def notional_floor_micros(self, ticks: int, lots: int) -> int:
        """Return price x quantity in micro-dollars, rounded down."""
        return floor_div(ticks * lots * self.notional_num, self.notional_den)

    def margin_ceil_micros(self, ticks: int, lots: int, leverage: int) -> int:
        """Return notional / leverage in micro-dollars, rounded up."""
        return ceil_div(ticks * lots * self.notional_num, self.notional_den * leverage)

    def lots_floor_for_margin(self, margin_micros: int, leverage: int, ticks: int) -> int:
        """Return margin x leverage / price as a lot count, rounded down to the lot step."""
        return floor_div(margin_micros * leverage * self.notional_den, ticks * self.notional_num)

    def pnl_floor_micros(self, price_move_ticks: int, lots: int) -> int:
        """Return a signed price move x quantity in micro-dollars, rounded toward -infinity."""
        return floor_div(price_move_ticks * lots * self.notional_num, self.notional_den)

    def maintenance_ceil_micros(self, entry_ticks: int, lots: int) -> int:
        """Return maintenance rate x entry notional in micro-dollars, rounded up."""
        if self.maintenance_num == 0:
            return 0
        num = entry_ticks * lots * self.notional_num * self.maintenance_num
        return ceil_div(num, self.notional_den * self.maintenance_den)

    def commission_ceil_micros(self, ticks: int, lots: int) -> int:
        """Return the commission of trading `lots` at `ticks` in micro-dollars, rounded up."""
        return commission_ceil_micros(
            self.charges, self.notional_num, self.notional_den, ticks, lots, self.lot_units,
            self.quantity_decimals, self.contract_units, self.contract_decimals,
        )  # fmt: skip

    def swap_floor_micros(self, is_buy: bool, entry_ticks: int, lots: int, multiplier: int) -> int:
        """Return a position's signed swap for one rollover, rounded toward -infinity."""
        return swap_floor_micros(
            self.charges, is_buy, self.notional_num, self.notional_den, entry_ticks, lots,
            multiplier,
        )  # fmt: skip

    def ticks_floor_for_money(self, micros: int, lots: int) -> int:
        """Return money / quantity as a price move in ticks, rounded toward -infinity."""
        return floor_div(micros * self.notional_den, lots * self.notional_num)

    def parse_price(self, text: object, field: str = "price") -> int:
        """Parse a price string that lies on this instrument's tick grid into ticks."""
        return parse_steps(
            text, self.price_decimals, self.tick_units, field=field, max_steps=MAX_PRICE_TICKS
        )

    def parse_quantity(self, text: object, field: str = "quantity") -> int:
        """Parse a quantity string that is a multiple of the lot step into lots."""
        return parse_steps(
            text,
            self.quantity_decimals,
            self.lot_units,
            field=field,
            max_steps=MAX_QUANTITY_LOTS,
        )

    def parse_volume_lots(self, text: object, field: str = "volumeLots") -> int:
        """Parse a volume in lots that is a multiple of the volume step into lot steps."""
        return parse_steps(
            text,
            self.volume_decimals,
            self.volume_units,
            field=field,
            max_steps=MAX_QUANTITY_LOTS,
        )

    def format_volume_lots(self, lots: int) -> str:
        """Format a lot-step count as a volume in lots with the volume step's decimals."""
        return format_steps(lots, self.volume_decimals, self.volume_units)

    def format_price(self, ticks: int) -> str:
        """Format a tick count as a price string with the tick's decimals."""
        return format_steps(ticks, self.price_decimals, self.tick_units)

    def format_quantity(self, lots: int) -> str:
        """Format a lot count as a quantity string with the lot step's decimals."""
        return format_steps(lots, self.quantity_decimals, self.lot_units)

    @property
    def tick_size(self) -> str:
        """Return the tick size as a decimal string."""
        return format_scaled(self.tick_units, self.price_decimals)

    @property
    def lot_step(self) -> str:
        """Return the lot step (also the minimum quantity) as a decimal string."""
        return format_scaled(self.lot_units, self.quantity_decimals)

    @property
    def contract_size(self) -> str:
        """Return the contract size (base asset per lot) as a decimal string."""
        return format_scaled(self.contract_units, self.contract_decimals)

    @property
    def volume_step(self) -> str:
        """Return the volume step in lots (the lot step / the contract size)."""
        return format_scaled(self.volume_units, self.volume_decimals)

    @property
    def maintenance_rate(self) -> str:
        """Return the maintenance margin rate as a decimal string."""
        den = self.maintenance_den
        decimals = 0
        while den % 10 == 0:
            den //= 10
            decimals += 1
        if den != 1:
            return f"{self.maintenance_num}/{self.maintenance_den}"
        return format_scaled(self.maintenance_num, decimals)


def make_instrument(
    symbol: str,
    tick_size: str,
    lot_step: str,
    max_leverage: int = 100,
    maintenance_rate: str = "0",
    contract_size: str = "1",
    charges: Charges = NO_CHARGES,
) -> Instrument:
    """Build an instrument from decimal strings, e.g. ``make_instrument("BTCUSD", "0.01", ...)``.

    Raises `DecimalFormatError` for a malformed figure and `ValueError` for an invalid one.
    """
    tick_units, price_decimals = parse_step_size(tick_size, field=f"{symbol}.tick_size")
    lot_units, quantity_decimals = parse_step_size(lot_step, field=f"{symbol}.lot_step")
    maintenance_num, maintenance_den = parse_rate(
        maintenance_rate, field=f"{symbol}.maintenance_rate"
    )
    contract_units, contract_decimals = parse_step_size(
        contract_size, field=f"{symbol}.contract_size"
    )
    if isinstance(max_leverage, bool) or not isinstance(max_leverage, int):
        raise DecimalFormatError(f"{symbol}.max_leverage", "must be an integer")
    return Instrument.create(
        symbol,
        tick_units,
        price_decimals,
        lot_units,
        quantity_decimals,
        max_leverage,
        maintenance_num,
        maintenance_den,
        contract_units,
        contract_decimals,
        charges,
    )


def _is_power_of_ten(value: int) -> bool:
    while value >= 10 and value % 10 == 0:
        value //= 10
    return value == 1


def default_instruments(maintenance_rate: str = "0") -> dict[str, Instrument]:
    """Return the API.md default instruments: BTCUSD, ETHUSD and SOLUSD, one coin per lot."""
    return {
        "BTCUSD": make_instrument("BTCUSD", "0.01", "0.0001", 100, maintenance_rate),
        "ETHUSD": make_instrument("ETHUSD", "0.01", "0.001", 100, maintenance_rate),
        "SOLUSD": make_instrument("SOLUSD", "0.001", "0.01", 100, maintenance_rate),
    }
