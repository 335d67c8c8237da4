"""Engine-only settings read from the environment (the shared ones are in `mesh.config`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from engine_svc.core.commands import DEFAULT_MARGIN_CALL_LEVEL, DEFAULT_STOP_OUT_LEVEL
from engine_svc.core.enums import MarginMode, PositionMode
from engine_svc.core.money import MAX_LEVEL_PERCENT
from engine_svc.core.spot import FeeSchedule
from engine_svc.core.spot.markets import DEFAULT_MAKER_FEE_BPS, DEFAULT_TAKER_FEE_BPS
from engine_svc.rollover import RolloverSchedule
from mesh.config import ConfigError

DEFAULT_PRICE_STALE_MS = 10_000
DEFAULT_SNAPSHOT_EVERY = 200_000
DEFAULT_SNAPSHOT_INTERVAL_S = 300
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_BATCH = 2048
DEFAULT_EVENT_RING = 4096
DEFAULT_JOURNAL_STREAM = "CFD_ENGINE"


def shard_files(shard: int) -> str:
    """Return the name of CFD engine shard `shard`'s files in the data directory: its journal
    and snapshots directory and, without CFD_DATABASE_URL, its SQLite history. Shard 0 keeps
    the single engine's name."""
    return "engine" if shard == 0 else f"engine-shard-{shard}"
DEFAULT_JOURNAL_REPLICAS = 3
DEFAULT_JOURNAL_TIMEOUT_MS = 5_000
DEFAULT_LEASE_TTL_MS = 3_000


@dataclass(frozen=True, slots=True)
class MarginDefaults:
    """The margin mode of a new account whose request names none, a cross account's margin
    call and stop-out levels (whole percent of margin level), and the position mode of a new
    account whose request names none."""

    mode: MarginMode = MarginMode.ISOLATED
    margin_call_level: int = DEFAULT_MARGIN_CALL_LEVEL
    stop_out_level: int = DEFAULT_STOP_OUT_LEVEL
    position_mode: PositionMode = PositionMode.HEDGING

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MarginDefaults:
        """Read CFD_MARGIN_MODE (isolated or cross), CFD_MARGIN_CALL_LEVEL,
        CFD_STOP_OUT_LEVEL and CFD_POSITION_MODE (hedging or netting)."""
        raw = env.get("CFD_MARGIN_MODE", "").strip().lower() or "isolated"
        if raw not in ("isolated", "cross"):
            raise ConfigError(f"CFD_MARGIN_MODE={raw!r} must be isolated or cross")
        call = _int(env, "CFD_MARGIN_CALL_LEVEL", DEFAULT_MARGIN_CALL_LEVEL, 0, MAX_LEVEL_PERCENT)
        stop = _int(env, "CFD_STOP_OUT_LEVEL", DEFAULT_STOP_OUT_LEVEL, 0, MAX_LEVEL_PERCENT)
        if stop > call:
            raise ConfigError(
                f"CFD_STOP_OUT_LEVEL={stop} must not exceed CFD_MARGIN_CALL_LEVEL={call}"
            )
        positions = env.get("CFD_POSITION_MODE", "").strip().lower() or "hedging"
        if positions not in ("hedging", "netting"):
            raise ConfigError(f"CFD_POSITION_MODE={positions!r} must be hedging or netting")
        return cls(MarginMode(raw.upper()), call, stop, PositionMode(positions.upper()))


