"""A NATS cluster with JetStream on loopback, started and stopped by the tests themselves."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import httpx

from launcher.cluster import nats_server
from support import free_port, wait_for


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class NatsNode:
    """One nats-server process of the cluster, with its own ports and store directory."""

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.port = free_port()
        self.cluster_port = free_port()
        self.monitor_port = free_port()
        self.store = root / name
        self.log_path = root / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Return the client URL of this node."""
        return f"nats://127.0.0.1:{self.port}"

    def start(self, routes: list[str]) -> None:
        """Start the server (again, after a stop) with the same ports and store."""
        args = [
            nats_server(),
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-n",
            self.name,
            "-js",
            "-sd",
            str(self.store),
            "--cluster_name",
            "cfd",
            "-cluster",
            f"nats://127.0.0.1:{self.cluster_port}",
            "-routes",
            ",".join(routes),
            "-m",
            str(self.monitor_port),
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: _accepts(self.port), timeout=10.0)

    def healthy(self) -> bool:
        """Return whether the server says JetStream is healthy on it: in contact with the meta
        leader and current on every stream it replicates."""
        try:
            response = httpx.get(f"http://127.0.0.1:{self.monitor_port}/healthz", timeout=1.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server (SIGKILL for a crash) and wait for it to exit."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=10.0)
        self.process = None


class NatsCluster:
    """Three JetStream servers routed to one another on loopback."""

    def __init__(self, root: Path, size: int = 3) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.nodes = [NatsNode(f"n{index}", root) for index in range(size)]

    @property
    def url(self) -> str:
        """Return the client URL listing every node."""
        return ",".join(node.url for node in self.nodes)

    def routes(self, node: NatsNode) -> list[str]:
        """Return the cluster routes of every node but `node`."""
        others = [other for other in self.nodes if other is not node]
        return [f"nats://127.0.0.1:{other.cluster_port}" for other in others]

    def start(self) -> None:
        """Start every node, then wait until JetStream has a meta leader."""
        for node in self.nodes:
            node.start(self.routes(node))
        wait_for(self.ready, timeout=20.0, interval=0.2)

    def restart(self, node: NatsNode) -> None:
        """Start a stopped node again with its old store."""
        node.start(self.routes(node))

    def ready(self) -> bool:
        """Return whether JetStream accepts API calls on every running node (the cluster
        elected its meta leader and each node caught up)."""
        running = [node for node in self.nodes if node.process is not None]
        return bool(running) and all(node.healthy() for node in running)

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop()
