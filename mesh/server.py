"""The shell every gRPC service runs in: interceptors, health, reflection, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from mesh.auth import CallerPolicy, TokenVerifier, bearer_shard, bind_caller_shard, bind_subject
from mesh.config import Settings
from mesh.errors import ApiError, abort, validation_error
from mesh.front import Fronts, port_free
from mesh.local_calls import LocalCallServer, unary_handlers
from mesh.logs import REQUEST_ID, new_request_id
from mesh.metrics import rpc_figures, status_name
from mesh.tracing import end_span, start_server_span

log = logging.getLogger("mesh.server")

REQUEST_ID_HEADER = "x-request-id"
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
SERVER_OPTIONS: list[tuple[str, Any]] = [
    # Without this, a second server could silently share a port already taken.
    ("grpc.so_reuseport", 0),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
]

HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name

Hook = Callable[[], Awaitable[None]]
# Returns whether the service can do its work now (its feed, its database, its journal).
HealthCheck = Callable[[], Awaitable[bool]]
HEALTH_INTERVAL_S = 0.5
# Callable while a service that opens early is still starting: its health and reflection.
_ALWAYS_OPEN = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class ServeError(RuntimeError):
    """A server could not start (for example: its port is taken)."""


@dataclass(frozen=True, slots=True)
class Service:
    """A generated servicer registration: `add_XServicer_to_server`, the servicer, its full name."""

    add_to_server: Callable[[Any, grpc.aio.Server], None]
    servicer: object
    name: str


class CallInterceptor(grpc.aio.ServerInterceptor):
    """Assign a request id, authenticate, map ApiError to a rich status and log each call."""

    def __init__(self, policy: CallerPolicy) -> None:
        self._policy = policy
        # Set while a service that opened its port early is still starting (recovering).
        self.starting: str | None = None
        self.streams = OpenStreams()

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        metadata = tuple(handler_call_details.invocation_metadata or ())
        request_id = _metadata_value(metadata, REQUEST_ID_HEADER) or new_request_id()
        try:
            caller: str | None = self._policy.authenticate(method, metadata)
            denied: ApiError | None = None
        except ApiError as exc:
            caller, denied = None, exc
        if self.starting is not None and not method.startswith(_ALWAYS_OPEN):
            denied = denied or ApiError("SERVICE_UNAVAILABLE", self.starting)
        kind = (
            "bidi_stream"
            if handler.request_streaming
            else "unary"
            if handler.unary_unary is not None
            else "server_stream"
        )
        shard = bearer_shard(metadata) if caller is not None else 0
        call = _Call(method, request_id, caller, denied, kind, metadata, shard, self.streams)
        if handler.request_streaming:
            # No cfd RPC streams requests; reflection does and is public. Deny, never bypass.
            if denied is not None:
                return _denied_stream_handler(handler, denied)
            behaviour = handler.stream_stream
            if behaviour is None or not inspect.isasyncgenfunction(behaviour):
                return handler
            return grpc.stream_stream_rpc_method_handler(
                call.stream(behaviour, streamed_requests=True),
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                call.unary(handler.unary_unary),
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                call.stream(handler.unary_stream),
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        return handler


class OpenStreams:
    """The server-streaming calls under way, so that a stopping service can end them.

    A feed (prices, events, ticks) never ends by itself: left open, every stream would hold
    the graceful stop for its whole grace period. On `close`, each ends with UNAVAILABLE, which
    tells its client to reconnect (to this service once it is back, or to another), and a stream
    opened after that is refused the same way.
    """

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()
        self.closing: str | None = None

    def close(self, reason: str) -> None:
        """End every open stream with UNAVAILABLE (`reason`), and refuse new ones."""
        self.closing = reason
        for task in list(self.tasks):
            task.cancel()


class _Malformed:
    """A request whose bytes did not parse; the call fails with its error before the handler."""

    __slots__ = ("error",)

    def __init__(self, error: ApiError) -> None:
        self.error = error


def _tolerant(
    deserializer: Callable[[bytes], Any] | None,
) -> Callable[[bytes], Any] | None:
    """Wrap a request deserializer so that bad bytes become INVALID_ARGUMENT, not UNKNOWN.

    gRPC itself answers a deserializer's exception with UNKNOWN and logs a traceback; a
    malformed request (a string that is not UTF-8, a truncated field) is the caller's error.
    """
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # DecodeError from protobuf; any deserializer's failure alike
            problem = f"not a valid protobuf message: {exc}"
            return _Malformed(validation_error("request", problem))

    return parse


async def _parsed(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """Yield a request stream's messages; a malformed one fails the call."""
    async for request in requests:
        if isinstance(request, _Malformed):
            raise request.error
        yield request


