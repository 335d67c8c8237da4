"""The edge's Prometheus metrics: REST requests by route template, WebSocket connections and
frames.

Requests are labelled with the route template that matched (`/v1/positions/{position_id}`),
never the raw path, so the label set stays bounded. The metrics work in prometheus-client's
multiprocess mode: with several edge workers, the open-connections gauge is summed over the
live ones.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import Scope

from mesh.metrics import LATENCY_BUCKETS

# The scope key where the REST gateway leaves the template of the binding it matched.
ROUTE_KEY = "cfd.route"
WS_PATH = "/v1/ws"
UNMATCHED = "unmatched"
# Methods a client may send anything as: others are counted as OTHER.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HTTP_REQUESTS = Counter(
    "cfd_edge_http_requests", "HTTP requests by method, route template and status.",
    ["method", "route", "status"],
)  # fmt: skip
HTTP_SECONDS = Histogram(
    "cfd_edge_http_request_seconds", "Time to answer an HTTP request, by route template.",
    ["method", "route"], buckets=LATENCY_BUCKETS,
)  # fmt: skip
WS_OPEN = Gauge(
    "cfd_edge_ws_connections", "Open WebSocket connections.", multiprocess_mode="livesum"
)
WS_OPENED = Counter("cfd_edge_ws_connections_opened", "WebSocket connections accepted.")
WS_FRAMES_SENT = Counter("cfd_edge_ws_frames_sent", "WebSocket frames sent to clients.")
WS_FRAMES_CONFLATED = Counter(
    "cfd_edge_ws_frames_conflated",
    "State frames (prices, candles, positions) replaced by a newer one before a slow client "
    "read them.",
)
WS_RESUMES = Counter(
    "cfd_edge_ws_resumes_required",
    "Events subscriptions dropped because the client fell behind; it must resume.",
)
WS_SLOW_CLOSED = Counter(
    "cfd_edge_ws_slow_closed", "Connections closed because the client did not read."
)


def route_of(scope: Scope) -> str:
    """Return the route template a request matched, or `unmatched`."""
    route = scope.get(ROUTE_KEY)
    if isinstance(route, str):
        return route
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path or "/"
    return UNMATCHED
