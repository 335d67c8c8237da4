"""The edge application: one place wiring routes, middleware and the shared upstream state."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute, request_response
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from edge.auth import JwksKeys
from edge.channels import Channels
from edge.config import EdgeConfig
from edge.descriptors import Contracts, Rpc, load
from edge.errors import JSON_TYPE, dumps, plain_error
from edge.hub import Hub
from edge.middleware.dispatch import ApiDispatch
from edge.middleware.observe import ObserveMiddleware
from edge.middleware.ratelimit import RateLimitMiddleware
from edge.middleware.requestid import RequestIdMiddleware, request_id_of
from edge.openapi import build_openapi
from edge.rest import RestGateway
from edge.tickers import TickerReplies
from edge.upstream import Metadata, Upstreams, service_addresses, shard_addresses
from edge.ws import Connection, WsLimits
from mesh.auth import AUTHORIZATION, INTERNAL_TOKEN_HEADER
from mesh.config import Settings
from mesh.ratelimit import RateLimiter, create_rate_limiter
from mesh.revocation import open_revoked_tokens
from mesh.server import REQUEST_ID_HEADER
from mesh.tokens import TokenConfig
from mesh.tracing import TRACE_ID_HEADER, TRACEPARENT, outgoing

log = logging.getLogger("edge.app")

STATIC_DIR = Path(__file__).resolve().parent / "static"
WEB_DIST = Path(__file__).resolve().parent.parent / "web" / "dist"
# The documentation site `make docs` builds; served at DOCS_SITE_PATH when present.
DOCS_SITE = Path(__file__).resolve().parent.parent / "build" / "docs-site"
DOCS_SITE_PATH = "/docs/site"
FORWARDED_FOR = "x-forwarded-for"
FORWARDED_USER_AGENT = "x-forwarded-user-agent"
READY_TIMEOUT_S = 1.0
WS_POLICY_VIOLATION = 1008
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@dataclass
class EdgeState:
    """What the routes share: contracts, connections, the hub and the limits."""

    settings: Settings
    config: EdgeConfig
    contracts: Contracts
    upstreams: Upstreams
    hub: Hub
    channels: Channels
    keys: JwksKeys
    limiter: RateLimiter
    gateway: RestGateway
    openapi: bytes


def web_root() -> Path:
    """Return the directory served at `/`: the built web UI when present, else the minimal page."""
    return WEB_DIST if (WEB_DIST / "index.html").is_file() else STATIC_DIR


def docs_site_routes(site: Path) -> list[BaseRoute]:
    """Return the routes of the documentation site: the built site, or a 404 naming `make docs`."""

    async def to_index(_request: Request) -> Response:
        return RedirectResponse(f"{DOCS_SITE_PATH}/")

    async def not_built(_request: Request) -> Response:
        return PlainTextResponse(
            "The documentation site is not built; run `make docs`.", status_code=404
        )

    served: BaseRoute
    if (site / "index.html").is_file():
        served = Mount(DOCS_SITE_PATH, StaticFiles(directory=site, html=True))
    else:
        served = Route(DOCS_SITE_PATH + "/{path:path}", not_built)
    return [Route(DOCS_SITE_PATH, to_index), served]


def create_app(
    settings: Settings,
    config: EdgeConfig | None = None,
    *,
    contracts: Contracts | None = None,
    limiter: RateLimiter | None = None,
    keys: JwksKeys | None = None,
    addresses: dict[str, str] | None = None,
    tokens: TokenConfig | None = None,
    docs_site: Path = DOCS_SITE,
) -> Starlette:
    """Build the edge for these settings; the optional parts let tests substitute their own."""
    config = EdgeConfig() if config is None else config
    contracts = load() if contracts is None else contracts
    upstreams = Upstreams(
        service_addresses(settings) if addresses is None else addresses,
        shard_addresses(settings),
    )
    hub = Hub(backlog=config.ws_event_backlog)
    revoked = open_revoked_tokens(settings)
    if keys is None:
        keys = JwksKeys.in_data_dir(settings.data_dir, tokens or TokenConfig.from_env(), revoked)
    limiter = create_rate_limiter(settings.redis_url) if limiter is None else limiter

    def metadata_for(request: Request, rpc: Rpc) -> Metadata:
        pairs: list[tuple[str, str]] = [(REQUEST_ID_HEADER, request_id_of(request.scope))]
        pairs.extend(outgoing())
        authorization = request.headers.get(AUTHORIZATION)
        if authorization:
            pairs.append((AUTHORIZATION, authorization))
        if request.client is not None:
            pairs.append((FORWARDED_FOR, request.client.host))
            if rpc.service == "cfd.v1.AccountService":
                # The accounts service trusts the forwarded address only from internal callers.
                pairs.append((INTERNAL_TOKEN_HEADER, settings.internal_token))
                agent = request.headers.get("user-agent", "")
                # For the session list; metadata values must be printable ASCII.
                if agent and agent.isascii() and agent.isprintable():
                    pairs.append((FORWARDED_USER_AGENT, agent[:256]))
        return tuple(pairs)

    channels = Channels(contracts, upstreams, hub, settings.internal_token)
    gateway = RestGateway(
        contracts.rpcs,
        upstreams,
        metadata_for,
        max_body_bytes=config.max_body_bytes,
        timeout_s=config.upstream_timeout_s,
        tickers=TickerReplies(hub, channels.prices),
    )
    state = EdgeState(
        settings=settings,
        config=config,
        contracts=contracts,
        upstreams=upstreams,
        hub=hub,
        channels=channels,
        keys=keys,
        limiter=limiter,
        gateway=gateway,
        openapi=dumps(build_openapi(contracts, gateway.routes)),
    )
    limits = WsLimits(
        max_frame_bytes=config.ws_max_frame_bytes,
        max_subscriptions=config.ws_max_subscriptions,
        event_backlog=config.ws_event_backlog,
        send_timeout_s=config.ws_send_timeout_s,
        rate_limit=config.ws_rate_limit,
    )

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "SERVING"})

    async def readyz(_request: Request) -> Response:
        services = await upstreams.health(READY_TIMEOUT_S)
        ready = all(status == "SERVING" for status in services.values())
        body = {"status": "SERVING" if ready else "NOT_SERVING", "services": services}
        return JSONResponse(body, status_code=200 if ready else 503)

    async def openapi(_request: Request) -> Response:
        return Response(state.openapi, media_type=JSON_TYPE)

    async def docs(_request: Request) -> Response:
        return FileResponse(STATIC_DIR / "docs.html")

    async def jwks(_request: Request) -> Response:
        return JSONResponse(keys.document(), headers={"cache-control": "max-age=60"})

    async def websocket(ws: WebSocket) -> None:
        client = ws.client.host if ws.client is not None else "unknown"
        # Opening connections counts against the address too, so floods of them are refused.
        decision = await limiter.hit(f"ws:connect:{client}", config.ws_rate_limit, 60)
        if not decision.allowed:
            await ws.close(code=WS_POLICY_VIOLATION)
            return
        connection = Connection(ws, hub, state.channels, keys, limiter, limits, client)
        await connection.run()

    async def internal_error(request: Request, exc: Exception) -> Response:
        log.error("unhandled error serving %s", request.url.path, exc_info=exc)
        return plain_error(grpc.StatusCode.INTERNAL, "internal error; see the edge log")

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[dict[str, Any]]:
        await revoked.start()
        try:
            yield {"edge": state}
        finally:
            await hub.close()
            await upstreams.close()
            await limiter.aclose()
            await revoked.aclose()

    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/openapi.json", openapi),
        Route("/docs", docs),
        *docs_site_routes(docs_site),
        Route("/.well-known/jwks.json", jwks),
        WebSocketRoute("/v1/ws", websocket),
        Mount("/_edge", StaticFiles(directory=STATIC_DIR)),
        Mount("/", StaticFiles(directory=web_root(), html=True)),
    ]
    middleware = [
        Middleware(ObserveMiddleware),
        Middleware(RequestIdMiddleware),
        Middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=ALL_METHODS,
            allow_headers=["authorization", "content-type", "x-request-id"],
            expose_headers=["x-request-id", "retry-after", TRACEPARENT, TRACE_ID_HEADER],
            max_age=600,
        ),
        Middleware(
            RateLimitMiddleware,
            limiter=limiter,
            keys=keys,
            per_ip=config.rate_limit_ip,
            per_user=config.rate_limit_user,
        ),
        Middleware(ApiDispatch, api=request_response(gateway.handle)),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={Exception: internal_error},
    )
    app.state.edge = state
    return app


def state_of(app: Starlette) -> EdgeState:
    """Return the shared state of an app made by `create_app`."""
    state: EdgeState = app.state.edge
    return state
