from decimal import Decimal

import pytest

from market_svc.feeds.model import RandomWalk
from market_svc.feeds.simulator import SimulatorFeed
from market_svc.instruments import Instruments
from support import until
from unit.market_svc.feeds.fake_exchanges import feeding

INSTRUMENTS = Instruments()


def test_same_seed_same_path_other_seed_other_path() -> None:
    def path(seed: int) -> list[tuple[int, Decimal]]:
        feed = SimulatorFeed(INSTRUMENTS, seed=seed)
        return [feed.next_tick(symbol) for _ in range(200) for symbol in INSTRUMENTS]

    assert path(11) == path(11)
    assert path(11) != path(12)


async def test_emits_every_symbol_at_the_configured_rate_along_the_seeded_path() -> None:
    simulator = SimulatorFeed(INSTRUMENTS, seed=5, interval_ms=10)
    async with feeding(simulator) as ticks:
        await until(lambda: all(sum(t.symbol == s for t in ticks) >= 30 for s in INSTRUMENTS))
        assert simulator.status.connected
    reference = SimulatorFeed(INSTRUMENTS, seed=5, interval_ms=10)
    for symbol in INSTRUMENTS:
        emitted = [t.price for t in ticks if t.symbol == symbol][:30]
        assert emitted == [reference.next_tick(symbol)[1] for _ in range(30)]
    times = [t.time_ns for t in ticks if t.time_ns is not None]
    assert times == sorted(times)
    assert not simulator.status.connected


def test_starts_from_given_prices_and_stays_plausible() -> None:
    feed = SimulatorFeed(INSTRUMENTS, seed=1, start_prices={"ETHUSD": Decimal("2000")})
    assert feed.walks["ETHUSD"].price == Decimal("2000")
    assert feed.walks["BTCUSD"].price == INSTRUMENTS["BTCUSD"].reference_price
    # An hour of 100 ms ticks: BTC moves well under 10 %.
    prices = [feed.next_tick("BTCUSD")[1] for _ in range(36_000)]
    reference = INSTRUMENTS["BTCUSD"].reference_price
    assert all(abs(p - reference) < reference / 10 for p in prices)
    assert len(set(prices)) > 30_000


def test_walk_has_the_configured_volatility_and_jumps() -> None:
    walk = RandomWalk(INSTRUMENTS["SOLUSD"], 4, jumps_per_day=Decimal(0))
    returns = [walk.log_return(60_000) for _ in range(20_000)]
    variance = sum((r * r for r in returns), Decimal(0)) / len(returns)
    year_ms = Decimal(365 * 24 * 3600 * 1000)
    expected = INSTRUMENTS["SOLUSD"].annual_volatility ** 2 * 60_000 / year_ms
    assert abs(variance / expected - 1) < Decimal("0.05")
    jumpy = RandomWalk(INSTRUMENTS["SOLUSD"], 4, jumps_per_day=Decimal(1440))
    big = [r for r in (jumpy.log_return(60_000) for _ in range(2_000)) if abs(r) > Decimal("0.005")]
    assert big  # one jump a minute on average shows up as moves far beyond the diffusion


def test_walk_refuses_bad_input_and_never_reaches_zero() -> None:
    with pytest.raises(ValueError, match="positive"):
        RandomWalk(INSTRUMENTS["BTCUSD"], 1, start_price=Decimal(0))
    walk = RandomWalk(INSTRUMENTS["BTCUSD"], 1, start_price=Decimal("0.01"))
    with pytest.raises(ValueError, match="dt_ms"):
        walk.step(0)
    assert all(walk.step(10_000_000) >= Decimal("0.01") for _ in range(100))
    with pytest.raises(ValueError, match="interval"):
        SimulatorFeed(INSTRUMENTS, seed=1, interval_ms=0)
