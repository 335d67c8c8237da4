"""The SQL read model and its recorder, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import MetaData, Table, select, update

from cfd.v1 import trading_pb2
from cfd.v1.exchange_pb2 import LIQUIDITY_TAKER, SpotFill
from engine_svc.core import (
    ApplyQuote,
    ChargeSwaps,
    ClosePosition,
    Core,
    CreateAccount,
    DepositAsset,
    OpenPosition,
    OrderType,
    PlaceOrder,
    Side,
    TransferFunds,
    make_charges,
    make_instrument,
)
from engine_svc.core.spot import PlaceSpotOrder, SpotOrderType
from engine_svc.core.spot.enums import TransferDirection
from engine_svc.history import (
    MIGRATIONS,
    RECORDED_TABLES,
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
    recorder_state,
    schema_version_table,
    spot_fills,
    spot_orders,
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


async def test_a_history_schema_of_a_newer_version_is_refused(store: HistoryStore) -> None:
    await store.create_schema()  # a second start at the same version is fine
    async with store.engine.begin() as conn:
        await conn.execute(update(schema_version_table).values(version=SCHEMA_VERSION + 1))
    with pytest.raises(SchemaVersionError, match=f"version {SCHEMA_VERSION + 1}"):
        await store.create_schema()


async def test_a_version_1_history_gains_the_spot_tables(tmp_path: Path) -> None:
    history = HistoryStore(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'h.sqlite3'}"))
    async with history.engine.begin() as conn:
        # What the version 1 build created: its tables, claimed at version 1.
        await conn.run_sync(schema_version_table.create)
        await conn.run_sync(MIGRATIONS[0])
        await conn.execute(schema_version_table.insert().values(id=1, version=1))
        await conn.execute(recorder_state.insert().values(id=1, seq=7))
    await history.create_schema()
    assert await history.count(spot_fills) == 0 and await history.count(spot_orders) == 0
    assert await history.recorded_seq() == 7
    async with history.engine.connect() as conn:
        version = (await conn.execute(select(schema_version_table.c.version))).scalar_one()
    assert version == SCHEMA_VERSION == 4
    await history.engine.dispose()


async def test_a_version_2_history_gains_swap_and_commission_columns(tmp_path: Path) -> None:
    history = HistoryStore(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'h.sqlite3'}"))
    row = {
        "account_id": "a", "seq": 5, "idx": 0, "position_id": "p-3", "symbol": "BTCUSD",
        "side": "BUY", "quantity": "0.001", "leverage": 10, "entry_price": "1", "close_price": "2",
        "margin": "1", "realized_pnl": "1", "house_covered_loss": "0", "close_reason": "USER",
        "open_time_ns": 1, "close_time_ns": 2, "data": b"",
    }  # fmt: skip
    async with history.engine.begin() as conn:
        # What the version 2 build created: its closed entries had no swap and commission.
        await conn.run_sync(schema_version_table.create)
        await conn.run_sync(MIGRATIONS[0])
        await conn.run_sync(MIGRATIONS[1])
        for column in ("swap", "commission"):
            await conn.exec_driver_sql(f"ALTER TABLE {closed_positions.name} DROP COLUMN {column}")
        await conn.exec_driver_sql(
            f"INSERT INTO {closed_positions.name} ({', '.join(row)}) "
            f"VALUES ({', '.join('?' for _ in row)})",
            tuple(row.values()),
        )
        await conn.execute(schema_version_table.insert().values(id=1, version=2))
        await conn.execute(recorder_state.insert().values(id=1, seq=5))
    await history.create_schema()
    async with history.engine.connect() as conn:
        figures = (
            await conn.execute(select(closed_positions.c.swap, closed_positions.c.commission))
        ).one()
        version = (await conn.execute(select(schema_version_table.c.version))).scalar_one()
    assert tuple(figures) == ("0", "0") and version == SCHEMA_VERSION
    await history.engine.dispose()


async def test_closed_entries_record_their_swap_and_commission(
    store: HistoryStore, tmp_path: Path
) -> None:
    feed = Feed()
    charges = make_charges(swap_long_bps="-10", commission_per_million="30")
    btc = make_instrument("BTCUSD", "0.01", "0.0001", 100, "0", charges=charges)
    feed.core = Core({"BTCUSD": btc})
    batches = [
        feed.apply(
            CreateAccount(0, 0, "a", 100_000_000_000),
            ApplyQuote(0, 0, "BTCUSD", 5_999_900, 6_000_000),
            OpenPosition(0, 0, "a", "BTCUSD", Side.BUY, 10, quantity=1000),
        ),
        feed.apply(ChargeSwaps(0, 0, 20_000, 10**18, 3)),
        feed.apply(ClosePosition(0, 0, "a", "p-3")),
    ]
    await _record(Recorder(store, feed.core.instruments, tmp_path / "hint"), batches)
    async with store.engine.connect() as conn:
        figures = (
            await conn.execute(select(closed_positions.c.swap, closed_positions.c.commission))
        ).one()
        kinds = list((await conn.execute(select(ledger.c.kind))).scalars())
    # Three days of -10 bps of 6000 USD; 0.18 USD on the open and 0.179997 on the close.
    assert tuple(figures) == ("-18.00", "0.359997")
    assert "COMMISSION" in kinds
    ((_, _, entry),) = await store.history_page("a", None, None, 10)
    closed = trading_pb2.Position.FromString(entry)
    assert (closed.swap, closed.commission) == ("-18.00", "0.359997")


def spot_day() -> tuple[Feed, list[list[Applied]]]:
    """Return batches where two accounts fund their wallets and trade twice."""
    feed = Feed()
    usd = TransferDirection.TO_SPOT
    batches = [
        feed.apply(
            CreateAccount(0, 0, "a", 10_000_000_000),
            CreateAccount(0, 0, "b", 10_000_000_000),
            TransferFunds(0, 0, "a", 1_000_000_000, usd),
            DepositAsset(0, 0, "b", "BTC", 100),
        ),
        feed.apply(
            PlaceSpotOrder(0, 0, "b", "BTC_USD", Side.SELL, SpotOrderType.LIMIT, 6_400_000, 10),
            PlaceSpotOrder(0, 0, "a", "BTC_USD", Side.BUY, SpotOrderType.LIMIT, 6_400_000, 4),
        ),
        feed.apply(
            PlaceSpotOrder(0, 0, "a", "BTC_USD", Side.BUY, SpotOrderType.MARKET, None, 2),
        ),
    ]
    return feed, batches


async def test_spot_orders_and_fills_are_recorded_once_and_page_newest_first(
    store: HistoryStore, tmp_path: Path
) -> None:
    feed, batches = spot_day()
    await _record(Recorder(store, feed.core.instruments, tmp_path / "hint"), batches)
    assert await store.count(spot_fills) == 4
    assert await store.count(spot_orders) == 3
    # A restart offers the same batches again: nothing is written twice.
    again = Recorder(store, feed.core.instruments, tmp_path / "hint2", recorded_seq=0)
    await _record(again, batches)
    assert await store.count(spot_fills) == 4 and await store.count(spot_orders) == 3
    first = await store.spot_fills_page("a", None, None, 1)
    rest = await store.spot_fills_page("a", "BTC_USD", first[-1][:2], 5)
    fills = [SpotFill.FromString(data) for _, _, data in [*first, *rest]]
    assert [(f.quantity, f.liquidity) for f in fills] == [
        ("0.0002", LIQUIDITY_TAKER), ("0.0004", LIQUIDITY_TAKER),
    ]  # fmt: skip
    assert await store.spot_fills_page("a", "ETH_USD", None, 5) == []


async def test_a_version_3_history_gains_the_shard_in_its_keys(database_url: str) -> None:
    history = HistoryStore(create_engine(database_url))
    before = MetaData()
    for table in (recorder_state, *RECORDED_TABLES):
        columns = [column._copy() for column in table.columns if column.name != "shard"]
        Table(table.name, before, *columns)
    order = {
        "order_id": "o-5", "account_id": "a", "symbol": "BTCUSD", "side": "BUY",
        "order_type": "LIMIT", "status": "PENDING", "trigger_price": "1", "position_id": "",
        "reject_reason": "", "create_time_ns": 1, "update_time_ns": 1, "seq": 5, "data": b"",
    }  # fmt: skip
    async with history.engine.begin() as conn:
        # What the version 3 build created: keys without the shard.
        await conn.run_sync(schema_version_table.create)
        await conn.run_sync(before.create_all)
        await conn.execute(before.tables[orders.name].insert().values(order))
        await conn.execute(schema_version_table.insert().values(id=1, version=3))
        await conn.execute(recorder_state.insert().values(id=1, seq=5))
    await history.create_schema()
    shard_1 = HistoryStore(history.engine, shard=1)
    await shard_1.create_schema()
    # The same order id from another shard is another row; each shard has its own progress.
    other = order | {"account_id": "b", "seq": 7}
    assert await shard_1.write(Rows(7, [], [], [], [other])) == 7
    assert (await history.recorded_seq(), await shard_1.recorded_seq()) == (5, 7)
    async with history.engine.connect() as conn:
        found = await conn.execute(select(orders.c.shard, orders.c.account_id).order_by("shard"))
        assert [tuple(row) for row in found] == [(0, "a"), (1, "b")]
        version = (await conn.execute(select(schema_version_table.c.version))).scalar_one()
    assert version == SCHEMA_VERSION == 4
    # Discarding one shard's seqs leaves the other's rows.
    assert await shard_1.discard_after(0, lambda _taken: None) == 1
    assert await history.count(orders) == 1
    await history.engine.dispose()
