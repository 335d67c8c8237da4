"""Front processes: a service's gRPC protocol work on the other cores, its state in one process.

A stateful service (the engine) keeps a single writer. Most of the CPU an order costs there is
gRPC's own per-call work: HTTP/2 framing, metadata, the call's objects. With `fronts` set,
`mesh.server.serve` listens on a private Unix-domain socket instead of its port and starts that
many front processes, which share the public port (SO_REUSEPORT) and:

- pass every unary call of the service's own methods to the serving process as one frame
  (`mesh.local_calls`): raw request bytes in, raw response bytes or the rich status out; the
  serving process authenticates and runs it exactly as a call on its own port;
- relay every other call (server streams, health, reflection) to the serving process's gRPC
  server on its Unix-domain socket, bytes unchanged, status and trailing metadata included.

A front holds no state: it exits when its connection to the serving process closes, so a
killed engine never leaves fronts answering for it; the serving process starts a new front
when one dies.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any

import grpc

from mesh.local_calls import LocalCallClient, Metadata

log = logging.getLogger("mesh.front")

# Headers gRPC sets itself on every call; relayed, they would be refused or doubled.
_OWN_HEADERS = frozenset({"user-agent", "grpc-accept-encoding", "grpc-encoding", "te"})
CONNECT_TIMEOUT_S = 30.0
RESTART_DELAY_S = 0.5


def forwarded(metadata: Iterable[tuple[str, str | bytes]] | None) -> Metadata:
    """The caller's metadata to pass on (without the headers gRPC adds itself)."""
    return tuple(
        (key, value)
        for key, value in metadata or ()
        if key not in _OWN_HEADERS and not key.startswith(":")
    )