def _denied_stream_handler(
    handler: grpc.RpcMethodHandler[Any, Any], denied: ApiError
) -> grpc.RpcMethodHandler[Any, Any]:
    async def refuse(_requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await abort(context, denied)

    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse, **kwargs)
    return grpc.stream_unary_rpc_method_handler(refuse, **kwargs)


def _metadata_value(metadata: Sequence[tuple[str, str | bytes]], key: str) -> str | None:
    for name, value in metadata:
        if name == key:
            return value.decode() if isinstance(value, bytes) else value
    return None


class _Call:
    """Per-call context the wrapped behaviours share."""

    def __init__(
        self,
        method: str,
        request_id: str,
        caller: str | None,
        denied: ApiError | None,
        kind: str = "unary",
        metadata: Sequence[tuple[str, str | bytes]] = (),
        shard: int = 0,
        streams: OpenStreams | None = None,
    ):
        self.method = method
        self.request_id = request_id
        self.caller = caller
        self.denied = denied
        self.figures = rpc_figures(kind, method)
        self.metadata = metadata
        # The caller's shard claim (`mesh.auth.SHARD_CLAIM`), read once its token verified.
        self.shard = shard
        self.streams = streams or OpenStreams()

    def _enter(self) -> None:
        REQUEST_ID.set(self.request_id)
        bind_subject(self.caller)
        bind_caller_shard(self.shard)
        # Current for the rest of the call's task: its log lines carry the trace id.
        self.span, _token = start_server_span(self.method.lstrip("/"), self.metadata)

    def _check(self, request: object) -> None:
        """Refuse the call of a denied caller, then of a request that did not parse."""
        if self.denied is not None:
            raise self.denied
        if isinstance(request, _Malformed):
            raise request.error

    def unary(self, behaviour: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        async def run(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            self._enter()
            started = time.perf_counter()
            self.figures.started()
            try:
                self._check(request)
                return await behaviour(request, context)
            except Exception as exc:
                await self._fail(context, exc, started)
            finally:
                self._done(context, started)
                # Checked first: building the fields of every call costs even when unlogged.
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("call done", extra={"fields": self._fields(started)})

        return run

    def stream(
        self, behaviour: Callable[..., Any], *, streamed_requests: bool = False
    ) -> Callable[..., Any]:
        """Wrap a server-streaming behaviour; `streamed_requests` when it reads a request stream."""
        if not inspect.isasyncgenfunction(behaviour):
            # Coroutine-style streams (health Watch) write through the context themselves.
            return self.unary(behaviour)

        async def run(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            self._enter()
            started = time.perf_counter()
            self.figures.started()
            if log.isEnabledFor(logging.DEBUG):
                log.debug("stream opened", extra={"fields": {"method": self.method}})
            streams = self.streams
            task = asyncio.current_task()
            if task is not None:
                streams.tasks.add(task)
            try:
                if streams.closing is not None:
                    raise ApiError("SERVICE_UNAVAILABLE", streams.closing)
                if streamed_requests:
                    request = _parsed(request)
                else:
                    self._check(request)
                async for item in behaviour(request, context):
                    yield item
            except asyncio.CancelledError:
                if streams.closing is None:
                    raise
                # Ended by the service's stop: the client reconnects.
                await abort(context, ApiError("SERVICE_UNAVAILABLE", streams.closing))
            except Exception as exc:
                await self._fail(context, exc, started)
            finally:
                streams.tasks.discard(task)
                self._done(context, started)

        return run

    def _done(self, context: grpc.aio.ServicerContext[Any, Any], started: float) -> None:
        """Count the call's status and latency (a cancelled call has no status: CANCELLED)."""
        code = status_name(context)
        if code == "OK" and context.cancelled():
            code = "CANCELLED"
        self.figures.done(code, time.perf_counter() - started)
        end_span(self.span, None if code == "OK" else code)

    def _fields(self, started: float) -> dict[str, object]:
        return {"method": self.method, "ms": round((time.perf_counter() - started) * 1000, 3)}

    async def _fail(
        self, context: grpc.aio.ServicerContext[Any, Any], exc: Exception, started: float
    ) -> None:
        """Turn a handler's exception into the call's status (cancellation never gets here)."""
        if isinstance(exc, grpc.aio.AbortError):
            raise exc
        if isinstance(exc, ApiError):
            fields = self._fields(started) | {"reason": exc.reason}
            log.info("call failed: %s", exc.message, extra={"fields": fields})
            await abort(context, exc)
        if isinstance(exc, NotImplementedError):
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{self.method} is not implemented")
        log.error("unexpected error in %s", self.method, exc_info=exc)
        await abort(context, ApiError("INTERNAL", "internal error; see the service log"))


async def serve(
    name: str,
    port: int,
    services: Sequence[Service],
    *,
    settings: Settings,
    verifier: TokenVerifier | None,
    on_start: Hook | None = None,
    on_stop: Hook | None = None,
    grace: float = 5.0,
    stop: asyncio.Event | None = None,
    health_check: HealthCheck | None = None,
    open_early: bool = False,
    fronts: int = 0,
) -> None:
    """Run a gRPC server until SIGTERM/SIGINT (or `stop`), then drain and shut down cleanly.

    `on_start` runs before the port accepts calls (recovery, connections); `on_stop` after the
    last call has drained (flush, close). With `open_early`, the port opens before `on_start`:
    health answers NOT_SERVING and every other call UNAVAILABLE until it is done. While the
    server runs, `health_check` is asked every HEALTH_INTERVAL_S whether the service can work;
    its answer is the health status of the process and of each service.

    With `fronts`, that many front processes (`mesh.front`) listen on the port and pass the
    calls on to this process, which then listens on private Unix-domain sockets only.
    """
    policy = CallerPolicy(
        verifier,
        settings.internal_token,
        require_email_verification=settings.require_email_verification,
    )
    interceptor = CallInterceptor(policy)
    server = grpc.aio.server(interceptors=[interceptor], options=SERVER_OPTIONS)
    for service in services:
        service.add_to_server(service.servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [s.name for s in services]
    reflection.enable_server_reflection([*names, HEALTH_SERVICE, reflection.SERVICE_NAME], server)
    address = f"{settings.bind_host}:{port}"
    taken = f"{name}: cannot listen on {address}: is the port already in use?"
    front: Fronts | None = None
    local: LocalCallServer | None = None
    if fronts > 0:
        if not port_free(address):
            raise ServeError(taken)
        handlers = unary_handlers((s.add_to_server, s.servicer) for s in services)
        local = LocalCallServer(handlers, interceptor.intercept_service)
        front = Fronts(fronts, address, local.methods, name)
    try:
        bound = server.add_insecure_port(front.grpc_address if front else address)
    except RuntimeError as exc:
        raise ServeError(taken) from exc
    if bound == 0:
        raise ServeError(taken)

    async def open_port() -> None:
        await server.start()
        if front is not None and local is not None:
            await local.start(front.calls_path)
            await front.start()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    status = _Health(health_servicer, ("", *names))
    watcher: asyncio.Task[None] | None = None
    try:
        if open_early:
            interceptor.starting = f"{name} is starting; retry shortly"
            await status.set(False)
            await open_port()
        if on_start is not None:
            await on_start()
        interceptor.starting = None
        if not open_early:
            await open_port()
        await status.set(True)
        if health_check is not None:
            watcher = asyncio.create_task(status.watch(name, health_check))
        fields = {"services": names, "fronts": fronts}
        log.info("%s listening on %s", name, address, extra={"fields": fields})
        await stop.wait()
        log.info("%s shutting down", name)
        if watcher is not None:
            watcher.cancel()
        await health_servicer.enter_graceful_shutdown()
        # Feeds never end by themselves: end them now rather than at the end of the grace.
        interceptor.streams.close(f"{name} is shutting down; reconnect")
        if front is not None:
            # The fronts finish the calls under way through this process, then exit.
            await front.stop(grace)
        await server.stop(grace)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if front is not None:
            await front.stop(0)
        if local is not None:
            await local.stop()
        if open_early:
            await server.stop(0)
        if on_stop is not None:
            await on_stop()
    log.info("%s stopped", name)


class _Health:
    """The health status of the process ("") and of each of its services, set together."""

    def __init__(self, servicer: health.aio.HealthServicer, names: Sequence[str]) -> None:
        self._servicer = servicer
        self._names = names
        self.serving: bool | None = None

    async def set(self, serving: bool) -> None:
        """Report SERVING or NOT_SERVING for every name."""
        self.serving = serving
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service_name in self._names:
            await self._servicer.set(service_name, status)

    async def watch(self, name: str, check: HealthCheck) -> None:
        """Follow `check`, logging each change of the service's health."""
        while True:
            await asyncio.sleep(HEALTH_INTERVAL_S)
            try:
                serving = await check()
            except Exception:
                log.exception("%s: the health check failed", name)
                serving = False
            if serving != self.serving:
                log.log(
                    logging.INFO if serving else logging.WARNING,
                    "%s is %s",
                    name,
                    "SERVING again" if serving else "NOT_SERVING",
                )
                await self.set(serving)
