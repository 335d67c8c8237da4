"""Keeping the maker's spot wallet stocked through the internal admin API.

The quotes lock USD (bids: price x quantity plus the taker fee) and base assets (asks). When the
wallet holds less than LOW_WATER times what the wanted quotes lock, it is topped up to
HIGH_WATER times: base assets by EngineAdminService.DepositAsset, USD by Deposit into the CFD
balance (only what that balance lacks) and TransferFunds to the spot wallet. Every decision
starts from the balances the engine reports, so a maker restarted halfway deposits nothing
twice; each call carries an idempotency key, so a retried call is applied once.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Mapping
from decimal import ROUND_CEILING, Decimal

from cfd.v1 import (
    engine_admin_pb2,
    engine_admin_pb2_grpc,
    exchange_pb2,
    exchange_pb2_grpc,
    trading_pb2,
    trading_pb2_grpc,
)
from maker.account import Login
from maker.quotes import BPS, Quote
from mesh.auth import INTERNAL_TOKEN_HEADER

log = logging.getLogger("maker.funding")

USD = "USD"
USD_STEP = Decimal("0.000001")
LOW_WATER = 2
HIGH_WATER = 4


def needs(
    wanted: Iterable[Quote], base_assets: Mapping[str, str], taker_fee_bps: int
) -> dict[str, Decimal]:
    """Return what the `wanted` quotes lock, per asset (`base_assets`: market -> base asset)."""
    locked: dict[str, Decimal] = {}
    for quote in wanted:
        if quote.buy:
            asset = USD
            amount = quote.price * quote.quantity * (BPS + taker_fee_bps) / BPS
        else:
            asset = base_assets[quote.market]
            amount = quote.quantity
        locked[asset] = locked.get(asset, Decimal(0)) + amount
    return locked


def top_ups(
    locked: Mapping[str, Decimal], held: Mapping[str, Decimal], steps: Mapping[str, Decimal]
) -> dict[str, Decimal]:
    """Return the amount to add per asset: none while the wallet holds LOW_WATER times what
    the quotes lock, else up to HIGH_WATER times, rounded up to the asset's step."""
    amounts: dict[str, Decimal] = {}
    for asset, need in sorted(locked.items()):
        have = held.get(asset, Decimal(0))
        if need > 0 and have < need * LOW_WATER:
            step = steps[asset]
            missing = need * HIGH_WATER - have
            amounts[asset] = ((missing / step).to_integral_value(ROUND_CEILING) * step).quantize(
                step
            )
    return amounts


def _text(value: Decimal) -> str:
    return format(value, "f")


class Funder:
    """Tops the maker's wallet up over the engine's admin and public APIs."""

    def __init__(
        self, login: Login, internal_token: str, run: str, timeout_s: float = 10.0
    ) -> None:
        self._login = login
        self._internal = ((INTERNAL_TOKEN_HEADER, internal_token),)
        self._run = run
        self._keys = itertools.count(1)
        self._timeout_s = timeout_s

    def _key(self) -> str:
        return f"mm-fund-{self._run}-{next(self._keys)}"

    async def fund(
        self,
        exchange: exchange_pb2_grpc.ExchangeServiceAsyncStub,
        trading: trading_pb2_grpc.TradingServiceAsyncStub,
        admin: engine_admin_pb2_grpc.EngineAdminServiceAsyncStub,
        locked: Mapping[str, Decimal],
        steps: Mapping[str, Decimal],
    ) -> dict[str, Decimal]:
        """Top the wallet up for quotes that lock `locked`; return what was added."""
        wallet = await exchange.GetWallet(
            exchange_pb2.GetWalletRequest(),
            metadata=self._login.metadata(),
            timeout=self._timeout_s,
        )
        held = {b.asset: Decimal(b.available) + Decimal(b.locked) for b in wallet.balances}
        added = top_ups(locked, held, steps)
        for asset, amount in added.items():
            if asset == USD:
                await self._add_usd(trading, exchange, admin, amount)
            else:
                await admin.DepositAsset(
                    engine_admin_pb2.DepositAssetRequest(
                        user_id=self._login.user_id,
                        asset=asset,
                        amount=_text(amount),
                        client_order_id=self._key(),
                    ),
                    metadata=self._internal,
                    timeout=self._timeout_s,
                )
            log.info("wallet topped up: %s %s", _text(amount), asset)
        return added

    async def _add_usd(
        self,
        trading: trading_pb2_grpc.TradingServiceAsyncStub,
        exchange: exchange_pb2_grpc.ExchangeServiceAsyncStub,
        admin: engine_admin_pb2_grpc.EngineAdminServiceAsyncStub,
        amount: Decimal,
    ) -> None:
        account = await trading.GetAccount(
            trading_pb2.GetAccountRequest(),
            metadata=self._login.metadata(),
            timeout=self._timeout_s,
        )
        # The CFD balance may already hold it (the demo balance, a deposit whose transfer a
        # restart interrupted): deposit only the rest.
        lacking = amount - Decimal(account.balance)
        if lacking > 0:
            await admin.Deposit(
                engine_admin_pb2.DepositRequest(
                    user_id=self._login.user_id,
                    amount=_text(lacking.quantize(USD_STEP, ROUND_CEILING)),
                    client_order_id=self._key(),
                ),
                metadata=self._internal,
                timeout=self._timeout_s,
            )
        await exchange.TransferFunds(
            exchange_pb2.TransferFundsRequest(
                amount=_text(amount),
                direction=exchange_pb2.TRANSFER_DIRECTION_TO_SPOT,
                client_order_id=self._key(),
            ),
            metadata=self._login.metadata(),
            timeout=self._timeout_s,
        )
