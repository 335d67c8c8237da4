"""The Kubernetes manifests of deploy/k8s: valid against the API schemas, offline, and wired
together (selectors, probes' ports, the ConfigMaps and Secret they name)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from support import REPO

MANIFESTS = sorted((REPO / "deploy" / "k8s").glob("*.yaml"))
# The Kubernetes release the manifests are written for (gRPC probes are GA since 1.27).
KUBERNETES_VERSION = "1.30.0"
WORKLOADS = ("Deployment", "StatefulSet")
Resource = dict[str, Any]


def _resources(path: Path) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _all() -> list[Resource]:
    return [resource for path in MANIFESTS for resource in _resources(path)]


def _workloads(kind: str | None = None) -> Iterator[Resource]:
    for resource in _all():
        if resource["kind"] in WORKLOADS and kind in (None, resource["kind"]):
            yield resource


def _containers(workload: Resource) -> list[Resource]:
    containers: list[Resource] = workload["spec"]["template"]["spec"]["containers"]
    return containers


def test_there_are_manifests_for_every_part_of_the_platform() -> None:
    names = {(r["kind"], r["metadata"]["name"]) for r in _all()}
    assert {("StatefulSet", "cfd-nats"), ("StatefulSet", "cfd-engine")} <= names
    assert ("StatefulSet", "cfd-recorder") in names
    assert {("Deployment", f"cfd-{name}") for name in ("market", "accounts", "edge")} <= names
    assert {("Service", f"cfd-{name}") for name in ("nats", "engine", "market", "accounts",
                                                    "edge")} <= names  # fmt: skip
    assert ("ConfigMap", "cfd-config") in names


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_each_manifest_is_valid_against_the_kubernetes_schemas(path: Path) -> None:
    for resource in _resources(path):
        try:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            name = f"{resource.get('kind')}/{resource.get('metadata', {}).get('name')}"
            pytest.fail(f"{path.name}: {name}: {exc.message} at {list(exc.path)}")


def test_the_validator_refuses_a_misspelt_field() -> None:
    service = _resources(REPO / "deploy" / "k8s" / "engine.yaml")[0]
    service["spec"]["selektor"] = service["spec"].pop("selector")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, KUBERNETES_VERSION, strict=True)


def test_every_service_selects_the_pods_of_a_workload() -> None:
    labels = [w["spec"]["template"]["metadata"]["labels"] for w in _workloads()]
    for service in (r for r in _all() if r["kind"] == "Service"):
        selector = service["spec"]["selector"]
        assert any(selector.items() <= pod.items() for pod in labels), service["metadata"]


def test_every_probe_and_service_port_names_a_container_port() -> None:
    ports: dict[str, set[object]] = {}
    for workload in _workloads():
        app = workload["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
        for container in _containers(workload):
            declared = ports.setdefault(app, set())
            for port in container["ports"]:
                declared |= {port["name"], port["containerPort"]}
            for probe in ("readinessProbe", "livenessProbe"):
                check = container[probe]
                target = next(check[way]["port"] for way in ("grpc", "httpGet", "tcpSocket")
                              if way in check)  # fmt: skip
                assert target in declared, (app, probe, target)
    for service in (r for r in _all() if r["kind"] == "Service"):
        app = service["spec"]["selector"]["app.kubernetes.io/name"]
        for port in service["spec"]["ports"]:
            assert port.get("targetPort", port["port"]) in ports[app], (app, port)


def test_every_engine_stands_by_on_the_replicated_journal_behind_a_grpc_readiness_probe() -> None:
    config = next(r for r in _all() if r["metadata"]["name"] == "cfd-config")["data"]
    assert config["CFD_ENGINE_STANDBY"] == "on"
    nats = next(w for w in _workloads("StatefulSet") if w["metadata"]["name"] == "cfd-nats")
    urls = config["CFD_JOURNAL_URL"].split(",")
    assert len(urls) == nats["spec"]["replicas"] == int(config["CFD_JOURNAL_REPLICAS"]) == 3
    engine = next(w for w in _workloads("StatefulSet") if w["metadata"]["name"] == "cfd-engine")
    assert engine["spec"]["replicas"] >= 2
    # Only the leader opens its gRPC port: readiness on it keeps standbys out of the Service.
    (container,) = _containers(engine)
    assert container["readinessProbe"]["grpc"]["port"] == 50051
    assert "grpc" not in container["livenessProbe"]


def test_every_container_reads_the_config_map_and_only_named_secret_keys() -> None:
    config_maps = {r["metadata"]["name"] for r in _all() if r["kind"] == "ConfigMap"}
    secret_keys = {"internal-token", "database-url", "redis-url", "jwt-private-key"}
    for workload in _workloads():
        spec = workload["spec"]["template"]["spec"]
        for container in _containers(workload):
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in config_maps
            for variable in container.get("env", []):
                secret = variable.get("valueFrom", {}).get("secretKeyRef")
                if secret is not None:
                    assert (secret["name"], secret["key"]) in {
                        ("cfd-secrets", key) for key in secret_keys
                    }
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps
            if "secret" in volume:
                assert {item["key"] for item in volume["secret"]["items"]} <= secret_keys


def test_every_further_shard_has_its_engines_stream_and_address() -> None:
    config = next(r for r in _all() if r["metadata"]["name"] == "cfd-config")["data"]
    shards = int(config["CFD_ENGINE_SHARDS"])
    assert shards >= 2
    streams = set()
    for shard in range(1, shards):
        name = f"cfd-engine-shard-{shard}"
        engine = next(w for w in _workloads("StatefulSet") if w["metadata"]["name"] == name)
        assert engine["spec"]["replicas"] >= 2
        (container,) = _containers(engine)
        env = {v["name"]: v.get("value") for v in container["env"]}
        assert env["CFD_ENGINE_SHARD"] == str(shard)
        streams.add(env["CFD_JOURNAL_STREAM"])
        # Its own recorder follows its stream and writes its rows.
        recorder = next(
            w
            for w in _workloads("StatefulSet")
            if w["metadata"]["name"] == f"cfd-recorder-shard-{shard}"
        )
        (follower,) = _containers(recorder)
        followed = {v["name"]: v.get("value") for v in follower["env"]}
        assert (followed["CFD_ENGINE_SHARD"], followed["CFD_JOURNAL_STREAM"]) == (
            str(shard),
            env["CFD_JOURNAL_STREAM"],
        )
        services = [r for r in _all() if r["kind"] == "Service"]
        service = next(r for r in services if r["metadata"]["name"] == name)
        port = service["spec"]["ports"][0]["port"]
        assert config[f"CFD_ENGINE_ADDR_{shard}"] == f"{name}:{port}"
    # Each shard journals to its own stream (and lease), never to shard 0's.
    assert len(streams) == shards - 1 and config["CFD_JOURNAL_STREAM"] not in streams
