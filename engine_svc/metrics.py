"""The engine's Prometheus metrics.

The order path pays for two histogram observations per batch (its size and the journal's
append-and-fsync time) and a few dictionary increments per command in a committed-batch
consumer; everything else (sequence numbers, recorder lag, open positions, balances, price
ages) is read from the runtime when Prometheus scrapes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from engine_svc.core import MarginCallReached, OrderFilled, OrderRejected, PositionClosed
from engine_svc.core.units import MONEY_DECIMALS
from engine_svc.pipeline import CommittedBatch

if TYPE_CHECKING:
    from engine_svc.runtime import EngineRuntime

FSYNC_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256,
    0.512, 1.0, 2.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)

BATCH_SIZE = Histogram(
    "cfd_engine_batch_commands", "Commands per committed batch.", buckets=BATCH_BUCKETS
)
FSYNC_SECONDS = Histogram(
    "cfd_engine_journal_append_seconds",
    "Time to append one batch to the journal, its fsync included.",
    buckets=FSYNC_BUCKETS,
)
SNAPSHOT_SECONDS = Histogram(
    "cfd_engine_snapshot_seconds",
    "Time to take and write one snapshot.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)


def observe_batch(commands: int, seconds: float) -> None:
    """Record one journal append (a sequencer hook)."""
    BATCH_SIZE.observe(commands)
    FSYNC_SECONDS.observe(seconds)


class EngineFigures:
    """Counts of committed commands and of what they set off, kept as plain integers."""

    def __init__(self) -> None:
        # (command type, "OK" or the rejection reason) -> count
        self.commands: dict[tuple[str, str], int] = {}
        # close reason (USER, TAKE_PROFIT, STOP_LOSS, TRAILING_STOP, LIQUIDATION) -> count
        self.closes: dict[str, int] = {}
        # pending orders a price set off: FILLED, or the reason they were rejected -> count
        self.triggered: dict[str, int] = {}
        # cross accounts whose margin level fell to their margin call level
        self.margin_calls = 0

    def consume(self, batch: CommittedBatch) -> None:
        """Count a committed batch (a consumer of the engine's pipeline)."""
        commands = self.commands
        for command, result in batch.applied:
            key = (type(command).__name__, "OK" if result.reason is None else str(result.reason))
            commands[key] = commands.get(key, 0) + 1
        for _account, item in batch.events:
            event = item.event
            if isinstance(event, PositionClosed):
                reason = str(event.close.reason)
                self.closes[reason] = self.closes.get(reason, 0) + 1
            elif isinstance(event, OrderFilled):
                self.triggered["FILLED"] = self.triggered.get("FILLED", 0) + 1
            elif isinstance(event, OrderRejected):
                reason = str(event.reason)
                self.triggered[reason] = self.triggered.get(reason, 0) + 1
            elif isinstance(event, MarginCallReached):
                self.margin_calls += 1


class EngineCollector(Collector):
    """Read the engine's figures from the bound runtime at scrape time."""

    def __init__(self) -> None:
        self.runtime: EngineRuntime | None = None
        self.figures = EngineFigures()

    def bind(self, runtime: EngineRuntime) -> None:
        """Report `runtime` from now on and count the batches it commits after recovery."""
        self.runtime = runtime
        self.figures = EngineFigures()
        runtime.committed.consumers.append(("metrics", self.figures.consume))
        if runtime.sequencer is not None:
            runtime.sequencer.on_append = observe_batch

    def collect(self) -> Iterable[Metric]:
        """Yield the engine's metrics (nothing before a runtime is bound)."""
        runtime = self.runtime
        if runtime is None:
            return
        yield from _commands(self.figures, runtime)
        stats = runtime.core.stats()
        recorded = runtime.progress.recorded_seq
        journal_bytes, segments = runtime.journal_stats
        yield _gauge("cfd_engine_last_seq", "Sequence number of the last committed command.",
                     stats.last_seq)  # fmt: skip
        yield _gauge("cfd_engine_recorded_seq",
                     "How far the recorder process wrote the SQL history (read each second).",
                     recorded)  # fmt: skip
        yield _gauge(
            "cfd_engine_recorder_lag",
            "Committed commands the SQL history does not hold yet (sequence numbers).",
            max(0, stats.last_seq - recorded),
        )
        yield _gauge("cfd_engine_journal_bytes", "Bytes of journal on disk.", journal_bytes)
        yield _gauge("cfd_engine_journal_segments", "Journal segment files on disk.", segments)
        yield _gauge("cfd_engine_accounts", "Trading accounts.", stats.accounts)
        yield _gauge("cfd_engine_open_positions", "Open positions.", stats.open_positions)
        yield _gauge("cfd_engine_pending_orders", "Pending (limit and stop) orders.",
                     stats.pending_orders)  # fmt: skip
        scale = 10**MONEY_DECIMALS
        yield _gauge("cfd_engine_house_balance", "The house's balance, in account currency.",
                     stats.house_balance / scale)  # fmt: skip
        yield _gauge("cfd_engine_total_deposits", "All deposits, in account currency.",
                     stats.total_deposits / scale)  # fmt: skip
        yield _gauge(
            "cfd_engine_transfers_in_flight",
            "Cross-shard transfers this shard debited and has not settled, in account currency.",
            stats.transfers_in_flight / scale,
        )
        yield _gauge(
            "cfd_engine_failing_consumers",
            "Committed-batch consumers that failed (the engine stops).",
            len(runtime.failing_consumers()),
        )
        if runtime.leader:
            leader = GaugeMetricFamily(
                "cfd_engine_journal_leader",
                "1, labelled with the holder of the replicated journal's lease (host:pid:port).",
                labels=("holder",),
            )
            leader.add_metric([runtime.leader], 1)
            yield leader
        yield from _prices(runtime)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _commands(figures: EngineFigures, runtime: EngineRuntime) -> Iterable[Metric]:
    sequencer = runtime.sequencer
    batches = CounterMetricFamily("cfd_engine_batches", "Batches committed since start.")
    batches.add_metric([], sequencer.batches if sequencer is not None else 0)
    yield batches
    commands = CounterMetricFamily(
        "cfd_engine_commands",
        "Commands committed since start, by type and result (OK or the rejection reason).",
        labels=("command", "result"),
    )
    for (command, result), count in sorted(figures.commands.items()):
        commands.add_metric([command, result], count)
    yield commands
    yield _by_label(
        "cfd_engine_positions_closed",
        "Position closes by reason (LIQUIDATION, STOP_LOSS, TAKE_PROFIT, TRAILING_STOP, USER).",
        "reason",
        figures.closes,
    )
    yield _by_label(
        "cfd_engine_orders_triggered",
        "Pending orders a price set off, by outcome (FILLED or the rejection reason).",
        "outcome",
        figures.triggered,
    )
    calls = CounterMetricFamily(
        "cfd_engine_margin_calls",
        "Margin calls since start: a cross account's margin level fell to its call level.",
    )
    calls.add_metric([], figures.margin_calls)
    yield calls


def _by_label(name: str, documentation: str, label: str, counts: dict[str, int]) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=(label,))
    for value, count in sorted(counts.items()):
        family.add_metric([value], count)
    return family


def _prices(runtime: EngineRuntime) -> Iterable[Metric]:
    ages = runtime.freshness.ages()
    age = GaugeMetricFamily(
        "cfd_engine_price_age_seconds",
        "Seconds since the last quote of each symbol reached the engine.",
        labels=("symbol",),
    )
    fresh = GaugeMetricFamily(
        "cfd_engine_price_fresh",
        "1 when the symbol has a quote within CFD_PRICE_STALE_MS, else 0.",
        labels=("symbol",),
    )
    for symbol in sorted(runtime.core.instruments):
        seconds = ages.get(symbol)
        if seconds is not None:
            age.add_metric([symbol], seconds)
        fresh.add_metric([symbol], 1 if runtime.freshness.is_fresh(symbol) else 0)
    yield age
    yield fresh


COLLECTOR = EngineCollector()
REGISTRY.register(COLLECTOR)
