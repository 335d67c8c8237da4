"""The market service's own settings, read from the environment.

The shared settings (feed name, ports, database) come from ``mesh.config.Settings``; these are
the knobs only the market service has.

| variable | default | meaning |
|---|---|---|
| CFD_SIM_SEED | 1 | simulator seed: same seed, same price path |
| CFD_SIM_INTERVAL_MS | 100 | mean spacing of simulator ticks per symbol |
| CFD_SPREAD_BPS | 10 | spread added around the source price, in bps of the mid |
| CFD_MAX_JUMP_BPS | 1000 | a tick moving the mid further than this from the last is dropped |
| CFD_FEED_STALE_MS | 10000 | exchange feeds reconnect after this much silence |
| CFD_REPLAY_FILE | shipped sample | tick file of the replay feed |
| CFD_REPLAY_SPEED | 1 | replay speed factor (10 = ten times faster) |
| CFD_BINANCE_WS_URL | wss://stream.binance.com:9443 | Binance stream base URL |
| CFD_BINANCE_STREAMS | aggTrade | comma list of aggTrade, bookTicker |
| CFD_BACKPACK_WS_URL | wss://ws.backpack.exchange | Backpack stream URL |
| CFD_CANDLE_FLUSH_MS | 1000 | how often changed candles are written to the database |
| CFD_BACKFILL_DAYS | 7 | days of history generated on first start with an empty store (0: none) |
| CFD_QUOTE_KEEPALIVE_MS | 2000 | a live feed's quiet symbol has its quote re-sent this often |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from market_svc.feeds import backpack, binance
from market_svc.feeds.replay import DEFAULT_REPLAY_FILE
from market_svc.quotes import QuoteSettings, parse_decimal
from mesh.config import ConfigError


class MarketConfigError(ConfigError):
    """A market setting in the environment is invalid."""


@dataclass(frozen=True, slots=True)
class MarketConfig:
    """Settings of the market service beyond the shared ones."""

    sim_seed: int = 1
    sim_interval_ms: int = 100
    spread_bps: Decimal = Decimal(10)
    max_jump_bps: Decimal = Decimal(1000)
    stale_after_ms: int = 10_000
    replay_file: Path = DEFAULT_REPLAY_FILE
    replay_speed: Decimal = Decimal(1)
    binance_url: str = binance.DEFAULT_URL
    binance_streams: tuple[str, ...] = ("aggTrade",)
    backpack_url: str = backpack.DEFAULT_URL
    candle_flush_ms: int = 1000
    backfill_days: int = 7
    quote_keepalive_ms: int = 2000

    @property
    def quote_settings(self) -> QuoteSettings:
        """Return the spread and filter settings for the quote builder."""
        return QuoteSettings(spread_bps=self.spread_bps, max_jump_bps=self.max_jump_bps)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MarketConfig:
        """Read the settings from ``env``; raise MarketConfigError naming a bad variable."""
        defaults = cls()
        streams_text = env.get("CFD_BINANCE_STREAMS", ",".join(defaults.binance_streams))
        streams = tuple(part.strip() for part in streams_text.split(",") if part.strip())
        if not streams or any(kind not in binance.STREAM_KINDS for kind in streams):
            raise MarketConfigError(
                f"CFD_BINANCE_STREAMS must list {' and/or '.join(binance.STREAM_KINDS)}, "
                f"got {streams_text!r}"
            )
        return cls(
            sim_seed=_int(env, "CFD_SIM_SEED", defaults.sim_seed, minimum=0),
            sim_interval_ms=_int(env, "CFD_SIM_INTERVAL_MS", defaults.sim_interval_ms, minimum=1),
            spread_bps=_decimal(env, "CFD_SPREAD_BPS", defaults.spread_bps, minimum=Decimal(0)),
            max_jump_bps=_decimal(
                env, "CFD_MAX_JUMP_BPS", defaults.max_jump_bps, minimum=Decimal("0.01")
            ),
            stale_after_ms=_int(env, "CFD_FEED_STALE_MS", defaults.stale_after_ms, minimum=1),
            replay_file=Path(env.get("CFD_REPLAY_FILE") or defaults.replay_file),
            replay_speed=_decimal(
                env, "CFD_REPLAY_SPEED", defaults.replay_speed, minimum=Decimal("0.001")
            ),
            binance_url=env.get("CFD_BINANCE_WS_URL") or defaults.binance_url,
            binance_streams=streams,
            backpack_url=env.get("CFD_BACKPACK_WS_URL") or defaults.backpack_url,
            candle_flush_ms=_int(env, "CFD_CANDLE_FLUSH_MS", defaults.candle_flush_ms, minimum=1),
            backfill_days=_int(env, "CFD_BACKFILL_DAYS", defaults.backfill_days, minimum=0),
            quote_keepalive_ms=_int(
                env, "CFD_QUOTE_KEEPALIVE_MS", defaults.quote_keepalive_ms, minimum=10
            ),
        )


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    text = env.get(name)
    if text is None or text.strip() == "":
        return default
    try:
        value = int(text.strip())
    except ValueError:
        raise MarketConfigError(f"{name} must be an integer, got {text!r}") from None
    if value < minimum:
        raise MarketConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _decimal(env: Mapping[str, str], name: str, default: Decimal, *, minimum: Decimal) -> Decimal:
    text = env.get(name)
    if text is None or text.strip() == "":
        return default
    value = parse_decimal(text)
    if value is None:
        raise MarketConfigError(f"{name} must be a decimal number, got {text!r}")
    if value < minimum:
        raise MarketConfigError(f"{name} must be at least {minimum}, got {value}")
    return value
