"""Instrument specifications and the tick arithmetic that depends on them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal


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
    # Where the simulator starts when it has no history: a plausible market level.
    reference_price: Decimal
    # Annualised volatility of the simulator's random walk, as a fraction (0.6 = 60 %).
    annual_volatility: Decimal

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


DEFAULT_INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument(
        symbol="BTCUSD",
        display_name="Bitcoin vs US Dollar",
        tick_size=Decimal("0.01"),
        lot_step=Decimal("0.0001"),
        max_leverage=100,
        base_asset="BTC",
        quote_asset="USD",
        maintenance_margin_rate=Decimal(0),
        reference_price=Decimal("96250.00"),
        annual_volatility=Decimal("0.55"),
    ),
    Instrument(
        symbol="ETHUSD",
        display_name="Ethereum vs US Dollar",
        tick_size=Decimal("0.01"),
        lot_step=Decimal("0.001"),
        max_leverage=100,
        base_asset="ETH",
        quote_asset="USD",
        maintenance_margin_rate=Decimal(0),
        reference_price=Decimal("3420.00"),
        annual_volatility=Decimal("0.70"),
    ),
    Instrument(
        symbol="SOLUSD",
        display_name="Solana vs US Dollar",
        tick_size=Decimal("0.001"),
        lot_step=Decimal("0.01"),
        max_leverage=100,
        base_asset="SOL",
        quote_asset="USD",
        maintenance_margin_rate=Decimal(0),
        reference_price=Decimal("182.500"),
        annual_volatility=Decimal("0.90"),
    ),
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

    @property
    def symbols(self) -> tuple[str, ...]:
        """Return the symbols in configuration order."""
        return tuple(self._by_symbol)
