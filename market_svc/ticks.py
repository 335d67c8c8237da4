"""The two tick shapes of the market service: what a source says, and the quote we publish."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

# A source may put anything in a price field; validation decides. Exchanges send strings,
# JSON numbers are parsed straight to Decimal, anything else is garbage to be counted.
RawValue = object


@dataclass(frozen=True, slots=True)
class RawTick:
    """One observation from a price source, not yet validated.

    A source gives either one ``price`` (a trade or a model mid) or a ``bid``/``ask`` pair
    (its top of book). ``exact`` marks operator-set quotes (the manual feed): their bid and
    ask are published as they are, without spread or jump filtering.
    """

    symbol: str
    time_ns: int | None = None
    price: RawValue = None
    bid: RawValue = None
    ask: RawValue = None
    volume: RawValue = None
    exact: bool = False


@dataclass(frozen=True, slots=True)
class Quote:
    """An executable quote: ``bid < ask``, both on the instrument's tick."""

    symbol: str
    bid: Decimal
    ask: Decimal
    time_ns: int
    sequence: int
    # Traded quantity the source reported with this tick; None when it reports none.
    volume: Decimal | None = None

    @property
    def mid(self) -> Decimal:
        """Return the midpoint of bid and ask."""
        return (self.bid + self.ask) / 2
