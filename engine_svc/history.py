"""The SQL read model: closed positions, the ledger, orders and account events.

Rows are keyed by (seq, account, index) and written together with the recorder's progress
in one transaction, so recording is idempotent by sequence number. Each engine shard has its
own progress row (id = shard + 1): several shards' recorders can share the tables. Closed
entries and events also keep their protobuf bytes, which the history and event streams return
as they are.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    and_,
    delete,
    func,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mesh.db import migrate_schema
from mesh.db import schema_version_table as schema_version_table_of

metadata = MetaData()


def _shard_column() -> Column[int]:
    # Added by schema version 4: the engine shard whose recorder wrote the row (order ids, made
    # of sequence numbers, repeat across shards).
    return Column("shard", Integer, primary_key=True, autoincrement=False, server_default="0")


schema_version_table = schema_version_table_of(metadata, "engine_schema_version")

recorder_state = Table(
    "engine_recorder",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", BigInteger, nullable=False),
)

events = Table(
    "engine_events",
    metadata,
    Column("account_id", String(128), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("idx", Integer, primary_key=True),
    _shard_column(),
    Column("event_type", Integer, nullable=False),
    Column("time_ns", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
)

closed_positions = Table(
    "engine_closed_positions",
    metadata,
    Column("account_id", String(128), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("idx", Integer, primary_key=True),
    _shard_column(),
    Column("position_id", String(32), nullable=False),
    Column("symbol", String(16), nullable=False),
    Column("side", String(8), nullable=False),
    Column("quantity", String(48), nullable=False),
    Column("leverage", Integer, nullable=False),
    Column("entry_price", String(48), nullable=False),
    Column("close_price", String(48), nullable=False),
    Column("margin", String(48), nullable=False),
    Column("realized_pnl", String(48), nullable=False),
    Column("house_covered_loss", String(48), nullable=False),
    # Added by schema version 3; entries recorded before it read "0".
    Column("swap", String(48), nullable=False, server_default="0"),
    Column("commission", String(48), nullable=False, server_default="0"),
    Column("close_reason", String(16), nullable=False),
    Column("open_time_ns", BigInteger, nullable=False),
    Column("close_time_ns", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Index("ix_engine_closed_symbol", "account_id", "symbol", "seq", "idx"),
    Index("ix_engine_closed_position", "account_id", "position_id", "seq"),
)

ledger = Table(
    "engine_ledger",
    metadata,
    Column("account_id", String(128), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("idx", Integer, primary_key=True),
    _shard_column(),
    Column("kind", String(24), nullable=False),
    Column("amount", String(48), nullable=False),
    Column("balance", String(48), nullable=False),
    Column("position_id", String(32), nullable=False),
    Column("time_ns", BigInteger, nullable=False),
)

orders = Table(
    "engine_orders",
    metadata,
    Column("order_id", String(32), primary_key=True),
    _shard_column(),
    Column("account_id", String(128), nullable=False, index=True),
    Column("symbol", String(16), nullable=False),
    Column("side", String(8), nullable=False),
    Column("order_type", String(8), nullable=False),
    Column("status", String(16), nullable=False),
    Column("trigger_price", String(48), nullable=False),
    Column("position_id", String(32), nullable=False),
    Column("reject_reason", String(32), nullable=False),
    Column("create_time_ns", BigInteger, nullable=False),
    Column("update_time_ns", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
)


spot_orders = Table(
    "engine_spot_orders",
    metadata,
    Column("order_id", String(32), primary_key=True),
    _shard_column(),
    Column("account_id", String(128), nullable=False, index=True),
    Column("market", String(16), nullable=False),
    Column("side", String(8), nullable=False),
    Column("order_type", String(8), nullable=False),
    Column("status", String(20), nullable=False),
    Column("filled_quantity", String(48), nullable=False),
    Column("fee", String(48), nullable=False),
    Column("create_time_ns", BigInteger, nullable=False),
    Column("update_time_ns", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
)

spot_fills = Table(
    "engine_spot_fills",
    metadata,
    Column("account_id", String(128), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("idx", Integer, primary_key=True),
    _shard_column(),
    Column("fill_id", String(48), nullable=False),
    Column("order_id", String(32), nullable=False),
    Column("market", String(16), nullable=False),
    Column("side", String(8), nullable=False),
    Column("price", String(48), nullable=False),
    Column("quantity", String(48), nullable=False),
    Column("fee", String(48), nullable=False),
    Column("liquidity", String(8), nullable=False),
    Column("time_ns", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
)


def _v1_initial(conn: Connection) -> None:
    for table in (recorder_state, events, closed_positions, ledger, orders):
        table.create(conn)


def _v2_spot(conn: Connection) -> None:
    spot_orders.create(conn)
    spot_fills.create(conn)


def _v3_charges(conn: Connection) -> None:
    # A database created by this build already has the columns (`_v1_initial` creates the
    # tables as they are now).
    present = {column["name"] for column in inspect(conn).get_columns(closed_positions.name)}
    for name in ("swap", "commission"):
        if name not in present:
            conn.execute(
                text(
                    f"ALTER TABLE {closed_positions.name} "
                    f"ADD COLUMN {name} VARCHAR(48) NOT NULL DEFAULT '0'"
                )
            )


def _v4_shards(conn: Connection) -> None:
    # Each recorded table is rebuilt with the shard in its key (0 for every existing row): a
    # primary key cannot be changed in place on SQLite. Tables created by this build (by the
    # steps above) have the column already.
    inspector = inspect(conn)
    for table in RECORDED_TABLES:
        present = [column["name"] for column in inspector.get_columns(table.name)]
        if "shard" in present:
            continue
        old = f"{table.name}_v3"
        # Index names are the schema's, not the table's: the rebuilt table's would collide.
        for index in inspector.get_indexes(table.name):
            conn.execute(text(f"DROP INDEX {index['name']}"))
        conn.execute(text(f"ALTER TABLE {table.name} RENAME TO {old}"))
        if conn.dialect.name == "postgresql":
            pkey = f"{table.name}_pkey"
            conn.execute(text(f"ALTER TABLE {old} RENAME CONSTRAINT {pkey} TO {old}_pkey"))
        table.create(conn)
        names = ", ".join(present)
        conn.execute(text(f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {old}"))
        conn.execute(text(f"DROP TABLE {old}"))


# Step n brings the schema from version n - 1 to n. Append only; never edit a released step.
# A database at a newer version is refused rather than silently drifting.
MIGRATIONS: Final[Sequence[Callable[[Connection], None]]] = (
    _v1_initial,
    _v2_spot,
    _v3_charges,
    _v4_shards,
)
SCHEMA_VERSION: Final = len(MIGRATIONS)
# Arbitrary, fixed: the PostgreSQL advisory lock key serializing engine history migrations.
_PG_LOCK_KEY: Final = 0x43464445


def _migrate(conn: Connection) -> int:
    if conn.dialect.name == "postgresql":
        # Two engines starting together must not both apply a step.
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    return migrate_schema(conn, schema_version_table, MIGRATIONS, "engine history")


class PageTokenError(ValueError):
    """A page token this service did not issue."""


def encode_page_token(seq: int, index: int) -> str:
    """Return the token that continues after entry (seq, index)."""
    return base64.urlsafe_b64encode(f"{seq}.{index}".encode()).decode().rstrip("=")


def decode_page_token(token: str) -> tuple[int, int]:
    """Return the (seq, index) a page token continues after."""
    if len(token) > 64:
        raise PageTokenError("page token is too long")
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise PageTokenError("page token is not valid") from None
    seq_text, dot, index_text = text.partition(".")
    if not dot or not seq_text.isdigit() or not index_text.isdigit():
        raise PageTokenError("page token is not valid")
    return int(seq_text), int(index_text)


@dataclass(frozen=True, slots=True)
class Rows:
    """What one recorder transaction writes."""

    last_seq: int
    events: list[dict[str, Any]]
    closed: list[dict[str, Any]]
    ledger: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    spot_orders: list[dict[str, Any]] = field(default_factory=list)
    spot_fills: list[dict[str, Any]] = field(default_factory=list)


class HistoryStore:
    """SQL access of the engine's read model, recording the progress of one engine shard."""

    def __init__(self, engine: AsyncEngine, shard: int = 0) -> None:
        self.engine = engine
        self.shard = shard
        self._progress_id = shard + 1

    async def create_schema(self) -> None:
        """Create the tables at SCHEMA_VERSION, or check the version of existing ones."""
        async with self.engine.begin() as conn:
            await conn.run_sync(_migrate)
            mine = recorder_state.c.id == self._progress_id
            row = (await conn.execute(select(recorder_state.c.seq).where(mine))).first()
            if row is None:
                await conn.execute(recorder_state.insert().values(id=self._progress_id, seq=0))

    async def recorded_seq(self) -> int:
        """Return the last seq whose events are recorded."""
        async with self.engine.connect() as conn:
            return await _recorded(conn, self._progress_id)

    async def write(self, rows: Rows) -> int:
        """Write rows whose seq is above the recorded one and advance it; return the new one."""
        async with self.engine.begin() as conn:
            query = select(recorder_state.c.seq).where(recorder_state.c.id == self._progress_id)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            current = (await conn.execute(query)).scalar_one()
            if rows.last_seq <= current:
                return int(current)
            shard = {"shard": self.shard}
            for table, values in (
                (events, rows.events),
                (closed_positions, rows.closed),
                (ledger, rows.ledger),
                (spot_fills, rows.spot_fills),
            ):
                fresh = [value | shard for value in values if value["seq"] > current]
                if fresh:
                    await conn.execute(table.insert(), fresh)
            latest: dict[str, dict[str, Any]] = {}
            for value in rows.orders:
                if value["seq"] > current:
                    latest[value["order_id"]] = value | shard
            if latest:
                await _upsert_orders(conn, list(latest.values()))
            spot_latest: dict[str, dict[str, Any]] = {}
            for value in rows.spot_orders:
                if value["seq"] > current:
                    spot_latest[value["order_id"]] = value | shard
            if spot_latest:
                await _upsert(conn, spot_orders, list(spot_latest.values()), _SPOT_ORDER_CHANGES)
            await conn.execute(
                update(recorder_state)
                .where(recorder_state.c.id == self._progress_id)
                .values(seq=rows.last_seq)
            )
            return rows.last_seq

    async def discard_after(
        self, seq: int, keep: Callable[[dict[str, list[dict[str, Any]]]], None]
    ) -> int:
        """Delete every row written for a seq above `seq` and move the recorded seq back to at
        most `seq`, in one transaction; hand the rows by table name to `keep` first (if it
        raises, nothing is deleted). Return how many rows were deleted."""
        taken: dict[str, list[dict[str, Any]]] = {}
        async with self.engine.begin() as conn:
            for table in RECORDED_TABLES:
                mine = and_(table.c.seq > seq, table.c.shard == self.shard)
                found = await conn.execute(select(table).where(mine))
                taken[table.name] = [dict(row._mapping) for row in found]
            keep(taken)
            for table in RECORDED_TABLES:
                mine = and_(table.c.seq > seq, table.c.shard == self.shard)
                await conn.execute(delete(table).where(mine))
            await conn.execute(
                update(recorder_state)
                .where(recorder_state.c.id == self._progress_id, recorder_state.c.seq > seq)
                .values(seq=seq)
            )
        return sum(len(rows) for rows in taken.values())

    async def history_page(
        self, account_id: str, symbol: str | None, after: tuple[int, int] | None, limit: int
    ) -> list[tuple[int, int, bytes]]:
        """Return up to `limit` closed entries (seq, index, Position bytes), newest first."""
        table = closed_positions
        return await self._newest_first(table, account_id, table.c.symbol, symbol, after, limit)

    async def _newest_first(
        self,
        table: Table,
        account_id: str,
        column: Column[str],
        value: str | None,
        after: tuple[int, int] | None,
        limit: int,
    ) -> list[tuple[int, int, bytes]]:
        """Return up to `limit` rows (seq, index, data) of an account, newest first, after
        (seq, index) `after`, with `column` equal to `value` unless it is None."""
        query = select(table.c.seq, table.c.idx, table.c.data).where(
            table.c.account_id == account_id
        )
        if value is not None:
            query = query.where(column == value)
        if after is not None:
            seq, index = after
            query = query.where(
                or_(table.c.seq < seq, and_(table.c.seq == seq, table.c.idx < index))
            )
        query = query.order_by(table.c.seq.desc(), table.c.idx.desc()).limit(limit)
        async with self.engine.connect() as conn:
            result = await conn.execute(query)
            return [(int(r.seq), int(r.idx), bytes(r.data)) for r in result]

    async def last_close(self, account_id: str, position_id: str) -> bytes | None:
        """Return the newest closed entry of a position, or None."""
        table = closed_positions
        query = (
            select(table.c.data)
            .where(table.c.account_id == account_id, table.c.position_id == position_id)
            .order_by(table.c.seq.desc(), table.c.idx.desc())
            .limit(1)
        )
        async with self.engine.connect() as conn:
            data = (await conn.execute(query)).scalar_one_or_none()
        return None if data is None else bytes(data)

    async def events_after(
        self, account_id: str, after: tuple[int, int], through_seq: int, limit: int
    ) -> list[tuple[int, int, bytes]]:
        """Return up to `limit` events (seq, index, StreamEventsResponse bytes) of an account
        after (seq, index) `after` and at or before `through_seq`, oldest first."""
        table = events
        seq, index = after
        query = (
            select(table.c.seq, table.c.idx, table.c.data)
            .where(
                table.c.account_id == account_id,
                or_(table.c.seq > seq, and_(table.c.seq == seq, table.c.idx > index)),
                table.c.seq <= through_seq,
            )
            .order_by(table.c.seq, table.c.idx)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            result = await conn.execute(query)
            return [(int(r.seq), int(r.idx), bytes(r.data)) for r in result]

    async def spot_fills_page(
        self, account_id: str, market: str | None, after: tuple[int, int] | None, limit: int
    ) -> list[tuple[int, int, bytes]]:
        """Return up to `limit` own fills (seq, index, SpotFill bytes), newest first."""
        table = spot_fills
        return await self._newest_first(table, account_id, table.c.market, market, after, limit)

    async def count(self, table: Table) -> int:
        """Return the number of rows of a table (for tests and figures)."""
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def _recorded(conn: AsyncConnection, progress_id: int) -> int:
    value = (
        await conn.execute(select(recorder_state.c.seq).where(recorder_state.c.id == progress_id))
    ).scalar_one_or_none()
    return 0 if value is None else int(value)


RECORDED_TABLES = (events, closed_positions, ledger, orders, spot_orders, spot_fills)
_ORDER_CHANGES = ("status", "position_id", "reject_reason", "update_time_ns", "seq", "data")
_SPOT_ORDER_CHANGES = ("status", "filled_quantity", "fee", "update_time_ns", "seq", "data")


async def _upsert_orders(conn: AsyncConnection, values: Sequence[dict[str, Any]]) -> None:
    await _upsert(conn, orders, values, _ORDER_CHANGES)


async def _upsert(
    conn: AsyncConnection,
    table: Table,
    values: Sequence[dict[str, Any]],
    changing: Sequence[str],
) -> None:
    """Insert rows keyed by (`order_id`, `shard`); an existing order takes the `changing`
    columns."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    updates = {name: statement.excluded[name] for name in changing}
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.order_id, table.c.shard], set_=updates
        ),
        list(values),
    )
