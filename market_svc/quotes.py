"""Turn raw source ticks into executable quotes, dropping and counting bad data.

Spread: the source's bid and ask (a single price counts as both) are widened by half the
configured spread each, the spread being ``spread_bps`` of the source mid. The bid is then
rounded down and the ask up to the instrument's tick, so the quoted spread is never below the
configured one. If rounding still leaves ``bid >= ask`` (zero spread on a price that sits on
the tick) the ask moves up one tick. Operator quotes (``RawTick.exact``) are published as
given after validation.

Jump filter: a tick whose mid moves more than ``max_jump_bps`` from the last accepted mid is
dropped as ``jump``. If the market really moved, the next ticks all agree on the new level:
after ``jump_confirm`` consecutive jumped ticks within the bound of each other, the new level
is accepted.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from market_svc.instruments import Instrument, Instruments
from market_svc.ticks import Quote, RawTick

BPS = Decimal(10_000)
# Anything beyond this is not a price of any instrument we list; it guards Decimal against
# absurd exponents as much as it guards the book.
MAX_PRICE = Decimal("1e12")


def parse_decimal(value: object) -> Decimal | None:
    """Return ``value`` as a finite Decimal, or None when it is not a number.

    Strings, ints and Decimals are accepted. Floats are refused: a price that went through a
    binary float is already inexact.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 64:
            return None
        try:
            number = Decimal(text)
        except InvalidOperation:
            return None
    else:
        return None
    if not number.is_finite():
        return None
    return number


def apply_spread(
    instrument: Instrument, source_bid: Decimal, source_ask: Decimal, spread_bps: Decimal
) -> tuple[Decimal, Decimal]:
    """Return the quoted (bid, ask) around a source bid/ask, as the module docstring says."""
    half_spread = (source_bid + source_ask) / 2 * spread_bps / BPS / 2
    bid = instrument.round_down_to_tick(source_bid - half_spread)
    ask = instrument.round_up_to_tick(source_ask + half_spread)
    if bid >= ask:
        ask = bid + instrument.tick_size
    return bid, ask


@dataclass(frozen=True, slots=True)
class QuoteSettings:
    """How raw prices become quotes."""

    spread_bps: Decimal = Decimal(10)
    max_jump_bps: Decimal = Decimal(1000)
    jump_confirm: int = 5


class QuoteBuilder:
    """Validate raw ticks and derive quotes; count every dropped tick by reason."""

    def __init__(
        self,
        instruments: Instruments,
        settings: QuoteSettings | None = None,
        *,
        first_sequence: int | None = None,
    ) -> None:
        settings = settings or QuoteSettings()
        if settings.spread_bps < 0 or settings.max_jump_bps <= 0 or settings.jump_confirm < 1:
            raise ValueError("spread must be >= 0, jump bound > 0 and jump_confirm >= 1")
        self._instruments = instruments
        self._settings = settings
        # Start from the clock so sequences keep increasing across restarts of the service.
        self._sequence = time.time_ns() // 1000 if first_sequence is None else first_sequence - 1
        self._last_mid: dict[str, Decimal] = {}
        self._last_time: dict[str, int] = {}
        self._jump_candidates: dict[str, list[Decimal]] = {}
        self.drops: Counter[str] = Counter()
        self.accepted = 0

    @property
    def settings(self) -> QuoteSettings:
        """Return the spread and filter settings in force."""
        return self._settings

    def build(self, raw: RawTick, now_ns: int | None = None) -> Quote | None:
        """Return the quote derived from ``raw``, or None if it was dropped (and counted)."""
        instrument = self._instruments.get(raw.symbol)
        if instrument is None:
            return self._drop("unknown_symbol")
        if raw.exact:
            prices = self._exact_prices(raw, instrument)
        else:
            prices = self._derived_prices(raw, instrument)
        if isinstance(prices, str):
            return self._drop(prices)
        bid, ask = prices
        volume: Decimal | None = None
        if raw.volume is not None:
            volume = parse_decimal(raw.volume)
            if volume is None or volume < 0 or volume > MAX_PRICE:
                return self._drop("bad_volume")
        mid = (bid + ask) / 2
        if not raw.exact and not self._passes_jump_filter(raw.symbol, mid):
            return self._drop("jump")
        self._last_mid[raw.symbol] = mid
        self._jump_candidates.pop(raw.symbol, None)
        # Per-symbol time never runs backwards, so candles see ticks in order.
        stamp = raw.time_ns if raw.time_ns is not None else (now_ns or time.time_ns())
        stamp = max(stamp, self._last_time.get(raw.symbol, 0))
        self._last_time[raw.symbol] = stamp
        self._sequence += 1
        self.accepted += 1
        return Quote(raw.symbol, bid, ask, stamp, self._sequence, volume)

    def _drop(self, reason: str) -> Quote | None:
        self.drops[reason] += 1
        return None

    def _exact_prices(self, raw: RawTick, instrument: Instrument) -> tuple[Decimal, Decimal] | str:
        bid = parse_decimal(raw.bid)
        ask = parse_decimal(raw.ask)
        if bid is None or ask is None:
            return "not_a_number"
        if bid <= 0 or ask <= 0:
            return "non_positive"
        if bid > MAX_PRICE or ask > MAX_PRICE:
            return "too_large"
        if bid >= ask:
            return "crossed"
        if not (instrument.is_on_tick(bid) and instrument.is_on_tick(ask)):
            return "off_tick"
        return bid, ask

    def _derived_prices(
        self, raw: RawTick, instrument: Instrument
    ) -> tuple[Decimal, Decimal] | str:
        if raw.price is not None:
            price = parse_decimal(raw.price)
            if price is None:
                return "not_a_number"
            source_bid = source_ask = price
        else:
            parsed_bid = parse_decimal(raw.bid)
            parsed_ask = parse_decimal(raw.ask)
            if parsed_bid is None or parsed_ask is None:
                return "not_a_number"
            source_bid, source_ask = parsed_bid, parsed_ask
        if source_bid <= 0 or source_ask <= 0:
            return "non_positive"
        if source_bid > MAX_PRICE or source_ask > MAX_PRICE:
            return "too_large"
        if source_bid > source_ask:
            return "crossed"
        bid, ask = apply_spread(instrument, source_bid, source_ask, self._settings.spread_bps)
        if bid <= 0:
            return "non_positive"
        return bid, ask

    def _passes_jump_filter(self, symbol: str, mid: Decimal) -> bool:
        last = self._last_mid.get(symbol)
        bound = self._settings.max_jump_bps
        if last is None or abs(mid - last) * BPS <= bound * last:
            return True
        candidates = self._jump_candidates.setdefault(symbol, [])
        if candidates and abs(mid - candidates[0]) * BPS > bound * candidates[0]:
            candidates.clear()
        candidates.append(mid)
        return len(candidates) >= self._settings.jump_confirm
