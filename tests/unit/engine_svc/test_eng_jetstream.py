"""The NATS connection of the replicated journal and the lease."""

from __future__ import annotations

import asyncio
import time

import pytest

from engine_svc.jetstream import connect
from support import free_port


async def test_connecting_where_no_server_listens_gives_up_within_the_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await connect(f"nats://127.0.0.1:{free_port()}", timeout_s=0.5)
    assert time.monotonic() - started < 3
    # Nothing of the failed client is left running on the loop.
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    assert not [task for task in others if "nats" in repr(task.get_coro())]
