"""The simulator's price model: a seeded geometric random walk with occasional jumps.

It is computed in Decimal from integer random draws, so a seed gives the same path on every
platform. Normal draws use the Irwin-Hall sum of twelve uniforms: tails are bounded at six
standard deviations, which the separate jump process more than makes up for.
"""

from __future__ import annotations

import random
from decimal import Decimal, localcontext

from market_svc.instruments import Instrument

MS_PER_YEAR = Decimal(365 * 24 * 3600 * 1000)
_TWO_32 = Decimal(2**32)
# Prices are kept a hundred times finer than the tick so rounding never pins the walk.
_PRECISION_FACTOR = Decimal("0.01")
_SERIES_BOUND = Decimal("0.01")


def _exp(x: Decimal) -> Decimal:
    """Return e**x; steps are tiny, where five Taylor terms are exact to 1e-10 and cheap."""
    if abs(x) < _SERIES_BOUND:
        return 1 + x * (1 + x / 2 * (1 + x / 3 * (1 + x / 4 * (1 + x / 5))))
    with localcontext() as ctx:
        ctx.prec = 34
        return x.exp()


class RandomWalk:
    """One instrument's simulated mid price, advanced by ``step``."""

    def __init__(
        self,
        instrument: Instrument,
        seed: int,
        *,
        start_price: Decimal | None = None,
        jumps_per_day: Decimal = Decimal(2),
        jump_size: Decimal = Decimal("0.004"),
    ) -> None:
        self.instrument = instrument
        self._rng = random.Random(f"{seed}:{instrument.symbol}")
        self._quantum = instrument.tick_size * _PRECISION_FACTOR
        price = instrument.reference_price if start_price is None else start_price
        if price <= 0:
            raise ValueError(f"start price of {instrument.symbol} must be positive")
        self.price = price.quantize(self._quantum)
        self._jump_rate_per_ms = jumps_per_day / Decimal(24 * 3600 * 1000)
        self._jump_size = jump_size
        self._sigma_cache: dict[int, tuple[Decimal, Decimal]] = {}

    def uniform(self) -> Decimal:
        """Return a uniform draw in [0, 1) from the walk's own generator."""
        return Decimal(self._rng.getrandbits(32)) / _TWO_32

    def normal(self) -> Decimal:
        """Return an approximately standard normal draw."""
        getrandbits = self._rng.getrandbits
        total = sum(getrandbits(32) for _ in range(12))
        return Decimal(total) / _TWO_32 - 6

    def _sigma(self, dt_ms: int) -> tuple[Decimal, Decimal]:
        cached = self._sigma_cache.get(dt_ms)
        if cached is None:
            variance = self.instrument.annual_volatility**2 * Decimal(dt_ms) / MS_PER_YEAR
            cached = (variance.sqrt(), variance / 2)
            self._sigma_cache[dt_ms] = cached
        return cached

    def log_return(self, dt_ms: int) -> Decimal:
        """Draw the log return of the next ``dt_ms`` milliseconds."""
        sigma, drift_correction = self._sigma(dt_ms)
        change = sigma * self.normal() - drift_correction
        if self.uniform() < self._jump_rate_per_ms * dt_ms:
            change += self._jump_size * self.normal()
        return change

    def step(self, dt_ms: int, *, backwards: bool = False) -> Decimal:
        """Advance the walk by ``dt_ms`` (or walk back in time) and return the new price."""
        if dt_ms <= 0:
            raise ValueError("dt_ms must be positive")
        change = self.log_return(dt_ms)
        if backwards:
            change = -change
        factor = _exp(change)
        price = (self.price * factor).quantize(self._quantum)
        # Keep a floor of one tick: a walk may get small but never zero or negative.
        self.price = max(price, self.instrument.tick_size)
        return self.price

    def interval_jitter(self, mean_ms: int) -> int:
        """Return a tick spacing drawn uniformly from half to one and a half ``mean_ms``."""
        return max(1, int(Decimal(mean_ms) * (Decimal("0.5") + self.uniform())))
