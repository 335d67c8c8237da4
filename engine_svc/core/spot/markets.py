"""Spot markets and the fee schedule.

A market trades a base asset (BTC) against USD. Its price grid and lot step are those of a
scale `Instrument` (by default the CFD instrument of the same coin), so a price is a count of
ticks, a base quantity a count of lots, and price x quantity is an exact number of micro-USD:
`Market.create` refuses a grid where one tick times one lot is not a whole micro-dollar.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from ..instruments import Instrument

QUOTE_ASSET: Final = "USD"
BPS_PER_UNIT: Final = 10_000
DEFAULT_TAKER_FEE_BPS: Final = 10
DEFAULT_MAKER_FEE_BPS: Final = 0


@dataclass(frozen=True, slots=True)
class Market:
    """One order book: `name` (``BTC_USD``), its base asset and its price/lot scale."""

    name: str
    base_asset: str
    scale: Instrument
    # Micro-USD of one tick times one lot.
    quote_unit: int

    @staticmethod
    def create(name: str, base_asset: str, scale: Instrument) -> Market:
        """Validate the names and derive the micro-USD value of one tick times one lot."""
        if (
            not base_asset
            or not base_asset.isalnum()
            or not base_asset.isupper()
            or len(base_asset) > 12
            or base_asset == QUOTE_ASSET
        ):
            raise ValueError(f"base asset must be 1-12 upper-case letters/digits: {base_asset!r}")
        if name != f"{base_asset}_{QUOTE_ASSET}":
            raise ValueError(f"market {name!r} must be named {base_asset}_{QUOTE_ASSET}")
        if scale.notional_den != 1:
            raise ValueError(f"{name}: one tick times one lot must be a whole micro-USD")
        return Market(name, base_asset, scale, scale.notional_num)

    def quote_micros(self, ticks: int, lots: int) -> int:
        """Return price x quantity in micro-USD (exact)."""
        return ticks * lots * self.quote_unit


def markets_from_instruments(instruments: Mapping[str, Instrument]) -> dict[str, Market]:
    """Return one market per ``<COIN>USD`` instrument, named ``<COIN>_USD``, sorted by name."""
    markets: dict[str, Market] = {}
    for symbol, instrument in instruments.items():
        if symbol.endswith(QUOTE_ASSET) and len(symbol) > len(QUOTE_ASSET):
            base = symbol[: -len(QUOTE_ASSET)]
            market = Market.create(f"{base}_{QUOTE_ASSET}", base, instrument)
            markets[market.name] = market
    return dict(sorted(markets.items()))


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Maker and taker fee rates in basis points of the quote amount of each fill."""

    taker_bps: int = DEFAULT_TAKER_FEE_BPS
    maker_bps: int = DEFAULT_MAKER_FEE_BPS

    def __post_init__(self) -> None:
        for name, bps in (("taker", self.taker_bps), ("maker", self.maker_bps)):
            if isinstance(bps, bool) or not isinstance(bps, int) or not 0 <= bps < BPS_PER_UNIT:
                raise ValueError(f"{name} fee must be an integer number of bps in 0..9999")
        # A buy limit locks the taker fee, which must also cover its fills as a maker.
        if self.maker_bps > self.taker_bps:
            raise ValueError("the maker fee must not exceed the taker fee")


def fee_ceil_micros(quote_micros: int, bps: int) -> int:
    """Return quote x bps / 10000 in micro-USD, rounded up."""
    return -((-quote_micros * bps) // BPS_PER_UNIT)
