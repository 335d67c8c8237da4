"""Observe every HTTP request (its metrics by route template, and its trace) and WebSocket.

Each request runs in a server span continuing the browser's `traceparent` (or starting a
trace); the answer carries the trace in `traceparent` and its id in `x-trace-id`, so a user's
report can be matched to the log lines of every service that served it. A WebSocket
connection runs in one span as well, which the upstream streams it opens continue.
"""

from __future__ import annotations

import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge.metrics import HTTP_REQUESTS, HTTP_SECONDS, METHODS, route_of
from mesh.tracing import (
    TRACE_ID_HEADER,
    TRACEPARENT,
    end_span,
    start_server_span,
    traceparent_of,
)


class ObserveMiddleware:
    """Count and time each HTTP request by method, route template and status, inside a span."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._connection(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = str(scope.get("method", ""))
        method = method if method in METHODS else "OTHER"
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        span, token = start_server_span(f"HTTP {method}", headers)
        parent = traceparent_of(span)
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                answer = MutableHeaders(scope=message)
                answer[TRACEPARENT] = parent
                answer[TRACE_ID_HEADER] = parent.split("-")[1]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            route = route_of(scope)
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_SECONDS.labels(method, route).observe(time.perf_counter() - started)
            if span.is_recording():
                span.update_name(f"HTTP {method} {route}")
                span.set_attribute("http.status_code", status)
            end_span(span, f"HTTP {status}" if status >= 500 else None, token)

    async def _connection(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run a WebSocket connection in one span: the streams it opens upstream continue it."""
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        span, token = start_server_span("WS /v1/ws", headers)
        try:
            await self.app(scope, receive, send)
        finally:
            end_span(span, None, token)
