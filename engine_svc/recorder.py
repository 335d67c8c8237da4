"""The recorder: committed account events to the SQL read model, in batches.

It runs in its own process, `cfd recorder` (`engine_svc.recorder_runtime`), which replays the
engine's journal on a replica of the core and hands it every batch. It converts the core's
events to rows and writes them in one transaction per chunk, together with the last recorded
seq (idempotent by seq). When the database is down it keeps the chunk and retries with backoff
(`retrying` says so meanwhile), so nothing is lost or written twice. After a restart the
replica starts from a snapshot at or before the recorded seq, so the events the recorder
missed are offered again.

The recorded seq is also kept in a hint file beside the journal (written after each commit):
the engine reads it to keep the snapshots and journal segments the recorder still needs, and
as a witness of the seqs its journal must hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from engine_svc.convert import SPOT_ACCOUNT_EVENTS, AccountEvent, event_message, spot_market
from engine_svc.core import (
    AccountCreated,
    BalanceChanged,
    BalanceKind,
    Instrument,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderModified,
    OrderPlaced,
    OrderRejected,
    PositionClosed,
    format_money,
)
from engine_svc.core.spot import SpotFillExecuted
from engine_svc.history import HistoryStore, Rows
from engine_svc.pipeline import CommittedBatch
from mesh.aio import wait_event

log = logging.getLogger("engine.recorder")

# The hint only has to be no newer than the truth; rewriting it on every commit costs too much.
HINT_INTERVAL_S = 1.0
_ORDER_EVENTS = (
    OrderPlaced,
    OrderModified,
    OrderFilled,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
)
# The ledger's words for the core's balance changes (added margin is reserved margin too).
_LEDGER_KINDS = {
    BalanceKind.DEPOSIT: "DEPOSIT",
    BalanceKind.MARGIN_RESERVED: "MARGIN_RESERVED",
    BalanceKind.MARGIN_ADDED: "MARGIN_RESERVED",
    BalanceKind.CLOSE_SETTLED: "POSITION_SETTLED",
    BalanceKind.TRANSFER: "TRANSFER",
    BalanceKind.COMMISSION: "COMMISSION",
    BalanceKind.SWAP: "SWAP",
}


def read_hint(path: Path) -> int:
    """Return the recorded seq saved in the hint file, 0 when missing or unreadable."""
    try:
        text = path.read_text().strip()
    except OSError:
        return 0
    return int(text) if text.isdigit() else 0


def _write_hint(path: Path, seq: int) -> None:
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(str(seq))
    temp.replace(path)


def rows_of(
    last_seq: int,
    items: Sequence[tuple[str, AccountEvent]],
    instruments: Mapping[str, Instrument],
) -> Rows:
    """Convert account events into the rows of one recorder transaction.

    The columns come from the core's events; each row also keeps the event as the API shows
    it (`data`), which is what history queries return.
    """
    event_rows: list[dict[str, Any]] = []
    closed: list[dict[str, Any]] = []
    ledger: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    spot_orders: list[dict[str, Any]] = []
    spot_fills: list[dict[str, Any]] = []
    for account, item in items:
        event = item.event
        message = event_message(item, instruments)
        key = {"account_id": account, "seq": item.seq, "idx": item.idx}
        event_rows.append(
            key
            | {
                "event_type": int(message.type),
                "time_ns": event.ts,
                "data": message.SerializeToString(),
            }
        )
        if isinstance(event, PositionClosed):
            close = event.close
            instrument = instruments[close.symbol]
            closed.append(
                key
                | {
                    "position_id": close.position_id,
                    "symbol": close.symbol,
                    "side": close.side.value,
                    "quantity": instrument.format_quantity(close.closed_quantity),
                    "leverage": close.leverage,
                    "entry_price": instrument.format_price(close.entry_price),
                    "close_price": instrument.format_price(close.close_price),
                    "margin": format_money(close.released_margin),
                    "realized_pnl": format_money(close.realized_pnl),
                    "house_covered_loss": format_money(close.house_absorbed),
                    "swap": format_money(close.swap),
                    "commission": format_money(close.commission),
                    "close_reason": close.reason.value,
                    "open_time_ns": close.open_time,
                    "close_time_ns": close.close_time,
                    "data": message.position.SerializeToString(),
                }
            )
        elif isinstance(event, AccountCreated):
            amount = format_money(event.initial_balance)
            ledger.append(
                key
                | {
                    "kind": _LEDGER_KINDS[BalanceKind.DEPOSIT],
                    "amount": amount,
                    "balance": amount,
                    "position_id": "",
                    "time_ns": event.ts,
                }
            )
        elif isinstance(event, BalanceChanged):
            ledger.append(
                key
                | {
                    "kind": _LEDGER_KINDS[event.kind],
                    "amount": format_money(event.amount),
                    "balance": format_money(event.balance),
                    "position_id": event.ref_id,
                    "time_ns": event.ts,
                }
            )
        elif isinstance(event, _ORDER_EVENTS):
            view = event.order
            orders.append(
                {
                    "order_id": view.id,
                    "account_id": account,
                    "symbol": view.symbol,
                    "side": view.side.value,
                    "order_type": view.order_type.value,
                    "status": view.status.value,
                    "trigger_price": instruments[view.symbol].format_price(view.trigger_price),
                    "position_id": view.position_id or "",
                    "reject_reason": "" if view.reject_reason is None else view.reject_reason.value,
                    "create_time_ns": view.create_time,
                    "update_time_ns": event.ts,
                    "seq": item.seq,
                    "data": message.order.SerializeToString(),
                }
            )
        elif isinstance(event, SpotFillExecuted):
            fill = event.fill
            scale = spot_market(fill.market, instruments).scale
            spot_fills.append(
                key
                | {
                    "fill_id": fill.id,
                    "order_id": fill.order_id,
                    "market": fill.market,
                    "side": fill.side.value,
                    "price": scale.format_price(fill.price),
                    "quantity": scale.format_quantity(fill.quantity),
                    "fee": format_money(fill.fee),
                    "liquidity": fill.liquidity.value,
                    "time_ns": fill.time,
                    "data": message.spot_fill.SerializeToString(),
                }
            )
        elif isinstance(event, SPOT_ACCOUNT_EVENTS):
            spot = event.order
            scale = spot_market(spot.market, instruments).scale
            spot_orders.append(
                {
                    "order_id": spot.id,
                    "account_id": account,
                    "market": spot.market,
                    "side": spot.side.value,
                    "order_type": spot.order_type.value,
                    "status": spot.status.value,
                    "filled_quantity": scale.format_quantity(spot.filled_quantity),
                    "fee": format_money(spot.fee),
                    "create_time_ns": spot.create_time,
                    "update_time_ns": event.ts,
                    "seq": item.seq,
                    "data": message.spot_order.SerializeToString(),
                }
            )
    return Rows(last_seq, event_rows, closed, ledger, orders, spot_orders, spot_fills)


class Recorder:
    """Writes committed events to SQL; `recorded_seq` is how far it got."""

    def __init__(
        self,
        store: HistoryStore,
        instruments: Mapping[str, Instrument],
        hint_path: Path,
        *,
        recorded_seq: int = 0,
        max_events: int = 5000,
        gather_s: float = 0.25,
        min_backoff_s: float = 0.05,
        max_backoff_s: float = 2.0,
    ) -> None:
        self.store = store
        self.instruments = instruments
        self._hint_path = hint_path
        self.recorded_seq = recorded_seq
        self._max_events = max_events
        self._gather_s = gather_s
        self._hint_written = 0.0
        self._min_backoff_s = min_backoff_s
        self._max_backoff_s = max_backoff_s
        self._pending: deque[tuple[int, Sequence[tuple[str, AccountEvent]]]] = deque()
        self._ready = asyncio.Event()
        self._progress = asyncio.Event()
        self._urgent = asyncio.Event()
        self.offered_seq = recorded_seq
        self.failures = 0
        # True while the database refuses and the recorder retries (GetStats reports it).
        self.retrying = False
        self.schema_ready = False
        # Set by a failed write; cleared, with a log line, once the backlog is written.
        self._behind_since: float | None = None

    @property
    def backlog(self) -> int:
        """Return how many offered batches are not written yet."""
        return len(self._pending)

    def consume(self, batch: CommittedBatch) -> None:
        """Queue a committed batch's account events."""
        self.offer(batch.last_seq, batch.events)

    def offer(self, last_seq: int, items: Sequence[tuple[str, AccountEvent]]) -> None:
        """Queue the account events of a committed batch up to `last_seq`."""
        if last_seq <= self.offered_seq:
            return
        self.offered_seq = last_seq
        self._pending.append((last_seq, items))
        self._ready.set()

    async def wait_recorded(self, seq: int, timeout_s: float) -> bool:
        """Wait until every event up to `seq` is recorded; return False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self.recorded_seq < seq:
            self._urgent.set()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            await wait_event(self._progress, remaining)
        return True

    async def _retry(self, what: str, attempt: int, exc: Exception) -> None:
        delay = min(self._max_backoff_s, self._min_backoff_s * (2 ** min(attempt, 10)))
        self.failures += 1
        self.retrying = True
        if self._behind_since is None:
            self._behind_since = time.monotonic()
        log.warning("recorder: %s failed (%s); retrying in %.2fs", what, exc, delay)
        await asyncio.sleep(delay)

    async def prepare(self) -> None:
        """Create the schema and read the recorded seq, retrying until the database answers."""
        attempt = 0
        while not self.schema_ready:
            try:
                await self.store.create_schema()
                self.recorded_seq = await self.store.recorded_seq()
                self.offered_seq = max(self.offered_seq, self.recorded_seq)
                self.schema_ready = True
                self.retrying = False
            except Exception as exc:
                await self._retry("opening the history database", attempt, exc)
                attempt += 1
        self._advanced(force=True)

    async def run(self) -> None:
        """Record batches forever; return only when cancelled."""
        await self.prepare()
        attempt = 0
        while True:
            while not self._pending:
                self._ready.clear()
                await self._ready.wait()
            # Let a burst accumulate, unless a reader waits: fewer, larger transactions cost
            # the order path much less CPU.
            await wait_event(self._urgent, self._gather_s)
            self._urgent.clear()
            taken, rows = self._next_chunk()
            while True:
                try:
                    recorded = await self.store.write(rows)
                    self.retrying = False
                    break
                except Exception as exc:
                    await self._retry(f"writing up to seq {rows.last_seq}", attempt, exc)
                    attempt += 1
            attempt = 0
            for _ in range(taken):
                self._pending.popleft()
            self.recorded_seq = max(self.recorded_seq, recorded)
            self._advanced()
            if self._behind_since is not None and not self._pending:
                log.info(
                    "recorder: caught up at seq %d after %.1fs behind",
                    self.recorded_seq,
                    time.monotonic() - self._behind_since,
                    extra={"fields": {"seq": self.recorded_seq}},
                )
                self._behind_since = None

    def _next_chunk(self) -> tuple[int, Rows]:
        items: list[tuple[str, AccountEvent]] = []
        taken = 0
        last_seq = self.recorded_seq
        for batch_seq, batch_items in self._pending:
            if taken and len(items) + len(batch_items) > self._max_events:
                break
            taken += 1
            last_seq = batch_seq
            if batch_seq > self.recorded_seq:
                items.extend(item for item in batch_items if item[1].seq > self.recorded_seq)
        return taken, rows_of(last_seq, items, self.instruments)

    def _advanced(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._hint_written >= HINT_INTERVAL_S:
            self._hint_written = now
            try:
                _write_hint(self._hint_path, self.recorded_seq)
            except OSError as exc:
                log.warning("recorder: cannot write %s: %s", self._hint_path, exc)
        progress = self._progress
        self._progress = asyncio.Event()
        progress.set()

    async def drain(self, timeout_s: float) -> bool:
        """Wait until everything offered so far is recorded; return False on timeout."""
        done = await self.wait_recorded(self.offered_seq, timeout_s)
        self._advanced(force=True)
        return done


class RecorderProgress:
    """How far the recorder process has written the history, as the engine sees it.

    History reads wait on the database's recorded seq (`wait_recorded`); retention reads the
    hint file and the last seq seen in the database, both of them no newer than the truth.
    """

    def __init__(self, store: HistoryStore, hint_path: Path, *, poll_s: float = 0.02) -> None:
        self.store = store
        self.hint_path = hint_path
        self.poll_s = poll_s
        # The newest recorded seq read from the database (or the hint file).
        self.recorded_seq = 0

    def retained_from(self) -> int:
        """Return the recorded seq retention must keep the journal after."""
        return max(self.recorded_seq, read_hint(self.hint_path))

    async def refresh(self) -> int:
        """Read the recorded seq from the database (raising when it does not answer)."""
        self.recorded_seq = max(self.recorded_seq, await self.store.recorded_seq())
        return self.recorded_seq

    async def wait_recorded(self, seq: int, timeout_s: float) -> bool:
        """Wait until the history holds every event up to `seq`; return False on timeout."""
        deadline = time.monotonic() + timeout_s
        pause = self.poll_s
        while self.recorded_seq < seq:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.refresh(), max(0.01, deadline - time.monotonic()))
            if self.recorded_seq >= seq:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            await asyncio.sleep(min(pause, remaining))
            # A recorder that is far behind or stopped is not asked 100 times a second.
            pause = min(pause * 2, 0.25)
        return True

    async def watch(self, interval_s: float = 1.0) -> None:
        """Refresh the recorded seq periodically (for the figures); return only when
        cancelled."""
        while True:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.refresh(), interval_s * 5)
            self.recorded_seq = max(self.recorded_seq, read_hint(self.hint_path))
            await asyncio.sleep(interval_s)
