"""Engine-only settings read from the environment (the shared ones are in `mesh.config`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from mesh.config import ConfigError

DEFAULT_PRICE_STALE_MS = 10_000
DEFAULT_SNAPSHOT_EVERY = 200_000
DEFAULT_SNAPSHOT_INTERVAL_S = 300
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_BATCH = 2048
DEFAULT_EVENT_RING = 4096


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Tuning of the engine's durability, price freshness and batching."""

    price_stale_ms: int = DEFAULT_PRICE_STALE_MS
    snapshot_every: int = DEFAULT_SNAPSHOT_EVERY
    snapshot_interval_s: int = DEFAULT_SNAPSHOT_INTERVAL_S
    segment_bytes: int = DEFAULT_SEGMENT_BYTES
    fsync: bool = True
    max_batch: int = DEFAULT_MAX_BATCH
    event_ring: int = DEFAULT_EVENT_RING

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EngineConfig:
        """Read CFD_PRICE_STALE_MS, CFD_SNAPSHOT_EVERY, CFD_SNAPSHOT_INTERVAL_S,
        CFD_JOURNAL_SEGMENT_BYTES, CFD_FSYNC, CFD_ENGINE_MAX_BATCH and CFD_EVENT_RING."""
        env = os.environ if env is None else env
        return cls(
            price_stale_ms=_int(env, "CFD_PRICE_STALE_MS", DEFAULT_PRICE_STALE_MS, 1, 86_400_000),
            snapshot_every=_int(env, "CFD_SNAPSHOT_EVERY", DEFAULT_SNAPSHOT_EVERY, 1, 10**12),
            snapshot_interval_s=_int(
                env, "CFD_SNAPSHOT_INTERVAL_S", DEFAULT_SNAPSHOT_INTERVAL_S, 1, 10**9
            ),
            segment_bytes=_int(
                env, "CFD_JOURNAL_SEGMENT_BYTES", DEFAULT_SEGMENT_BYTES, 4096, 1 << 40
            ),
            fsync=_bool(env, "CFD_FSYNC", True),
            max_batch=_int(env, "CFD_ENGINE_MAX_BATCH", DEFAULT_MAX_BATCH, 1, 1_000_000),
            event_ring=_int(env, "CFD_EVENT_RING", DEFAULT_EVENT_RING, 1, 10_000_000),
        )


def _int(env: Mapping[str, str], var: str, default: int, low: int, high: int) -> int:
    raw = env.get(var, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ConfigError(f"{var}={raw!r} must be an integer within {low}..{high}")
    return int(raw)


def _bool(env: Mapping[str, str], var: str, default: bool) -> bool:
    raw = env.get(var, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{var}={raw!r} must be on or off")
