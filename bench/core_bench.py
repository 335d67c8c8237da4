"""Benchmarks of the engine core, interpreted and compiled with mypyc.

Usage::

    python bench/core_bench.py                 # both variants, builds build/mypyc if needed
    python bench/core_bench.py --variant interpreted --sizes 10000,100000
    python bench/core_bench.py --quick          # smaller sizes and counts

Every figure is one JSON object on its own line:
``{"bench": "core.<name>.<variant>", "metric": ..., "value": ..., "unit": ...}``.
Each variant runs in its own process; the mypyc one has build/mypyc first on sys.path.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
import tracemalloc
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = ROOT / "build" / "mypyc"
USD = 1_000_000
BTC_MID = 6_000_000


def emit(bench: str, metric: str, value: object, unit: str) -> None:
    """Print one figure as a JSON line."""
    print(json.dumps({"bench": bench, "metric": metric, "value": value, "unit": unit}), flush=True)


def _percentile(samples: list[int], per_mille: int) -> int:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, len(ordered) * per_mille // 1000)]


class Workload:
    """Build cores full of positions with the command types of the core under test."""

    def __init__(self) -> None:
        import engine_svc.core as core_module

        self.m = core_module
        self.core = core_module.Core()
        self.seq = 0
        self.ts = 1_700_000_000_000_000_000

    def next_seq(self) -> int:
        """Return the next sequence number."""
        self.seq += 1
        return self.seq

    def accounts(self, count: int, balance: int) -> list[str]:
        """Create `count` accounts with `balance` micro-dollars each."""
        names = [f"acct-{index}" for index in range(count)]
        for name in names:
            self.core.apply(self.m.CreateAccount(self.next_seq(), self.ts, name, balance))
        return names

    def quote(self, bid: int, spread: int = 1000) -> object:
        """Apply a BTCUSD quote and return its result."""
        return self.core.apply(
            self.m.ApplyQuote(self.next_seq(), self.ts, "BTCUSD", bid, bid + spread)
        )

    def fill(self, count: int, names: list[str]) -> None:
        """Open `count` varied BTCUSD positions that a +-0.3% market never triggers."""
        m = self.m
        bid = BTC_MID
        for index in range(count):
            if index % 1000 == 0:
                # Wander a little so positions sit at many different trigger prices.
                bid = BTC_MID + ((index // 1000) * 7919) % 20_000 - 10_000
                self.quote(bid)
            buy = index % 2 == 0
            side = m.Side.BUY if buy else m.Side.SELL
            leverage = (2, 5, 10)[index % 3]
            tp = sl = trail = None
            if index % 2 == 1:
                sl = bid - bid // 20 if buy else bid + bid // 20 + 1000
                tp = bid + bid // 14 if buy else bid - bid // 14
            if index % 5 == 0:
                trail = bid // 30
            command = m.OpenPosition(
                self.next_seq(), self.ts, names[index % len(names)], "BTCUSD", side, leverage,
                1 + index % 10, None, None, None, tp, sl, trail, None,
            )  # fmt: skip
            if self.core.apply(command).reason is not None:
                raise RuntimeError("a benchmark position was rejected")


def bench_mixed(variant: str, commands: int) -> None:
    """Measure mixed open/close throughput in commands per second."""
    work = Workload()
    m = work.m
    names = work.accounts(1000, 10**9 * USD)
    for symbol, bid in (("BTCUSD", BTC_MID), ("ETHUSD", 300_000), ("SOLUSD", 150_000)):
        work.core.apply(m.ApplyQuote(work.next_seq(), work.ts, symbol, bid, bid + 100))
    planned: list[object] = []
    live: deque[tuple[str, str]] = deque()
    symbols = ("BTCUSD", "ETHUSD", "SOLUSD")
    for index in range(commands):
        seq = work.next_seq()
        if len(live) < 500 or index % 2 == 0:
            name = names[index % len(names)]
            side = m.Side.BUY if index % 4 < 2 else m.Side.SELL
            planned.append(
                m.OpenPosition(seq, work.ts, name, symbols[index % 3], side, 10, 10 + index % 7)
            )
            live.append((name, f"p-{seq}"))
        else:
            name, position = live.popleft()
            planned.append(m.ClosePosition(seq, work.ts, name, position))
    apply = work.core.apply
    rejected = 0
    started = time.perf_counter_ns()
    for command in planned:
        if apply(command).reason is not None:  # type: ignore[arg-type]
            rejected += 1
    elapsed = time.perf_counter_ns() - started
    if rejected:
        raise RuntimeError(f"{rejected} benchmark commands were rejected")
    emit(f"core.mixed_open_close.{variant}", "throughput", round(commands / elapsed * 1e9),
         "commands/s")  # fmt: skip


def bench_ticks(variant: str, positions: int, ticks: int, snapshot: bool) -> None:
    """Measure untriggered tick latency with `positions` open positions."""
    work = Workload()
    names = work.accounts(max(1, positions // 100), 10**9 * USD)
    work.fill(positions, names)
    before = work.core.stats().open_positions
    samples: list[int] = []
    quote = work.m.ApplyQuote
    apply = work.core.apply
    for index in range(ticks):
        bid = BTC_MID + (index * 7919) % 12_000 - 6_000
        command = quote(work.next_seq(), work.ts, "BTCUSD", bid, bid + 1000)
        started = time.perf_counter_ns()
        result = apply(command)
        samples.append(time.perf_counter_ns() - started)
        if result.events:
            raise RuntimeError("a benchmark tick fired a trigger")
    if work.core.stats().open_positions != before:
        raise RuntimeError("positions changed during the tick benchmark")
    name = f"core.tick_no_trigger_{positions}.{variant}"
    emit(name, "median", round(statistics.median(samples) / 1000, 2), "us")
    emit(name, "p99", round(_percentile(samples, 990) / 1000, 2), "us")
    if snapshot:
        started = time.perf_counter_ns()
        data = work.core.snapshot()
        emit(f"core.snapshot_{positions}.{variant}", "encode", round(
            (time.perf_counter_ns() - started) / 1e9, 2), "s")  # fmt: skip
        # As the engine's recovery does: the cycle collector would rescan the millions of
        # objects being built again and again.
        gc.disable()
        started = time.perf_counter_ns()
        restored = work.m.Core.restore(data)
        gc.enable()
        emit(f"core.snapshot_{positions}.{variant}", "restore", round(
            (time.perf_counter_ns() - started) / 1e9, 2), "s")  # fmt: skip
        started = time.perf_counter_ns()
        digest = restored.digest()
        emit(f"core.snapshot_{positions}.{variant}", "digest", round(
            (time.perf_counter_ns() - started) / 1e9, 2), "s")  # fmt: skip
        emit(f"core.snapshot_{positions}.{variant}", "size", len(data), "bytes")
        if digest != work.core.digest():
            raise RuntimeError("restored core has another digest")


def bench_liquidations(variant: str, background: int, repeats: int) -> None:
    """Measure one tick that liquidates 1,000 positions among `background` untriggered ones."""
    samples: list[int] = []
    for _ in range(repeats):
        work = Workload()
        m = work.m
        names = work.accounts(1000, 10**6 * USD)
        work.fill(background, names)
        work.quote(BTC_MID)
        for index in range(1000):
            command = m.OpenPosition(
                work.next_seq(), work.ts, names[index], "BTCUSD", m.Side.BUY, 100, 5 + index % 5
            )
            if work.core.apply(command).reason is not None:
                raise RuntimeError("a benchmark position was rejected")
        # 1.5% down: past every 100x long's liquidation price, short of every other trigger.
        bid = BTC_MID - BTC_MID * 15 // 1000
        command = m.ApplyQuote(work.next_seq(), work.ts, "BTCUSD", bid, bid + 1000)
        started = time.perf_counter_ns()
        result = work.core.apply(command)
        samples.append(time.perf_counter_ns() - started)
        closes = sum(1 for event in result.events if isinstance(event, m.PositionClosed))
        if closes != 1000:
            raise RuntimeError(f"expected 1000 liquidations, got {closes}")
    median = statistics.median(samples)
    name = f"core.tick_1000_liquidations.{variant}"
    emit(name, "median", round(median / 1e6, 3), "ms")
    emit(name, "per_liquidation", round(median / 1000 / 1000, 2), "us")


def bench_memory(variant: str, positions: int) -> None:
    """Measure traced heap bytes per open position."""
    gc.collect()
    tracemalloc.start()
    work = Workload()
    names = work.accounts(max(1, positions // 100), 10**9 * USD)
    work.quote(BTC_MID)
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    work.fill(positions, names)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    emit(f"core.memory_per_position.{variant}", "heap", round((after - before) / positions),
         "bytes")  # fmt: skip


def run_variant(args: argparse.Namespace) -> None:
    """Run every benchmark in this process for the variant named in `args`."""
    import engine_svc.core.engine as engine_module

    compiled = engine_module.__file__ is not None and not engine_module.__file__.endswith(".py")
    if compiled != (args.variant == "mypyc"):
        raise SystemExit(
            f"variant {args.variant} but the core loaded from {engine_module.__file__}"
        )
    quick = args.quick
    bench_mixed(args.variant, 50_000 if quick else 300_000)
    sizes = [int(size) for size in args.sizes.split(",")]
    for size in sizes:
        bench_ticks(args.variant, size, 500 if quick else 3000, snapshot=size == max(sizes))
    bench_liquidations(args.variant, 10_000 if quick else 100_000, 3 if quick else 5)
    bench_memory(args.variant, 20_000 if quick else 100_000)


def run_both(args: argparse.Namespace) -> None:
    """Run each variant in a subprocess, forward their figures, add the speed-up figures."""
    from bench.mypyc_build import run_variants

    arguments = ["--sizes", args.sizes] + (["--quick"] if args.quick else [])
    throughputs = run_variants(Path(__file__).resolve(), arguments)
    base = throughputs.get("core.mixed_open_close.interpreted")
    fast = throughputs.get("core.mixed_open_close.mypyc")
    if base and fast:
        emit("core.mixed_open_close.mypyc_speedup", "ratio", round(fast / base, 2), "x")


def main() -> None:
    """Parse arguments and run the benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=("interpreted", "mypyc", "both"), default="both")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.variant == "both":
        run_both(args)
        return
    if args.variant == "mypyc":
        sys.path.insert(0, str(BUILD_DIR))
    run_variant(args)


if __name__ == "__main__":
    main()
