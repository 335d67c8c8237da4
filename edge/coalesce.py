"""HTTP/1.1 with each response sent in one write: uvicorn writes the head and the body apart.

Two writes are two system calls and, on a keep-alive connection, two TCP segments the client
must read. `CoalescingTransport` holds what is written during one step of the event loop and
sends it in one write at the end of that step (or at once before anything else is asked of the
transport), so a response made in one step, as the edge's are, goes out whole. Streamed
responses still go out as they are produced: a later step flushes again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport(asyncio.Transport):
    """A transport that joins the writes of one event-loop step into one."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue `data`; the queue is written at the end of this loop step."""
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def flush(self) -> None:
        """Write what is queued, in one write."""
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        """Write what is queued, then close."""
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        """Drop what is queued and close at once."""
        self._pending.clear()
        self._transport.abort()

    def is_closing(self) -> bool:
        """Return whether the underlying transport is closing."""
        return self._transport.is_closing()

    def write_eof(self) -> None:
        """Write what is queued, then half-close."""
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        """Return whether the underlying transport can half-close."""
        return self._transport.can_write_eof()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Return the underlying transport's information."""
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        """Pause the underlying transport's reading."""
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        """Resume the underlying transport's reading."""
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        """Return whether the underlying transport reads."""
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        """Hand the connection to another protocol (a WebSocket upgrade) after a flush."""
        self.flush()
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        """Return the underlying transport's protocol."""
        return self._transport.get_protocol()

    def get_write_buffer_size(self) -> int:
        """Return what waits to be sent, queued here or in the underlying transport."""
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Set the underlying transport's flow-control limits."""
        self._transport.set_write_buffer_limits(high, low)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through a `CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Wrap the connection's transport, then set up as uvicorn does."""
        super().connection_made(CoalescingTransport(transport, asyncio.get_running_loop()))
