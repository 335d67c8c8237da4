"""Benchmark of the spot matching core, interpreted and compiled with mypyc.

Usage::

    python bench/spot_bench.py                  # both variants, (re)builds build/mypyc if stale
    python bench/spot_bench.py --variant interpreted --depths 1000,100000
    python bench/spot_bench.py --quick           # fewer commands

The workload is a realistic mix on one market whose book holds about `depth` resting orders
spread over 4,000 price levels around a fixed centre: 12% takers (IOC limits and market
orders, half each) that cross one to a few resting orders, and otherwise a passive limit
order that rests while the book is below its depth, else a cancel of a random open order
(about 55% and 33%; the cancel share is reported). The commands are planned on one exchange
and timed on a fresh one built the same way (its state then
frozen out of the cycle collector's way, as the engine does after recovery), so only
`SpotExchange.apply` is measured, in the process's CPU time (machines shared with other work
skew wall-clock figures). `spot.calibration` times a bare interpreted loop on the same
machine, to compare figures across machines. Every figure is one JSON line
``{"bench": "spot.<name>.<variant>", "metric": ..., "value": ..., "unit": ...}``.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = ROOT / "build" / "mypyc"
USD = 1_000_000
CENTRE = 6_000_000
HALF_RANGE = 2000
ACCOUNTS = 100
TAKER_SHARE = 0.12


def emit(bench: str, metric: str, value: object, unit: str) -> None:
    """Print one figure as a JSON line."""
    print(json.dumps({"bench": bench, "metric": metric, "value": value, "unit": unit}), flush=True)


class Workload:
    """Build an exchange with a deep book and plan a command mix against it."""

    def __init__(self, depth: int, seed: int) -> None:
        from engine_svc.core import Side, spot

        self.spot = spot
        self.buy = Side.BUY
        self.sell = Side.SELL
        self.depth = depth
        self.rng = random.Random(seed)
        self.seq = 0
        self.ts = 1_700_000_000_000_000_000
        self.names = [f"acct-{index}" for index in range(ACCOUNTS)]

    def next_seq(self) -> int:
        """Return the next sequence number."""
        self.seq += 1
        return self.seq

    def funding(self) -> list[Any]:
        """Return commands giving every account plenty of USD and BTC."""
        credit = self.spot.CreditWallet
        commands: list[Any] = []
        for name in self.names:
            commands.append(credit(self.next_seq(), self.ts, name, "USD", 10**12 * USD))
            commands.append(credit(self.next_seq(), self.ts, name, "BTC", 10**13))
        return commands

    def passive(self) -> Any:
        """Return a limit order that rests on its own side of the centre."""
        rng = self.rng
        is_buy = rng.random() < 0.5
        offset = 1 + int(rng.random() * HALF_RANGE)
        price = CENTRE - offset if is_buy else CENTRE + offset
        return self.spot.PlaceSpotOrder(
            self.next_seq(), self.ts, self.names[rng.randrange(ACCOUNTS)], "BTC_USD",
            self.buy if is_buy else self.sell, self.spot.SpotOrderType.LIMIT, price,
            1 + rng.randrange(20),
        )  # fmt: skip

    def taker(self) -> Any:
        """Return an IOC limit or a market order crossing a few resting orders."""
        rng = self.rng
        is_buy = rng.random() < 0.5
        side = self.buy if is_buy else self.sell
        name = self.names[rng.randrange(ACCOUNTS)]
        quantity = 5 + rng.randrange(30)
        if rng.random() < 0.5:
            price = CENTRE + HALF_RANGE if is_buy else CENTRE - HALF_RANGE
            return self.spot.PlaceSpotOrder(
                self.next_seq(), self.ts, name, "BTC_USD", side, self.spot.SpotOrderType.LIMIT,
                price, quantity, None, self.spot.TimeInForce.IOC,
            )  # fmt: skip
        return self.spot.PlaceSpotOrder(
            self.next_seq(), self.ts, name, "BTC_USD", side, self.spot.SpotOrderType.MARKET,
            None, quantity,
        )  # fmt: skip

    def plan(self, commands: int) -> tuple[list[Any], list[Any]]:
        """Return (setup, mix): commands that fill the book, then the timed mix."""
        exchange = self.spot.SpotExchange()
        setup = self.funding()
        for command in setup:
            exchange.apply(command)
        open_keys: list[int] = []
        while len(exchange.orders) < self.depth:
            command = self.passive()
            setup.append(command)
            exchange.apply(command)
            open_keys.append(command.seq)
        mix: list[Any] = []
        rng = self.rng
        orders = exchange.orders
        for _ in range(commands):
            if rng.random() < TAKER_SHARE:
                command = self.taker()
            elif len(orders) < self.depth:
                command = self.passive()
                open_keys.append(command.seq)
            else:
                # Pick a random open order; drop picks that have since traded away.
                while True:
                    index = rng.randrange(len(open_keys))
                    key = open_keys[index]
                    open_keys[index] = open_keys[-1]
                    open_keys.pop()
                    if key in orders:
                        break
                order = orders[key]
                command = self.spot.CancelSpotOrder(
                    self.next_seq(), self.ts, order.account_id, f"s-{key}"
                )
            mix.append(command)
            exchange.apply(command)
        return setup, mix


def bench_mix(variant: str, depth: int, commands: int) -> None:
    """Measure the mix's throughput against a book `depth` orders deep."""
    work = Workload(depth, seed=depth)
    setup, mix = work.plan(commands)
    exchange = work.spot.SpotExchange()
    for command in setup:
        exchange.apply(command)
    # As the engine does after recovery: move the long-lived book out of the collector's way.
    gc.collect()
    gc.freeze()
    trades_before = exchange.trades
    apply = exchange.apply
    rejected = 0
    started = time.process_time_ns()
    for command in mix:
        if apply(command).reason is not None:
            rejected += 1
    elapsed = time.process_time_ns() - started
    gc.unfreeze()
    if rejected:
        raise RuntimeError(f"{rejected} benchmark commands were rejected")
    name = f"spot.mix_depth_{depth}.{variant}"
    emit(name, "throughput", round(len(mix) / elapsed * 1e9), "ops/s")
    cancels = sum(1 for command in mix if isinstance(command, work.spot.CancelSpotOrder))
    emit(name, "cancel_share", round(cancels / len(mix), 3), "ratio")
    emit(name, "trades", exchange.trades - trades_before, "trades")
    emit(name, "open_orders", len(exchange.orders), "orders")
    emit(name, "levels", len(exchange.books["BTC_USD"].bids.levels)
         + len(exchange.books["BTC_USD"].asks.levels), "levels")  # fmt: skip


