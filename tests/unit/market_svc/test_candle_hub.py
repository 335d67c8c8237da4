import asyncio
from decimal import Decimal

from market_svc.candle_hub import CLOSED_BACKLOG, CandleHub
from market_svc.candles import Candle, CandleInterval

M1 = CandleInterval.M1


def candle(minute: int, close: int, symbol: str = "BTCUSD") -> Candle:
    price = Decimal(close)
    return Candle(symbol, M1, minute * 60_000, price, price, price, price, Decimal(1), 1)


async def test_closed_candles_are_all_delivered_updates_conflated() -> None:
    hub = CandleHub()
    subscription = hub.subscribe("BTCUSD", M1, candle(0, 1))
    hub.publish(candle(0, 2), closed=False)
    hub.publish(candle(0, 3), closed=True)
    hub.publish(candle(1, 4), closed=False)
    hub.publish(candle(1, 5), closed=False)
    hub.publish(candle(1, 9, symbol="ETHUSD"), closed=False)
    hub.publish(Candle("BTCUSD", CandleInterval.H1, 0, *(Decimal(7),) * 5, 1), closed=False)
    events = await subscription.next_batch()
    assert [(e.closed, e.candle.close) for e in events] == [(True, Decimal(3)), (False, Decimal(5))]


async def test_a_stalled_subscriber_keeps_a_bounded_backlog() -> None:
    hub = CandleHub()
    subscription = hub.subscribe("BTCUSD", M1)
    for minute in range(CLOSED_BACKLOG + 10):
        hub.publish(candle(minute, minute), closed=True)
    events = await subscription.next_batch()
    assert len(events) == CLOSED_BACKLOG
    assert events[0].candle.close == Decimal(10)


async def test_subscriptions_end_and_are_forgotten() -> None:
    hub = CandleHub()
    with hub.subscribe("SOLUSD", M1) as subscription:
        assert hub.wants("SOLUSD", M1) and hub.intervals_of("SOLUSD") == [M1]
        waiting = asyncio.create_task(subscription.next_batch())
        await asyncio.sleep(0)
    assert await asyncio.wait_for(waiting, timeout=5) == []
    assert not hub.wants("SOLUSD", M1) and hub.intervals_of("SOLUSD") == []
    collected = [event async for event in subscription]
    assert collected == []
