"""The single writer: one task owns the core, numbers commands and commits them in groups.

Handlers `submit` a command (with seq and ts 0) and await its result. The sequencer task drains
everything queued into a batch, adds the latest offered quote of each symbol (conflated) and a
due `ExpireOrders`, assigns seqs and never-decreasing timestamps, appends the batch to the
journal and fsyncs it, then applies it to the core and only then releases the results and
hands the batch to the listeners. Journal-before-apply means no reader ever sees state that a
crash could take back, and a burst of concurrent orders shares one fsync.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from engine_svc.core import (
    ApplyQuote,
    Command,
    Core,
    ExpireOrders,
    OrderModified,
    OrderPlaced,
    Result,
)
from engine_svc.core.codec import encode_command
from engine_svc.journal import CommandLog, JournalUnavailableError
from mesh.aio import wait_event
from mesh.errors import ApiError

log = logging.getLogger("engine.sequencer")

Applied = tuple[Command, Result]
BatchListener = Callable[[Sequence[Applied]], None]


@dataclass(slots=True)
class _Submission:
    command: Command
    fresh_symbol: str | None
    future: asyncio.Future[Result] = field(repr=False)


class Sequencer:
    """Owns `core`; every change goes through `submit`, `offer_quote` or an expiry."""

    def __init__(
        self,
        core: Core,
        journal: CommandLog,
        *,
        is_fresh: Callable[[str], bool],
        max_batch: int = 2048,
        clock: Callable[[], int] = time.time_ns,
        last_ts: int = 0,
    ) -> None:
        self.core = core
        self.journal = journal
        self._is_fresh = is_fresh
        self._max_batch = max_batch
        self._clock = clock
        self.last_ts = last_ts
        self._queue: deque[_Submission] = deque()
        self._quotes: dict[str, tuple[int, int]] = {}
        self._expiries: list[int] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self.listeners: list[BatchListener] = []
        self.failure: BaseException | None = None
        # A batch the journal refused without knowing whether it stored it, and how to ask.
        self._doubt: tuple[list[Command], Callable[[], bool]] | None = None
        self.on_failure: Callable[[BaseException], None] | None = None
        # Told (commands, seconds) after each journal append: the metrics' hook.
        self.on_append: Callable[[int, float], None] | None = None
        self.batches = 0
        self.commands = 0

    # ------------------------------------------------------------------ inputs

    async def submit(self, command: Command, fresh_symbol: str | None = None) -> Result:
        """Commit `command` and return its result; fail with PRICE_UNAVAILABLE when
        `fresh_symbol` has no fresh quote at commit time."""
        if self._stopping or self.failure is not None:
            raise ApiError("SERVICE_UNAVAILABLE", "the engine is shutting down; retry shortly")
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append(_Submission(command, fresh_symbol, future))
        self._wake.set()
        return await future

    def offer_quote(self, symbol: str, bid: int, ask: int) -> None:
        """Queue a quote; only the latest one per symbol per batch is applied."""
        self._quotes[symbol] = (bid, ask)
        self._wake.set()

    def watch_expiry(self, expire_ns: int) -> None:
        """Issue an ExpireOrders command once the clock reaches `expire_ns`."""
        heapq.heappush(self._expiries, expire_ns)
        self._wake.set()

    # ------------------------------------------------------------------ the task

    async def run(self) -> None:
        """Commit batches until `stop` is called and the queue is empty."""
        try:
            while True:
                await self._wait_for_work()
                if self._stopping and not self._queue:
                    return
                await self._commit_batch()
                # Let handlers queue more before the next batch even when nothing blocked.
                await asyncio.sleep(0)
        except BaseException as exc:
            self._fail(exc)
            raise
        finally:
            self._executor.shutdown(wait=True)

    def stop(self) -> None:
        """Commit what is queued, then end `run`."""
        self._stopping = True
        self._wake.set()

    async def _wait_for_work(self) -> None:
        while not (self._queue or self._quotes or self._expiry_due() or self._stopping):
            self._wake.clear()
            if self._expiries:
                timeout = max(0.0, (self._expiries[0] - self._clock()) / 1e9) + 0.001
                await wait_event(self._wake, timeout)
            else:
                await self._wake.wait()

    def _expiry_due(self) -> bool:
        return bool(self._expiries) and self._expiries[0] <= self._clock()

    def _next_ts(self) -> int:
        now = self._clock()
        if now > self.last_ts:
            self.last_ts = now
        return self.last_ts

    async def _commit_batch(self) -> None:
        if self._doubt is not None and not await self._settle_doubt():
            self._refuse_queued("the journal is unavailable; retry shortly")
            return
        core = self.core
        ts = self._next_ts()
        seq = core.last_seq
        commands: list[Command] = []
        waiting: list[asyncio.Future[Result] | None] = []
        quotes = self._quotes
        self._quotes = {}
        for symbol, (bid, ask) in quotes.items():
            last = core.get_quote(symbol)
            if last is not None and last.bid == bid and last.ask == ask:
                continue
            seq += 1
            commands.append(ApplyQuote(seq, ts, symbol, bid, ask))
            waiting.append(None)
        if self._expiry_due():
            while self._expiries and self._expiries[0] <= ts:
                heapq.heappop(self._expiries)
            seq += 1
            commands.append(ExpireOrders(seq, ts))
            waiting.append(None)
        queue = self._queue
        taken = 0
        while queue and taken < self._max_batch:
            item = queue.popleft()
            taken += 1
            if item.future.cancelled():
                continue
            if item.fresh_symbol is not None and not self._is_fresh(item.fresh_symbol):
                item.future.set_exception(
                    ApiError("PRICE_UNAVAILABLE", f"no fresh price for {item.fresh_symbol}")
                )
                continue
            seq += 1
            commands.append(item.command._replace(seq=seq, ts=ts))
            waiting.append(item.future)
        if not commands:
            return
        records = [(command.seq, encode_command(command)) for command in commands]
        appending = time.perf_counter()
        try:
            if self.journal.fsync:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(self._executor, self.journal.append, records)
            else:
                self.journal.append(records)
        except JournalUnavailableError as exc:
            # Nothing was applied or released: refuse this batch and keep serving, so the
            # engine resumes by itself once the journal is reachable again. The batch may
            # have been stored all the same: the next batch first settles that.
            self._refuse(commands, waiting, "the journal is unavailable; retry shortly")
            self._doubt = (commands, exc.settle)
            log.error("batch at seq %d refused: %s", commands[0].seq, exc)
            return
        except BaseException:
            self._refuse(commands, waiting, "the journal cannot be written")
            raise
        if self.on_append is not None:
            self.on_append(len(records), time.perf_counter() - appending)
        self._apply(commands, waiting)

    def _apply(
        self, commands: Sequence[Command], waiting: Sequence[asyncio.Future[Result] | None]
    ) -> None:
        """Apply a journaled batch, release its results and hand it to the listeners."""
        applied: list[Applied] = []
        for command, future in zip(commands, waiting, strict=True):
            result = apply_logged(self.core, command)
            if result is None:
                if future is not None and not future.done():
                    future.set_exception(ApiError("INTERNAL", "internal error; see the log"))
                continue
            applied.append((command, result))
            for event in result.events:
                if (
                    isinstance(event, OrderPlaced | OrderModified)
                    and event.order.expire_time is not None
                ):
                    heapq.heappush(self._expiries, event.order.expire_time)
            if future is not None and not future.done():
                future.set_result(result)
        self.batches += 1
        self.commands += len(commands)
        for listener in self.listeners:
            try:
                listener(applied)
            except Exception:
                log.exception("a batch listener failed")

    async def _settle_doubt(self) -> bool:
        """Find out whether the last refused batch was stored; apply it when it was. Return
        False while that cannot be known."""
        assert self._doubt is not None
        commands, settle = self._doubt
        try:
            if self.journal.fsync:
                loop = asyncio.get_running_loop()
                stored = await loop.run_in_executor(self._executor, settle)
            else:
                stored = settle()
        except JournalUnavailableError as exc:
            self._doubt = (commands, exc.settle)
            return False
        self._doubt = None
        if stored:
            # Journaled after all: the state must include it before anything follows. Its
            # callers were told to retry, and a retry with the same clientOrderId finds it.
            log.warning("the refused batch at seq %d was stored; applying it", commands[0].seq)
            self._apply(commands, [None] * len(commands))
        return True

    def _refuse_queued(self, message: str) -> None:
        for _ in range(min(len(self._queue), self._max_batch)):
            item = self._queue.popleft()
            if not item.future.done():
                item.future.set_exception(ApiError("SERVICE_UNAVAILABLE", message))

    def _refuse(
        self,
        commands: Sequence[Command],
        waiting: Sequence[asyncio.Future[Result] | None],
        message: str,
    ) -> None:
        """Fail the waiting submissions of a batch that was not journaled; an expiry it held
        is watched again."""
        for command in commands:
            if isinstance(command, ExpireOrders):
                heapq.heappush(self._expiries, command.ts)
        for future in waiting:
            if future is not None and not future.done():
                future.set_exception(ApiError("SERVICE_UNAVAILABLE", message))

    def _fail(self, exc: BaseException) -> None:
        if isinstance(exc, asyncio.CancelledError):
            error: BaseException = exc
        else:
            error = exc
            log.critical("the sequencer stopped: %s", exc, exc_info=exc)
        self.failure = error
        while self._queue:
            item = self._queue.popleft()
            if not item.future.done():
                item.future.set_exception(
                    ApiError("SERVICE_UNAVAILABLE", "the engine is shutting down; retry shortly")
                )
        if self.on_failure is not None and not isinstance(exc, asyncio.CancelledError):
            self.on_failure(exc)

    @property
    def queued(self) -> int:
        """Return how many submissions wait for the next batch."""
        return len(self._queue)


def apply_logged(core: Core, command: Command) -> Result | None:
    """Apply a command; log a core failure and return None (replay does the same)."""
    try:
        return core.apply(command)
    except Exception:
        log.exception("the core failed on seq %d (%s)", command.seq, type(command).__name__)
        return None
