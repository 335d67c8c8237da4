"""The market's instruments, built from `mesh.instruments`, and their tick arithmetic."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from mesh.instruments import DEFAULT_SPECS, InstrumentSpec, load_instruments


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable instrument as API.md specifies it."""

    symbol: str
    display_name: str
    tick_size: Decimal
    lot_step: Decimal
    max_leverage: int
    base_asset: str
    quote_asset: str
    # Maintenance margin as a fraction of entry notional; 0 is Exness' 0 % stop-out.
    maintenance_margin_rate: Decimal
    # Units of the base asset in one lot.
    contract_size: Decimal
    # Where the simulator starts when it has no history: a plausible market level.
    reference_price: Decimal
    # Annualised volatility of the simulator's random walk, as a fraction (0.6 = 60 %).
    annual_volatility: Decimal
    # Swap and commission rates as configured (the engine charges them).
    swap_long_bps: Decimal = Decimal(0)
    swap_short_bps: Decimal = Decimal(0)
    commission_per_million: Decimal = Decimal(0)
    commission_per_lot: Decimal = Decimal(0)

    @property
    def min_quantity(self) -> Decimal:
        """Return the smallest tradable quantity, equal to the lot step."""
        return self.lot_step

    def round_down_to_tick(self, price: Decimal) -> Decimal:
        """Return ``price`` rounded down to a multiple of the tick size."""
        return (price / self.tick_size).to_integral_value(rounding=ROUND_FLOOR) * self.tick_size

    def round_up_to_tick(self, price: Decimal) -> Decimal:
        """Return ``price`` rounded up to a multiple of the tick size."""
        return (price / self.tick_size).to_integral_value(rounding=ROUND_CEILING) * self.tick_size

    def is_on_tick(self, price: Decimal) -> bool:
        """Tell whether ``price`` is an exact multiple of the tick size."""
        return price % self.tick_size == 0


# Simulator parameters (start price, annualised volatility) for the symbols it knows.
_SIMULATION: dict[str, tuple[Decimal, Decimal]] = {
    "BTCUSD": (Decimal("96250.00"), Decimal("0.55")),
    "ETHUSD": (Decimal("3420.00"), Decimal("0.70")),
    "SOLUSD": (Decimal("182.500"), Decimal("0.90")),
}
# Other configured symbols start at this level, or at one tick when that is larger.
DEFAULT_REFERENCE_PRICE = Decimal(100)
DEFAULT_VOLATILITY = Decimal("0.80")


def instrument_from_spec(spec: InstrumentSpec) -> Instrument:
    """Return the market's view of one configured instrument."""
    tick_size = Decimal(spec.tick_size)
    reference, volatility = _SIMULATION.get(
        spec.symbol, (max(DEFAULT_REFERENCE_PRICE, tick_size), DEFAULT_VOLATILITY)
    )
    return Instrument(
        symbol=spec.symbol,
        display_name=spec.display_name,
        tick_size=tick_size,
        lot_step=Decimal(spec.lot_step),
        max_leverage=spec.max_leverage,
        base_asset=spec.base_currency,
        quote_asset="USD",
        maintenance_margin_rate=Decimal(spec.maintenance_margin_rate),
        contract_size=Decimal(spec.contract_size),
        reference_price=reference,
        annual_volatility=volatility,
        swap_long_bps=Decimal(spec.swap_long_bps),
        swap_short_bps=Decimal(spec.swap_short_bps),
        commission_per_million=Decimal(spec.commission_per_million),
        commission_per_lot=Decimal(spec.commission_per_lot),
    )


DEFAULT_INSTRUMENTS: tuple[Instrument, ...] = tuple(
    instrument_from_spec(spec) for spec in DEFAULT_SPECS
)


class Instruments(Mapping[str, Instrument]):
    """An immutable, ordered registry of instruments keyed by symbol."""

    def __init__(self, instruments: Iterable[Instrument] = DEFAULT_INSTRUMENTS) -> None:
        self._by_symbol: dict[str, Instrument] = {}
        for instrument in instruments:
            if instrument.symbol in self._by_symbol:
                raise ValueError(f"duplicate instrument {instrument.symbol}")
            self._by_symbol[instrument.symbol] = instrument

    def __getitem__(self, symbol: str) -> Instrument:
        return self._by_symbol[symbol]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_symbol)

    def __len__(self) -> int:
        return len(self._by_symbol)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Instruments:
        """Return the instruments CFD_INSTRUMENTS_FILE configures (the defaults when unset)."""
        return cls(instrument_from_spec(spec) for spec in load_instruments(env))

    @property
    def symbols(self) -> tuple[str, ...]:
        """Return the symbols in configuration order."""
        return tuple(self._by_symbol)
