import asyncio
import contextlib

import pytest

from market_svc import main as market_main
from market_svc.feeds.base import Feed, TickSink
from market_svc.instruments import Instruments
from market_svc.market import MarketData
from market_svc.ticks import RawTick
from support import until


class CrashingFeed(Feed):
    """Fails on its first run, as a feed with a bug hit by odd data would; then delivers."""

    name = "crashing"

    def __init__(self) -> None:
        super().__init__()
        self.runs = 0

    async def run(self, emit: TickSink) -> None:
        self.runs += 1
        if self.runs == 1:
            raise RuntimeError("unexpected")
        emit(RawTick("BTCUSD", price="100000"))
        await asyncio.Event().wait()


async def test_a_failed_feed_is_restarted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(market_main, "FEED_RESTART_DELAY_S", 0.01)
    market = MarketData(Instruments())
    feed = CrashingFeed()
    task = asyncio.create_task(market_main._run_feed(feed, market))
    await until(lambda: market.quotes.latest("BTCUSD"))
    assert feed.runs == 2
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
