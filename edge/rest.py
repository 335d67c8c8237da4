"""REST by transcoding: one generic endpoint serving every HTTP binding of the public RPCs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import grpc
from google.protobuf import message
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from edge.descriptors import HttpBinding, Rpc
from edge.errors import (
    JSON_TYPE,
    api_error_response,
    dumps,
    error_response,
    plain_error,
    status_from_rpc_error,
    status_json,
)
from edge.metrics import ROUTE_KEY
from edge.tickers import TickerReplies
from edge.transcode import build_request, to_json
from edge.upstream import Metadata, Upstreams
from mesh.errors import ApiError, validation_error

log = logging.getLogger("edge.rest")

NDJSON_TYPE = "application/x-ndjson"
# How long a stream may take to produce its first message (or fail) before the 200 goes out.
STREAM_START_WAIT_S = 0.5

# Replies reused for this many seconds: public, the same for every caller and unchanged while
# the services run (instrument specifications: no price, no money). Never an account's data.
SHARED_REPLIES_S = {"/cfd.v1.MarketDataService/ListInstruments": 60.0}
# Replies kept until the price feed delivers a newer quote of their symbol (see `edge.tickers`).
TICKER_PATH = "/cfd.v1.MarketDataService/GetTicker"

MetadataFor = Callable[[Request, Rpc], Metadata]
UNSUPPORTED_MEDIA_TYPE = 415


@dataclass(frozen=True, slots=True)
class Route:
    """An HTTP binding with the RPC it calls."""

    binding: HttpBinding
    rpc: Rpc


def routes_of(rpcs: Sequence[Rpc]) -> list[Route]:
    """Return every binding, the most specific templates first."""
    routes = [Route(b, rpc) for rpc in rpcs for b in rpc.bindings]
    routes.sort(
        key=lambda r: (
            not r.binding.template.verb,
            -r.binding.template.literal_count,
            len(r.binding.template.variables),
        )
    )
    return routes


class RestGateway:
    """The ASGI endpoint behind every `/v1/...` path that is not the WebSocket."""

    def __init__(
        self,
        rpcs: Sequence[Rpc],
        upstreams: Upstreams,
        metadata_for: MetadataFor,
        *,
        max_body_bytes: int,
        timeout_s: float,
        tickers: TickerReplies | None = None,
    ) -> None:
        self._routes = routes_of(rpcs)
        self._upstreams = upstreams
        self._metadata_for = metadata_for
        self._max_body_bytes = max_body_bytes
        self._timeout_s = timeout_s
        self._shared: dict[str, tuple[float, bytes]] = {}
        self._tickers = tickers

    @property
    def routes(self) -> list[Route]:
        """Return the routes in matching order."""
        return list(self._routes)

    def match(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]] | bool | None:
        """Return the route and path values, False when only the method differs, else None."""
        path_matched = False
        for route in self._routes:
            values = route.binding.template.match(raw_path)
            if values is None:
                continue
            if route.binding.method == method:
                return route, values
            path_matched = True
        return False if path_matched else None

    async def handle(self, request: Request) -> Response:
        """Serve one REST request."""
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        found = self.match(request.method, raw_path.decode("latin-1").split("?", 1)[0])
        if found is None:
            return plain_error(grpc.StatusCode.NOT_FOUND, f"no route for {request.url.path}")
        if found is False:
            return plain_error(
                grpc.StatusCode.UNIMPLEMENTED,
                f"method {request.method} is not allowed on {request.url.path}",
                http=405,
            )
        assert not isinstance(found, bool)
        route, values = found
        request.scope[ROUTE_KEY] = route.binding.template.text
        try:
            body = await self._read_body(request)
            content_type = request.headers.get("content-type")
            if body and route.binding.body and not is_json_type(content_type):
                return api_error_response(
                    validation_error(
                        "content-type", "a request body must be sent as application/json"
                    ),
                    http=UNSUPPORTED_MEDIA_TYPE,
                )
            upstream_request = build_request(
                route.binding,
                route.rpc.input_class,
                values,
                request.query_params.multi_items(),
                body,
            )
        except ApiError as exc:
            return api_error_response(exc)
        metadata = self._metadata_for(request, route.rpc)
        if route.rpc.server_streaming:
            return await self._stream(route, upstream_request, metadata)
        return await self._unary(route, upstream_request, metadata)

    async def _read_body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_body_bytes:
            raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self._max_body_bytes:
                raise self._too_large()
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self) -> ApiError:
        return validation_error(
            "body", f"the request body is larger than {self._max_body_bytes} bytes"
        )

    async def _unary(self, route: Route, request: message.Message, metadata: Metadata) -> Response:
        path = route.rpc.path
        keep_s = SHARED_REPLIES_S.get(path) if request.ByteSize() == 0 else None
        if keep_s is not None:
            shared = self._shared.get(path)
            if shared is not None and time.monotonic() < shared[0]:
                return Response(shared[1], media_type=JSON_TYPE)
        try:
            if self._tickers is not None and path == TICKER_PATH:
                symbol: str = cast(Any, request).symbol
                body = await self._tickers.read(
                    symbol, lambda: self._call(route, request, metadata)
                )
            else:
                _, body = await self._call(route, request, metadata)
        except grpc.aio.AioRpcError as exc:
            return error_response(status_from_rpc_error(exc, route.rpc.service))
        if keep_s is not None:
            self._shared[path] = (time.monotonic() + keep_s, body)
        return Response(body, media_type=JSON_TYPE)

    async def _call(
        self, route: Route, request: message.Message, metadata: Metadata
    ) -> tuple[message.Message, bytes]:
        """Call the route's RPC; return the reply and its JSON."""
        call = self._upstreams.unary(route.rpc, self._upstreams.shard_for(metadata))
        reply = await call(request, metadata=metadata, timeout=self._timeout_s)
        return reply, dumps(to_json(reply, route.binding.response_body))

    async def _stream(self, route: Route, request: message.Message, metadata: Metadata) -> Response:
        call = self._upstreams.stream(route.rpc, self._upstreams.shard_for(metadata))(
            request, metadata=metadata
        )
        first = asyncio.ensure_future(call.read())
        done, _ = await asyncio.wait({first}, timeout=STREAM_START_WAIT_S)
        if done:
            try:
                item = first.result()
            except grpc.aio.AioRpcError as exc:
                return error_response(status_from_rpc_error(exc, route.rpc.service))
            if item is grpc.aio.EOF:
                return Response(b"", media_type=NDJSON_TYPE)
        return _UpstreamStream(call, first, _ndjson(call, first, route))


