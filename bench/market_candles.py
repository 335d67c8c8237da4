"""Benchmark: GetCandles latency over one year of one-minute candles.

Fills a fresh store (SQLite in a temporary directory, or CFD_BENCH_DATABASE_URL) with
525,600 one-minute candles of one symbol, then times the queries a chart makes through
``MarketData.candles``: the latest page, a page from a start time in the middle of the year,
and a day range. Prints JSON lines: {"bench", "metric", "value", "unit"}.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

from market_svc.candles import Candle, CandleInterval
from market_svc.instruments import Instruments
from market_svc.market import MarketData
from market_svc.store import CandleStore
from mesh.db import create_engine

MINUTES = 365 * 1440
QUERIES = 200
M1 = CandleInterval.M1


def year_of_minutes(end_ms: int) -> list[Candle]:
    """Return a year of plausible one-minute BTCUSD candles ending at ``end_ms``."""
    rng = random.Random(7)
    cents = 9_625_000
    start = M1.open_time(end_ms) - MINUTES * 60_000
    candles = []
    for index in range(MINUTES):
        path = [cents + rng.randint(-2_000, 2_000) for _ in range(4)]
        cents = path[-1]
        o, c = Decimal(path[0]) / 100, Decimal(path[-1]) / 100
        h, lo = Decimal(max(path)) / 100, Decimal(min(path)) / 100
        count = rng.randint(400, 800)
        candles.append(
            Candle("BTCUSD", M1, start + index * 60_000, o, h, lo, c, Decimal(count), count)
        )
    return candles


async def timed(query: Callable[[], Awaitable[list[Candle]]], expected: int) -> list[float]:
    samples = []
    for _ in range(QUERIES):
        started = time.perf_counter()
        found = await query()
        samples.append((time.perf_counter() - started) * 1000)
        assert len(found) == expected, len(found)
    return samples


def emit(metric: str, value: float, unit: str) -> None:
    line = {"bench": "market_candles", "metric": metric, "value": round(value, 3), "unit": unit}
    print(json.dumps(line), flush=True)


async def run(url: str) -> None:
    engine = create_engine(url)
    try:
        store = CandleStore(engine)
        await store.initialize()
        now_ms = time.time_ns() // 1_000_000
        candles = year_of_minutes(now_ms)
        started = time.perf_counter()
        await store.upsert(candles)
        emit("insert_1y_1m_candles", MINUTES / (time.perf_counter() - started), "candles/s")
        market = MarketData(Instruments(), store=store)
        middle = candles[MINUTES // 2].open_time_ms
        cases = {
            "latest_500": (lambda: market.candles("BTCUSD", M1, end_ms=now_ms, limit=500), 500),
            "since_mid_year_latest_1000": (
                lambda: market.candles("BTCUSD", M1, start_ms=middle, limit=1000),
                1000,
            ),
            "day_range_latest_1000": (
                lambda: market.candles(
                    "BTCUSD", M1, start_ms=middle, end_ms=middle + 1439 * 60_000, limit=1000
                ),
                1000,
            ),
        }
        for name, (query, expected) in cases.items():
            samples = sorted(await timed(query, expected))
            emit(f"get_candles_{name}_p50", statistics.median(samples), "ms")
            emit(f"get_candles_{name}_p99", samples[int(len(samples) * 0.99) - 1], "ms")
    finally:
        await engine.dispose()


def main() -> None:
    url = os.environ.get("CFD_BENCH_DATABASE_URL")
    if url:
        asyncio.run(run(url))
        return
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(run(f"sqlite+aiosqlite:///{Path(directory) / 'market.sqlite3'}"))


if __name__ == "__main__":
    main()
