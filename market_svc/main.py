"""Wire and run the market data service (``cfd market``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from cfd.v1 import market_admin_pb2_grpc, market_pb2_grpc
from market_svc.backfill import backfill_store
from market_svc.config import MarketConfig
from market_svc.feeds import Feed, FeedConfigError, create_feed
from market_svc.instruments import Instruments
from market_svc.market import MarketData
from market_svc.metrics import COLLECTOR, STALE, feed_state
from market_svc.servicer import MarketDataAdminServicer, MarketDataServicer
from market_svc.spot_trades import SpotTradeFollower
from market_svc.store import CandleStore
from mesh.config import ConfigError, Settings
from mesh.db import SchemaVersionError, create_engine, database_url
from mesh.server import ServeError, Service, serve

log = logging.getLogger(__name__)

SERVICE_NAME = "cfd.v1.MarketDataService"
ADMIN_SERVICE_NAME = "cfd.v1.MarketDataAdminService"
# How often the drop counters and feed status are logged when something was dropped.
REPORT_INTERVAL_S = 60.0
FEED_RESTART_DELAY_S = 1.0


async def main(settings: Settings, config: MarketConfig | None = None) -> None:
    """Run the market service until SIGTERM/SIGINT."""
    try:
        config = MarketConfig.from_env(os.environ) if config is None else config
        instruments = Instruments.from_env(os.environ)
    except ConfigError as exc:
        raise ServeError(f"market: {exc}") from exc
    engine = create_engine(database_url(settings, "market"))
    store = CandleStore(engine)
    try:
        await store.initialize()
        if config.backfill_days > 0 and await store.count() == 0:
            written = await backfill_store(
                store, instruments, config, config.backfill_days, feed=settings.feed
            )
            log.info("market: empty candle store, backfilled %d candles", written)
        market = MarketData(
            instruments,
            config.quote_settings,
            store=store,
            flush_interval=config.candle_flush_ms / 1000,
        )
        await market.load()
        feed = create_feed(
            settings.feed, config, instruments, start_prices=await market.start_prices()
        )
    except (SchemaVersionError, FeedConfigError) as exc:
        await engine.dispose()
        raise ServeError(f"market: {exc}") from exc
    except BaseException:
        await engine.dispose()
        raise

    tasks: list[asyncio.Task[None]] = []

    async def on_start() -> None:
        tasks.append(asyncio.create_task(_run_feed(feed, market), name="market-feed"))
        if market.writer is not None:
            tasks.append(asyncio.create_task(market.writer.run(), name="market-candle-writer"))
        tasks.append(asyncio.create_task(_report(market, feed), name="market-report"))
        trades = SpotTradeFollower(market, settings.engine_addr, settings.internal_token)
        tasks.append(asyncio.create_task(trades.run(), name="market-spot-trades"))
        tasks.append(
            asyncio.create_task(
                _keepalive(market, feed, config.quote_keepalive_ms), name="market-keepalive"
            )
        )
        COLLECTOR.bind(market, feed, config.stale_after_ms)
        log.info("market: %s feed started", feed.name)

    async def feed_fresh() -> bool:
        # A stale source's last prices no longer stand: report it, so nobody trades on them.
        return feed_state(feed, config.stale_after_ms) != STALE

    async def on_stop() -> None:
        # The feed stops first so the writer's final flush sees the last candles.
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await engine.dispose()

    await serve(
        "market",
        settings.market_port,
        [
            Service(
                market_pb2_grpc.add_MarketDataServiceServicer_to_server,
                MarketDataServicer(market),
                SERVICE_NAME,
            ),
            Service(
                market_admin_pb2_grpc.add_MarketDataAdminServiceServicer_to_server,
                MarketDataAdminServicer(market, feed),
                ADMIN_SERVICE_NAME,
            ),
        ],
        settings=settings,
        verifier=None,
        on_start=on_start,
        on_stop=on_stop,
        health_check=feed_fresh,
    )


async def _run_feed(feed: Feed, market: MarketData) -> None:
    """Run the feed; restart it after an unexpected failure instead of going quiet."""
    while True:
        try:
            await feed.run(market.on_tick)
            return
        except Exception:
            log.exception("market: %s feed failed; restarting it", feed.name)
            await asyncio.sleep(FEED_RESTART_DELAY_S)


async def _keepalive(market: MarketData, feed: Feed, interval_ms: int) -> None:
    """Repeat quiet symbols' quotes while the feed is live, so subscribers know they stand."""
    while True:
        await asyncio.sleep(interval_ms / 4000)
        if feed.live:
            market.keepalive(interval_ms * 1_000_000)


async def _report(market: MarketData, feed: Feed) -> None:
    """Log dropped ticks and feed trouble now and then, so bad data is visible."""
    reported: tuple[int, int, int] = (0, 0, 0)
    while True:
        await asyncio.sleep(REPORT_INTERVAL_S)
        status = feed.status
        trouble = (
            sum(market.builder.drops.values()),
            status.malformed_frames,
            status.stale_events + status.disconnects,
        )
        if trouble != reported:
            reported = trouble
            log.warning(
                "market: %s feed, %d quotes published, dropped %s, feed status %s",
                feed.name,
                market.builder.accepted,
                dict(market.builder.drops),
                status,
            )
