"""The market maker's Prometheus metrics, on its own `/metrics` port (CFD_MAKER_METRICS_PORT).

`cfd_maker_connected` is its health: 1 while it is signed in and its calls to the exchange
succeed, 0 while it waits to reconnect. `cfd status` and `cfd up` read it.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CONNECTED = Gauge(
    "cfd_maker_connected",
    "1 while the maker is signed in and reaching the exchange, 0 while it reconnects.",
)
QUOTES = Gauge("cfd_maker_quotes", "Orders the maker wants resting, by market.", ("market",))
ROUNDS = Counter(
    "cfd_maker_rounds", "Rounds of quoting around a new mid, by market.", ("market",)
)
PLACED = Counter("cfd_maker_orders_placed", "Quotes placed, by market.", ("market",))
CANCELLED = Counter("cfd_maker_orders_cancelled", "Quotes cancelled, by market.", ("market",))
RECONNECTS = Counter(
    "cfd_maker_reconnects", "Times the maker lost the exchange and connected again."
)
