"""A real Prometheus scraping a running mesh, and the shipped rules checked by promtool."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from integration.test_edge_support import LiveMesh, live_mesh, signup
from launcher.monitoring import MONITORING_DIR, RULES_FILE, prometheus_config, scrape_targets
from mesh.config import Settings
from support import free_port, wait_for

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None or PROMTOOL is None,
    reason="prometheus is not installed (scripts/install-system-deps.sh installs it)",
)


def promtool(*args: str, cwd: Path = MONITORING_DIR) -> str:
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@needs_prometheus
def test_the_shipped_rules_pass_promtool_and_their_unit_tests() -> None:
    assert "SUCCESS" in promtool("check", "rules", RULES_FILE)
    assert "SUCCESS" in promtool("test", "rules", "cfd-rules.test.yml")


@needs_prometheus
def test_the_written_configuration_passes_promtool(tmp_path: Path) -> None:
    settings = Settings.from_env({"CFD_DATA_DIR": str(tmp_path), "CFD_BIND_HOST": "0.0.0.0"})
    shutil.copyfile(MONITORING_DIR / RULES_FILE, tmp_path / RULES_FILE)
    config = tmp_path / "prometheus.yml"
    config.write_text(prometheus_config(settings, {"CFD_EDGE_METRICS_PORT": "7777"}))
    promtool("check", "config", str(config), cwd=tmp_path)
    assert '"127.0.0.1:7777"' in config.read_text()


def test_the_dashboard_queries_only_metrics_the_services_export() -> None:
    dashboard = json.loads((MONITORING_DIR / "grafana-dashboard.json").read_text())
    documented = (Path(__file__).parents[2] / "docs/operations/metrics.md").read_text()
    rules = (MONITORING_DIR / RULES_FILE).read_text()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for name in re.findall(r"\b(cfd[:_][a-z0-9_:]+|grpc_server_[a-z_]+)", target["expr"]):
                base = re.sub(r"_(bucket|count|sum)$", "", name)
                known = f"record: {name}" in rules or f"`{base}" in documented
                assert known, f"panel {panel['title']!r} queries {name}, which nothing exports"


class Prometheus:
    """A `prometheus` process with its own storage, on a free loopback port."""

    def __init__(self, config: Path, storage: Path) -> None:
        assert PROMETHEUS is not None
        self.url = f"http://127.0.0.1:{free_port()}"
        self._log = (storage.parent / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={storage}",
                f"--web.listen-address={self.url.removeprefix('http://')}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def query(self, expr: str) -> list[dict[str, object]]:
        """Return the instant vector of `expr` (empty until the data is there)."""
        try:
            response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5)
        except httpx.HTTPError:
            return []
        if response.status_code != 200:
            return []
        result: list[dict[str, object]] = response.json()["data"]["result"]
        return result

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        if not result:
            return None
        sample = result[0]["value"]
        assert isinstance(sample, list)
        return float(sample[1])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        finally:
            self._log.close()


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveMesh, Prometheus]]:
    base = tmp_path_factory.mktemp("prometheus")
    (base / "data").mkdir()
    # Prices are published once: a quiet manual feed must not turn stale (and disconnected)
    # before Prometheus scrapes it on a busy machine.
    with live_mesh(base / "data", with_maker=True, CFD_FEED_STALE_MS="3600000") as mesh:
        config = base / "prometheus.yml"
        config.write_text(
            prometheus_config(
                Settings.from_env(mesh.env),
                mesh.env,
                scrape_interval="1s",
                rules=str(MONITORING_DIR / RULES_FILE),
            )
        )
        prometheus = Prometheus(config, base / "tsdb")
        try:
            yield mesh, prometheus
        finally:
            prometheus.stop()


@needs_prometheus
def test_prometheus_sees_the_orders_fsync_latency_and_feed_state(
    watched: tuple[LiveMesh, Prometheus],
) -> None:
    mesh, prometheus = watched
    with httpx.Client(base_url=mesh.url, timeout=15) as http:
        token = signup(http, "watched@example.com")
        mesh.publish_and_wait("ETHUSD", "3000.00", "3001.00", token)
        for n in range(3):
            order = {"symbol": "ETHUSD", "side": "SIDE_SELL", "leverage": 5, "quantity": "0.1",
                     "clientOrderId": f"watched-{n}"}  # fmt: skip
            response = http.post(
                "/v1/positions", json=order, headers={"authorization": f"Bearer {token}"}
            )
            assert response.status_code == 200, response.text
    orders = 'sum(cfd_engine_commands_total{command="OpenPosition",result="OK"})'
    wait_for(lambda: prometheus.value(orders) == 3, timeout=60, interval=0.5)
    assert (prometheus.value("sum(cfd_engine_journal_append_seconds_count)") or 0) >= 3
    # The market is scraped on its own schedule: its sample may land after the engine's.
    wait_for(
        lambda: prometheus.value('cfd_market_feed_connected{job="cfd-market"}') == 1,
        timeout=30,
        interval=0.5,
    )
    assert prometheus.value('cfd_market_feed_stale{job="cfd-market"}') == 0
    # Every service of the mesh is scraped and up (each on its own schedule).
    jobs = set(scrape_targets(Settings.from_env(mesh.env), mesh.env))
    assert len(jobs) == 6

    def up_jobs() -> set[str]:
        found = prometheus.query('up{job=~"cfd-.*"} == 1')
        return {str(m["job"]) for r in found if isinstance(m := r["metric"], dict)}

    wait_for(lambda: up_jobs() == jobs, timeout=30, interval=0.5)
    rules = httpx.get(f"{prometheus.url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    assert {group["name"] for group in rules} == {"cfd-recording", "cfd-alerts"}
    assert all(rule["health"] != "err" for group in rules for rule in group["rules"])
