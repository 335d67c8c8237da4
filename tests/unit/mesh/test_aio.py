"""`wait_event`: a timed wait on an event that never loses a cancellation."""

from __future__ import annotations

import asyncio
import time

import pytest

from mesh.aio import wait_event


async def test_it_returns_when_the_event_is_set() -> None:
    event = asyncio.Event()
    asyncio.get_running_loop().call_soon(event.set)
    started = time.monotonic()
    await wait_event(event, 10)
    assert time.monotonic() - started < 5


async def test_it_returns_after_the_timeout() -> None:
    started = time.monotonic()
    await wait_event(asyncio.Event(), 0.05)
    assert time.monotonic() - started >= 0.04


async def test_a_cancellation_racing_the_event_still_cancels() -> None:
    for _ in range(50):
        event = asyncio.Event()
        task = asyncio.create_task(wait_event(event, 10))
        await asyncio.sleep(0)
        event.set()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
