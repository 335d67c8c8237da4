"""`cfd.v1.TradingService` and `cfd.v1.EngineAdminService` over the engine's port.

Handlers validate at the boundary (`engine_svc.requests`), submit commands and ask questions
through `engine_svc.port.EnginePort`, and turn results into messages (`engine_svc.convert`).
Rejections become `ApiError`s the server shell maps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import grpc

from cfd.v1 import engine_admin_pb2, engine_admin_pb2_grpc, trading_pb2, trading_pb2_grpc
from engine_svc import requests, spot_requests
from engine_svc.convert import (
    balance_message,
    closed_message,
    event_message,
    order_message,
    position_message,
    price_message,
    quote_message,
    rollover_date,
    summary_message,
    timestamp,
    timestamp_ns,
    with_volume_lots,
)
from engine_svc.core import (
    AccountSummary,
    ClosedPosition,
    Command,
    Instrument,
    OrderView,
    PositionView,
    Reason,
    Result,
    RolloverView,
    SendTransfer,
    TransferView,
    format_money,
)
from engine_svc.core.spot import BalanceView
from engine_svc.core.spot.enums import TransferDirection
from engine_svc.history import PageTokenError, decode_page_token, encode_page_token
from engine_svc.port import EnginePort
from mesh.errors import ApiError, validation_error

Context = grpc.aio.ServicerContext[Any, Any]
P = TypeVar("P")

EVENTS_PAGE = 500
POSITIONS_THROTTLE_S = 0.25
# An event index above every real one (an int32 column): (seq, WHOLE_SEQ) is "after all of seq".
WHOLE_SEQ = (1 << 31) - 1

# The API's JSON name of each command field a core rejection can name.
_CORE_FIELDS = {
    "expire_time": "expireTime",
    "trigger_price": "triggerPrice",
    "quantity": "quantity",
    "margin": "margin",
    "amount": "amount",
    "take_profit": "takeProfit",
    "stop_loss": "stopLoss",
    "trailing_distance": "trailingDistance",
    "expected_price": "expectedPrice",
    "max_slippage_bps": "maxSlippageBps",
    "client_order_id": "clientOrderId",
    "account_id": "userId",
    "initial_balance": "initialBalance",
    "transfer_id": "transferId",
}


def rejection(result: Result, account_missing: str | None = None) -> ApiError:
    """Return the API error of a rejected result.

    `account_missing` replaces ACCOUNT_NOT_FOUND: the caller has no account, so it has no such
    position or order either.
    """
    assert result.reason is not None
    reason = result.reason.value
    if result.reason is Reason.ACCOUNT_NOT_FOUND and account_missing is not None:
        reason = account_missing
    violations: list[tuple[str, str]] = []
    if result.reason is Reason.VALIDATION_FAILED:
        violations.append((_CORE_FIELDS.get(result.field, "request"), result.message))
    return ApiError(reason, result.message, violations)


def _payload(result: Result, kind: type[P]) -> P:
    payload = result.payload
    if not isinstance(payload, kind):
        # A repeated client_order_id of another kind of request returns that request's result.
        raise validation_error("clientOrderId", "was already used for another kind of request")
    return payload


async def send_transfer(
    engine: EnginePort, command: SendTransfer, account_missing: str | None = None
) -> engine_admin_pb2.SendTransferResponse:
    """Debit a cross-shard transfer here, wait until the driver settled it, and return the
    wallet and CFD balance after it (one side this shard's, the other its peer's answer)."""
    result = await engine.submit(command)
    if not result.ok:
        raise rejection(result, account_missing)
    view = _payload(result, TransferView)
    reply = await engine.transfer_settled(view)
    if view.direction is TransferDirection.TO_SPOT:
        summary = engine.account(view.account_id)
        cfd = "" if summary is None else format_money(summary.balance)
        return engine_admin_pb2.SendTransferResponse(balances=reply.balances, cfd_balance=cfd)
    markets = engine.markets
    return engine_admin_pb2.SendTransferResponse(
        balances=[balance_message(b, markets) for b in engine.wallet(view.account_id)],
        cfd_balance=reply.cfd_balance,
    )


class TradingServicer(trading_pb2_grpc.TradingServiceServicer):
    """The public trading API on the caller's own account."""

    def __init__(self, engine: EnginePort) -> None:
        self._engine = engine

    def _instrument(self, symbol: str) -> Instrument:
        return self._engine.instruments[symbol]

    async def _submit(
        self, command: Command, fresh: str | None, account_missing: str | None = None
    ) -> Result:
        result = await self._engine.submit(command, fresh)
        if not result.ok:
            raise rejection(result, account_missing)
        return result

    def _open_position(self, account: str, position_id: str) -> PositionView:
        requests.object_id(position_id, "positionId")
        view = self._engine.position(account, position_id)
        if view is None:
            raise ApiError("POSITION_NOT_FOUND", f"position {position_id[:40]!r} not found")
        return view

    async def GetAccount(
        self, request: trading_pb2.GetAccountRequest, context: Context
    ) -> trading_pb2.GetAccountResponse:
        """Return the account summary."""
        summary = self._engine.account(self._engine.caller())
        if summary is None:
            raise ApiError("ACCOUNT_NOT_FOUND", "this user has no trading account yet")
        return summary_message(summary, trading_pb2.GetAccountResponse)

    async def ListPrices(
        self, request: trading_pb2.ListPricesRequest, context: Context
    ) -> trading_pb2.ListPricesResponse:
        """Return the current quote of every instrument whose price is fresh."""
        self._engine.caller()
        return trading_pb2.ListPricesResponse(
            prices=[
                quote_message(quote, self._instrument(quote.symbol))
                for quote in self._engine.quotes(fresh_only=True)
            ]
        )

    async def OpenPosition(
        self, request: trading_pb2.OpenPositionRequest, context: Context
    ) -> trading_pb2.OpenPositionResponse:
        """Open a position at the current quote (on a netting account: trade into the
        symbol's position; an exact close answers with the closed entry)."""
        account = self._engine.caller()
        command = requests.open_position(request, account, self._engine.instruments)
        result = await self._submit(command, command.symbol)
        if isinstance(result.payload, ClosedPosition):
            close = result.payload
            return trading_pb2.OpenPositionResponse(
                position=closed_message(close, self._instrument(close.symbol))
            )
        view = _payload(result, PositionView)
        return trading_pb2.OpenPositionResponse(
            position=position_message(view, self._instrument(view.symbol))
        )

    async def ListPositions(
        self, request: trading_pb2.ListPositionsRequest, context: Context
    ) -> trading_pb2.ListPositionsResponse:
        """List the open positions with live unrealized PnL."""
        return trading_pb2.ListPositionsResponse(
            positions=[
                position_message(view, self._instrument(view.symbol))
                for view in self._engine.positions(self._engine.caller())
            ]
        )

    async def GetPosition(
        self, request: trading_pb2.GetPositionRequest, context: Context
    ) -> trading_pb2.GetPositionResponse:
        """Return one position, open or closed."""
        account = self._engine.caller()
        position_id = requests.object_id(request.position_id, "positionId")
        view = self._engine.position(account, position_id)
        if view is not None:
            return trading_pb2.GetPositionResponse(
                position=position_message(view, self._instrument(view.symbol))
            )
        data = await self._engine.last_close(account, position_id)
        if data is None:
            raise ApiError("POSITION_NOT_FOUND", f"position {position_id[:40]!r} not found")
        closed = with_volume_lots(trading_pb2.Position.FromString(data), self._engine.instruments)
        return trading_pb2.GetPositionResponse(position=closed)

    async def ModifyPosition(
        self, request: trading_pb2.ModifyPositionRequest, context: Context
    ) -> trading_pb2.ModifyPositionResponse:
        """Set or clear take profit, stop loss and trailing distance."""
        account = self._engine.caller()
        current = self._open_position(account, request.position_id)
        instrument = self._instrument(current.symbol)
        command = requests.modify_position(request, account, instrument)
        result = await self._submit(command, current.symbol, "POSITION_NOT_FOUND")
        view = _payload(result, PositionView)
        return trading_pb2.ModifyPositionResponse(position=position_message(view, instrument))

    async def ClosePosition(
        self, request: trading_pb2.ClosePositionRequest, context: Context
    ) -> trading_pb2.ClosePositionResponse:
        """Close a position in full or in part."""
        account = self._engine.caller()
        current = self._open_position(account, request.position_id)
        instrument = self._instrument(current.symbol)
        command = requests.close_position(request, account, instrument)
        result = await self._submit(command, current.symbol, "POSITION_NOT_FOUND")
        close = _payload(result, ClosedPosition)
        position = (
            position_message(close.remaining, instrument)
            if close.remaining is not None
            else closed_message(close, instrument)
        )
        return trading_pb2.ClosePositionResponse(
            position=position,
            closed_quantity=instrument.format_quantity(close.closed_quantity),
            closed_volume_lots=instrument.format_volume_lots(close.closed_quantity),
            close_price=instrument.format_price(close.close_price),
            realized_pnl=format_money(close.realized_pnl),
        )

    async def AddMargin(
        self, request: trading_pb2.AddMarginRequest, context: Context
    ) -> trading_pb2.AddMarginResponse:
        """Move cash from the balance into a position's margin."""
        account = self._engine.caller()
        requests.object_id(request.position_id, "positionId")
        command = requests.add_margin(request, account)
        result = await self._submit(command, None, "POSITION_NOT_FOUND")
        view = _payload(result, PositionView)
        return trading_pb2.AddMarginResponse(
            position=position_message(view, self._instrument(view.symbol))
        )

    async def PlaceOrder(
        self, request: trading_pb2.PlaceOrderRequest, context: Context
    ) -> trading_pb2.PlaceOrderResponse:
        """Place a pending limit or stop order."""
        account = self._engine.caller()
        command = requests.place_order(request, account, self._engine.instruments)
        result = await self._submit(command, command.symbol)
        view = _payload(result, OrderView)
        return trading_pb2.PlaceOrderResponse(
            order=order_message(view, self._instrument(view.symbol))
        )

    async def ListOrders(
        self, request: trading_pb2.ListOrdersRequest, context: Context
    ) -> trading_pb2.ListOrdersResponse:
        """List the pending orders."""
        return trading_pb2.ListOrdersResponse(
            orders=[
                order_message(view, self._instrument(view.symbol))
                for view in self._engine.orders(self._engine.caller())
            ]
        )

    async def ModifyOrder(
        self, request: trading_pb2.ModifyOrderRequest, context: Context
    ) -> trading_pb2.ModifyOrderResponse:
        """Change a pending order's trigger, size, stops or expiry."""
        account = self._engine.caller()
        order_id = requests.object_id(request.order_id, "orderId")
        current = self._engine.order(account, order_id)
        if current is None:
            raise ApiError("ORDER_NOT_FOUND", f"order {order_id[:40]!r} not found")
        instrument = self._instrument(current.symbol)
        command = requests.modify_order(request, account, instrument)
        result = await self._submit(command, current.symbol, "ORDER_NOT_FOUND")
        view = _payload(result, OrderView)
        changed = result.events[0].ts if result.events else None
        return trading_pb2.ModifyOrderResponse(order=order_message(view, instrument, changed))

    async def CancelOrder(
        self, request: trading_pb2.CancelOrderRequest, context: Context
    ) -> trading_pb2.CancelOrderResponse:
        """Cancel a pending order."""
        account = self._engine.caller()
        command = requests.cancel_order(request, account)
        result = await self._submit(command, None, "ORDER_NOT_FOUND")
        view = _payload(result, OrderView)
        changed = result.events[0].ts if result.events else None
        return trading_pb2.CancelOrderResponse(
            order=order_message(view, self._instrument(view.symbol), changed)
        )

    async def ListHistory(
        self, request: trading_pb2.ListHistoryRequest, context: Context
    ) -> trading_pb2.ListHistoryResponse:
        """List closed entries, newest first, a page at a time."""
        account = self._engine.caller()
        size = requests.page_size(request.page_size)
        after: tuple[int, int] | None = None
        if request.page_token:
            try:
                after = decode_page_token(request.page_token)
            except PageTokenError as exc:
                raise validation_error("pageToken", str(exc)) from None
        symbol: str | None = None
        if request.symbol:
            symbol = requests.instrument_of(self._engine.instruments, request.symbol).symbol
        rows = await self._engine.history_page(account, symbol, after, size + 1)
        token = ""
        if len(rows) > size:
            rows = rows[:size]
            token = encode_page_token(rows[-1][0], rows[-1][1])
        return trading_pb2.ListHistoryResponse(
            positions=[
                with_volume_lots(trading_pb2.Position.FromString(data), self._engine.instruments)
                for _, _, data in rows
            ],
            next_page_token=token,
        )

    async def StreamPrices(
        self, request: trading_pb2.StreamPricesRequest, context: Context
    ) -> AsyncIterator[trading_pb2.StreamPricesResponse]:
        """Stream quotes of the requested symbols, the current one of each first.

        The quotes are the same for every caller: a user or the edge (an internal caller).
        """
        engine = self._engine
        wanted: frozenset[str] | None = None
        if request.symbols:
            wanted = frozenset(
                requests.instrument_of(engine.instruments, symbol).symbol
                for symbol in request.symbols
            )
        with engine.prices(wanted) as subscription:
            sent: dict[str, int] = {}
            for quote in engine.quotes():
                if wanted is None or quote.symbol in wanted:
                    sent[quote.symbol] = quote.seq
                    yield price_message(quote, self._instrument(quote.symbol))
            while True:
                for quote in await subscription.next_batch():
                    if quote.seq > sent.get(quote.symbol, 0):
                        sent[quote.symbol] = quote.seq
                        yield price_message(quote, self._instrument(quote.symbol))

    async def StreamPositions(
        self, request: trading_pb2.StreamPositionsRequest, context: Context
    ) -> AsyncIterator[trading_pb2.StreamPositionsResponse]:
        """Stream the open positions and account summary on every change, throttled."""
        account = self._engine.caller()
        engine = self._engine
        with engine.position_changes(account) as subscription:
            while True:
                views = engine.positions(account)
                subscription.symbols = frozenset(view.symbol for view in views)
                summary = engine.account(account) or AccountSummary(
                    account, 0, 0, 0, 0, 0, None, 0, 0
                )
                yield trading_pb2.StreamPositionsResponse(
                    positions=[position_message(v, self._instrument(v.symbol)) for v in views],
                    account=summary_message(summary, trading_pb2.AccountSummary),
                    sequence=engine.last_seq,
                )
                await asyncio.sleep(POSITIONS_THROTTLE_S)
                await subscription.wait_change()

    async def StreamEvents(
        self, request: trading_pb2.StreamEventsRequest, context: Context
    ) -> AsyncIterator[trading_pb2.StreamEventsResponse]:
        """Stream the account's events after `from_sequence`, with no gap and no repeat."""
        account = self._engine.caller()
        if request.from_sequence < 0:
            raise validation_error("fromSequence", "must not be negative")
        engine = self._engine
        instruments = engine.instruments
        position = (request.from_sequence, WHOLE_SEQ)
        with engine.events(account) as subscription:
            # Older events than memory holds come from SQL, once the recorder has them.
            while position[0] < engine.events_floor(account):
                floor = engine.events_floor(account)
                rows = await engine.recorded_events(account, position, floor, EVENTS_PAGE)
                for seq, index, data in rows:
                    position = (seq, index)
                    yield trading_pb2.StreamEventsResponse.FromString(data)
                if len(rows) < EVENTS_PAGE:
                    position = max(position, (floor, WHOLE_SEQ))
            for item in engine.recent_events(account, position):
                position = (item.seq, item.idx)
                yield event_message(item, instruments)
            while True:
                batch = await subscription.next_batch()
                if subscription.overflowed:
                    raise ApiError(
                        "SERVICE_UNAVAILABLE",
                        "the stream fell too far behind; resume with fromSequence",
                    )
                for item in batch:
                    if (item.seq, item.idx) > position:
                        position = (item.seq, item.idx)
                        yield event_message(item, instruments)


