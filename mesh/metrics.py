"""Prometheus metrics: each process's `/metrics` port and the gRPC server's figures.

Every service process serves its registry on its own port (`CFD_<SERVICE>_METRICS_PORT`).
Figures of the order path are plain counters; what can be read from a service's state is read
when Prometheus scrapes (collectors), so nothing is paid between scrapes.

A process that runs several workers (the edge) sets PROMETHEUS_MULTIPROC_DIR before its
workers start: each worker then writes its figures to files there and the parent's `/metrics`
sums them (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import grpc
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mesh.config import env_int

log = logging.getLogger("mesh.metrics")

# Service command -> (variable, default port); the defaults sit apart from the service ports.
METRICS_PORTS: dict[str, tuple[str, int]] = {
    "engine": ("CFD_ENGINE_METRICS_PORT", 9181),
    "market": ("CFD_MARKET_METRICS_PORT", 9182),
    "accounts": ("CFD_ACCOUNT_METRICS_PORT", 9183),
    "edge": ("CFD_EDGE_METRICS_PORT", 9184),
    "maker": ("CFD_MAKER_METRICS_PORT", 9185),
    "recorder": ("CFD_RECORDER_METRICS_PORT", 9186),
}
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
METRICS_PATH = b"/metrics"
REQUEST_TIMEOUT_S = 5.0
# Latency buckets from 100 µs to 10 s: engine calls take well under a millisecond.
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
)  # fmt: skip

_RPC_LABELS = ("grpc_type", "grpc_service", "grpc_method")
GRPC_STARTED = Counter("grpc_server_started", "RPCs started on the server.", _RPC_LABELS)
GRPC_HANDLED = Counter(
    "grpc_server_handled",
    "RPCs completed on the server, by status code.",
    (*_RPC_LABELS, "grpc_code"),
)
GRPC_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time from the start of an RPC to its status (a stream: its whole life).",
    _RPC_LABELS,
    buckets=LATENCY_BUCKETS,
)


class BuildInfo(Collector):
    """`cfd_build_info{service, version}` 1: which release each process runs."""

    def __init__(self, service: str) -> None:
        try:
            version = importlib.metadata.version("cfd-mesh")
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        self._labels = [service, version]

    def collect(self) -> Iterable[Metric]:
        """Yield the build's one sample."""
        family = GaugeMetricFamily(
            "cfd_build_info", "The release this process runs.", labels=("service", "version")
        )
        family.add_metric(self._labels, 1)
        yield family


def metrics_port(service: str, env: Mapping[str, str] | None = None) -> int:
    """Return the `/metrics` port of `service` (a `cfd` command name)."""
    var, default = METRICS_PORTS[service]
    return env_int(os.environ if env is None else env, var, default, 1, 65535)


class RpcFigures:
    """The metrics of one method, its label children looked up once per status code."""

    __slots__ = ("_handled", "_labels", "_seconds", "_started")

    def __init__(self, kind: str, method: str) -> None:
        service, _, name = method.lstrip("/").rpartition("/")
        self._labels = (kind, service, name)
        self._seconds = GRPC_SECONDS.labels(*self._labels)
        self._started = GRPC_STARTED.labels(*self._labels)
        self._handled: dict[str, Counter] = {}

    def started(self) -> None:
        """Count one call that began."""
        self._started.inc()

    def done(self, code: str, seconds: float) -> None:
        """Count one call that ended with `code` after `seconds`."""
        handled = self._handled.get(code)
        if handled is None:
            handled = self._handled[code] = GRPC_HANDLED.labels(*self._labels, code)
        handled.inc()
        self._seconds.observe(seconds)


_FIGURES: dict[tuple[str, str], RpcFigures] = {}


def rpc_figures(kind: str, method: str) -> RpcFigures:
    """Return the figures of `method` (registered methods only: the label set stays bounded)."""
    figures = _FIGURES.get((kind, method))
    if figures is None:
        figures = _FIGURES[(kind, method)] = RpcFigures(kind, method)
    return figures


def status_name(context: grpc.aio.ServicerContext[object, object]) -> str:
    """Return the name of the status a call ended with (OK when the handler set none)."""
    code = context.code()
    if code is None:
        return "OK"
    return code.name if isinstance(code, grpc.StatusCode) else str(code)


async def serve_metrics(
    host: str, port: int, registry: CollectorRegistry = REGISTRY
) -> asyncio.Server | None:
    """Serve `registry` at http://host:port/metrics; log and return None if the port is taken.

    Served on the process's own event loop, so collectors read the service's state between
    its steps, never in the middle of one. A taken port is logged, not fatal: trading must not
    stop because the metrics cannot be published.
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT_S)
            parts = head.split(b"\r\n", 1)[0].split()
            path = parts[1].split(b"?", 1)[0] if len(parts) >= 2 else b""
            status, content_type, body = "404 Not Found", "text/plain", b"try /metrics\n"
            if parts[:1] == [b"GET"] and path == METRICS_PATH:
                status, content_type = "200 OK", CONTENT_TYPE_LATEST
                body = generate_latest(registry)
            writer.write(
                f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            pass
        finally:
            writer.close()

    try:
        server = await asyncio.start_server(handle, host, port)
    except OSError as exc:
        log.error("cannot serve metrics on %s:%d: %s", host, port, exc.strerror or exc)
        return None
    log.info("metrics on http://%s:%d/metrics", host, port, extra={"fields": {"port": port}})
    return server


@contextlib.contextmanager
def multiprocess_registry() -> Iterator[CollectorRegistry]:
    """Switch this process (and the workers it starts) to multiprocess mode; yield the registry
    summing every worker's files, and delete them afterwards.

    Metric values created from here on are written to files in a fresh directory named by
    PROMETHEUS_MULTIPROC_DIR, which worker processes inherit.
    """
    directory = Path(tempfile.mkdtemp(prefix="cfd-metrics-"))
    previous = os.environ.get(MULTIPROC_DIR)
    os.environ[MULTIPROC_DIR] = str(directory)
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    try:
        yield registry
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_DIR, None)
        else:
            os.environ[MULTIPROC_DIR] = previous
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        shutil.rmtree(directory, ignore_errors=True)


def worker_exited(pid: int) -> None:
    """Drop the live gauges of a worker process that exited (multiprocess mode)."""
    if os.environ.get(MULTIPROC_DIR):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
