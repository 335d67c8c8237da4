import asyncio
from decimal import Decimal

import pytest

from market_svc.feeds.manual import ManualFeed, ManualFeedNotRunningError
from market_svc.instruments import Instruments
from market_svc.market import MarketData
from support import until
from unit.market_svc.feeds.fake_exchanges import feeding


async def test_published_quotes_arrive_exactly_and_in_order() -> None:
    manual = ManualFeed()
    with pytest.raises(ManualFeedNotRunningError):
        manual.publish([("BTCUSD", Decimal(1), Decimal(2))])
    market = MarketData(Instruments())
    task = asyncio.create_task(manual.run(market.on_tick))
    await until(lambda: manual.running)
    manual.publish(
        [
            ("BTCUSD", Decimal("64250.15"), Decimal("64250.16")),
            ("BTCUSD", Decimal("64000.00"), Decimal("64010.00")),
        ]
    )
    quote = market.quotes.latest("BTCUSD")
    assert quote is not None and (quote.bid, quote.ask) == (
        Decimal("64000.00"),
        Decimal("64010.00"),
    )
    assert market.builder.accepted == 2
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not manual.running


async def test_nothing_moves_without_publishing() -> None:
    manual = ManualFeed()
    async with feeding(manual) as ticks:
        await until(lambda: manual.running)
        await asyncio.sleep(0.05)
        assert ticks == []
        manual.publish([("ETHUSD", Decimal("1.00"), Decimal("1.01"))])
        assert len(ticks) == 1 and ticks[0].exact