MAX_FRONTS = 64


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
    # Empty: the local file journal; nats://host:port[,nats://...]: the replicated one.
    journal_url: str = ""
    journal_stream: str = DEFAULT_JOURNAL_STREAM
    journal_replicas: int = DEFAULT_JOURNAL_REPLICAS
    journal_timeout_ms: int = DEFAULT_JOURNAL_TIMEOUT_MS
    lease_ttl_ms: int = DEFAULT_LEASE_TTL_MS
    # Follow the replicated journal and take the lead when it is free (`cfd engine --standby`).
    standby: bool = False
    margin: MarginDefaults = MarginDefaults()
    # Spot fees to the house, in basis points of each fill's quote amount.
    fees: FeeSchedule = field(default_factory=FeeSchedule)
    # The daily swap rollover (CFD_ROLLOVER_TIME, CFD_TRIPLE_SWAP_WEEKDAY).
    rollover: RolloverSchedule = field(default_factory=RolloverSchedule)
    # Front processes doing the gRPC protocol work on other cores (`mesh.front`); 0: none.
    fronts: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EngineConfig:
        """Read CFD_PRICE_STALE_MS, CFD_SNAPSHOT_EVERY, CFD_SNAPSHOT_INTERVAL_S,
        CFD_JOURNAL_SEGMENT_BYTES, CFD_FSYNC, CFD_ENGINE_MAX_BATCH, CFD_EVENT_RING,
        CFD_JOURNAL_URL, CFD_JOURNAL_STREAM, CFD_JOURNAL_REPLICAS, CFD_JOURNAL_TIMEOUT_MS,
        CFD_LEASE_TTL_MS, CFD_ENGINE_STANDBY, CFD_TAKER_FEE_BPS, CFD_MAKER_FEE_BPS,
        CFD_ENGINE_FRONTS and the `MarginDefaults` variables."""
        env = os.environ if env is None else env
        url = env.get("CFD_JOURNAL_URL", "").strip()
        if url and not all(part.strip().startswith("nats://") for part in url.split(",")):
            raise ConfigError(f"CFD_JOURNAL_URL={url!r} must be nats://host:port[,nats://...]")
        stream = env.get("CFD_JOURNAL_STREAM", "").strip() or DEFAULT_JOURNAL_STREAM
        if not stream.replace("_", "").isalnum() or not stream.isascii():
            raise ConfigError(f"CFD_JOURNAL_STREAM={stream!r} must be letters, digits and _")
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
            journal_url=url,
            journal_stream=stream,
            journal_replicas=_int(env, "CFD_JOURNAL_REPLICAS", DEFAULT_JOURNAL_REPLICAS, 1, 5),
            journal_timeout_ms=_int(
                env, "CFD_JOURNAL_TIMEOUT_MS", DEFAULT_JOURNAL_TIMEOUT_MS, 100, 600_000
            ),
            lease_ttl_ms=_int(env, "CFD_LEASE_TTL_MS", DEFAULT_LEASE_TTL_MS, 500, 600_000),
            standby=_bool(env, "CFD_ENGINE_STANDBY", False),
            margin=MarginDefaults.from_env(env),
            fees=_fees(env),
            rollover=RolloverSchedule.from_env(env),
            fronts=_int(env, "CFD_ENGINE_FRONTS", 0, 0, MAX_FRONTS),
        )


def _fees(env: Mapping[str, str]) -> FeeSchedule:
    taker = _int(env, "CFD_TAKER_FEE_BPS", DEFAULT_TAKER_FEE_BPS, 0, 9999)
    maker = _int(env, "CFD_MAKER_FEE_BPS", DEFAULT_MAKER_FEE_BPS, 0, 9999)
    try:
        return FeeSchedule(taker, maker)
    except ValueError as exc:
        raise ConfigError(
            f"CFD_MAKER_FEE_BPS={maker} with CFD_TAKER_FEE_BPS={taker}: {exc}"
        ) from None


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


def shard_stream(stream: str, shards: int, shard: int) -> str:
    """Return the journal stream of engine shard `shard` (its lease bucket is named after
    it): shard 0, and the only engine of a single-shard platform, keep `stream`; another
    shard of several uses ``<stream>_SHARD_<shard>``, so no two shards share a stream or a
    lease (a stream already named so, as the launcher names it, is kept)."""
    suffix = f"_SHARD_{shard}"
    if shards <= 1 or shard == 0 or stream.endswith(suffix):
        return stream
    return stream + suffix