class _Relay(grpc.GenericRpcHandler):
    """Route each call: unary calls of `unary` as frames, everything else over gRPC."""

    def __init__(
        self, unary: frozenset[str], calls: LocalCallClient, channel: grpc.aio.Channel
    ) -> None:
        self._unary = unary
        self._calls = calls
        self._channel = channel
        self._handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = handler_call_details.method
        handler = self._handlers.get(method)
        if handler is None:
            handler = self._handlers[method] = self._handler(method)
        return handler

    def _handler(self, method: str) -> grpc.RpcMethodHandler[Any, Any]:
        if method in self._unary:
            return grpc.unary_unary_rpc_method_handler(self._framed(method))
        kind = method_kind(method)
        channel = self._channel
        if kind == "unary_stream":
            return grpc.unary_stream_rpc_method_handler(_many(channel.unary_stream(method)))
        if kind == "stream_stream":
            return grpc.stream_stream_rpc_method_handler(_many(channel.stream_stream(method)))
        if kind == "stream_unary":
            return grpc.stream_unary_rpc_method_handler(_one(channel.stream_unary(method)))
        return grpc.unary_unary_rpc_method_handler(_one(channel.unary_unary(method)))

    def _framed(self, method: str) -> Any:
        calls = self._calls

        async def call(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            reply = await calls.call(method, forwarded(context.invocation_metadata()), request)
            if reply.code is grpc.StatusCode.OK:
                if reply.trailing:
                    context.set_trailing_metadata(reply.trailing)
                return reply.response
            await context.abort(reply.code, reply.details, reply.trailing)
            raise AssertionError("context.abort returned")  # pragma: no cover

        return call


def _relayed(target: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
    """Start the relayed call of `target` with the caller's metadata and deadline."""
    return target(
        request,
        metadata=forwarded(context.invocation_metadata()),
        timeout=context.time_remaining(),
    )


def _one(target: Any) -> Any:
    """A behaviour relaying a call with one response (its request: one message or a stream)."""

    async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        relayed = _relayed(target, request, context)
        try:
            return await relayed
        except grpc.aio.AioRpcError as exc:
            await _abort_as(exc, context)

    return call


def _many(target: Any) -> Any:
    """A behaviour relaying a call with a stream of responses."""

    async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        relayed = _relayed(target, request, context)
        try:
            async for item in relayed:
                yield item
        except grpc.aio.AioRpcError as exc:
            await _abort_as(exc, context)
        finally:
            relayed.cancel()

    return call


async def _abort_as(exc: grpc.aio.AioRpcError, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    """End the caller's call with the relayed call's status, details and trailing metadata."""
    await context.abort(exc.code(), exc.details() or "", tuple(exc.trailing_metadata() or ()))


def method_kind(method: str) -> str:
    """unary_unary, unary_stream, stream_unary or stream_stream, from the method's descriptor
    in the default pool (unary_unary when the method is not known here)."""
    from google.protobuf import descriptor_pool

    service_name, _, name = method.lstrip("/").rpartition("/")
    try:
        service = descriptor_pool.Default().FindServiceByName(service_name)
    except KeyError:
        return "unary_unary"
    found = service.methods_by_name.get(name)
    if found is None:
        return "unary_unary"
    requests = "stream" if found.client_streaming else "unary"
    responses = "stream" if found.server_streaming else "unary"
    return f"{requests}_{responses}"


async def run_front(
    address: str,
    calls_path: str,
    grpc_path: str,
    unary: Sequence[str],
    options: Sequence[tuple[str, Any]],
) -> None:
    """Serve `address` as a front of the process listening on `calls_path` (unary calls) and
    `grpc_path` (its gRPC server); return when that process goes away or on SIGTERM/SIGINT."""
    calls = LocalCallClient()
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while True:
        try:
            await calls.connect(calls_path)
            break
        except OSError:
            if time.monotonic() > deadline or os.getppid() == 1:
                raise
            await asyncio.sleep(0.05)
    channel = grpc.aio.insecure_channel(f"unix:{grpc_path}")
    # The fronts share the port; the serving process checked that no one else holds it.
    shared = [option for option in options if option[0] != "grpc.so_reuseport"]
    server = grpc.aio.server(options=[*shared, ("grpc.so_reuseport", 1)])
    server.add_generic_rpc_handlers([_Relay(frozenset(unary), calls, channel)])
    try:
        server.add_insecure_port(address)
    except RuntimeError as exc:
        raise SystemExit(f"front: cannot listen on {address}") from exc
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    lost = asyncio.create_task(calls.closed.wait())
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({lost, stopped}, return_when=asyncio.FIRST_COMPLETED)
    # On SIGTERM the serving process is still up: let the calls under way finish through it.
    await server.stop(None if calls.closed.is_set() else 5.0)
    for task in (lost, stopped):
        task.cancel()
    calls.close()
    await channel.close()


def port_free(address: str) -> bool:
    """Whether `address` (host:port) can be listened on: no other process holds it."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As a server binds: connections of an earlier run in TIME_WAIT do not hold the port.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, int(port)))
        except OSError:
            return False
    return True


class Fronts:
    """The front processes of one serving process: started, restarted when one dies, stopped."""

    def __init__(self, count: int, address: str, unary: Sequence[str], name: str) -> None:
        self._count = count
        self._address = address
        self._unary = list(unary)
        self._name = name
        self._dir = tempfile.mkdtemp(prefix=f"cfd-{name}-")
        self.calls_path = str(Path(self._dir) / "calls.sock")
        self.grpc_path = str(Path(self._dir) / "grpc.sock")
        self._children: list[asyncio.subprocess.Process] = []
        self._slots: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def grpc_address(self) -> str:
        """Where the serving process's own gRPC server listens."""
        return f"unix:{self.grpc_path}"

    async def _spawn(self) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mesh.front",
            "--listen",
            self._address,
            "--calls",
            self.calls_path,
            "--grpc",
            self.grpc_path,
            "--name",
            self._name,
            *self._unary,
            stdin=asyncio.subprocess.DEVNULL,
        )

    async def start(self) -> None:
        """Start the fronts, each in a slot that starts another when its front exits."""
        for _ in range(self._count):
            child = await self._spawn()
            self._children.append(child)
            self._slots.append(asyncio.create_task(self._keep(len(self._children) - 1)))

    async def _keep(self, slot: int) -> None:
        while True:
            child = self._children[slot]
            code = await child.wait()
            if self._stopping:
                return
            log.error("%s front %d exited with %s; starting another", self._name, child.pid, code)
            await asyncio.sleep(RESTART_DELAY_S)
            if self._stopping:
                return
            self._children[slot] = await self._spawn()

    async def stop(self, grace: float) -> None:
        """Stop the fronts (each finishes the calls under way) and remove the sockets."""
        self._stopping = True
        for slot in self._slots:
            slot.cancel()
        for child in self._children:
            if child.returncode is None:
                child.send_signal(signal.SIGTERM)
        waits = [child.wait() for child in self._children]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), grace + 1.0)
        except TimeoutError:
            for child in self._children:
                if child.returncode is None:
                    child.kill()
            await asyncio.gather(*(child.wait() for child in self._children))
        self._remove_sockets()

    def _remove_sockets(self) -> None:
        for path in (self.calls_path, self.grpc_path):
            Path(path).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            Path(self._dir).rmdir()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mesh.front")
    parser.add_argument("--listen", required=True)
    parser.add_argument("--calls", required=True)
    parser.add_argument("--grpc", required=True)
    parser.add_argument("--name", default="service")
    parser.add_argument("unary", nargs="*")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=f"{args.name} front: %(message)s")
    # The descriptors of the methods relayed by kind (streams, health, reflection).
    import importlib
    import pkgutil

    from grpc_health.v1 import health_pb2  # noqa: F401
    from grpc_reflection.v1alpha import reflection_pb2  # noqa: F401

    import cfd.v1

    for module in pkgutil.iter_modules(cfd.v1.__path__):
        if module.name.endswith("_pb2"):
            importlib.import_module(f"cfd.v1.{module.name}")

    from mesh.server import SERVER_OPTIONS

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(run_front(args.listen, args.calls, args.grpc, args.unary, SERVER_OPTIONS))


if __name__ == "__main__":
    main()