def calibrate() -> None:
    """Emit the CPU time of one iteration of a bare interpreted loop."""
    total = 0
    started = time.process_time_ns()
    for index in range(5_000_000):
        total += index
    elapsed = time.process_time_ns() - started
    emit("spot.calibration", "loop_iteration", round(elapsed / 5_000_000, 1), "ns")


def run_variant(args: argparse.Namespace) -> None:
    """Run every benchmark in this process for the variant named in `args`."""
    import engine_svc.core.spot.exchange as exchange_module

    module_file = exchange_module.__file__ or ""
    compiled = not module_file.endswith(".py")
    if compiled != (args.variant == "mypyc"):
        raise SystemExit(f"variant {args.variant} but the spot core loaded from {module_file}")
    commands = 50_000 if args.quick else 300_000
    for depth in (int(depth) for depth in args.depths.split(",")):
        bench_mix(args.variant, depth, commands)


def run_both(args: argparse.Namespace) -> None:
    """Run each variant in a subprocess, forward their figures, add the speed-up figures."""
    from bench.mypyc_build import run_variants

    calibrate()
    arguments = ["--depths", args.depths] + (["--quick"] if args.quick else [])
    throughputs = run_variants(Path(__file__).resolve(), arguments)
    for depth in args.depths.split(","):
        base = throughputs.get(f"spot.mix_depth_{depth}.interpreted")
        fast = throughputs.get(f"spot.mix_depth_{depth}.mypyc")
        if base and fast:
            emit(f"spot.mix_depth_{depth}.mypyc_speedup", "ratio", round(fast / base, 2), "x")


def main() -> None:
    """Parse arguments and run the benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=("interpreted", "mypyc", "both"), default="both")
    parser.add_argument("--depths", default="1000,10000,100000")
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
