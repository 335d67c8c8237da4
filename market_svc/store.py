"""Candle persistence through SQLAlchemy (SQLite by default, PostgreSQL when configured).

Prices and volumes are stored as integers scaled by 10^8, times as epoch milliseconds, so
both dialects store them exactly and index them cheaply.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import ROUND_DOWN, Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    MetaData,
    String,
    Table,
    and_,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from market_svc.candles import Candle, CandleInterval
from mesh.db import claim_schema_version
from mesh.db import schema_version_table as schema_version_table_of

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
SCALE = Decimal(10) ** 8
STEP = Decimal(1).scaleb(-8)
# Rows per INSERT statement: well inside SQLite's bound-parameter limit at 9 columns a row.
BATCH_ROWS = 1000

metadata = MetaData()

schema_version_table = schema_version_table_of(metadata, "market_schema_version")

candles_table = Table(
    "market_candles",
    metadata,
    Column("symbol", String(32), primary_key=True),
    Column("interval", String(8), primary_key=True),
    Column("open_time", BigInteger, primary_key=True),
    Column("open", BigInteger, nullable=False),
    Column("high", BigInteger, nullable=False),
    Column("low", BigInteger, nullable=False),
    Column("close", BigInteger, nullable=False),
    Column("volume", BigInteger, nullable=False),
    Column("tick_count", BigInteger, nullable=False),
)


# The number of the last public spot trade each market's candles hold, written in the same
# transaction as the candles, so a restart resumes exactly after it.
spot_cursor_table = Table(
    "market_spot_trades",
    metadata,
    Column("market", String(32), primary_key=True),
    Column("last_trade", BigInteger, nullable=False),
)


def to_scaled(value: Decimal) -> int:
    """Return ``value`` as an integer count of 10^-8, truncating finer digits."""
    return int(value.quantize(STEP, rounding=ROUND_DOWN) * SCALE)


def from_scaled(value: int) -> Decimal:
    """Return the Decimal of an integer count of 10^-8."""
    return Decimal(value).scaleb(-8)


def _row(candle: Candle) -> dict[str, Any]:
    return {
        "symbol": candle.symbol,
        "interval": candle.interval.value,
        "open_time": candle.open_time_ms,
        "open": to_scaled(candle.open),
        "high": to_scaled(candle.high),
        "low": to_scaled(candle.low),
        "close": to_scaled(candle.close),
        "volume": to_scaled(candle.volume),
        "tick_count": candle.tick_count,
    }


def _candle(row: Any) -> Candle:
    return Candle(
        symbol=row.symbol,
        interval=CandleInterval(row.interval),
        open_time_ms=row.open_time,
        open=from_scaled(row.open),
        high=from_scaled(row.high),
        low=from_scaled(row.low),
        close=from_scaled(row.close),
        volume=from_scaled(row.volume),
        tick_count=row.tick_count,
    )


class CandleStore:
    """Read and write candles in the ``market_candles`` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def engine(self) -> AsyncEngine:
        """Return the SQLAlchemy engine the store uses."""
        return self._engine

    async def initialize(self) -> None:
        """Create or check the market schema (versioned by ``market_schema_version``)."""
        async with self._engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await claim_schema_version(conn, schema_version_table, SCHEMA_VERSION, "market")

    async def upsert(
        self, candles: Sequence[Candle], spot_cursors: Mapping[str, int] | None = None
    ) -> None:
        """Insert ``candles``, replacing stored candles with the same key, and record in the
        same transaction the last spot trade of each market they hold."""
        if not candles and not spot_cursors:
            return
        async with self._engine.begin() as conn:
            stmt = _insert(conn.dialect.name, replace=True)
            for start in range(0, len(candles), BATCH_ROWS):
                await conn.execute(stmt, [_row(c) for c in candles[start : start + BATCH_ROWS]])
            if spot_cursors:
                insert = (
                    postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
                )(spot_cursor_table)
                await conn.execute(
                    insert.on_conflict_do_update(
                        index_elements=["market"],
                        set_={"last_trade": insert.excluded.last_trade},
                    ),
                    [{"market": m, "last_trade": n} for m, n in sorted(spot_cursors.items())],
                )

    async def spot_cursors(self) -> dict[str, int]:
        """Return the last spot trade each market's stored candles hold."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(spot_cursor_table))).all()
        return {row.market: int(row.last_trade) for row in rows}

    async def insert_missing(self, candles: Sequence[Candle]) -> int:
        """Insert the ``candles`` whose key is not stored yet; return how many were new."""
        if not candles:
            return 0
        inserted = 0
        async with self._engine.begin() as conn:
            # RETURNING counts exactly on both dialects, unlike rowcount of an executemany.
            stmt = _insert(conn.dialect.name, replace=False).returning(candles_table.c.open_time)
            for start in range(0, len(candles), BATCH_ROWS):
                rows = [_row(c) for c in candles[start : start + BATCH_ROWS]]
                result = await conn.execute(stmt, rows)
                inserted += len(result.all())
        return inserted

    async def query(
        self,
        symbol: str,
        interval: CandleInterval,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int,
        earliest_first: bool = False,
    ) -> list[Candle]:
        """Return up to ``limit`` candles with open time in [start, end], ascending.

        When more match, the latest are returned, or the earliest with ``earliest_first``.
        """
        c = candles_table.c
        conditions = [c.symbol == symbol, c.interval == interval.value]
        if start_ms is not None:
            conditions.append(c.open_time >= start_ms)
        if end_ms is not None:
            conditions.append(c.open_time <= end_ms)
        order = c.open_time.asc() if earliest_first else c.open_time.desc()
        stmt = select(candles_table).where(and_(*conditions)).order_by(order).limit(limit)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        candles = [_candle(row) for row in rows]
        if not earliest_first:
            candles.reverse()
        return candles

    async def latest(self, symbol: str, interval: CandleInterval) -> Candle | None:
        """Return the newest stored candle of the series, if any."""
        found = await self.query(symbol, interval, limit=1)
        return found[0] if found else None

    async def earliest(self, symbol: str, interval: CandleInterval) -> Candle | None:
        """Return the oldest stored candle of the series, if any."""
        found = await self.query(symbol, interval, limit=1, earliest_first=True)
        return found[0] if found else None

    async def count(self, symbol: str | None = None, interval: CandleInterval | None = None) -> int:
        """Return the number of stored candles, optionally of one symbol and interval."""
        stmt = select(func.count()).select_from(candles_table)
        if symbol is not None:
            stmt = stmt.where(candles_table.c.symbol == symbol)
        if interval is not None:
            stmt = stmt.where(candles_table.c.interval == interval.value)
        async with self._engine.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())


def _insert(dialect: str, *, replace: bool) -> Any:
    """Return the INSERT of candle rows that skips or replaces existing keys."""
    keys = ["symbol", "interval", "open_time"]
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(candles_table)
    if not replace:
        return stmt.on_conflict_do_nothing(index_elements=keys)
    fields = ("open", "high", "low", "close", "volume", "tick_count")
    return stmt.on_conflict_do_update(
        index_elements=keys, set_={name: stmt.excluded[name] for name in fields}
    )


class CandleWriter:
    """Collect changed candles and write them to the store in periodic batches.

    Only the newest version of each candle is kept between flushes, so the write volume is
    bounded by the number of series, not by the tick rate. ``in_progress`` supplies the
    changed in-progress candles at each flush, so a restart resumes them.
    """

    def __init__(
        self,
        store: CandleStore,
        flush_interval: float = 1.0,
        *,
        in_progress: Callable[[], Iterable[Candle]] | None = None,
        spot_cursors: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self._store = store
        self._in_progress = in_progress
        self._spot_cursors = spot_cursors
        self._written_cursors: dict[str, int] = {}
        self._flush_interval = flush_interval
        self._dirty: dict[tuple[str, CandleInterval, int], Candle] = {}
        self._lock = asyncio.Lock()
        self.flushes = 0
        self.written = 0
        self.failures = 0
        # Monotonic time of the last successful write (the candle write lag counts from it).
        self.flushed_at = time.monotonic()

    def add(self, candle: Candle) -> None:
        """Mark ``candle`` to be written at the next flush."""
        self._dirty[(candle.symbol, candle.interval, candle.open_time_ms)] = candle

    @property
    def pending(self) -> int:
        """Return the number of candles waiting for the next flush."""
        return len(self._dirty)

    async def flush(self) -> int:
        """Write the pending candles now; return how many were written."""
        async with self._lock:
            if self._in_progress is not None:
                for candle in self._in_progress():
                    self.add(candle)
            # Read with the candles, before any await: they hold exactly these trades.
            cursors = dict(self._spot_cursors()) if self._spot_cursors is not None else {}
            if not self._dirty and cursors == self._written_cursors:
                return 0
            batch, self._dirty = self._dirty, {}
            try:
                await self._store.upsert(list(batch.values()), cursors)
            except Exception:
                # Keep the batch, newer versions collected meanwhile win, and retry next time.
                for key, candle in batch.items():
                    self._dirty.setdefault(key, candle)
                self.failures += 1
                raise
            self._written_cursors = cursors
            self.flushes += 1
            self.written += len(batch)
            self.flushed_at = time.monotonic()
            return len(batch)

    async def run(self) -> None:
        """Flush every ``flush_interval`` seconds until cancelled, then flush once more."""
        try:
            while True:
                await asyncio.sleep(self._flush_interval)
                try:
                    await self.flush()
                except Exception:
                    log.exception("writing candles failed; retrying at the next flush")
        finally:
            await asyncio.shield(self.flush())
