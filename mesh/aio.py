"""Small asyncio helpers the services' tasks share."""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout_s: float) -> None:
    """Wait until `event` is set or `timeout_s` passed.

    Unlike `asyncio.wait_for` on Python 3.11, this never swallows a cancellation that arrives
    just as the event is set.
    """
    if event.is_set():
        return
    waiter = asyncio.get_running_loop().create_future()

    def wake() -> None:
        if not waiter.done():
            waiter.set_result(None)

    timer = asyncio.get_running_loop().call_later(max(0.0, timeout_s), wake)
    watcher = asyncio.ensure_future(event.wait())
    watcher.add_done_callback(lambda _: wake())
    try:
        await waiter
    finally:
        timer.cancel()
        watcher.cancel()
