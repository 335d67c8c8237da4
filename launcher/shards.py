"""CFD engine shards under `cfd up`: `CFD_ENGINE_SHARDS=N` runs N engine processes.

Shard 0 is the engine of a single-shard mesh (its port, its files, the spot exchange); shard
i >= 1 listens on `CFD_ENGINE_PORT + 100 i` (metrics: `CFD_ENGINE_METRICS_PORT + 100 i`) and
keeps its journal and snapshots under `<data dir>/engine-shard-<i>`. Every child is told the
address of every shard, so the accounts service opens each user's account on their shard and
the edge and Envoy route their trading calls there. With `--cluster`, every shard also gets a
standby (`CFD_STANDBY_ENGINE_PORT + 100 i`) and its own JetStream stream
(`<CFD_JOURNAL_STREAM>_SHARD_<i>`) and lease.
"""

from __future__ import annotations

from collections.abc import Mapping

from launcher.cluster import ClusterLayout
from mesh.config import Settings, shard_port
from mesh.db import database_url
from mesh.metrics import METRICS_PORTS, metrics_port

Env = Mapping[str, str]


def engine_name(shard: int) -> str:
    """Return the child name of shard `shard`'s engine under `cfd up`."""
    return "engine" if shard == 0 else f"engine-{shard}"


def standby_name(shard: int) -> str:
    """Return the child name of shard `shard`'s standby engine under `cfd up --cluster`."""
    return "standby" if shard == 0 else f"standby-{shard}"


def standby_port(layout: ClusterLayout, shard: int) -> int:
    """Return the gRPC port of shard `shard`'s standby engine."""
    return shard_port(layout.standby_port, shard)


def shards_env(env: Env, settings: Settings, layout: ClusterLayout | None) -> dict[str, str]:
    """Return the children's environment naming every shard's address (listing its standby
    after it on a cluster)."""
    shared = dict(env)
    shared["CFD_ENGINE_SHARDS"] = str(settings.engine_shards)
    for shard in range(settings.engine_shards):
        port = shard_port(settings.engine_port, shard)
        address = f"127.0.0.1:{port}"
        if layout is not None:
            address = f"ipv4:{address},127.0.0.1:{standby_port(layout, shard)}"
        shared["CFD_ENGINE_ADDR" if shard == 0 else f"CFD_ENGINE_ADDR_{shard}"] = address
    return shared


def shard_env(env: Env, settings: Settings, shard: int) -> dict[str, str]:
    """Return the environment of shard `shard`'s engine (>= 1): its index (from which it names
    its stream) and its ports."""
    own = dict(env)
    own["CFD_ENGINE_SHARD"] = str(shard)
    own["CFD_ENGINE_PORT"] = str(shard_port(settings.engine_port, shard))
    own[METRICS_PORTS["engine"][0]] = str(shard_port(metrics_port("engine", env), shard))
    return own


def shard_recorder_env(env: Env, settings: Settings, shard: int) -> dict[str, str]:
    """Return the environment of the recorder of shard `shard` (>= 1): the shard's files and
    stream, and its own metrics port."""
    own = shard_env(env, settings, shard)
    own[METRICS_PORTS["recorder"][0]] = str(shard_port(metrics_port("recorder", env), shard))
    return own


def shard_standby_env(
    standby: Env, env: Env, settings: Settings, layout: ClusterLayout, shard: int
) -> dict[str, str]:
    """Return the environment of shard `shard`'s standby from the first standby's: without
    CFD_DATABASE_URL, it reads the SQLite history its shard's recorder writes."""
    own = dict(standby)
    if not env.get("CFD_DATABASE_URL", "").strip():
        # Here, not at the top: `cfd engine` imports this module before choosing its core.
        from engine_svc.config import shard_files

        own["CFD_DATABASE_URL"] = database_url(settings, shard_files(shard))
    own["CFD_ENGINE_SHARD"] = str(shard)
    own["CFD_ENGINE_PORT"] = str(standby_port(layout, shard))
    own[METRICS_PORTS["engine"][0]] = str(shard_port(layout.standby_metrics_port, shard))
    return own
