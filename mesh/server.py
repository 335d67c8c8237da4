"""The shell every gRPC service runs in: interceptors, health, reflection, graceful shutdown."""

from __future__ import annotations

import asyncio
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

from mesh.auth import CallerPolicy, TokenVerifier, bind_subject
from mesh.config import Settings
from mesh.errors import ApiError, abort
from mesh.logs import REQUEST_ID, new_request_id

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
        call = _Call(method, request_id, caller, denied)
        if handler.request_streaming:
            # No cfd RPC streams requests; reflection does and is public. Deny, never bypass.
            return handler if denied is None else _denied_stream_handler(handler, denied)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                call.unary(handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                call.stream(handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler


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

    def __init__(self, method: str, request_id: str, caller: str | None, denied: ApiError | None):
        self.method = method
        self.request_id = request_id
        self.caller = caller
        self.denied = denied

    def _enter(self) -> None:
        REQUEST_ID.set(self.request_id)
        bind_subject(self.caller)

    def unary(self, behaviour: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        async def run(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            self._enter()
            started = time.perf_counter()
            try:
                if self.denied is not None:
                    raise self.denied
                return await behaviour(request, context)
            except Exception as exc:
                await self._fail(context, exc, started)
            finally:
                # Checked first: building the fields of every call costs even when unlogged.
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("call done", extra={"fields": self._fields(started)})

        return run

    def stream(self, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        if not inspect.isasyncgenfunction(behaviour):
            # Coroutine-style streams (health Watch) write through the context themselves.
            return self.unary(behaviour)

        async def run(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            self._enter()
            started = time.perf_counter()
            try:
                if self.denied is not None:
                    raise self.denied
                async for item in behaviour(request, context):
                    yield item
            except Exception as exc:
                await self._fail(context, exc, started)

        return run

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
) -> None:
    """Run a gRPC server until SIGTERM/SIGINT (or `stop`), then drain and shut down cleanly.

    `on_start` runs before the port accepts calls (recovery, connections); `on_stop` after the
    last call has drained (flush, close).
    """
    server = grpc.aio.server(
        interceptors=[CallInterceptor(CallerPolicy(verifier, settings.internal_token))],
        options=SERVER_OPTIONS,
    )
    for service in services:
        service.add_to_server(service.servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [s.name for s in services]
    reflection.enable_server_reflection([*names, HEALTH_SERVICE, reflection.SERVICE_NAME], server)
    address = f"{settings.bind_host}:{port}"
    taken = f"{name}: cannot listen on {address}: is the port already in use?"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise ServeError(taken) from exc
    if bound == 0:
        raise ServeError(taken)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        if on_start is not None:
            await on_start()
        await server.start()
        for service_name in ("", *names):
            await health_servicer.set(service_name, health_pb2.HealthCheckResponse.SERVING)
        log.info("%s listening on %s", name, address, extra={"fields": {"services": names}})
        await stop.wait()
        log.info("%s shutting down", name)
        await health_servicer.enter_graceful_shutdown()
        await server.stop(grace)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if on_stop is not None:
            await on_stop()
    log.info("%s stopped", name)
