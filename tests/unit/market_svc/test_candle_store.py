import asyncio
from collections.abc import Mapping, Sequence
from decimal import Decimal

import pytest
from sqlalchemy import update

from market_svc.candles import Candle, CandleInterval
from market_svc.store import CandleStore, CandleWriter, schema_version_table
from mesh.db import SchemaVersionError
from support import until

M1 = CandleInterval.M1
MINUTE = 60_000


def candle(minute: int, close: str = "100.5", symbol: str = "BTCUSD") -> Candle:
    return Candle(
        symbol,
        M1,
        minute * MINUTE,
        Decimal("100.25"),
        Decimal("101.015"),
        Decimal("99.5"),
        Decimal(close),
        Decimal("12.34567891"),
        42,
    )


async def test_candles_round_trip_exactly(store: CandleStore) -> None:
    stored = candle(1)
    await store.upsert([stored])
    assert await store.query("BTCUSD", M1, limit=10) == [stored]
    # Volume finer than 1e-8 is truncated, never rounded up.
    await store.upsert([Candle("ETHUSD", M1, 0, *(Decimal(1),) * 4, Decimal("1.123456789"), 1)])
    (eth,) = await store.query("ETHUSD", M1, limit=1)
    assert eth.volume == Decimal("1.12345678")


async def test_query_bounds_order_and_limit(store: CandleStore) -> None:
    await store.upsert([candle(m) for m in range(10)] + [candle(3, symbol="SOLUSD")])
    times = [c.open_time_ms // MINUTE for c in await store.query("BTCUSD", M1, limit=100)]
    assert times == list(range(10))
    latest = await store.query("BTCUSD", M1, limit=3)
    assert [c.open_time_ms // MINUTE for c in latest] == [7, 8, 9]
    window = await store.query("BTCUSD", M1, start_ms=2 * MINUTE, end_ms=5 * MINUTE, limit=100)
    assert [c.open_time_ms // MINUTE for c in window] == [2, 3, 4, 5]
    earliest = await store.query("BTCUSD", M1, start_ms=2 * MINUTE, limit=2, earliest_first=True)
    assert [c.open_time_ms // MINUTE for c in earliest] == [2, 3]
    assert await store.query("BTCUSD", CandleInterval.H1, limit=10) == []
    first, last = await store.earliest("BTCUSD", M1), await store.latest("BTCUSD", M1)
    assert first is not None and last is not None
    assert (first.open_time_ms, last.open_time_ms) == (0, 9 * MINUTE)
    assert await store.count() == 11
    assert await store.count("BTCUSD", M1) == 10


async def test_upsert_replaces_and_insert_missing_keeps(store: CandleStore) -> None:
    await store.upsert([candle(1, "100")])
    await store.upsert([candle(1, "105")])
    assert [c.close for c in await store.query("BTCUSD", M1, limit=5)] == [Decimal(105)]
    assert await store.insert_missing([candle(1, "1"), candle(2, "2")]) == 1
    assert [c.close for c in await store.query("BTCUSD", M1, limit=5)] == [Decimal(105), Decimal(2)]


async def test_large_batches_are_split(store: CandleStore) -> None:
    await store.upsert([candle(m) for m in range(2500)])
    assert await store.count() == 2500
    assert await store.insert_missing([candle(m) for m in range(2400, 2600)]) == 100


async def test_initialize_is_repeatable_and_refuses_unknown_versions(store: CandleStore) -> None:
    await store.initialize()
    async with store.engine.begin() as conn:
        await conn.execute(update(schema_version_table).values(version=99))
    with pytest.raises(SchemaVersionError, match="version 99"):
        await store.initialize()


async def test_writer_batches_the_latest_version_of_each_candle(store: CandleStore) -> None:
    in_progress: list[Candle] = []
    writer = CandleWriter(store, flush_interval=0.01, in_progress=lambda: in_progress)
    writer.add(candle(1, "1"))
    writer.add(candle(1, "2"))
    in_progress.append(candle(2, "3"))
    assert writer.pending == 1
    assert await writer.flush() == 2
    assert [c.close for c in await store.query("BTCUSD", M1, limit=5)] == [Decimal(2), Decimal(3)]
    in_progress.clear()
    assert await writer.flush() == 0
    assert writer.flushes == 1 and writer.written == 2


async def test_writer_task_flushes_periodically_and_on_cancel(store: CandleStore) -> None:
    writer = CandleWriter(store, flush_interval=0.01)
    task = asyncio.create_task(writer.run())
    writer.add(candle(1))
    await until(store.count)
    writer.add(candle(2))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await store.count() == 2


class FlakyStore(CandleStore):
    """A store whose first write fails, as a dropped database connection would."""

    def __init__(self, inner: CandleStore) -> None:
        super().__init__(inner.engine)
        self.failures_left = 1

    async def upsert(
        self, candles: Sequence[Candle], spot_cursors: Mapping[str, int] | None = None
    ) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise ConnectionError("database went away")
        await super().upsert(candles, spot_cursors)


async def test_writer_keeps_a_failed_batch_for_the_next_flush(store: CandleStore) -> None:
    writer = CandleWriter(FlakyStore(store))
    writer.add(candle(1, "1"))
    with pytest.raises(ConnectionError):
        await writer.flush()
    assert writer.pending == 1 and writer.failures == 1
    # A newer version collected meanwhile wins over the failed one.
    writer.add(candle(1, "7"))
    assert await writer.flush() == 1
    assert [c.close for c in await store.query("BTCUSD", M1, limit=5)] == [Decimal(7)]
