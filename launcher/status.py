"""`cfd status`: every service's health, sequence, recorder lag, journal leader, feed state and
version, and the money of every CFD engine shard summed against the deposits.

Health comes from each gRPC service's health check, the edge's `/readyz`, the market maker's
`cfd_maker_connected` and the history recorder's `cfd_recorder_serving`; the figures from each
process's `/metrics` port. The exit code is 1 when any service is not SERVING.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from cfd.v1 import engine_admin_pb2, engine_admin_pb2_grpc
from launcher.monitoring import scrape_targets
from mesh.auth import INTERNAL_TOKEN_HEADER
from mesh.config import Settings

SERVING = "SERVING"
UNREACHABLE = "UNREACHABLE"
TIMEOUT_S = 2.0
COLUMNS = ("SERVICE", "HEALTH", "VERSION", "SEQ", "RECORDER LAG", "LEADER", "FEED")


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """One row of `cfd status`."""

    service: str
    health: str
    version: str = "-"
    seq: str = "-"
    recorder_lag: str = "-"
    # The engine leading the replicated journal (its lease's holder, host:pid:port).
    leader: str = "-"
    feed: str = "-"

    def cells(self) -> tuple[str, ...]:
        """Return the row's cells in COLUMNS order."""
        return (
            self.service,
            self.health,
            self.version,
            self.seq,
            self.recorder_lag,
            self.leader,
            self.feed,
        )


Samples = dict[str, list[tuple[dict[str, str], float]]]


def grpc_health(address: str, timeout: float = TIMEOUT_S) -> str:
    """Return the health status name of the gRPC server at `address`, or UNREACHABLE."""
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=timeout
            )
        except grpc.RpcError:
            return UNREACHABLE
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def edge_health(port: int) -> str:
    """Return SERVING when the edge is ready, NOT_SERVING when it says not, else UNREACHABLE."""
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=TIMEOUT_S)
    except httpx.HTTPError:
        return UNREACHABLE
    return SERVING if response.status_code == 200 else "NOT_SERVING"


def maker_health(samples: Samples) -> str:
    """Return SERVING while the maker reaches the exchange, NOT_SERVING while it reconnects,
    UNREACHABLE when its `/metrics` does not answer (it has no health service: it serves
    nothing)."""
    found = samples.get("cfd_maker_connected")
    if not found:
        return UNREACHABLE
    return SERVING if found[0][1] == 1 else "NOT_SERVING"


def recorder_health(samples: Samples) -> str:
    """Return SERVING while the recorder follows the journal and writes, NOT_SERVING while it
    waits (for the engine, or a database that refuses), UNREACHABLE without its `/metrics`."""
    found = samples.get("cfd_recorder_serving")
    if not found:
        return UNREACHABLE
    return SERVING if found[0][1] == 1 else "NOT_SERVING"


def scrape(target: str) -> Samples:
    """Return the samples of the `/metrics` page at host:port (none if it does not answer)."""
    try:
        response = httpx.get(f"http://{target}/metrics", timeout=TIMEOUT_S)
    except httpx.HTTPError:
        return {}
    if response.status_code != 200:
        return {}
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


def _first(samples: Samples, name: str) -> str:
    found = samples.get(name)
    return str(int(found[0][1])) if found else "-"


def _label(samples: Samples, name: str, label: str) -> str:
    found = samples.get(name)
    return found[0][0].get(label, "-") if found else "-"


def _feed(samples: Samples) -> str:
    for labels, value in samples.get("cfd_market_feed_state", []):
        if value == 1:
            return f"{labels.get('state', '?')} ({labels.get('source', '?')})"
    return "-"


