"""The event hub: numbering within a seq, the per-account ring, subscriptions."""

from __future__ import annotations

import asyncio

from engine_svc.core import (
    ApplyQuote,
    Core,
    CreateAccount,
    Deposit,
    OpenPosition,
    Side,
)
from engine_svc.pipeline import account_events
from engine_svc.sequencer import Applied
from engine_svc.streams import EventHub


class Feed:
    """A core that numbers commands and returns what the sequencer would publish."""

    def __init__(self) -> None:
        self.core = Core()
        self.seq = 0

    def apply(self, *drafts: object) -> list[Applied]:
        applied: list[Applied] = []
        for draft in drafts:
            self.seq += 1
            command = draft._replace(seq=self.seq, ts=self.seq * 1000)  # type: ignore[attr-defined]
            applied.append((command, self.core.apply(command)))
        return applied


def test_events_are_numbered_per_account_within_their_seq() -> None:
    feed = Feed()
    batch = feed.apply(
        CreateAccount(0, 0, "a", 10_000_000_000),
        ApplyQuote(0, 0, "BTCUSD", 6_425_000, 6_425_100),
        OpenPosition(0, 0, "a", "BTCUSD", Side.BUY, 10, quantity=1),
    )
    items = account_events(batch)
    assert [(account, item.seq, item.idx) for account, item in items] == [
        ("a", 1, 0),
        ("a", 3, 0),
        ("a", 3, 1),
    ]


async def test_the_ring_keeps_recent_events_and_raises_the_floor_on_eviction() -> None:
    feed = Feed()
    hub = EventHub(floor=0, ring=3)
    hub.publish(feed.apply(CreateAccount(0, 0, "a", 1_000)))
    for _ in range(4):
        hub.publish(feed.apply(Deposit(0, 0, "a", 1)))
    assert hub.floor("a") == 2
    assert [item.seq for item in hub.recent("a", (0, 0))] == [3, 4, 5]
    assert [item.seq for item in hub.recent("a", (4, 0))] == [5]
    assert hub.floor("b") == 0
    assert hub.last_seq == 5


async def test_subscribers_get_live_events_prices_and_position_changes() -> None:
    feed = Feed()
    hub = EventHub()
    hub.publish(feed.apply(CreateAccount(0, 0, "a", 10_000_000_000)))
    with (
        hub.events("a") as events,
        hub.prices(frozenset({"BTCUSD"})) as prices,
        hub.positions("a") as positions,
    ):
        positions.symbols = frozenset({"BTCUSD"})
        hub.publish(
            feed.apply(
                ApplyQuote(0, 0, "ETHUSD", 300_000, 300_100),
                ApplyQuote(0, 0, "BTCUSD", 6_425_000, 6_425_100),
                Deposit(0, 0, "a", 5),
            )
        )
        batch = await asyncio.wait_for(events.next_batch(), 5)
        assert [item.seq for item in batch] == [4]
        quotes = await asyncio.wait_for(prices.next_batch(), 5)
        assert [quote.symbol for quote in quotes] == ["BTCUSD"]
        await asyncio.wait_for(positions.wait_change(), 5)
        hub.publish(feed.apply(ApplyQuote(0, 0, "BTCUSD", 6_425_001, 6_425_101)))
        hub.publish(feed.apply(ApplyQuote(0, 0, "BTCUSD", 6_425_002, 6_425_102)))
        conflated = await asyncio.wait_for(prices.next_batch(), 5)
        assert [quote.bid for quote in conflated] == [6_425_002]
    assert hub.last_seq == 6


async def test_a_slow_event_subscriber_overflows_instead_of_growing() -> None:
    feed = Feed()
    hub = EventHub(subscriber_limit=2)
    hub.publish(feed.apply(CreateAccount(0, 0, "a", 1_000)))
    with hub.events("a") as events:
        for _ in range(3):
            hub.publish(feed.apply(Deposit(0, 0, "a", 1)))
        batch = await asyncio.wait_for(events.next_batch(), 5)
        assert events.overflowed
        assert len(batch) == 2
