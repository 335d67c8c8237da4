"""Request ids: accept a sane `x-request-id` or make one, echo it, log every request with it."""

from __future__ import annotations

import logging
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mesh.logs import REQUEST_ID, new_request_id

HEADER = b"x-request-id"
_VALID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")

log = logging.getLogger("edge.access")


def request_id_of(scope: Scope) -> str:
    """Return the request id the middleware gave this request."""
    value = scope.get("state", {}).get("request_id", "")
    return str(value)


class RequestIdMiddleware:
    """Give every HTTP request and WebSocket an id, in the response, the logs and upstream."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers", ())).get(HEADER, b"")
        request_id = incoming.decode() if _VALID.match(incoming) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((HEADER, request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            # Checked first: the fields of every request cost even when the log drops them.
            if log.isEnabledFor(logging.INFO):
                client = scope.get("client") or ("", 0)
                fields = {
                    "method": scope.get("method", "WS"),
                    "path": scope.get("path", ""),
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 3),
                    "client": client[0],
                }
                log.info("request", extra={"fields": fields})
