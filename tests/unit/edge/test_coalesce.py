"""Writes of one event-loop step leave in one write; closing never loses a queued write."""

from __future__ import annotations

import asyncio
from typing import Any

from edge.coalesce import CoalescingTransport


class RecordingTransport(asyncio.Transport):
    """Record what is asked of a transport."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any]] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.calls.append(("write", bytes(data)))

    def close(self) -> None:
        self.calls.append(("close", None))
        self.closing = True

    def abort(self) -> None:
        self.calls.append(("abort", None))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 5


async def test_the_writes_of_one_step_leave_as_one() -> None:
    inner = RecordingTransport()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"{}")
    assert inner.calls == []
    assert transport.get_write_buffer_size() == 5 + 21
    await asyncio.sleep(0)
    assert inner.calls == [("write", b"HTTP/1.1 200 OK\r\n\r\n{}")]
    transport.write(b"next")
    await asyncio.sleep(0)
    assert inner.calls[-1] == ("write", b"next")


async def test_closing_sends_what_is_queued_first() -> None:
    inner = RecordingTransport()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"bye")
    transport.close()
    await asyncio.sleep(0)
    assert inner.calls == [("write", b"bye"), ("close", None)]


async def test_aborting_drops_what_is_queued() -> None:
    inner = RecordingTransport()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"lost")
    transport.abort()
    await asyncio.sleep(0)
    assert inner.calls == [("abort", None)]
