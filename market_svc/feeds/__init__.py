"""Price sources, one module each, all behind ``market_svc.feeds.base.Feed``."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING

from market_svc.feeds.base import Feed, FeedConfigError, FeedStatus, TickSink

if TYPE_CHECKING:
    from market_svc.config import MarketConfig
    from market_svc.instruments import Instruments

FEED_NAMES = ("simulator", "replay", "manual", "binance", "backpack")

__all__ = ["FEED_NAMES", "Feed", "FeedConfigError", "FeedStatus", "TickSink", "create_feed"]


def create_feed(
    name: str,
    config: MarketConfig,
    instruments: Instruments,
    *,
    start_prices: Mapping[str, Decimal] | None = None,
) -> Feed:
    """Build the feed called ``name`` (the value of CFD_FEED) from the market settings."""
    from market_svc.feeds import backpack, binance
    from market_svc.feeds.manual import ManualFeed
    from market_svc.feeds.replay import ReplayFeed
    from market_svc.feeds.simulator import SimulatorFeed
    from market_svc.feeds.websocket import ConnectionSettings

    connection = ConnectionSettings(stale_after=config.stale_after_ms / 1000)
    if name == "simulator":
        return SimulatorFeed(
            instruments,
            seed=config.sim_seed,
            interval_ms=config.sim_interval_ms,
            start_prices=start_prices,
        )
    if name == "replay":
        return ReplayFeed(config.replay_file, speed=config.replay_speed)
    if name == "manual":
        return ManualFeed()
    if name == "binance":
        return binance.BinanceFeed(
            binance.default_symbol_map(instruments),
            base_url=config.binance_url,
            streams=config.binance_streams,
            connection=connection,
        )
    if name == "backpack":
        return backpack.BackpackFeed(
            backpack.default_symbol_map(instruments),
            base_url=config.backpack_url,
            connection=connection,
        )
    raise FeedConfigError(f"unknown feed {name!r}; choose one of {', '.join(FEED_NAMES)}")