class EngineAdminServicer(engine_admin_pb2_grpc.EngineAdminServiceServicer):
    """Internal administration: accounts, deposits, figures."""

    def __init__(self, engine: EnginePort) -> None:
        self._engine = engine

    async def _submit(self, command: Command) -> Result:
        result = await self._engine.submit(command)
        if not result.ok:
            raise rejection(result)
        return result

    async def CreateAccount(
        self, request: engine_admin_pb2.CreateAccountRequest, context: Context
    ) -> engine_admin_pb2.CreateAccountResponse:
        """Open a trading account; repeating it changes nothing."""
        command = requests.create_account(
            request, self._engine.demo_balance, self._engine.margin_defaults
        )
        result = await self._submit(command)
        summary = _payload(result, AccountSummary)
        return engine_admin_pb2.CreateAccountResponse(
            user_id=summary.account_id,
            balance=format_money(summary.balance),
            created=not result.duplicate,
        )

    async def Deposit(
        self, request: engine_admin_pb2.DepositRequest, context: Context
    ) -> engine_admin_pb2.DepositResponse:
        """Credit money to an account."""
        result = await self._submit(requests.deposit(request))
        summary = _payload(result, AccountSummary)
        return engine_admin_pb2.DepositResponse(balance=format_money(summary.balance))

    async def DepositAsset(
        self, request: engine_admin_pb2.DepositAssetRequest, context: Context
    ) -> engine_admin_pb2.DepositAssetResponse:
        """Credit a base asset to an account's spot wallet."""
        command = spot_requests.deposit_asset(request, self._engine.markets)
        view = _payload(await self._submit(command), BalanceView)
        return engine_admin_pb2.DepositAssetResponse(
            balance=balance_message(view, self._engine.markets)
        )

    async def RunRollover(
        self, request: engine_admin_pb2.RunRolloverRequest, context: Context
    ) -> engine_admin_pb2.RunRolloverResponse:
        """Charge the swaps of the last rollover at or before the given time."""
        if not request.HasField("rollover_time"):
            raise validation_error("rollover_time", "is required")
        result = await self._engine.run_rollover(timestamp_ns(request.rollover_time))
        if not result.ok:
            raise rejection(result)
        view = _payload(result, RolloverView)
        return engine_admin_pb2.RunRolloverResponse(
            rollover_date=rollover_date(view.rollover_day),
            multiplier=view.multiplier,
            positions_charged=view.positions,
            total=format_money(view.total),
            sequence=self._engine.last_seq,
        )

    async def GetStats(
        self, request: engine_admin_pb2.GetStatsRequest, context: Context
    ) -> engine_admin_pb2.GetStatsResponse:
        """Return engine figures."""
        figures = self._engine.figures()
        stats = figures.core
        response = engine_admin_pb2.GetStatsResponse(
            sequence=stats.last_seq,
            accounts=stats.accounts,
            open_positions=stats.open_positions,
            pending_orders=stats.pending_orders,
            journal_bytes=figures.journal_bytes,
            journal_segments=figures.journal_segments,
            state_digest=figures.state_digest,
            recorded_sequence=figures.recorded_seq,
            house_balance=format_money(stats.house_balance),
            total_deposits=format_money(stats.total_deposits),
            spot_wallets=format_money(stats.spot_wallets),
            spot_fees=format_money(stats.spot_fees),
            fresh_symbols=figures.fresh_symbols,
            failing_consumers=figures.failing_consumers,
            journal_leader=figures.journal_leader,
            transfers_sent=format_money(stats.transfers_sent),
            transfers_received=format_money(stats.transfers_received),
            transfers_in_flight=format_money(stats.transfers_in_flight),
            account_funds=format_money(figures.account_funds),
        )
        info = figures.snapshot
        if info is not None:
            response.snapshot_sequence = info.seq
            response.snapshot_bytes = info.size
            response.snapshot_time.CopyFrom(timestamp(info.written_ns))
        return response

    async def SendTransfer(
        self, request: engine_admin_pb2.SendTransferRequest, context: Context
    ) -> engine_admin_pb2.SendTransferResponse:
        """Debit a cross-shard transfer here; answer once its peer credited it."""
        engine = self._engine
        command = spot_requests.send_transfer(request, engine.shard_count, engine.shard)
        return await send_transfer(engine, command)

    async def ReceiveTransfer(
        self, request: engine_admin_pb2.ReceiveTransferRequest, context: Context
    ) -> engine_admin_pb2.ReceiveTransferResponse:
        """Credit a cross-shard transfer once; answer the balance it went to."""
        engine = self._engine
        command = spot_requests.receive_transfer(request, engine.shard_count, engine.shard)
        result = await self._submit(command)
        view = _payload(result, TransferView)
        reply = engine_admin_pb2.ReceiveTransferResponse(duplicate=result.duplicate)
        if view.direction is TransferDirection.TO_SPOT:
            markets = engine.markets
            reply.balances.extend(
                balance_message(b, markets) for b in engine.wallet(view.account_id)
            )
        else:
            summary = engine.account(view.account_id)
            reply.cfd_balance = "" if summary is None else format_money(summary.balance)
        return reply
