"""Unary gRPC calls carried between a service's front processes and the process that runs them.

A front (`mesh.front`) terminates HTTP/2 for a service on another core and passes each unary
call here as one frame on a Unix-domain socket: the method, the caller's metadata and the
request's serialized bytes. The serving process runs the call through the same interceptor
and handler as one that arrived over its own gRPC port (authentication, request id, metrics,
errors) and answers with one frame: the status, its details and trailing metadata (the rich
error) and the response's bytes. Replies that become ready in the same turn of the event loop
leave in one write.

Frames (little-endian): a call is `u32 length, u32 id, u16 method length, u16 metadata
count`, the method, the metadata entries (`u16 key length, u32 value length`, key, value) and
the request bytes; a reply is `u32 length, u32 id, u8 status code, u16 metadata count, u32
details length`, the details, the trailing metadata entries and the response bytes (empty
unless the code is OK).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, NamedTuple, cast

import grpc

log = logging.getLogger("mesh.local_calls")

Metadata = tuple[tuple[str, str | bytes], ...]
# A frame larger than this is a broken peer, not a call (gRPC's own limit is 4 MiB).
MAX_FRAME_BYTES = 64 * 1024 * 1024

_LENGTH = struct.Struct("<I")
_CALL = struct.Struct("<IIHH")
_REPLY = struct.Struct("<IIBHI")
_ENTRY = struct.Struct("<HI")
_CODES = {code.value[0]: code for code in grpc.StatusCode}


class FrameError(ValueError):
    """A frame that does not follow the layout."""


class Call(NamedTuple):
    """One unary call as a front passes it on."""

    call_id: int
    method: str
    metadata: Metadata
    request: bytes


class Reply(NamedTuple):
    """The outcome of one call: OK with the response's bytes, or a status with its details."""

    call_id: int
    code: grpc.StatusCode
    details: str
    trailing: Metadata
    response: bytes


def _entries(metadata: Iterable[tuple[str, str | bytes]]) -> tuple[int, bytes]:
    parts: list[bytes] = []
    count = 0
    for key, value in metadata:
        raw_key = key.encode()
        raw_value = value if isinstance(value, bytes) else value.encode()
        parts.append(_ENTRY.pack(len(raw_key), len(raw_value)))
        parts.append(raw_key)
        parts.append(raw_value)
        count += 1
    return count, b"".join(parts)


def _read_entries(frame: bytes, at: int, count: int) -> tuple[Metadata, int]:
    entries: list[tuple[str, str | bytes]] = []
    for _ in range(count):
        if at + _ENTRY.size > len(frame):
            raise FrameError("metadata entry past the end of the frame")
        key_length, value_length = _ENTRY.unpack_from(frame, at)
        at += _ENTRY.size
        end = at + key_length + value_length
        if end > len(frame):
            raise FrameError("metadata entry past the end of the frame")
        key = frame[at : at + key_length].decode()
        raw = frame[at + key_length : end]
        # Binary headers (`-bin`) carry bytes; every other value is text, as in gRPC.
        entries.append((key, raw if key.endswith("-bin") else raw.decode()))
        at = end
    return tuple(entries), at


def encode_call(call: Call) -> bytes:
    """Return the frame of `call`."""
    method = call.method.encode()
    count, entries = _entries(call.metadata)
    length = _CALL.size - _LENGTH.size + len(method) + len(entries) + len(call.request)
    head = _CALL.pack(length, call.call_id, len(method), count)
    return b"".join((head, method, entries, call.request))


def decode_call(frame: bytes) -> Call:
    """Return the call in `frame` (the bytes after its length)."""
    header = _CALL.size - _LENGTH.size
    if len(frame) < header:
        raise FrameError("call frame shorter than its header")
    call_id, method_length, count = struct.unpack_from("<IHH", frame)
    end = header + method_length
    if end > len(frame):
        raise FrameError("method past the end of the frame")
    method = frame[header:end].decode()
    metadata, at = _read_entries(frame, end, count)
    return Call(call_id, method, metadata, frame[at:])


def encode_reply(reply: Reply) -> bytes:
    """Return the frame of `reply`."""
    details = reply.details.encode()
    count, entries = _entries(reply.trailing)
    length = _REPLY.size - _LENGTH.size + len(details) + len(entries) + len(reply.response)
    head = _REPLY.pack(length, reply.call_id, reply.code.value[0], count, len(details))
    return b"".join((head, details, entries, reply.response))


