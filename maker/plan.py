"""What one round of re-quoting does: which resting orders stay, which go, which are placed.

Pure: it compares the quotes wanted now with the maker's open orders as the exchange lists
them, so the same plan comes out after a restart as before it, and an order the exchange
already holds is never placed twice. An order stays when a wanted quote has its side, price and
remaining quantity; every other order goes. Those a new quote would cross are cancelled before
the new quotes are placed (a post-only quote would be refused against them); the others after,
so the book keeps depth while the maker moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from maker.quotes import Quote


@dataclass(frozen=True, slots=True)
class Resting:
    """One of the maker's open orders, as ListSpotOrders shows it."""

    order_id: str
    buy: bool
    price: Decimal
    remaining: Decimal


@dataclass(frozen=True, slots=True)
class Plan:
    """Cancel `cancel_first`, then place `place`, then cancel `cancel_after`."""

    cancel_first: tuple[str, ...]
    place: tuple[Quote, ...]
    cancel_after: tuple[str, ...]

    @property
    def empty(self) -> bool:
        """Tell whether the book is already as wanted."""
        return not (self.cancel_first or self.place or self.cancel_after)


def plan(wanted: Sequence[Quote], resting: Sequence[Resting]) -> Plan:
    """Return the steps that turn the `resting` orders into exactly the `wanted` quotes."""
    stale = list(resting)
    place: list[Quote] = []
    for quote in wanted:
        kept = next(
            (
                order
                for order in stale
                if order.buy == quote.buy
                and order.price == quote.price
                and order.remaining == quote.quantity
            ),
            None,
        )
        if kept is None:
            place.append(quote)
        else:
            stale.remove(kept)
    top_bid = max((q.price for q in place if q.buy), default=None)
    low_ask = min((q.price for q in place if not q.buy), default=None)

    def in_the_way(order: Resting) -> bool:
        if order.buy:
            return low_ask is not None and order.price >= low_ask
        return top_bid is not None and order.price <= top_bid

    return Plan(
        cancel_first=tuple(o.order_id for o in stale if in_the_way(o)),
        place=tuple(place),
        cancel_after=tuple(o.order_id for o in stale if not in_the_way(o)),
    )
