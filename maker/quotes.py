"""The market maker's quotes: the price levels it keeps on each side of a market around a mid.

Pure and exact (decimals, never floats): given the mid and the market's steps, it says which
orders should rest. Level 1 sits `spread_bps` from the mid and each further level `step_bps`
beyond the one before, bids rounded down and asks rounded up to the tick, so a quote never
crosses the mid; levels that round to the same price move one more tick out, so every level has
its own price. Every level is worth `level_size` USD: its quantity is that over the mid, floored
to the lot step.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

BPS = Decimal(10_000)
# clientOrderId is at most 64 characters (API.md).
MAX_CLIENT_ORDER_ID = 64


@dataclass(frozen=True, slots=True)
class QuoteConfig:
    """How many levels a side, how far from the mid and apart, how large (in USD)."""

    levels: int
    level_size: Decimal
    spread_bps: Decimal
    step_bps: Decimal


@dataclass(frozen=True, slots=True)
class MarketSteps:
    """A market's name, tick size and lot step (from ListMarkets)."""

    name: str
    tick_size: Decimal
    lot_step: Decimal


@dataclass(frozen=True, slots=True)
class Quote:
    """One order the maker wants resting."""

    market: str
    buy: bool
    level: int
    price: Decimal
    quantity: Decimal

    def client_order_id(self, key: str) -> str:
        """Return the idempotency key of this quote placed as the order named `key`.

        The same call retried gives the same key, so a retry never places the order twice.
        """
        side = "b" if self.buy else "a"
        key = f"mm-{self.market}-{key}-{side}{self.level}"
        if len(key) > MAX_CLIENT_ORDER_ID:
            raise ValueError(f"client order id too long: {key}")
        return key


def _to_step(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    # Quantized, so that the text of a price shows the tick's places ("999.00", not "999").
    return ((value / step).to_integral_value(rounding=rounding) * step).quantize(step)


def quotes(mid: Decimal, market: MarketSteps, config: QuoteConfig) -> list[Quote]:
    """Return the bids (best first) then the asks (best first) to keep around `mid`."""
    if mid <= 0:
        raise ValueError("the mid must be positive")
    quantity = _to_step(config.level_size / mid, market.lot_step, ROUND_FLOOR)
    if quantity < market.lot_step:
        raise ValueError(f"{market.name}: a level of {config.level_size} USD is below the lot step")
    tick = market.tick_size
    bids: list[Quote] = []
    asks: list[Quote] = []
    for level in range(1, config.levels + 1):
        offset = mid * (config.spread_bps + config.step_bps * (level - 1)) / BPS
        bid = _to_step(mid - offset, tick, ROUND_FLOOR)
        ask = _to_step(mid + offset, tick, ROUND_CEILING)
        if bids and bid >= bids[-1].price:
            bid = bids[-1].price - tick
        if asks and ask <= asks[-1].price:
            ask = asks[-1].price + tick
        if bid >= tick:
            bids.append(Quote(market.name, True, level, bid, quantity))
        asks.append(Quote(market.name, False, level, ask, quantity))
    return bids + asks


def moved(previous: Decimal, current: Decimal, threshold_bps: Decimal) -> bool:
    """Tell whether the mid moved `threshold_bps` or more since `previous`: time to quote again."""
    return abs(current - previous) * BPS >= previous * threshold_bps
