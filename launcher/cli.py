"""The `cfd` command: run one service, or the whole mesh with `cfd up`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
from prometheus_client import REGISTRY, CollectorRegistry

from cfd.v1 import engine_admin_pb2, engine_admin_pb2_grpc, market_pb2, market_pb2_grpc
from launcher.cluster import (
    ClusterLayout,
    cluster_env,
    jetstream_ready,
    nats_command,
    nats_server,
    standby_env,
)
from launcher.monitoring import scrape_targets, write_prometheus_config
from launcher.shards import (
    engine_name,
    shard_env,
    shard_recorder_env,
    shard_standby_env,
    shards_env,
    standby_name,
    standby_port,
)
from launcher.status import (
    SERVING,
    grpc_health,
    maker_health,
    recorder_health,
    run_status,
    scrape,
)
from mesh.auth import INTERNAL_TOKEN_HEADER
from mesh.config import ConfigError, Settings, shard_port
from mesh.logs import setup_logging
from mesh.metrics import (
    METRICS_PORTS,
    BuildInfo,
    metrics_port,
    multiprocess_registry,
    serve_metrics,
)
from mesh.server import ServeError
from mesh.tracing import setup_tracing

# Service command -> module whose `main(settings)` runs it.
SERVICES = {
    "engine": "engine_svc.main",
    "recorder": "engine_svc.recorder_main",
    "market": "market_svc.main",
    "accounts": "account_svc.main",
    "edge": "edge.main",
    "maker": "maker.main",
}
HELP = {
    "maker": "run the market maker: an API client quoting every spot book",
    "recorder": "follow the engine's journal and write its history to SQL",
}
# Start order of `cfd up`: prices first, the edge last; stopped in reverse.
UP_ORDER = ("market", "engine", "recorder", "accounts", "edge")
# Started by `cfd up` once the services serve (they are what it trades on); stopped first.
CLIENTS = ("maker",)
START_TIMEOUT_S = 60.0
PRICES_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `cfd` console script."""
    parser = argparse.ArgumentParser(prog="cfd", description="CFD Mesh: run the trading platform")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in SERVICES:
        sub = commands.add_parser(name, help=HELP.get(name, f"run the {name} service"))
        if name == "market":
            actions = sub.add_subparsers(dest="action")
            backfill = actions.add_parser("backfill", help="fill candle history")
            backfill.add_argument("--days", type=int, default=7, help="days of history (1-365)")
        elif name == "engine":
            actions = sub.add_subparsers(dest="action")
            recover = actions.add_parser(
                "recover", help="report a damaged journal and repair it (engine stopped)"
            )
            recover.add_argument(
                "--accept-loss",
                action="store_true",
                help="go on without the acknowledged commands the files lost",
            )
            sub.add_argument(
                "--standby",
                action="store_true",
                help="follow the replicated journal and take the lead when it is free",
            )
    commands.add_parser("envoy", help="run Envoy in front of the gRPC services")
    commands.add_parser(
        "status", help="print every service's health, sequence, journal leader, feed and version"
    )
    up = commands.add_parser("up", help="run every service as its own process")
    up.add_argument("--envoy", action="store_true", help="also run Envoy (REST and gRPC-Web)")
    up.add_argument(
        "--cluster",
        action="store_true",
        help="journal to a 3-node NATS cluster on loopback, with a standby engine",
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        sys.exit(f"cfd: configuration error: {exc}")
    if args.command == "up":
        sys.exit(run_up(settings, with_envoy=args.envoy, cluster=args.cluster))
    if args.command == "status":
        sys.exit(run_status(settings))
    if args.command == "envoy":
        envoy = importlib.import_module("envoy_front.runner")
        sys.exit(envoy.run_envoy(settings))
    if args.command == "market" and args.action == "backfill":
        sys.exit(run_backfill(settings, args.days))
    if args.command == "engine" and args.action == "recover":
        sys.exit(run_recover(settings, args.accept_loss))
    if args.command == "engine" and args.standby:
        os.environ["CFD_ENGINE_STANDBY"] = "on"
    sys.exit(run_service(args.command, settings))


def run_service(name: str, settings: Settings) -> int:
    """Run one service in this process, with its `/metrics` port, until it is told to stop."""
    setup_logging(name, settings.log_level)
    setup_tracing(name)
    if name == "engine":
        # Before the engine imports its core: the mypyc-compiled one runs when built.
        importlib.import_module("engine_svc.compiled").activate()
    try:
        port = metrics_port(name)
    except ConfigError as exc:
        print(f"cfd {name}: configuration error: {exc}", file=sys.stderr)
        return 1
    with contextlib.ExitStack() as stack:
        # The edge's workers write their figures to files its /metrics sums; set up before
        # the edge's modules create their metrics.
        registry = stack.enter_context(multiprocess_registry()) if name == "edge" else REGISTRY
        registry.register(BuildInfo(name))
        module = importlib.import_module(SERVICES[name])
        try:
            asyncio.run(_with_metrics(module.main(settings), settings.bind_host, port, registry))
        except ServeError as exc:
            print(f"cfd {name}: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0
    return 0


async def _with_metrics(
    service: Coroutine[Any, Any, None], host: str, port: int, registry: CollectorRegistry
) -> None:
    """Serve `registry` on host:port while `service` runs."""
    server = await serve_metrics(host, port, registry)
    try:
        await service
    finally:
        if server is not None:
            server.close()


def run_backfill(settings: Settings, days: int) -> int:
    """Fill the candle store with `days` of history; safe to repeat."""
    if not 1 <= days <= 365:
        print("cfd market backfill: --days must be between 1 and 365", file=sys.stderr)
        return 2
    setup_logging("market", settings.log_level)
    backfill = importlib.import_module("market_svc.backfill")
    written = asyncio.run(backfill.backfill(settings, days))
    print(f"backfill: {written} candles written")
    return 0


def run_recover(settings: Settings, accept_loss: bool) -> int:
    """Report what the engine's files can rebuild and repair them; return the exit code."""
    setup_logging("engine", settings.log_level)
    recovery = importlib.import_module("engine_svc.recovery")
    code: int = asyncio.run(recovery.main(settings, accept_loss))
    return code


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]


def run_up(settings: Settings, with_envoy: bool = False, cluster: bool = False) -> int:
    """Start every service as a child process, print the URLs, stop all on SIGTERM/SIGINT.
    With `cluster`, first a 3-node NATS cluster for the journal, and last a standby engine."""
    env = dict(os.environ)
    # Children must agree on the data dir and the internal token this process resolved.
    env["CFD_DATA_DIR"] = str(settings.data_dir)
    env["CFD_INTERNAL_TOKEN"] = settings.internal_token
    layout: ClusterLayout | None = None
    if cluster:
        try:
            layout = ClusterLayout.from_env(env)
            executable = nats_server()
        except ConfigError as exc:
            print(f"cfd up: {exc}", file=sys.stderr)
            return 2
        env = cluster_env(env, settings, layout)
    if settings.engine_shards > 1:
        env = shards_env(env, settings, layout)
    shards = range(1, settings.engine_shards)
    stopping = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    children: list[_Child] = []
    prometheus = write_prometheus_config(settings)
    try:
        if layout is not None:
            failed = _start_nats(settings, layout, executable, children, lambda: stopping)
            if failed is not None:
                return failed
        for name in (*UP_ORDER, "envoy") if with_envoy else UP_ORDER:
            command = [sys.executable, "-m", "launcher.cli", name]
            children.append(_Child(name, subprocess.Popen(command, env=env)))
            # Every further shard has its engine and its recorder.
            if name in ("engine", "recorder"):
                for shard in shards:
                    own = (shard_env if name == "engine" else shard_recorder_env)(
                        env, settings, shard
                    )
                    process = subprocess.Popen(command, env=own)
                    children.append(_Child(f"{name}-{shard}", process))
        failed = _wait_ready(settings, children, lambda: stopping)
        if failed is not None:
            return failed
        if layout is not None:
            # Only now: the first engines hold their leases, so these ones stand by.
            command = [sys.executable, "-m", "launcher.cli", "engine", "--standby"]
            standby = standby_env(env, settings, layout)
            for shard in (0, *shards):
                own = (
                    standby
                    if shard == 0
                    else shard_standby_env(standby, env, settings, layout, shard)
                )
                name = standby_name(shard)
                children.append(_Child(name, subprocess.Popen(command, env=own)))
                url = f"http://127.0.0.1:{own[METRICS_PORTS['engine'][0]]}/metrics"
                failed = _wait_until(
                    children, functools.partial(_http_ok, url), name, lambda: stopping
                )
                if failed is not None:
                    return failed
        # The clients of the mesh (the market maker) start once every service serves.
        for name in CLIENTS:
            command = [sys.executable, "-m", "launcher.cli", name]
            children.append(_Child(name, subprocess.Popen(command, env=env)))
        failed = _wait_ready(settings, children, lambda: stopping)
        if failed is not None:
            return failed
        if settings.feed != "manual":
            _wait_for_prices(settings, lambda: stopping)
        if not stopping:
            extra = []
            extra = [
                f"  engine shard {shard}    localhost:{shard_port(settings.engine_port, shard)}"
                for shard in shards
            ]
            if layout is not None:
                extra += [f"  journal (NATS)    {layout.journal_url}"]
                extra += [
                    f"  standby of shard {shard} localhost:{standby_port(layout, shard)}"
                    for shard in (0, *shards)
                ]
            _print_urls(settings, with_envoy, prometheus, extra)
        # Each engine and its standby: either may exit while the other follows the journal.
        partners = {}
        if layout is not None:
            for shard in (0, *shards):
                partners[engine_name(shard)] = standby_name(shard)
                partners[standby_name(shard)] = engine_name(shard)
        while not stopping:
            for child in children:
                code = child.process.poll()
                if code is None:
                    continue
                partner = partners.get(child.name)
                if partner is not None and _running(children, {partner}):
                    # The other engine follows the journal and takes (or keeps) the lead.
                    print(f"cfd up: {child.name} exited with code {code}", file=sys.stderr)
                    children.remove(child)
                    del partners[partner]
                    break
                print(
                    f"cfd up: {child.name} exited with code {code}; stopping the others",
                    file=sys.stderr,
                )
                return code or 1
            time.sleep(0.2)
        return 0
    finally:
        _stop_all(children)


def _running(children: list[_Child], names: set[str]) -> bool:
    return any(c.name in names and c.process.poll() is None for c in children)


def _start_nats(
    settings: Settings,
    layout: ClusterLayout,
    executable: str,
    children: list[_Child],
    stopping: Callable[[], bool],
) -> int | None:
    """Start the NATS nodes and wait until JetStream answers."""
    root = settings.data_dir / "nats"
    for index in range(len(layout.client_ports)):
        command = nats_command(executable, layout, index, root)
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        children.append(_Child(f"nats-{index}", process))
    return _wait_until(
        children, lambda: jetstream_ready(layout), "the NATS cluster", stopping
    )


def _wait_until(
    children: list[_Child], ready: Callable[[], bool], what: str, stopping: Callable[[], bool]
) -> int | None:
    """Wait for `ready` while every child runs; return an exit code when that fails."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not stopping() and not ready():
        for child in children:
            code = child.process.poll()
            if code is not None:
                print(f"cfd up: {child.name} exited with code {code}", file=sys.stderr)
                return code or 1
        if time.monotonic() > deadline:
            print(f"cfd up: {what} not ready after {START_TIMEOUT_S:.0f}s", file=sys.stderr)
            return 1
        time.sleep(0.2)
    return None


def _wait_ready(
    settings: Settings, children: list[_Child], stopping: Callable[[], bool]
) -> int | None:
    deadline = time.monotonic() + START_TIMEOUT_S
    pending = {
        child.name
        for child in children
        if child.name in (*UP_ORDER, "envoy", *CLIENTS)
        or child.name.startswith(("engine-", "recorder-"))
    }
    while pending:
        if stopping():
            return None
        for child in children:
            code = child.process.poll()
            if code is not None:
                print(
                    f"cfd up: {child.name} failed to start (exit code {code}); stopping the others",
                    file=sys.stderr,
                )
                return code or 1
        for name in sorted(pending):
            if _is_ready(settings, name):
                pending.discard(name)
        if time.monotonic() > deadline:
            print(
                f"cfd up: not ready after {START_TIMEOUT_S:.0f}s: {', '.join(sorted(pending))}",
                file=sys.stderr,
            )
            return 1
        time.sleep(0.2)
    return None


def _is_ready(settings: Settings, name: str) -> bool:
    if name == "edge":
        return _http_ok(f"http://127.0.0.1:{settings.edge_port}/healthz")
    if name == "envoy":
        return _http_ok(f"http://127.0.0.1:{settings.envoy_admin_port}/ready")
    if name == "maker":
        return maker_health(scrape(scrape_targets(settings)["cfd-maker"])) == SERVING
    if name.startswith("engine-"):
        shard = int(name.removeprefix("engine-"))
        return grpc_serving(f"127.0.0.1:{shard_port(settings.engine_port, shard)}")
    if name.partition("-")[0] == "recorder":
        return recorder_health(scrape(scrape_targets(settings)[f"cfd-{name}"])) == SERVING
    port = {
        "engine": settings.engine_port,
        "market": settings.market_port,
        "accounts": settings.account_port,
    }[name]
    return grpc_serving(f"127.0.0.1:{port}")


def _wait_for_prices(settings: Settings, stopping: Callable[[], bool]) -> None:
    """Wait until the engine has a fresh price of every instrument, so first orders succeed."""
    deadline = time.monotonic() + PRICES_TIMEOUT_S
    metadata = ((INTERNAL_TOKEN_HEADER, settings.internal_token),)
    with (
        grpc.insecure_channel(f"127.0.0.1:{settings.market_port}") as market,
        grpc.insecure_channel(f"127.0.0.1:{settings.engine_port}") as engine,
    ):
        instruments = market_pb2_grpc.MarketDataServiceStub(market)
        admin = engine_admin_pb2_grpc.EngineAdminServiceStub(engine)
        while not stopping() and time.monotonic() < deadline:
            try:
                listed = instruments.ListInstruments(market_pb2.ListInstrumentsRequest(), timeout=5)
                stats = admin.GetStats(
                    engine_admin_pb2.GetStatsRequest(), metadata=metadata, timeout=5
                )
            except grpc.RpcError:
                time.sleep(0.2)
                continue
            if {i.symbol for i in listed.instruments} <= set(stats.fresh_symbols):
                return
            time.sleep(0.2)
    if not stopping():
        print(
            f"cfd up: the engine has no prices after {PRICES_TIMEOUT_S:.0f}s; "
            "orders fail with PRICE_UNAVAILABLE until the market feed delivers",
            file=sys.stderr,
        )


def _http_ok(url: str) -> bool:
    try:
        response = httpx.get(url, timeout=1.0)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def grpc_serving(address: str, timeout: float = 1.0) -> bool:
    """Return whether the gRPC server at `address` reports SERVING."""
    return grpc_health(address, timeout) == SERVING


def _print_urls(
    settings: Settings, with_envoy: bool, prometheus: Path, extra: Sequence[str] = ()
) -> None:
    lines = [
        "CFD Mesh is up:",
        f"  web UI and REST   http://localhost:{settings.edge_port}/",
        f"  API docs          http://localhost:{settings.edge_port}/docs",
        f"  documentation     http://localhost:{settings.edge_port}/docs/site/",
        f"  WebSocket         ws://localhost:{settings.edge_port}/v1/ws",
        f"  engine (gRPC)     localhost:{settings.engine_port}",
        f"  market (gRPC)     localhost:{settings.market_port}",
        f"  accounts (gRPC)   localhost:{settings.account_port}",
        f"  data directory    {settings.data_dir}",
        f"  Prometheus config {prometheus}",
    ]
    if with_envoy:
        lines.insert(5, f"  Envoy (REST, gRPC-Web)  http://localhost:{settings.envoy_port}/")
    lines += [*extra, "Press Ctrl-C to stop."]
    print("\n".join(lines), flush=True)


def _stop_all(children: list[_Child]) -> None:
    # Clients first, while the services still answer: the maker cancels its quotes. The NATS
    # nodes go last: a stopping engine still snapshots and hands its lease back.
    nodes = [child for child in children if child.name.startswith("nats-")]
    _stop_group([child for child in children if child.name in CLIENTS])
    _stop_group([child for child in children if child not in nodes and child.name not in CLIENTS])
    _stop_group(nodes)


def _stop_group(children: list[_Child]) -> None:
    for child in reversed(children):
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for child in reversed(children):
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"cfd up: {child.name} did not stop in time; killing it", file=sys.stderr)
            child.process.kill()
            child.process.wait()


if __name__ == "__main__":
    main()
