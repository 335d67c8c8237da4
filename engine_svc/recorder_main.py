"""`cfd recorder`: follow the engine's journal and write its history to SQL.

It serves no RPC; its health and figures are on its `/metrics` port (CFD_RECORDER_METRICS_PORT):
`cfd_recorder_serving` is 1 while it follows the journal and the database takes its rows.
SIGTERM stops following and writes what was read before the process exits.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterable

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from engine_svc.instrument_set import InstrumentChangeError
from engine_svc.main import configuration
from engine_svc.recorder_runtime import RecorderError, RecorderRuntime, run_recorder
from mesh.config import Settings
from mesh.db import SchemaVersionError
from mesh.server import ServeError


class RecorderCollector(Collector):
    """Read the recorder's figures at scrape time."""

    def __init__(self, runtime: RecorderRuntime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterable[Metric]:
        """Yield the recorder's metrics."""
        runtime = self.runtime
        recorded = runtime.recorded_seq
        yield GaugeMetricFamily(
            "cfd_recorder_serving",
            "1 while the recorder follows the journal and the database takes its rows, else 0.",
            value=1 if runtime.serving else 0,
        )
        yield GaugeMetricFamily(
            "cfd_recorder_recorded_seq", "How far the SQL history is written.", value=recorded
        )
        yield GaugeMetricFamily(
            "cfd_recorder_journal_seq",
            "The newest sequence number the recorder read from the journal.",
            value=runtime.journal_seq,
        )
        yield GaugeMetricFamily(
            "cfd_recorder_lag",
            "Commands read from the journal whose history is not written yet.",
            value=max(0, runtime.journal_seq - recorded),
        )
        failures = CounterMetricFamily(
            "cfd_recorder_write_failures", "Database writes that failed and were retried."
        )
        failures.add_metric([], runtime.recorder.failures if runtime.recorder is not None else 0)
        yield failures


async def main(settings: Settings) -> None:
    """Run the recorder with the configuration of the environment until SIGTERM/SIGINT."""
    config, instruments = configuration("recorder")
    runtime = RecorderRuntime(settings, config, instruments=instruments)
    collector = RecorderCollector(runtime)
    REGISTRY.register(collector)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await run_recorder(runtime, stop)
    except (RecorderError, SchemaVersionError, InstrumentChangeError) as exc:
        raise ServeError(f"recorder: {exc}") from exc
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        REGISTRY.unregister(collector)
