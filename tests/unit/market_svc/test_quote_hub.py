import asyncio
from decimal import Decimal

from market_svc.hub import QuoteHub
from market_svc.ticks import Quote


def quote(symbol: str, bid: str, sequence: int) -> Quote:
    return Quote(symbol, Decimal(bid), Decimal(bid) + 1, sequence, sequence)


async def test_every_subscriber_gets_every_quote_when_keeping_up() -> None:
    hub = QuoteHub()
    first, second = hub.subscribe(), hub.subscribe()
    hub.publish(quote("BTCUSD", "100", 1))
    assert [q.sequence for q in await first.next_batch()] == [1]
    hub.publish(quote("ETHUSD", "10", 2))
    assert [q.sequence for q in await first.next_batch()] == [2]
    assert [q.sequence for q in await second.next_batch()] == [1, 2]


async def test_a_slow_subscriber_is_conflated_to_the_latest_quote_per_symbol() -> None:
    hub = QuoteHub()
    slow = hub.subscribe()
    for sequence in range(1, 1001):
        hub.publish(quote("BTCUSD" if sequence % 2 else "ETHUSD", str(100 + sequence), sequence))
    batch = await slow.next_batch()
    # Bounded by the number of symbols, holding only the newest of each.
    assert [(q.symbol, q.sequence) for q in batch] == [("BTCUSD", 999), ("ETHUSD", 1000)]
    assert slow.conflated == 998


async def test_a_stalled_subscriber_does_not_hold_up_the_others() -> None:
    hub = QuoteHub()
    hub.subscribe()  # never read
    fast = hub.subscribe(["BTCUSD"])
    received: list[int] = []

    async def consume() -> None:
        async for q in fast:
            received.append(q.sequence)
            if q.sequence == 500:
                return

    consumer = asyncio.create_task(consume())
    for sequence in range(1, 501):
        hub.publish(quote("BTCUSD", "100", sequence))
        await asyncio.sleep(0)
    await asyncio.wait_for(consumer, timeout=5)
    assert received == list(range(1, 501))


async def test_new_subscribers_get_the_current_quotes_first_and_filters_apply() -> None:
    hub = QuoteHub()
    hub.publish(quote("BTCUSD", "100", 1))
    hub.publish(quote("ETHUSD", "10", 2))
    only_eth = hub.subscribe(["ETHUSD"])
    assert [q.sequence for q in await only_eth.next_batch()] == [2]
    hub.publish(quote("BTCUSD", "101", 3))
    hub.publish(quote("ETHUSD", "11", 4))
    assert [q.sequence for q in await only_eth.next_batch()] == [4]
    assert hub.latest("BTCUSD") == quote("BTCUSD", "101", 3)
    assert set(hub.latest_all()) == {"BTCUSD", "ETHUSD"}


async def test_closing_wakes_the_consumer_and_unsubscribes() -> None:
    hub = QuoteHub()
    subscription = hub.subscribe()
    waiting = asyncio.create_task(subscription.next_batch())
    await asyncio.sleep(0)
    subscription.close()
    assert await asyncio.wait_for(waiting, timeout=5) == []
    assert hub.subscriber_count == 0
    with hub.subscribe() as scoped:
        assert hub.subscriber_count == 1
        assert scoped.symbols is None
    assert hub.subscriber_count == 0


async def test_current_quotes_come_in_sequence_order() -> None:
    hub = QuoteHub()
    hub.publish(quote("BTCUSD", "100", 1))
    hub.publish(quote("ETHUSD", "10", 2))
    hub.publish(quote("BTCUSD", "101", 3))
    assert [q.sequence for q in await hub.subscribe().next_batch()] == [2, 3]