def collect(settings: Settings, env: Mapping[str, str] | None = None) -> list[ServiceStatus]:
    """Ask every service of the mesh how it is."""
    env = os.environ if env is None else env
    targets = scrape_targets(settings, env)
    health = {
        "engine": grpc_health(settings.engine_addr),
        **{
            f"engine-{shard}": grpc_health(settings.engine_addr_of(shard))
            for shard in range(1, settings.engine_shards)
        },
        "market": grpc_health(settings.market_addr),
        "accounts": grpc_health(settings.account_addr),
        "edge": edge_health(settings.edge_port),
    }
    by_metrics = {"recorder": recorder_health, "maker": maker_health}
    further = range(1, settings.engine_shards)
    rows = []
    for service in (
        "engine",
        *(f"engine-{shard}" for shard in further),
        "recorder",
        *(f"recorder-{shard}" for shard in further),
        "market",
        "accounts",
        "edge",
        "maker",
    ):
        kind = service.partition("-")[0]
        samples = scrape(targets[f"cfd-{service}"])
        state = health[service] if service in health else by_metrics[kind](samples)
        lag = "cfd_recorder_lag" if kind == "recorder" else "cfd_engine_recorder_lag"
        rows.append(
            ServiceStatus(
                service,
                state,
                version=_label(samples, "cfd_build_info", "version"),
                seq=_first(
                    samples,
                    "cfd_recorder_recorded_seq" if kind == "recorder" else "cfd_engine_last_seq",
                ),
                recorder_lag=_first(samples, lag),
                leader=_label(samples, "cfd_engine_journal_leader", "holder"),
                feed=_feed(samples),
            )
        )
    return rows


@dataclass(frozen=True, slots=True)
class Money:
    """The USD of every CFD engine shard, summed: what conservation compares."""

    deposits: Decimal
    accounts: Decimal
    house: Decimal
    spot: Decimal
    # Debited by one shard for a cross-shard transfer, not yet credited by the other.
    in_flight: Decimal

    @property
    def conserved(self) -> bool:
        """Return whether every deposited dollar is held somewhere or in flight."""
        return self.accounts + self.house + self.spot + self.in_flight == self.deposits

    def line(self) -> str:
        """Return the sum as one line of `cfd status`."""
        verdict = "conserved" if self.conserved else "NOT CONSERVED"
        return (
            f"money: deposits {self.deposits} = accounts {self.accounts} + house {self.house}"
            f" + spot {self.spot} + in flight {self.in_flight}: {verdict}"
        )


def money(settings: Settings, attempts: int = 3) -> Money | None:
    """Sum every shard's figures (None when a shard does not answer). Shards are read one
    after the other, so a transfer moving meanwhile can make one reading differ: read again."""
    found: Money | None = None
    for _ in range(attempts):
        stats = [
            _stats(settings.engine_addr_of(n), settings) for n in range(settings.engine_shards)
        ]
        if any(s is None for s in stats):
            return None
        figures = [s for s in stats if s is not None]

        def total(name: str, figures: list[engine_admin_pb2.GetStatsResponse] = figures) -> Decimal:
            return sum((Decimal(getattr(f, name) or "0") for f in figures), Decimal(0))

        found = Money(
            deposits=total("total_deposits"),
            accounts=total("account_funds"),
            house=total("house_balance"),
            spot=total("spot_wallets") + total("spot_fees"),
            in_flight=total("transfers_sent") - total("transfers_received"),
        )
        if found.conserved:
            return found
    return found


def _stats(address: str, settings: Settings) -> engine_admin_pb2.GetStatsResponse | None:
    metadata = ((INTERNAL_TOKEN_HEADER, settings.internal_token),)
    with grpc.insecure_channel(address) as channel:
        try:
            reply: engine_admin_pb2.GetStatsResponse = engine_admin_pb2_grpc.EngineAdminServiceStub(
                channel
            ).GetStats(engine_admin_pb2.GetStatsRequest(), metadata=metadata, timeout=TIMEOUT_S)
        except grpc.RpcError:
            return None
    return reply


def render(rows: list[ServiceStatus]) -> str:
    """Return the rows as an aligned table with a header."""
    table = [COLUMNS, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in table
    )


def run_status(settings: Settings) -> int:
    """Print the mesh's status; return 1 when any service is not SERVING."""
    rows = collect(settings)
    print(render(rows))
    summed = money(settings)
    print("money: unavailable (an engine does not answer)" if summed is None else summed.line())
    unhealthy = [row.service for row in rows if row.health != SERVING]
    if unhealthy:
        print(f"cfd status: not serving: {', '.join(unhealthy)}")
        return 1
    if summed is not None and not summed.conserved:
        print("cfd status: the shards' money does not add up to the deposits")
        return 1
    return 0