def decode_reply(frame: bytes) -> Reply:
    """Return the reply in `frame` (the bytes after its length)."""
    header = _REPLY.size - _LENGTH.size
    if len(frame) < header:
        raise FrameError("reply frame shorter than its header")
    call_id, code, count, details_length = struct.unpack_from("<IBHI", frame)
    status = _CODES.get(code)
    if status is None:
        raise FrameError(f"unknown status code {code}")
    end = header + details_length
    if end > len(frame):
        raise FrameError("details past the end of the frame")
    details = frame[header:end].decode()
    trailing, at = _read_entries(frame, end, count)
    return Reply(call_id, status, details, trailing, frame[at:])


class FrameReader:
    """Split a byte stream into frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add `data`; return the frames it completed (each without its length)."""
        buffer = self._buffer
        buffer += data
        frames: list[bytes] = []
        at = 0
        while len(buffer) - at >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(buffer, at)
            if length > MAX_FRAME_BYTES:
                raise FrameError(f"frame of {length} bytes is over the limit")
            end = at + _LENGTH.size + length
            if end > len(buffer):
                break
            frames.append(bytes(buffer[at + _LENGTH.size : end]))
            at = end
        del buffer[:at]
        return frames


class FrameWriter:
    """Write frames to a transport, those of one turn of the event loop in one write."""

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        self._transport = transport
        self._pending: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    def send(self, frame: bytes) -> None:
        """Queue `frame`; it leaves at the end of this turn of the loop."""
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(frame)

    def _flush(self) -> None:
        frames, self._pending = self._pending, []
        if not self._transport.is_closing():
            self._transport.write(b"".join(frames))


class Aborted(grpc.aio.AbortError):
    """Raised by `LocalContext.abort`, as gRPC's own abort raises, to end the handler."""


class LocalContext:
    """The part of a gRPC servicer context a unary handler and its interceptor use."""

    __slots__ = ("_code", "_details", "_metadata", "_trailing")

    def __init__(self, metadata: Metadata) -> None:
        self._metadata = metadata
        self._code: grpc.StatusCode | None = None
        self._details = ""
        self._trailing: Metadata = ()

    def invocation_metadata(self) -> Metadata:
        return self._metadata

    async def abort(
        self,
        code: grpc.StatusCode,
        details: str = "",
        trailing_metadata: Sequence[tuple[str, str | bytes]] = (),
    ) -> None:
        self._code, self._details, self._trailing = code, details, tuple(trailing_metadata)
        raise Aborted(details)

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def set_details(self, details: str) -> None:
        self._details = details

    def set_trailing_metadata(self, metadata: Sequence[tuple[str, str | bytes]]) -> None:
        self._trailing = tuple(metadata)

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def details(self) -> str:
        return self._details

    def cancelled(self) -> bool:
        return False

    def peer(self) -> str:
        return "local"

    def time_remaining(self) -> float | None:
        return None

    def outcome(self) -> tuple[grpc.StatusCode, str, Metadata]:
        """The status the call ends with (OK unless the handler set or aborted with one)."""
        return self._code or grpc.StatusCode.OK, self._details, self._trailing


class _Details(NamedTuple):
    """What a server interceptor is told of a call (grpc.HandlerCallDetails)."""

    method: str
    invocation_metadata: Metadata


Intercept = Callable[
    [
        Callable[[grpc.HandlerCallDetails], Awaitable["grpc.RpcMethodHandler[Any, Any] | None"]],
        grpc.HandlerCallDetails,
    ],
    Awaitable["grpc.RpcMethodHandler[Any, Any] | None"],
]


class _Capture:
    """Stands where a generated `add_XServicer_to_server` expects a server: keeps the handlers."""

    def __init__(self) -> None:
        self.handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def add_generic_rpc_handlers(self, _handlers: object) -> None:
        pass

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        for name, handler in handlers.items():
            self.handlers[f"/{service}/{name}"] = handler


def unary_handlers(
    registrations: Iterable[tuple[Callable[[Any, Any], None], object]],
) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
    """Return the unary-unary handlers, by full method name, that the generated registrations
    (`add_XServicer_to_server`, servicer) would add to a server."""
    capture = _Capture()
    for add_to_server, servicer in registrations:
        add_to_server(servicer, capture)
    return {
        method: handler
        for method, handler in capture.handlers.items()
        if handler.unary_unary is not None
        and not handler.request_streaming
        and not handler.response_streaming
    }


