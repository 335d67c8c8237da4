"""The spot exchange: central limit order books and spot wallets (API.md "Spot exchange").

Scales
    A price is a count of the market's ticks, a base quantity a count of its lots, USD an
    integer number of micro-USD; price x quantity is always a whole number of micro-USD (see
    `markets`). A wallet holds USD and each market's base asset (in that market's lots).

Matching (API.md "Matching semantics")
    Price-time priority: an incoming order trades with the best opposite level while it
    crosses its limit (a market order: any price), oldest order first, each trade at the
    resting (maker) order's price. Per fill the fee is price x quantity x rate rounded up to
    a micro-USD, credited to the house: the buyer pays quote + fee, the seller receives
    quote - fee. GTC rests; IOC expires its rest; FOK trades its whole quantity now or
    EXPIRES with no fill; post-only that would take is REJECTED (POST_ONLY_WOULD_TAKE); a
    market order into an empty side is REJECTED (NO_LIQUIDITY). An incoming order never
    trades with its own account's resting order: that order is cancelled (cancel-oldest,
    `SpotOrderCancelled.self_trade`) and matching goes on.

Locking
    A buy limit locks price x quantity plus the taker fee on it (rounded up); while it rests
    it holds exactly that for its remaining quantity, so a fill below its limit or at the
    maker fee releases the difference. A sell locks its base quantity. Cancel and expiry
    release the rest. A market buy locks nothing: it pays each fill from the available USD.

Choices where API.md leaves room
    - Rejections change nothing (no id, no event); a placement rejected for NO_LIQUIDITY,
      POST_ONLY_WOULD_TAKE, INSUFFICIENT_BALANCE or QUANTITY_TOO_SMALL carries the order with
      status REJECTED as its payload. A buy limit needs its whole lock available; a sell its
      whole quantity; a market buy at least one lot at the best ask with its fee.
    - `quote_quantity` caps price x quantity (fees come on top, and all must fit the
      available USD). Such an order is FILLED when less than one lot at its last trade price
      is left of the budget, else EXPIRED; below one lot at the best ask it is
      QUANTITY_TOO_SMALL. A fill-or-kill order needs a `quantity`.
    - Market orders never rest (GTC and IOC alike expire the rest); post-only needs a GTC
      limit. The fill-or-kill check counts only other accounts' orders (own ones would be
      cancelled, not traded) and, for a market buy, what the available USD pays for.
    - Fees rounded up per fill can exceed the fee locked for the whole quantity by one
      micro-USD per fill at exactly the limit price: the excess comes from the available
      USD, and only when that is empty does the house forgo it.
    - A client_order_id is unique per account across spot commands and bound to the kind
      and target of its first accepted command: the same kind and target returns the stored
      result (``duplicate``), anything else is VALIDATION_FAILED. Rejections are not stored.
    - Ids: orders ``s-<seq>``; trade ``t-<n>`` with fills ``t-<n>-m`` (maker), ``t-<n>-t``.
    - Each command that changes a book emits one `SpotBookChanged` with the book's next
      `sequence` and the new totals of the levels it touched (0 = removed).

Snapshots and digests
    `state.encode_state` gives the canonical encoding (everything but `last_seq`),
    `state.spot_digest` its sha256, `state.snapshot` / `state.restore` a header line plus the
    encoding. The same command sequence gives the same encoding.
"""

from __future__ import annotations

from .commands import CancelSpotOrder, CreditWallet, DebitWallet, PlaceSpotOrder, SpotCommand
from .enums import (
    SPOT_TRANSITIONS,
    IllegalSpotTransitionError,
    Liquidity,
    SpotOrderStatus,
    SpotOrderType,
    TimeInForce,
    check_spot_transition,
)
from .events import (
    SpotBookChanged,
    SpotEvent,
    SpotFillExecuted,
    SpotOrderCancelled,
    SpotOrderFilled,
    SpotOrderPlaced,
    SpotOrderUpdated,
    SpotTradeExecuted,
    WalletChanged,
)
from .exchange import SpotExchange, SpotSequenceError, parse_spot_order_id, spot_order_id
from .markets import (
    QUOTE_ASSET,
    FeeSchedule,
    Market,
    fee_ceil_micros,
    markets_from_instruments,
)
from .results import SpotPayload, SpotResult
from .views import (
    BalanceView,
    BookLevel,
    BookView,
    SpotFillView,
    SpotOrderView,
    SpotPlacement,
)

__all__ = [
    "QUOTE_ASSET",
    "SPOT_TRANSITIONS",
    "BalanceView",
    "BookLevel",
    "BookView",
    "CancelSpotOrder",
    "CreditWallet",
    "DebitWallet",
    "FeeSchedule",
    "IllegalSpotTransitionError",
    "Liquidity",
    "Market",
    "PlaceSpotOrder",
    "SpotBookChanged",
    "SpotCommand",
    "SpotEvent",
    "SpotExchange",
    "SpotFillExecuted",
    "SpotFillView",
    "SpotOrderCancelled",
    "SpotOrderFilled",
    "SpotOrderPlaced",
    "SpotOrderStatus",
    "SpotOrderType",
    "SpotOrderUpdated",
    "SpotOrderView",
    "SpotPayload",
    "SpotPlacement",
    "SpotResult",
    "SpotSequenceError",
    "SpotTradeExecuted",
    "TimeInForce",
    "WalletChanged",
    "check_spot_transition",
    "fee_ceil_micros",
    "markets_from_instruments",
    "parse_spot_order_id",
    "spot_order_id",
]
