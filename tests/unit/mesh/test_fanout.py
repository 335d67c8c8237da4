"""The one fan-out: conflation by key, the latest state to late joiners, bounded backlogs."""

from __future__ import annotations

import asyncio

from mesh.fanout import Fanout, Mailbox


def _first(text: str) -> str:
    return text[0]


def _state_or_item(text: str) -> str | None:
    return None if text.startswith("!") else text[0]


async def test_a_newer_state_replaces_an_untaken_one_and_moves_to_the_end() -> None:
    box: Mailbox[str, str] = Mailbox(_first)
    for value in ("a1", "b1", "a2"):
        box.offer(value)
    assert box.conflated == 1
    assert await box.next_batch() == ["b1", "a2"]
    assert box.delivered == 2


async def test_late_joiners_start_from_the_latest_state_of_every_key() -> None:
    fanout: Fanout[str, str, Mailbox[str, str]] = Fanout(_first)
    early: Mailbox[str, str] = Mailbox(_first)
    fanout.subscribe(early)
    for value in ("a1", "b1", "a2"):
        fanout.publish(value)
    late: Mailbox[str, str] = Mailbox(_first, accept=lambda value: value != "b1")
    fanout.subscribe(late)
    assert late.take() == ["a2"]
    assert early.take() == ["b1", "a2"]
    assert fanout.latest_values() == ["b1", "a2"]
    fanout.unsubscribe(late)
    fanout.publish("a3")
    assert late.pending() == 0
    assert fanout.subscriber_count == 1


async def test_ordered_items_are_refused_past_the_limit_and_flag_the_overflow() -> None:
    box: Mailbox[str, str] = Mailbox(limit=2)
    assert box.put("1") and box.put("2")
    assert not box.put("3")
    assert box.overflowed
    assert box.take_queued() == ["1", "2"]


async def test_drop_oldest_keeps_the_newest_items_before_the_states() -> None:
    box: Mailbox[str, str] = Mailbox(_state_or_item, limit=2, drop_oldest=True)
    for value in ("c1", "!1", "!2", "!3"):
        box.offer(value)
    assert box.overflowed
    assert box.take() == ["!2", "!3", "c1"]


async def test_closing_wakes_a_waiting_owner_with_nothing() -> None:
    box: Mailbox[str, str] = Mailbox(_first)
    waiter = asyncio.ensure_future(box.next_batch())
    await asyncio.sleep(0)
    box.close()
    assert await asyncio.wait_for(waiter, 5) == []
