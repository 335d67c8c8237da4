"""What the servicers may do with the engine: submit commands and ask questions.

Commands go to the single writer; state queries read the core between batches (it only ever
holds committed state); history queries first wait (briefly) for the recorder process to write
what the caller has seen; streams subscribe to the stream hub. The servicers see nothing else
of the runtime: not the sequencer, journal, core object, recorder progress or database.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass

from cfd.v1 import engine_admin_pb2
from engine_svc.config import MarginDefaults
from engine_svc.convert import AccountEvent
from engine_svc.core import (
    AccountSummary,
    Command,
    CoreStats,
    Instrument,
    OrderView,
    PositionView,
    QuoteView,
    Result,
    TransferView,
)
from engine_svc.core.spot import (
    BalanceView,
    BookView,
    FeeSchedule,
    Market,
    SpotOrderView,
    SpotTradeExecuted,
)
from engine_svc.market_streams import BookSubscription, TradeSubscription
from engine_svc.runtime import EngineRuntime
from engine_svc.snapshots import SnapshotInfo
from engine_svc.streams import EventSubscription, PositionSubscription, PriceSubscription
from mesh.auth import caller_shard, subject
from mesh.errors import ApiError

log = logging.getLogger("engine.commands")

# How long a history read waits for the recorder to reach the state the caller has seen.
HISTORY_WAIT_S = 2.0
# How long a resuming event stream waits for the recorder to reach the events it needs.
EVENTS_WAIT_S = 10.0


def _wrong_shard(message: str) -> ApiError:
    return ApiError("WRONG_SHARD", message)


def _history_down() -> ApiError:
    return ApiError("SERVICE_UNAVAILABLE", "the history database is unavailable; retry shortly")


@dataclass(frozen=True, slots=True)
class EngineFigures:
    """The engine's figures beyond the core's own (GetStats)."""

    core: CoreStats
    journal_bytes: int
    journal_segments: int
    state_digest: str
    recorded_seq: int
    fresh_symbols: list[str]
    failing_consumers: list[str]
    snapshot: SnapshotInfo | None
    # The lease holder of the replicated journal ("host:pid:port"); "" on the file journal.
    journal_leader: str = ""
    # The accounts' funds in total (the core's `total_user_money`).
    account_funds: int = 0


class EnginePort:
    """The engine as the servicers use it."""

    def __init__(self, runtime: EngineRuntime) -> None:
        self._runtime = runtime

    # ------------------------------------------------------------------ commands

    async def submit(self, command: Command, fresh_symbol: str | None = None) -> Result:
        """Sequence, journal and apply `command`; return its result once committed.

        With `fresh_symbol`, the command fails with PRICE_UNAVAILABLE unless that symbol has a
        fresh price when its batch is formed.
        """
        sequencer = self._runtime.sequencer
        if sequencer is None:
            raise ApiError("SERVICE_UNAVAILABLE", "the engine is starting")
        result = await sequencer.submit(command, fresh_symbol)
        # At DEBUG, each command's line carries the trace id of the request that sent it.
        log.debug(
            "command committed",
            extra={
                "fields": {
                    "command": type(command).__name__,
                    "result": "OK" if result.reason is None else str(result.reason),
                }
            },
        )
        return result

    # ------------------------------------------------------------------ shards

    @property
    def shard(self) -> int:
        """Return this engine's shard index (0 on a single-shard platform)."""
        return self._runtime.settings.engine_shard

    @property
    def shard_count(self) -> int:
        """Return how many CFD engine shards the platform runs."""
        return self._runtime.settings.engine_shards

    def caller(self) -> str:
        """Return the caller of a CFD call; WRONG_SHARD when its token names another shard."""
        account = subject()
        if self.shard_count > 1 and caller_shard() != self.shard:
            raise _wrong_shard(f"this is shard {self.shard}; the account is on another shard")
        return account

    def check_spot_shard(self) -> None:
        """Refuse a spot exchange call on a shard other than 0 (WRONG_SHARD)."""
        if self.shard_count > 1 and self.shard != 0:
            raise _wrong_shard(f"this is shard {self.shard}; the spot exchange runs on shard 0")

    def spot_caller(self) -> tuple[str, int]:
        """Return the caller of a spot call and the shard its token names (its CFD balance's)."""
        self.check_spot_shard()
        if self.shard_count <= 1:
            return subject(), 0
        home = caller_shard()
        if home >= self.shard_count:
            raise _wrong_shard(f"the token names shard {home} of {self.shard_count}")
        return subject(), home

    async def transfer_settled(
        self, view: TransferView
    ) -> engine_admin_pb2.ReceiveTransferResponse:
        """Drive a transfer this shard sent; return its peer's answer once it is settled
        (`transfers.TransferDriver.settled`: UNAVAILABLE when that takes too long)."""
        return await self._runtime.transfers.settled(view)

    async def send_on_shard(
        self, shard: int, request: engine_admin_pb2.SendTransferRequest
    ) -> engine_admin_pb2.SendTransferResponse:
        """Start a transfer whose debit side is another shard; return its answer.

        UNAVAILABLE when that shard cannot be reached or did not settle in time; its
        rejections keep their reasons.
        """
        return await self._runtime.transfers.send_on(shard, request)

    async def run_rollover(self, at_ns: int) -> Result:
        """Charge the swaps of the last rollover at or before `at_ns` (`rollover`)."""
        return await self._runtime.charge_rollover(at_ns)

    @property
    def demo_balance(self) -> str:
        """Return the configured balance of a new account."""
        return self._runtime.settings.demo_balance

    @property
    def margin_defaults(self) -> MarginDefaults:
        """Return the configured margin mode and levels of a new account."""
        return self._runtime.config.margin

    # ------------------------------------------------------------------ state

    @property
    def instruments(self) -> Mapping[str, Instrument]:
        """Return the instruments by symbol."""
        return self._runtime.core.instruments

    @property
    def last_seq(self) -> int:
        """Return the seq of the last committed command."""
        return self._runtime.core.last_seq

    def account(self, account_id: str) -> AccountSummary | None:
        """Return the account summary, None when there is no such account."""
        return self._runtime.core.account_summary(account_id)

    def position(self, account_id: str, position_id: str) -> PositionView | None:
        """Return one open position of the account."""
        return self._runtime.core.get_position(account_id, position_id)

    def positions(self, account_id: str) -> list[PositionView]:
        """Return the account's open positions."""
        return self._runtime.core.list_positions(account_id)

    def orders(self, account_id: str) -> list[OrderView]:
        """Return the account's pending orders."""
        return self._runtime.core.list_orders(account_id)

    def order(self, account_id: str, order_id: str) -> OrderView | None:
        """Return one pending order of the account."""
        return self._runtime.core.get_order(account_id, order_id)

    def quotes(self, *, fresh_only: bool = False) -> list[QuoteView]:
        """Return the current quote of every symbol (with `fresh_only`, of fresh ones only)."""
        quotes = self._runtime.core.list_quotes()
        if not fresh_only:
            return quotes
        fresh = self._runtime.freshness.is_fresh
        return [quote for quote in quotes if fresh(quote.symbol)]

    def figures(self) -> EngineFigures:
        """Return the engine's figures."""
        runtime = self._runtime
        journal_bytes, segments = runtime.journal_stats
        return EngineFigures(
            core=runtime.core.stats(),
            journal_bytes=journal_bytes,
            journal_segments=segments,
            state_digest=runtime.state_digest(),
            recorded_seq=runtime.progress.recorded_seq,
            fresh_symbols=sorted(runtime.freshness.fresh_symbols()),
            failing_consumers=runtime.failing_consumers(),
            snapshot=runtime.snapshot_info,
            journal_leader=runtime.leader,
            account_funds=runtime.core.total_user_money(),
        )

    # ------------------------------------------------------------------ history

    async def _caught_up(self, seq: int, timeout_s: float) -> bool:
        return await self._runtime.progress.wait_recorded(seq, timeout_s)

    async def last_close(self, account_id: str, position_id: str) -> bytes | None:
        """Return the last closed entry of a position (a Position message), once recorded."""
        await self._caught_up(self.last_seq, HISTORY_WAIT_S)
        try:
            return await self._runtime.history.last_close(account_id, position_id)
        except Exception as exc:
            raise _history_down() from exc

    async def history_page(
        self, account_id: str, symbol: str | None, after: tuple[int, int] | None, size: int
    ) -> list[tuple[int, int, bytes]]:
        """Return closed entries (seq, index, Position message), newest first, once recorded."""
        await self._caught_up(self.last_seq, HISTORY_WAIT_S)
        try:
            return await self._runtime.history.history_page(account_id, symbol, after, size)
        except Exception as exc:
            raise _history_down() from exc

    async def recorded_events(
        self, account_id: str, after: tuple[int, int], through: int, limit: int
    ) -> list[tuple[int, int, bytes]]:
        """Return the account's recorded events after `after` up to seq `through`."""
        if not await self._caught_up(through, EVENTS_WAIT_S):
            raise ApiError("SERVICE_UNAVAILABLE", "older events are not available yet; retry")
        try:
            return await self._runtime.history.events_after(account_id, after, through, limit)
        except Exception as exc:
            raise _history_down() from exc

    # ------------------------------------------------------------------ streams

    def prices(self, symbols: frozenset[str] | None) -> AbstractContextManager[PriceSubscription]:
        """Subscribe to applied quotes of `symbols` (all when None)."""
        return self._runtime.hub.prices(symbols)

    def position_changes(self, account_id: str) -> AbstractContextManager[PositionSubscription]:
        """Subscribe to changes of the account's positions."""
        return self._runtime.hub.positions(account_id)

    def events(self, account_id: str) -> AbstractContextManager[EventSubscription]:
        """Subscribe to the account's live events."""
        return self._runtime.hub.events(account_id)

    def events_floor(self, account_id: str) -> int:
        """Return the seq after which memory holds every event of the account."""
        return self._runtime.hub.floor(account_id)

    def recent_events(self, account_id: str, after: tuple[int, int]) -> Iterator[AccountEvent]:
        """Return the account's events in memory after (seq, index) `after`."""
        return iter(self._runtime.hub.recent(account_id, after))

    # ------------------------------------------------------------------ spot exchange

    @property
    def markets(self) -> Mapping[str, Market]:
        """Return the spot markets by name."""
        return self._runtime.core.spot.markets

    @property
    def fees(self) -> FeeSchedule:
        """Return the spot fee schedule."""
        return self._runtime.core.spot.fees

    def order_book(self, market: str, depth: int) -> BookView | None:
        """Return a market's aggregated depth at its current sequence."""
        return self._runtime.core.spot.book_view(market, depth)

    def wallet(self, account_id: str) -> list[BalanceView]:
        """Return every asset of the account's spot wallet."""
        return self._runtime.core.spot.wallet(account_id)

    def spot_orders(self, account_id: str, market: str | None) -> list[SpotOrderView]:
        """Return the account's open spot orders (of one market when given)."""
        return self._runtime.core.spot.open_orders(account_id, market)

    async def spot_fills_page(
        self, account_id: str, market: str | None, after: tuple[int, int] | None, size: int
    ) -> list[tuple[int, int, bytes]]:
        """Return own fills (seq, index, SpotFill message), newest first, once recorded."""
        await self._caught_up(self.last_seq, HISTORY_WAIT_S)
        try:
            return await self._runtime.history.spot_fills_page(account_id, market, after, size)
        except Exception as exc:
            raise _history_down() from exc

    def market_trades(self, market: str, limit: int) -> list[SpotTradeExecuted]:
        """Return up to `limit` of a market's latest public trades, newest first."""
        return self._runtime.market_hub.tape(market, limit)

    def book_changes(self, market: str) -> AbstractContextManager[BookSubscription]:
        """Subscribe to a market's book changes (take the depth in the same step)."""
        return self._runtime.market_hub.book(market)

    def trade_stream(self, market: str) -> AbstractContextManager[TradeSubscription]:
        """Subscribe to a market's public trades."""
        return self._runtime.market_hub.trades(market)