class LocalCallServer:
    """Run the unary calls fronts pass on a Unix-domain socket, through `intercept`."""

    def __init__(
        self, handlers: dict[str, grpc.RpcMethodHandler[Any, Any]], intercept: Intercept
    ) -> None:
        self._handlers = handlers
        self._intercept = intercept
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def methods(self) -> list[str]:
        """The full names of the methods this server runs."""
        return sorted(self._handlers)

    async def start(self, path: str) -> None:
        """Listen on the Unix-domain socket `path`."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(lambda: _ServerConnection(self), path)

    async def stop(self) -> None:
        """Stop listening and wait for the calls already running."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def dispatch(self, call: Call, writer: FrameWriter) -> None:
        """Run `call` in a task of its own (its own context, as gRPC runs each call)."""
        task = asyncio.create_task(self.run(call, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self, call: Call, writer: FrameWriter) -> None:
        """Run one call and send its reply."""
        try:
            reply = await self.answer(call)
        except Exception:
            log.exception("local call %s failed", call.method)
            reply = Reply(call.call_id, grpc.StatusCode.INTERNAL, "internal error", (), b"")
        writer.send(encode_reply(reply))

    async def answer(self, call: Call) -> Reply:
        """Return the reply to `call`."""
        handler = self._handlers.get(call.method)
        if handler is None:
            details = f"Method not found: {call.method}"
            return Reply(call.call_id, grpc.StatusCode.UNIMPLEMENTED, details, (), b"")

        async def continuation(
            _details: grpc.HandlerCallDetails,
        ) -> grpc.RpcMethodHandler[Any, Any]:
            return handler

        call_details = cast(grpc.HandlerCallDetails, _Details(call.method, call.metadata))
        wrapped = await self._intercept(continuation, call_details) or handler
        behaviour = wrapped.unary_unary
        assert behaviour is not None
        deserialize = wrapped.request_deserializer
        request = deserialize(call.request) if deserialize is not None else call.request
        context = LocalContext(call.metadata)
        try:
            response = await behaviour(request, cast(Any, context))
        except Aborted:
            response = None
        code, status_details, trailing = context.outcome()
        if code is not grpc.StatusCode.OK:
            return Reply(call.call_id, code, status_details, trailing, b"")
        serialize = wrapped.response_serializer
        body = serialize(response) if serialize is not None else response
        return Reply(call.call_id, code, "", trailing, body)


class _ServerConnection(asyncio.Protocol):
    def __init__(self, server: LocalCallServer) -> None:
        self._server = server
        self._reader = FrameReader()
        self._writer: FrameWriter | None = None
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._writer = FrameWriter(self._transport)

    def data_received(self, data: bytes) -> None:
        assert self._writer is not None and self._transport is not None
        try:
            for frame in self._reader.feed(data):
                self._server.dispatch(decode_call(frame), self._writer)
        except (FrameError, UnicodeDecodeError) as exc:
            log.error("closing a front's connection: %s", exc)
            self._transport.close()


class LocalCallClient:
    """A front's connection to the serving process: send calls, await their replies."""

    def __init__(self) -> None:
        self._pending: dict[int, asyncio.Future[Reply]] = {}
        self._next_id = 0
        self._writer: FrameWriter | None = None
        self._transport: asyncio.Transport | None = None
        self.closed = asyncio.Event()

    async def connect(self, path: str) -> None:
        """Connect to the Unix-domain socket `path`."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_unix_connection(lambda: _ClientConnection(self), path)
        self._transport = transport
        self._writer = FrameWriter(transport)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def call(self, method: str, metadata: Metadata, request: bytes) -> Reply:
        """Pass one call on and return its reply; UNAVAILABLE once the connection is gone."""
        if self._writer is None or self.closed.is_set():
            return Reply(0, grpc.StatusCode.UNAVAILABLE, "the engine is not reachable", (), b"")
        self._next_id = call_id = (self._next_id + 1) & 0xFFFFFFFF
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        self._writer.send(encode_call(Call(call_id, method, metadata, request)))
        try:
            return await future
        finally:
            self._pending.pop(call_id, None)

    def _replied(self, reply: Reply) -> None:
        future = self._pending.pop(reply.call_id, None)
        if future is not None and not future.done():
            future.set_result(reply)

    def _lost(self) -> None:
        self.closed.set()
        pending, self._pending = self._pending, {}
        for call_id, future in pending.items():
            if not future.done():
                lost = "the connection to the engine closed"
                future.set_result(Reply(call_id, grpc.StatusCode.UNAVAILABLE, lost, (), b""))


class _ClientConnection(asyncio.Protocol):
    def __init__(self, client: LocalCallClient) -> None:
        self._client = client
        self._reader = FrameReader()
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            for frame in self._reader.feed(data):
                self._client._replied(decode_reply(frame))
        except (FrameError, UnicodeDecodeError) as exc:
            log.error("closing the connection to the engine: %s", exc)
            if self._transport is not None:
                self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._client._lost()
