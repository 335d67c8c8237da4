from decimal import Decimal
from pathlib import Path

from market_svc.backfill import backfill_store, model_history, replay_start_prices
from market_svc.candles import INTERVALS, CandleInterval, roll_up
from market_svc.config import MarketConfig
from market_svc.feeds.model import RandomWalk
from market_svc.feeds.replay import load_replay
from market_svc.instruments import Instruments
from market_svc.store import CandleStore

M1 = CandleInterval.M1
MINUTE = 60_000
# Wednesday 2026-11-18 12:34:56.789 UTC.
NOW = 1_795_523_696_789
INSTRUMENTS = Instruments()


async def test_backfill_fills_every_interval_and_is_idempotent(store: CandleStore) -> None:
    config = MarketConfig(sim_seed=3)
    written = await backfill_store(store, INSTRUMENTS, config, 2, now_ms=NOW)
    end = M1.open_time(NOW)
    for symbol in INSTRUMENTS:
        minutes = await store.query(symbol, M1, limit=5000)
        assert len(minutes) == 2 * 1440
        assert minutes[0].open_time_ms == end - 2 * 1440 * MINUTE
        assert minutes[-1].open_time_ms == end - MINUTE
        for interval in INTERVALS[1:]:
            stored = await store.query(symbol, interval, limit=5000)
            assert stored == roll_up(minutes, interval)
    assert written == await store.count()
    assert await backfill_store(store, INSTRUMENTS, config, 2, now_ms=NOW) == 0
    assert await backfill_store(store, INSTRUMENTS, config, 2, now_ms=NOW + 10 * MINUTE) == 0
    assert written == await store.count()


async def test_history_ends_at_the_live_start_price(store: CandleStore) -> None:
    config = MarketConfig()
    await backfill_store(store, INSTRUMENTS, config, 1, now_ms=NOW)
    for symbol, instrument in INSTRUMENTS.items():
        last = await store.latest(symbol, M1)
        assert last is not None
        # Where the live simulator starts, within the spread and rounding.
        assert abs(last.close - instrument.reference_price) <= instrument.reference_price / 1000


async def test_older_history_extends_backwards_from_the_oldest_candle(store: CandleStore) -> None:
    config = MarketConfig()
    await backfill_store(store, INSTRUMENTS, config, 1, now_ms=NOW)
    oldest = await store.earliest("ETHUSD", M1)
    assert oldest is not None
    written = await backfill_store(store, INSTRUMENTS, config, 3, now_ms=NOW)
    assert written > 0
    minutes = await store.query("ETHUSD", M1, limit=10_000)
    assert len(minutes) == 3 * 1440
    days = await store.query("ETHUSD", CandleInterval.D1, limit=10)
    assert days == roll_up(minutes, CandleInterval.D1)
    # Continuous: the generated minute before the old oldest closes near its open.
    before = minutes[minutes.index(oldest) - 1]
    assert abs(before.close - oldest.open) < oldest.open / 100


def test_model_history_is_deterministic_and_plausible() -> None:
    instrument = INSTRUMENTS["BTCUSD"]
    first = model_history(RandomWalk(instrument, 9), 0, 1440 * MINUTE, spread_bps=Decimal(10))
    again = model_history(RandomWalk(instrument, 9), 0, 1440 * MINUTE, spread_bps=Decimal(10))
    other = model_history(RandomWalk(instrument, 10), 0, 1440 * MINUTE, spread_bps=Decimal(10))
    assert first == again != other
    assert len(first) == 1440
    assert all(c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high for c in first)
    # A day of 55 % annual volatility: moves of a few percent, not tenfold.
    closes = [c.close for c in first]
    assert max(closes) / min(closes) < Decimal("1.3")
    assert all(450 <= c.tick_count <= 750 for c in first)


async def test_replay_backfill_plays_a_file_that_covers_the_range(
    store: CandleStore, tmp_path: Path
) -> None:
    replay = tmp_path / "ticks.csv"
    lines = ["time,symbol,price,volume"]
    for index in range(2 * 1440 + 2):
        lines.append(f"{index * 30_000},BTCUSD,{100 + index % 7}.00,0.5")
    replay.write_text("\n".join(lines) + "\n")
    config = MarketConfig(replay_file=replay, spread_bps=Decimal(0))
    assert await backfill_store(store, INSTRUMENTS, config, 1, feed="replay", now_ms=NOW) > 0
    minutes = await store.query("BTCUSD", M1, limit=5000)
    assert len(minutes) == 1440
    assert {c.tick_count for c in minutes} == {2}
    assert {c.volume for c in minutes} == {Decimal(1)}
    # Zero spread on a price on the tick: the ask is one tick up, the mid half a tick.
    assert minutes[0].open == Decimal("100.005")
    assert await store.count("ETHUSD") == 0


async def test_a_short_replay_file_leads_the_model_into_its_first_prices(
    store: CandleStore,
) -> None:
    config = MarketConfig()
    await backfill_store(store, INSTRUMENTS, config, 1, feed="replay", now_ms=NOW)
    first = replay_start_prices(load_replay(config.replay_file))
    for symbol in INSTRUMENTS:
        last = await store.latest(symbol, M1)
        assert last is not None
        assert abs(last.close - first[symbol]) <= first[symbol] / 1000
