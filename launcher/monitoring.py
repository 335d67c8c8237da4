"""The Prometheus configuration of a mesh: scrape targets of every service and the rules.

`cfd up` writes it into `<CFD_DATA_DIR>/prometheus/`; run
`prometheus --config.file=<CFD_DATA_DIR>/prometheus/prometheus.yml` to watch the mesh.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from mesh.config import Settings, shard_port
from mesh.metrics import METRICS_PORTS, metrics_port

# The shipped rules and Grafana dashboard.
MONITORING_DIR = Path(__file__).resolve().parent.parent / "monitoring"
RULES_FILE = "cfd-rules.yml"
CONFIG_FILE = "prometheus.yml"
# Addresses that mean "every interface": scrape them on loopback.
_ANY = ("0.0.0.0", "::", "[::]")


def scrape_targets(settings: Settings, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return job name -> host:port of every service's `/metrics`."""
    env = os.environ if env is None else env
    host = "127.0.0.1" if settings.bind_host in _ANY else settings.bind_host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    targets = {f"cfd-{name}": f"{host}:{metrics_port(name, env)}" for name in METRICS_PORTS}
    # Engine shards 1.. and their recorders serve their metrics at their shard's ports, as
    # `cfd up` runs them.
    for shard in range(1, settings.engine_shards):
        for name in ("engine", "recorder"):
            port = shard_port(metrics_port(name, env), shard)
            targets[f"cfd-{name}-{shard}"] = f"{host}:{port}"
    return targets


def prometheus_config(
    settings: Settings,
    env: Mapping[str, str] | None = None,
    *,
    scrape_interval: str = "5s",
    rules: str = RULES_FILE,
) -> str:
    """Return a Prometheus configuration scraping the mesh and loading its rules."""
    lines = [
        "# Written by `cfd up`: the metrics of every CFD Mesh service.",
        "global:",
        f"  scrape_interval: {scrape_interval}",
        f"  evaluation_interval: {scrape_interval}",
        "rule_files:",
        f"  - {rules}",
        "scrape_configs:",
    ]
    for job, target in scrape_targets(settings, env).items():
        lines += [
            f"  - job_name: {job}",
            "    static_configs:",
            f'      - targets: ["{target}"]',
        ]
    return "\n".join(lines) + "\n"


def write_prometheus_config(settings: Settings, env: Mapping[str, str] | None = None) -> Path:
    """Write the configuration and the rules into `<data dir>/prometheus/`; return the config."""
    directory = settings.data_dir / "prometheus"
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(MONITORING_DIR / RULES_FILE, directory / RULES_FILE)
    path = directory / CONFIG_FILE
    path.write_text(prometheus_config(settings, env))
    return path
