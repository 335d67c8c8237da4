"""The single writer: group commit, journal before apply, staleness, conflation, expiry."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from engine_svc.core import (
    ApplyQuote,
    Command,
    Core,
    CreateAccount,
    ExpireOrders,
    OpenPosition,
    OrderType,
    PlaceOrder,
    Side,
)
from engine_svc.core.codec import decode_command
from engine_svc.journal import Journal, JournalUnavailableError
from engine_svc.sequencer import Applied, Sequencer
from mesh.errors import ApiError

BTC_BID, BTC_ASK = 6_425_000, 6_425_100


class CountingJournal(Journal):
    """A real journal that counts appends and can hold them until released."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, 1 << 20, fsync=True)
        self.appends = 0
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()
        self.fail: Exception | None = None
        # Store the batch, then report it unacknowledged (a replicated journal losing quorum).
        self.store_then_fail = False

    def append(self, records: Sequence[tuple[int, bytes]]) -> None:
        self.entered.set()
        self.release.wait(10)
        if self.fail is not None:
            raise self.fail
        if self.store_then_fail:
            self.store_then_fail = False
            super().append(records)
            raise JournalUnavailableError("no acknowledgement", lambda: True)
        self.appends += 1
        super().append(records)


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class Rig:
    def __init__(self, tmp_path: Path) -> None:
        self.core = Core()
        self.journal = CountingJournal(tmp_path)
        self.fresh = {"BTCUSD"}
        self.clock = Clock(1_000_000_000_000)
        self.sequencer = Sequencer(
            self.core, self.journal, is_fresh=self.fresh.__contains__, clock=self.clock
        )
        self.batches: list[list[Applied]] = []
        self.sequencer.listeners.append(lambda applied: self.batches.append(list(applied)))

    def journaled(self) -> list[Command]:
        return [decode_command(payload) for _, payload in self.journal.read()]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    rig = Rig(tmp_path)
    task = asyncio.create_task(rig.sequencer.run())
    await rig.sequencer.submit(CreateAccount(0, 0, "u1", 10_000_000_000))
    rig.sequencer.offer_quote("BTCUSD", BTC_BID, BTC_ASK)
    await rig.sequencer.submit(CreateAccount(0, 0, "u2", 10_000_000_000))
    yield rig
    rig.journal.release.set()
    rig.sequencer.stop()
    await asyncio.wait_for(task, 10)


def _open(account: str = "u1", symbol: str = "BTCUSD") -> OpenPosition:
    return OpenPosition(0, 0, account, symbol, Side.BUY, 10, quantity=1)


async def test_concurrent_orders_share_one_fsync(rig: Rig) -> None:
    before = rig.journal.appends
    results = await asyncio.gather(*(rig.sequencer.submit(_open()) for _ in range(40)))
    assert all(result.ok for result in results)
    assert rig.journal.appends - before <= 3
    seqs = [command.seq for command in rig.journaled()]
    assert seqs == list(range(1, len(seqs) + 1))
    assert rig.core.last_seq == seqs[-1]


async def test_results_wait_for_the_journal_and_state_changes_after_it(rig: Rig) -> None:
    rig.journal.release.clear()
    rig.journal.entered.clear()
    pending = asyncio.ensure_future(rig.sequencer.submit(_open()))
    await asyncio.to_thread(rig.journal.entered.wait, 10)
    last_seq = rig.core.last_seq
    assert not pending.done()
    assert rig.core.list_positions("u1") == []
    rig.journal.release.set()
    result = await pending
    assert result.ok
    assert rig.core.last_seq == last_seq + 1
    assert len(rig.core.list_positions("u1")) == 1


async def test_an_order_on_a_stale_symbol_fails_and_is_not_journaled(rig: Rig) -> None:
    rig.fresh.discard("BTCUSD")
    before = len(rig.journaled())
    with pytest.raises(ApiError) as caught:
        await rig.sequencer.submit(_open(), fresh_symbol="BTCUSD")
    assert caught.value.reason == "PRICE_UNAVAILABLE"
    assert len(rig.journaled()) == before
    assert rig.core.list_positions("u1") == []


