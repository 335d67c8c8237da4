"""A driver for spot exchange tests: automatic sequence numbers and short helpers."""

from __future__ import annotations

from typing import Any

from engine_svc.core import Side
from engine_svc.core.spot import (
    BookView,
    CancelSpotOrder,
    CreditWallet,
    DebitWallet,
    PlaceSpotOrder,
    SpotCommand,
    SpotExchange,
    SpotOrderType,
    SpotPlacement,
    SpotResult,
)

USD = 1_000_000
TS = 1_700_000_000_000_000_000


class SpotHarness:
    """Apply commands to an exchange, numbering them 1, 2, 3 ... at a fixed time."""

    def __init__(self, exchange: SpotExchange | None = None) -> None:
        self.exchange = SpotExchange() if exchange is None else exchange
        self.seq = 0
        self.commands: list[SpotCommand] = []

    def run(self, factory: Any, **fields: Any) -> SpotResult:
        """Build a command with the next seq, apply it, return the result."""
        self.seq += 1
        command = factory(seq=self.seq, ts=TS + self.seq, **fields)
        self.commands.append(command)
        result: SpotResult = self.exchange.apply(command)
        return result

    def credit(self, account: str, asset: str, amount: int) -> SpotResult:
        """Credit a wallet and check that it was accepted."""
        result = self.run(CreditWallet, account_id=account, asset=asset, amount=amount)
        assert result.ok, result
        return result

    def debit(self, account: str, asset: str, amount: int, **fields: Any) -> SpotResult:
        """Debit a wallet."""
        return self.run(DebitWallet, account_id=account, asset=asset, amount=amount, **fields)

    def limit(
        self,
        account: str,
        side: Side,
        price: int,
        quantity: int,
        market: str = "BTC_USD",
        **fields: Any,
    ) -> SpotResult:
        """Place a limit order."""
        return self.run(
            PlaceSpotOrder, account_id=account, market=market, side=side,
            order_type=SpotOrderType.LIMIT, price=price, quantity=quantity, **fields,
        )  # fmt: skip

    def market(
        self, account: str, side: Side, market: str = "BTC_USD", **fields: Any
    ) -> SpotResult:
        """Place a market order (give quantity or quote_quantity)."""
        return self.run(
            PlaceSpotOrder, account_id=account, market=market, side=side,
            order_type=SpotOrderType.MARKET, **fields,
        )  # fmt: skip

    def cancel(self, account: str, order_id: str, **fields: Any) -> SpotResult:
        """Cancel an order."""
        return self.run(CancelSpotOrder, account_id=account, order_id=order_id, **fields)

    def book(self, market: str = "BTC_USD", depth: int = 50) -> BookView:
        """Return a market's depth."""
        view = self.exchange.book_view(market, depth)
        assert view is not None
        return view

    def wallet(self, account: str) -> dict[str, tuple[int, int]]:
        """Return {asset: (available, locked)} of an account, zero entries left out."""
        return {
            balance.asset: (balance.available, balance.locked)
            for balance in self.exchange.wallet(account)
            if balance.available or balance.locked
        }


def placement(result: SpotResult) -> SpotPlacement:
    """Return an accepted placement's payload."""
    assert result.ok, result
    assert isinstance(result.payload, SpotPlacement)
    return result.payload
