"""Benchmark: ticks per second the market service ingests and fans out to 10 subscribers.

Raw source ticks (decimal strings, as exchanges send them) go through the whole in-process
pipeline: validation, spread and rounding, the quote hub, all seven candle intervals and the
24 h ticker. Ten subscriber tasks drain the hub concurrently, as ten StreamTicks calls would.
Prints JSON lines: {"bench", "metric", "value", "unit"}.
"""

from __future__ import annotations

import asyncio
import json
import random
import time

from market_svc.hub import QuoteSubscription
from market_svc.instruments import Instruments
from market_svc.market import MarketData
from market_svc.ticks import RawTick

SUBSCRIBERS = 10
# (scenario, ticks, ticks between yields to the subscribers): a feed handing over frames in
# bursts, where subscribers get conflated, and one yielding after every tick, where every
# subscriber receives every quote.
SCENARIOS = (("burst_50", 200_000, 50), ("each_tick", 50_000, 1))


def source_ticks(count: int) -> list[RawTick]:
    """Return ``count`` realistic raw ticks cycling through the instruments."""
    rng = random.Random(1)
    instruments = Instruments()
    levels = {symbol: int(i.reference_price * 100) for symbol, i in instruments.items()}
    symbols = list(instruments)
    start_ns = time.time_ns()
    ticks = []
    for index in range(count):
        symbol = symbols[index % len(symbols)]
        levels[symbol] += rng.randint(-3, 3)
        price = f"{levels[symbol] // 100}.{levels[symbol] % 100:02d}"
        ticks.append(RawTick(symbol, time_ns=start_ns + index * 1_000_000, price=price))
    return ticks


async def drain(subscription: QuoteSubscription, stop: asyncio.Event) -> None:
    while not stop.is_set():
        if not await subscription.next_batch():
            return


async def run(scenario: str, count: int, batch: int) -> None:
    market = MarketData(Instruments())
    ticks = source_ticks(count)
    stop = asyncio.Event()
    subscriptions = [market.quotes.subscribe() for _ in range(SUBSCRIBERS)]
    consumers = [asyncio.create_task(drain(s, stop)) for s in subscriptions]
    started = time.perf_counter()
    for offset in range(0, len(ticks), batch):
        for tick in ticks[offset : offset + batch]:
            market.on_tick(tick)
        await asyncio.sleep(0)
    elapsed = time.perf_counter() - started
    stop.set()
    for subscription in subscriptions:
        subscription.close()
    await asyncio.gather(*consumers)
    delivered = sum(s.delivered for s in subscriptions)
    conflated = sum(s.conflated for s in subscriptions)
    assert market.builder.accepted == count, market.builder.drops
    results = [
        ("ingest_fanout_10_subscribers", count / elapsed, "ticks/s"),
        ("deliveries_10_subscribers", delivered / elapsed, "quotes/s"),
        ("conflated_share", conflated / (delivered + conflated), "ratio"),
        ("per_tick_cost", elapsed / count * 1e6, "us"),
    ]
    for name, value, unit in results:
        metric = f"{scenario}_{name}"
        line = {"bench": "market_fanout", "metric": metric, "value": round(value, 3), "unit": unit}
        print(json.dumps(line))


if __name__ == "__main__":
    for scenario in SCENARIOS:
        asyncio.run(run(*scenario))