async def test_quotes_are_conflated_and_repeats_skipped(rig: Rig) -> None:
    rig.journal.release.clear()
    rig.journal.entered.clear()
    blocker = asyncio.ensure_future(rig.sequencer.submit(_open()))
    await asyncio.to_thread(rig.journal.entered.wait, 10)
    for step in range(5):
        rig.sequencer.offer_quote("BTCUSD", BTC_BID + step, BTC_ASK + step)
    rig.journal.release.set()
    await blocker
    await rig.sequencer.submit(CreateAccount(0, 0, "u3", 0))
    quotes = [c for c in rig.journaled() if isinstance(c, ApplyQuote)]
    assert [(q.bid, q.ask) for q in quotes] == [(BTC_BID, BTC_ASK), (BTC_BID + 4, BTC_ASK + 4)]
    rig.sequencer.offer_quote("BTCUSD", BTC_BID + 4, BTC_ASK + 4)
    await rig.sequencer.submit(CreateAccount(0, 0, "u4", 0))
    assert len([c for c in rig.journaled() if isinstance(c, ApplyQuote)]) == 2


async def test_timestamps_never_decrease(rig: Rig) -> None:
    rig.clock.now -= 10_000
    await rig.sequencer.submit(_open())
    times = [command.ts for command in rig.journaled()]
    assert times == sorted(times)


async def test_a_due_expiry_is_issued_as_a_journaled_command(rig: Rig) -> None:
    expire = rig.clock.now + 5_000_000
    placed = await rig.sequencer.submit(
        PlaceOrder(
            0,
            0,
            "u1",
            "BTCUSD",
            Side.BUY,
            OrderType.LIMIT,
            BTC_ASK - 1000,
            10,
            quantity=1,
            expire_time=expire,
        )
    )
    assert placed.ok
    assert len(rig.core.list_orders("u1")) == 1
    rig.clock.now = expire
    rig.sequencer.watch_expiry(expire)

    gone = asyncio.Event()
    rig.sequencer.listeners.append(
        lambda applied: None if rig.core.list_orders("u1") else gone.set()
    )
    await asyncio.wait_for(gone.wait(), 10)
    assert any(isinstance(command, ExpireOrders) for command in rig.journaled())


async def test_a_journal_failure_fails_the_batch_and_stops_the_writer(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    failures: list[BaseException] = []
    rig.sequencer.on_failure = failures.append
    task = asyncio.create_task(rig.sequencer.run())
    await rig.sequencer.submit(CreateAccount(0, 0, "u1", 1_000))
    rig.journal.fail = OSError("disk full")
    with pytest.raises(ApiError) as caught:
        await rig.sequencer.submit(CreateAccount(0, 0, "u2", 1_000))
    assert caught.value.reason == "SERVICE_UNAVAILABLE"
    with pytest.raises(OSError):
        await asyncio.wait_for(task, 10)
    assert not rig.core.has_account("u2")
    assert failures and isinstance(failures[0], OSError)
    with pytest.raises(ApiError):
        await rig.sequencer.submit(CreateAccount(0, 0, "u3", 1_000))


async def test_an_unavailable_journal_refuses_the_batch_and_the_writer_resumes(
    rig: Rig,
) -> None:
    last_seq = rig.core.last_seq
    rig.journal.fail = JournalUnavailableError("no quorum")
    with pytest.raises(ApiError) as caught:
        await rig.sequencer.submit(CreateAccount(0, 0, "u3", 1_000))
    assert caught.value.reason == "SERVICE_UNAVAILABLE"
    assert not rig.core.has_account("u3")
    assert rig.core.last_seq == last_seq
    rig.journal.fail = None
    result = await rig.sequencer.submit(CreateAccount(0, 0, "u3", 1_000))
    assert result.ok and rig.core.has_account("u3")
    assert [command.seq for command in rig.journaled()][-1] == last_seq + 1


async def test_a_refused_batch_that_was_stored_after_all_is_applied_before_the_next(
    rig: Rig,
) -> None:
    rig.journal.store_then_fail = True
    with pytest.raises(ApiError) as caught:
        await rig.sequencer.submit(CreateAccount(0, 0, "u3", 1_000))
    assert caught.value.reason == "SERVICE_UNAVAILABLE"
    assert not rig.core.has_account("u3")
    result = await rig.sequencer.submit(CreateAccount(0, 0, "u4", 1_000))
    assert result.ok and rig.core.has_account("u3") and rig.core.has_account("u4")
    seqs = [command.seq for command in rig.journaled()]
    assert seqs == list(range(1, len(seqs) + 1)) and seqs[-1] == rig.core.last_seq