def is_json_type(header: str | None) -> bool:
    """Tell whether a content-type is `application/json`, with at most `charset=utf-8`.

    JSON exchanged between systems is UTF-8 (RFC 8259), so another charset is refused, and so
    is any other parameter: Envoy's route for this rule accepts exactly the same.
    """
    if header is None:
        return False
    media, *params = header.split(";")
    if media.strip().lower() != JSON_TYPE or len(params) > 1:
        return False
    if not params:
        return True
    name, _, value = params[0].partition("=")
    return name.strip().lower() == "charset" and value.strip().strip('"').lower() in (
        "utf-8",
        "utf8",
    )


class _UpstreamStream(StreamingResponse):
    """A streamed response that cancels its upstream call however the response ends."""

    def __init__(
        self,
        call: grpc.aio.UnaryStreamCall[Any, Any],
        first: asyncio.Future[Any],
        lines: AsyncIterator[bytes],
    ) -> None:
        super().__init__(lines, media_type=NDJSON_TYPE)
        self._call = call
        self._first = first

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # The body may never have started (a client gone at once): end the call here too.
            self._call.cancel()
            self._first.cancel()


async def _ndjson(
    call: grpc.aio.UnaryStreamCall[Any, Any], first: asyncio.Future[Any], route: Route
) -> AsyncIterator[bytes]:
    """Yield one JSON line per upstream message; a failure becomes a final `{"error": ...}` line."""
    try:
        pending: asyncio.Future[Any] | None = first
        while True:
            if pending is not None:
                item = await pending
                pending = None
            else:
                item = await call.read()
            if item is grpc.aio.EOF:
                return
            yield dumps(to_json(item, route.binding.response_body)) + b"\n"
    except grpc.aio.AioRpcError as exc:
        status = status_from_rpc_error(exc, route.rpc.service)
        yield dumps({"error": status_json(status)}) + b"\n"
    finally:
        call.cancel()
        if not first.done():
            first.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await first
