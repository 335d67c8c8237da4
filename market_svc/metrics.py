"""The market service's Prometheus metrics and the feed state its health reports.

Everything is read from the feed, the quote builder and the candle writer when Prometheus
scrapes: the tick path pays nothing for it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from market_svc.feeds import Feed
from market_svc.market import MarketData

# Feed states: delivering; no tick for longer than CFD_FEED_STALE_MS (whether connected or
# not); reconnecting with its last tick still recent; no first tick yet.
LIVE, STALE, RECONNECTING, WAITING = "live", "stale", "reconnecting", "waiting"


def feed_state(feed: Feed, stale_after_ms: int, now_ns: int | None = None) -> str:
    """Return the state of `feed`: live, stale, reconnecting or waiting (for its first tick)."""
    status = feed.status
    if status.last_tick_ns is None:
        return WAITING
    now_ns = time.time_ns() if now_ns is None else now_ns
    if now_ns - status.last_tick_ns > stale_after_ms * 1_000_000:
        return STALE
    return LIVE if status.connected else RECONNECTING


class MarketCollector(Collector):
    """Read the market service's figures at scrape time."""

    def __init__(self) -> None:
        self.bound: tuple[MarketData, Feed, int] | None = None

    def bind(self, market: MarketData, feed: Feed, stale_after_ms: int) -> None:
        """Report `market` and `feed` from now on."""
        self.bound = (market, feed, stale_after_ms)

    def collect(self) -> Iterable[Metric]:
        """Yield the market's metrics (nothing before `bind`)."""
        if self.bound is None:
            return
        market, feed, stale_after_ms = self.bound
        source = [feed.name]
        builder = market.builder
        status = feed.status
        yield _counter(
            "cfd_market_ticks_received", "Raw ticks from the price source.", source,
            builder.accepted + sum(builder.drops.values()),
        )  # fmt: skip
        yield _counter("cfd_market_quotes_published", "Quotes published to subscribers.", source,
                       builder.accepted)  # fmt: skip
        yield _counter(
            "cfd_market_keepalives", "Standing quotes re-sent while a symbol was quiet.", source,
            market.keepalives,
        )  # fmt: skip
        rejected = CounterMetricFamily(
            "cfd_market_ticks_rejected",
            "Source prices refused by the quote builder, by reason.",
            labels=("source", "reason"),
        )
        for reason, count in sorted(builder.drops.items()):
            rejected.add_metric([feed.name, reason], count)
        yield rejected
        state = feed_state(feed, stale_after_ms)
        yield _gauge("cfd_market_feed_connected", "1 while the price source is connected.",
                     source, 1 if status.connected else 0)  # fmt: skip
        states = GaugeMetricFamily(
            "cfd_market_feed_state",
            "1 for the feed's state: live, stale, reconnecting or waiting (for a first tick).",
            labels=("source", "state"),
        )
        for name in (LIVE, STALE, RECONNECTING, WAITING):
            states.add_metric([feed.name, name], 1 if name == state else 0)
        yield states
        yield _gauge(
            "cfd_market_feed_stale",
            "1 when the connected source sent no tick for longer than CFD_FEED_STALE_MS.",
            source, 1 if state == STALE else 0,
        )  # fmt: skip
        if status.last_tick_ns is not None:
            yield _gauge(
                "cfd_market_feed_last_tick_age_seconds", "Seconds since the source's last tick.",
                source, max(0.0, (time.time_ns() - status.last_tick_ns) / 1e9),
            )  # fmt: skip
        yield _counter("cfd_market_feed_connects", "Connections made to the source.", source,
                       status.connects)  # fmt: skip
        yield _counter("cfd_market_feed_disconnects", "Connections to the source lost.", source,
                       status.disconnects)  # fmt: skip
        yield _counter("cfd_market_feed_malformed_frames", "Source frames that did not parse.",
                       source, status.malformed_frames)  # fmt: skip
        yield _counter("cfd_market_feed_stale_events", "Times the source went quiet.", source,
                       status.stale_events)  # fmt: skip
        writer = market.writer
        if writer is not None:
            yield _gauge("cfd_market_candles_pending", "Candles waiting to be written.", [],
                         writer.pending)  # fmt: skip
            lag = time.monotonic() - writer.flushed_at if writer.pending else 0.0
            yield _gauge(
                "cfd_market_candle_write_lag_seconds",
                "Seconds since the last successful candle write while candles wait (else 0).",
                [], lag,
            )  # fmt: skip
            yield _counter("cfd_market_candles_written", "Candles written to the store.", [],
                           writer.written)  # fmt: skip
            yield _counter("cfd_market_candle_write_failures", "Candle writes that failed.", [],
                           writer.failures)  # fmt: skip


def _counter(name: str, documentation: str, source: list[str], value: float) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=["source"] if source else [])
    family.add_metric(source, value)
    return family


def _gauge(name: str, documentation: str, source: list[str], value: float) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=["source"] if source else [])
    family.add_metric(source, value)
    return family


COLLECTOR = MarketCollector()
REGISTRY.register(COLLECTOR)
