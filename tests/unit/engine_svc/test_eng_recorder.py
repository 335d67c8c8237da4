"""The SQL read model and its recorder, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import update

from cfd.v1 import trading_pb2
from engine_svc.core import (
    ApplyQuote,
    ClosePosition,
    Core,
    CreateAccount,
    OpenPosition,
    OrderType,
    PlaceOrder,
    Side,
)
from engine_svc.history import (
    SCHEMA_VERSION,
    HistoryStore,
    PageTokenError,
    Rows,
    closed_positions,
    decode_page_token,
    encode_page_token,
    events,
    ledger,
    orders,
    schema_version_table,
)
from engine_svc.pipeline import account_events
from engine_svc.recorder import Recorder, read_hint
from engine_svc.sequencer import Applied
from mesh.db import SchemaVersionError, create_engine


class Feed:
    def __init__(self) -> None:
        self.core = Core()
        self.seq = 0

    def apply(self, *drafts: object) -> list[Applied]:
        applied: list[Applied] = []
        for draft in drafts:
            self.seq += 1
            command = draft._replace(seq=self.seq, ts=self.seq * 1000)  # type: ignore[attr-defined]
            applied.append((command, self.core.apply(command)))
        return applied


def trading_day() -> tuple[Feed, list[list[Applied]]]:
    """Return batches with accounts, opens, full and partial closes and an order."""
    feed = Feed()
    batches = [
        feed.apply(
            CreateAccount(0, 0, "a", 100_000_000_000),
            CreateAccount(0, 0, "b", 100_000_000_000),
            ApplyQuote(0, 0, "BTCUSD", 6_425_000, 6_425_100),
            ApplyQuote(0, 0, "ETHUSD", 300_000, 300_100),
        )
    ]
    for _ in range(3):
        batches.append(
            feed.apply(
                OpenPosition(0, 0, "a", "BTCUSD", Side.BUY, 10, quantity=10),
                OpenPosition(0, 0, "a", "ETHUSD", Side.SELL, 10, quantity=10),
                OpenPosition(0, 0, "b", "BTCUSD", Side.SELL, 10, quantity=10),
            )
        )
    for view in feed.core.list_positions("a"):
        batches.append(feed.apply(ClosePosition(0, 0, "a", view.id, quantity=4)))
        batches.append(feed.apply(ClosePosition(0, 0, "a", view.id)))
    batches.append(
        feed.apply(
            PlaceOrder(0, 0, "b", "BTCUSD", Side.BUY, OrderType.LIMIT, 6_000_000, 5, quantity=1)
        )
    )
    return feed, batches


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[HistoryStore]:
    history = HistoryStore(create_engine(database_url))
    await history.create_schema()
    yield history
    await history.engine.dispose()


async def _record(recorder: Recorder, batches: list[list[Applied]]) -> None:
    task = asyncio.create_task(recorder.run())
    try:
        for batch in batches:
            recorder.offer(batch[-1][0].seq, account_events(batch))
        assert await recorder.wait_recorded(batches[-1][-1][0].seq, 20)
        assert await recorder.drain(20)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_every_event_is_recorded_once_even_when_offered_again(
    store: HistoryStore, tmp_path: Path
) -> None:
    feed, batches = trading_day()
    instruments = feed.core.instruments
    await _record(Recorder(store, instruments, tmp_path / "hint"), batches)
    counts = [await store.count(table) for table in (events, closed_positions, ledger, orders)]
    assert counts[1] == 12
    assert counts[3] == 1
    assert counts[0] == sum(len(account_events(batch)) for batch in batches)
    assert await store.recorded_seq() == feed.seq
    assert read_hint(tmp_path / "hint") == feed.seq
    # A restart replays from an older snapshot: the same batches come again.
    again = Recorder(store, instruments, tmp_path / "hint2", recorded_seq=0)
    await _record(again, batches)
    assert [await store.count(t) for t in (events, closed_positions, ledger, orders)] == counts


async def test_history_pages_newest_first_with_a_symbol_filter(
    store: HistoryStore, tmp_path: Path
) -> None:
    feed, batches = trading_day()
    await _record(Recorder(store, feed.core.instruments, tmp_path / "hint"), batches)
    seen: list[tuple[int, int]] = []
    after = None
    while True:
        page = await store.history_page("a", None, after, 5)
        seen.extend((seq, index) for seq, index, _ in page)
        if len(page) < 5:
            break
        after = page[-1][:2]
    assert len(seen) == 12
    assert seen == sorted(seen, reverse=True)
    eth = await store.history_page("a", "ETHUSD", None, 100)
    symbols = {trading_pb2.Position.FromString(data).symbol for _, _, data in eth}
    assert symbols == {"ETHUSD"} and len(eth) == 6
    assert await store.history_page("b", None, None, 10) == []
    first = trading_pb2.Position.FromString(eth[0][2])
    assert first.status == trading_pb2.POSITION_STATUS_CLOSED
    assert await store.last_close("a", first.id) == eth[0][2]
    assert await store.last_close("b", first.id) is None


async def test_events_after_resume_inside_a_seq(store: HistoryStore, tmp_path: Path) -> None:
    feed, batches = trading_day()
    await _record(Recorder(store, feed.core.instruments, tmp_path / "hint"), batches)
    every = await store.events_after("a", (0, 0), feed.seq, 1000)
    keys = [(seq, index) for seq, index, _ in every]
    assert keys == sorted(keys)
    middle = keys[len(keys) // 2]
    rest = await store.events_after("a", middle, feed.seq, 1000)
    assert [(s, i) for s, i, _ in rest] == keys[len(keys) // 2 + 1 :]
    decoded = trading_pb2.StreamEventsResponse.FromString(every[0][2])
    assert decoded.sequence == keys[0][0]


class FlakyStore(HistoryStore):
    """The real store, but the database is down for the first `outage` writes."""

    def __init__(self, inner: HistoryStore, outage: int) -> None:
        super().__init__(inner.engine)
        self.outage = outage
        self.attempts = 0

    async def write(self, rows: Rows) -> int:
        self.attempts += 1
        if self.attempts <= self.outage:
            raise ConnectionError("database is down")
        return await super().write(rows)


async def test_an_outage_delays_recording_but_loses_nothing(
    store: HistoryStore, tmp_path: Path
) -> None:
    feed, batches = trading_day()
    flaky = FlakyStore(store, outage=3)
    recorder = Recorder(
        flaky, feed.core.instruments, tmp_path / "hint", min_backoff_s=0.01, gather_s=0.0
    )
    await _record(recorder, batches)
    assert recorder.failures == 3
    assert await store.count(closed_positions) == 12
    assert await store.recorded_seq() == feed.seq


def test_page_tokens_round_trip_and_reject_garbage() -> None:
    assert decode_page_token(encode_page_token(123, 4)) == (123, 4)
    for bad in ("", "!!!", "bm90IGEgdG9rZW4", "x" * 100):
        with pytest.raises(PageTokenError):
            decode_page_token(bad)


async def test_a_history_schema_of_another_version_is_refused(store: HistoryStore) -> None:
    await store.create_schema()  # a second start at the same version is fine
    async with store.engine.begin() as conn:
        await conn.execute(update(schema_version_table).values(version=SCHEMA_VERSION + 1))
    with pytest.raises(SchemaVersionError, match="version 2"):
        await store.create_schema()
