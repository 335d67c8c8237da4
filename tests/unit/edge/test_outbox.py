"""The per-connection outbox: conflated state, bounded events, control frames first."""

from __future__ import annotations

import asyncio

import pytest

from edge.hub import Frame
from edge.outbox import Outbox, OutboxClosedError


async def test_state_frames_are_conflated_per_slot() -> None:
    box = Outbox(event_limit=10)
    box.latest("prices:BTCUSD", "b1")
    box.latest("prices:ETHUSD", "e1")
    box.latest("prices:BTCUSD", "b2")
    assert box.pending() == 2
    assert [await box.get(), await box.get()] == ["b2", "e1"]


async def test_control_frames_go_first_and_events_alternate_with_state() -> None:
    box = Outbox(event_limit=10)
    box.latest("positions", "p")
    for n in range(3):
        assert box.event(Frame(f"e{n}", sequence=n))
    box.control("ack")
    got = [await box.get() for _ in range(5)]
    assert got[0] == "ack"
    assert [t for t in got if t.startswith("e")] == ["e0", "e1", "e2"]
    assert got.index("p") < 4


async def test_events_are_bounded_and_never_replaced() -> None:
    box = Outbox(event_limit=2)
    assert box.event(Frame("a", sequence=1))
    assert box.event(Frame("b", sequence=2))
    assert not box.event(Frame("c", sequence=3))
    first = box.first_event()
    assert first is not None and first.sequence == 1
    box.clear_events()
    assert box.pending() == 0


async def test_unsubscribed_slots_are_dropped_exactly() -> None:
    box = Outbox(event_limit=2)
    box.latest("prices:BTC", "x")
    box.latest("prices:BTCUSD", "y")
    box.latest("candles:BTC:1M:t1", "c")
    box.drop_slots("prices:BTC")
    box.drop_slots("candles:BTC:1M")
    assert [await box.get()] == ["y"]
    assert box.pending() == 0


async def test_get_waits_and_close_wakes_it() -> None:
    box = Outbox(event_limit=2)
    waiting = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    box.control("pong")
    assert await waiting == "pong"
    waiting = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    box.close()
    with pytest.raises(OutboxClosedError):
        await waiting
