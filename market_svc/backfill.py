"""Fill the candle store with history so a fresh chart is never empty.

With the simulator (and the manual feed) history comes from the simulator's model, walked
*backwards* in time from where the live prices start: from the reference prices into an
empty store, or from the oldest stored candle's open when extending older history. The chart
is therefore continuous with what follows. With the replay feed the recorded file is played
(looped) over the missing range instead. Exchange feeds use the model too: history of a real
exchange cannot be fetched without its REST API, and a synthetic past is labelled as such by
the ``backfill`` log line.

Only missing one-minute candles are generated, older than anything stored; larger intervals
are re-aggregated from the stored one-minute candles of every bucket touched. A second run
over the same range therefore writes nothing: backfill is idempotent.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING

from market_svc.candles import INTERVALS, Candle, CandleAggregator, CandleInterval, roll_up
from market_svc.config import MarketConfig
from market_svc.feeds.model import RandomWalk
from market_svc.feeds.replay import (
    ReplayRecord,
    load_replay,
    looped,
    replay_level,
    to_raw_tick,
)
from market_svc.instruments import Instruments
from market_svc.quotes import QuoteBuilder, QuoteSettings, apply_spread
from market_svc.store import CandleStore

if TYPE_CHECKING:
    from mesh.config import Settings

log = logging.getLogger(__name__)

M1 = CandleInterval.M1
MINUTE_MS = M1.length_ms
# Model steps per generated minute: enough for a believable high and low.
SUBSTEPS = 6


def model_history(
    walk: RandomWalk,
    start_ms: int,
    end_ms: int,
    *,
    spread_bps: Decimal,
    interval_ms: int = 100,
) -> list[Candle]:
    """Return one-minute candles for [start, end), walking back in time from ``walk.price``.

    ``walk.price`` is the mid at ``end_ms``; each candle's volume is its simulated tick count
    (about one tick per ``interval_ms``), as the live simulator's candles count ticks.
    """
    instrument = walk.instrument
    step_ms = MINUTE_MS // SUBSTEPS
    mean_ticks = MINUTE_MS // interval_ms
    candles: list[Candle] = []
    open_time = M1.open_time(end_ms - 1)
    while open_time >= start_ms:
        # Chronological mids of this minute: the walk goes backwards, so fill from the end.
        mids = [walk.step(step_ms, backwards=True) for _ in range(SUBSTEPS)]
        mids.reverse()
        # The mid of the rounded quote, as live candles are built from.
        quoted = [apply_spread(instrument, mid, mid, spread_bps) for mid in mids]
        prices = [(bid + ask) / 2 for bid, ask in quoted]
        ticks = int(Decimal(mean_ticks) * (Decimal("0.75") + walk.uniform() / 2))
        candles.append(
            Candle(
                instrument.symbol,
                M1,
                open_time,
                prices[0],
                max(prices),
                min(prices),
                prices[-1],
                Decimal(ticks),
                ticks,
            )
        )
        open_time -= MINUTE_MS
    candles.reverse()
    return candles


def replay_history(
    records: list[ReplayRecord],
    instruments: Instruments,
    start_ms: int,
    end_ms: int,
    quote_settings: QuoteSettings,
) -> dict[str, list[Candle]]:
    """Return one-minute candles per symbol from replay records looped over [start, end)."""
    builder = QuoteBuilder(instruments, quote_settings, first_sequence=1)
    aggregator = CandleAggregator((M1,))
    closed: dict[str, list[Candle]] = {symbol: [] for symbol in instruments}
    for offset_ms, record in looped(records):
        time_ms = start_ms + offset_ms
        if time_ms >= end_ms:
            break
        quote = builder.build(to_raw_tick(record, time_ms * 1_000_000))
        if quote is None:
            continue
        for candle in aggregator.add(quote):
            closed[candle.symbol].append(candle)
    for symbol in instruments:
        current = aggregator.current(symbol, M1)
        if current is not None and current.close_time_ms <= end_ms:
            closed[symbol].append(current)
    return closed


def replay_start_prices(records: list[ReplayRecord]) -> dict[str, Decimal]:
    """Return the first valid mid of each symbol in a replay file."""
    firsts: dict[str, Decimal] = {}
    for record in records:
        if record.symbol not in firsts:
            level = replay_level(record)
            if level is not None:
                firsts[record.symbol] = level
    return firsts


async def backfill_store(
    store: CandleStore,
    instruments: Instruments,
    config: MarketConfig,
    days: int,
    *,
    feed: str = "simulator",
    now_ms: int | None = None,
    start_prices: Mapping[str, Decimal] | None = None,
) -> int:
    """Generate the missing history of the last ``days`` days; return candle rows written."""
    if days < 0:
        raise ValueError("days must not be negative")
    now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    end_ms = M1.open_time(now_ms)
    target_start = end_ms - days * 1440 * MINUTE_MS
    ranges: dict[str, tuple[int, int, Decimal | None]] = {}
    for symbol in instruments:
        earliest = await store.earliest(symbol, M1)
        if earliest is None:
            anchor = (start_prices or {}).get(symbol)
            ranges[symbol] = (target_start, end_ms, anchor)
        elif earliest.open_time_ms > target_start:
            ranges[symbol] = (target_start, earliest.open_time_ms, earliest.open)
    if not ranges:
        return 0

    generated: dict[str, list[Candle]] = {}
    records = load_replay(config.replay_file) if feed == "replay" else []
    span_ms = records[-1].time_ms - records[0].time_ms if records else 0
    # Symbols usually share one range; play the file once per distinct range.
    played: dict[tuple[int, int], dict[str, list[Candle]]] = {}
    for symbol, (start, end, anchor) in ranges.items():
        if records and span_ms >= end - start:
            if (start, end) not in played:
                played[start, end] = replay_history(
                    records, instruments, start, end, config.quote_settings
                )
            generated[symbol] = played[start, end].get(symbol, [])
            continue
        if records and anchor is None:
            # A file too short to cover the range: the model leads into its first prices.
            anchor = replay_start_prices(records).get(symbol)
        walk = RandomWalk(instruments[symbol], config.sim_seed, start_price=anchor)
        generated[symbol] = model_history(
            walk, start, end, spread_bps=config.spread_bps, interval_ms=config.sim_interval_ms
        )

    written = 0
    for symbol, minutes in generated.items():
        inserted = await store.insert_missing(minutes)
        written += inserted
        if inserted == 0:
            continue
        first, last = minutes[0].open_time_ms, minutes[-1].open_time_ms
        for interval in INTERVALS:
            if interval is M1:
                continue
            span_start = interval.open_time(first)
            span_end = interval.open_time(last) + interval.length_ms
            if inserted == len(minutes):
                # Every generated minute is new, so the store adds only the minutes around
                # them in the buckets they share: read just those.
                before = await _stored_minutes(store, symbol, span_start, first)
                after = await _stored_minutes(store, symbol, last + MINUTE_MS, span_end)
                series = [*before, *minutes, *after]
            else:
                series = await _stored_minutes(store, symbol, span_start, span_end)
            rolled = roll_up(series, interval)
            await store.upsert(rolled)
            written += len(rolled)
        log.info(
            "backfill: %d synthetic one-minute candles of %s from the %s model",
            inserted,
            symbol,
            "replay" if feed == "replay" else "simulator",
        )
    return written


async def _stored_minutes(
    store: CandleStore, symbol: str, start_ms: int, end_ms: int
) -> list[Candle]:
    """Return the stored one-minute candles with open time in [start, end)."""
    if end_ms <= start_ms:
        return []
    return await store.query(
        symbol, M1, start_ms=start_ms, end_ms=end_ms - 1, limit=(end_ms - start_ms) // MINUTE_MS
    )


async def backfill(settings: Settings, days: int) -> int:
    """Fill the configured store with ``days`` days of history; return candle rows written."""
    from mesh import db

    config = MarketConfig.from_env(os.environ)
    engine = db.create_engine(db.database_url(settings, "market"))
    try:
        store = CandleStore(engine)
        await store.initialize()
        return await backfill_store(
            store, Instruments.from_env(os.environ), config, days, feed=settings.feed
        )
    finally:
        await engine.dispose()
