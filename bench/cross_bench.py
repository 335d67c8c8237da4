"""Benchmark of quotes over cross-margin accounts, interpreted and compiled with mypyc.

Usage::

    python bench/cross_bench.py                 # both variants, (re)builds build/mypyc if stale
    python bench/cross_bench.py --variant interpreted --accounts 100000
    python bench/cross_bench.py --quick          # 20,000 accounts, fewer ticks

The core holds `accounts` cross accounts, each with a BTCUSD position (varied side, leverage
and size); every tenth also holds an ETHUSD position, so its stop-out index prices are the
conservative split rather than exact ones. `cross.tick_no_trigger_<n>` times BTCUSD quotes
wandering within 0.3% of the mid, which reach no index price; `cross.tick_stop_out_<n>` times
one quote that stops out 1,000 thinly funded accounts among them. Every figure is one JSON
line ``{"bench": "cross.<name>.<variant>", "metric": ..., "value": ..., "unit": ...}``.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = ROOT / "build" / "mypyc"
USD = 1_000_000
BTC_MID = 6_000_000
ETH_MID = 300_000
THIN = 1000


def emit(bench: str, metric: str, value: object, unit: str) -> None:
    """Print one figure as a JSON line."""
    print(json.dumps({"bench": bench, "metric": metric, "value": value, "unit": unit}), flush=True)


class Workload:
    """A core full of cross accounts with open positions."""

    def __init__(self, accounts: int) -> None:
        import engine_svc.core as core_module

        self.m: Any = core_module
        self.core: Any = core_module.Core()
        self.seq = 0
        self.ts = 1_700_000_000_000_000_000
        m = self.m
        self.quote("BTCUSD", BTC_MID, 1000)
        self.quote("ETHUSD", ETH_MID, 100)
        for index in range(accounts):
            # The first THIN accounts are thinly funded longs, stopped out by a 2% fall.
            name = f"cross-{index}"
            thin = index < THIN
            balance = 150 * USD if thin else 1000 * USD
            self.run(
                m.CreateAccount(self.next(), self.ts, name, balance, m.MarginMode.CROSS, 60, 0)
            )
            buy = thin or index % 2 == 0
            leverage = 100 if thin else (20, 50, 100)[index % 3]
            lots = 1000 if thin else 100 + index % 900
            side = m.Side.BUY if buy else m.Side.SELL
            self.run(m.OpenPosition(self.next(), self.ts, name, "BTCUSD", side, leverage, lots))
            if not thin and index % 10 == 1:
                self.run(
                    m.OpenPosition(self.next(), self.ts, name, "ETHUSD", side, leverage, 100)
                )

    def next(self) -> int:
        """Return the next sequence number."""
        self.seq += 1
        return self.seq

    def run(self, command: object) -> Any:
        """Apply a command that must be accepted."""
        result = self.core.apply(command)
        if result.reason is not None:
            raise RuntimeError(f"a benchmark command was rejected: {result.message}")
        return result

    def quote(self, symbol: str, bid: int, spread: int) -> Any:
        """Apply a quote and return its result."""
        return self.run(self.m.ApplyQuote(self.next(), self.ts, symbol, bid, bid + spread))


def bench(variant: str, accounts: int, ticks: int) -> None:
    """Time untriggered quotes, then one quote that stops out the thin accounts."""
    work = Workload(accounts)
    gc.collect()
    gc.freeze()
    apply = work.core.apply
    quote = work.m.ApplyQuote
    samples: list[int] = []
    for index in range(ticks):
        bid = BTC_MID + (index * 7919) % 36_000 - 18_000
        command = quote(work.next(), work.ts, "BTCUSD", bid, bid + 1000)
        started = time.perf_counter_ns()
        result = apply(command)
        samples.append(time.perf_counter_ns() - started)
        if result.events:
            raise RuntimeError("a benchmark tick triggered something")
    name = f"cross.tick_no_trigger_{accounts}.{variant}"
    ordered = sorted(samples)
    emit(name, "median", round(statistics.median(samples) / 1000, 2), "us")
    emit(name, "p99", round(ordered[len(ordered) * 99 // 100] / 1000, 2), "us")
    # 0.1 BTC at 100x on 150 USD: equity reaches 0 at a 1,500 USD (2.5%) fall.
    bid = BTC_MID - BTC_MID * 26 // 1000
    command = quote(work.next(), work.ts, "BTCUSD", bid, bid + 1000)
    started = time.perf_counter_ns()
    result = apply(command)
    elapsed = time.perf_counter_ns() - started
    stopped = sum(1 for event in result.events if isinstance(event, work.m.PositionClosed))
    if stopped != THIN:
        raise RuntimeError(f"expected {THIN} stop-outs, got {stopped}")
    name = f"cross.tick_stop_out_{accounts}.{variant}"
    emit(name, "stop_outs", stopped, "positions")
    emit(name, "total", round(elapsed / 1e6, 2), "ms")
    emit(name, "per_stop_out", round(elapsed / stopped / 1000, 2), "us")


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=("interpreted", "mypyc", "both"), default="both")
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    accounts = 20_000 if args.quick else args.accounts
    ticks = 500 if args.quick else 3000
    sys.path.insert(0, str(ROOT))
    if args.variant == "both":
        from bench.mypyc_build import run_variants

        run_variants(Path(__file__).resolve(), ["--accounts", str(accounts)])
        return
    if args.variant == "mypyc":
        sys.path.insert(0, str(BUILD_DIR))
    bench(args.variant, accounts, ticks)


if __name__ == "__main__":
    main()
