"""SQL connections shared by the services: SQLite files by default, PostgreSQL when configured."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Column, Connection, Integer, MetaData, Table, event, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from mesh.config import Settings

log = logging.getLogger("mesh.db")


def database_url(settings: Settings, name: str) -> str:
    """Return the SQLAlchemy URL of service `name`: CFD_DATABASE_URL or a SQLite file."""
    if settings.database_url:
        return settings.database_url
    return f"sqlite+aiosqlite:///{settings.data_dir / name}.sqlite3"


def create_engine(url: str) -> AsyncEngine:
    """Create an async engine; SQLite gets WAL, a busy timeout and foreign keys.

    Statement parameters are kept out of error messages: they can hold hashes and tokens.
    """
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_async_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=5, hide_parameters=True
    )


class SchemaVersionError(RuntimeError):
    """A database was written by a build with another schema version."""


def schema_version_table(metadata: MetaData, name: str) -> Table:
    """Return the one-row table in which a service records its schema version."""
    return Table(
        name,
        metadata,
        Column("id", Integer, primary_key=True),
        Column("version", Integer, nullable=False),
    )


async def claim_schema_version(
    conn: AsyncConnection, table: Table, version: int, what: str
) -> None:
    """Record `version` in a new database; refuse one recorded at another version."""
    found = (
        await conn.execute(select(table.c.version).where(table.c.id == 1))
    ).scalar_one_or_none()
    if found is None:
        await conn.execute(table.insert().values(id=1, version=version))
    elif found != version:
        raise SchemaVersionError(
            f"the {what} schema is at version {found}; this build knows {version}"
        )


def migrate_schema(
    conn: Connection,
    table: Table,
    steps: Sequence[Callable[[Connection], None]],
    what: str,
) -> int:
    """Apply, in the caller's transaction, each step above the recorded version; return that
    version. Step n brings the schema from version n - 1 to n; a newer database is refused.

    For a service whose schema evolves by numbered steps (run it with `run_sync`); a service
    whose schema has one version claims it with `claim_schema_version`.
    """
    if not conn.dialect.has_table(conn, table.name):
        table.create(conn)
    found = conn.execute(select(table.c.version).where(table.c.id == 1)).scalar_one_or_none()
    if found is None:
        conn.execute(table.insert().values(id=1, version=0))
        found = 0
    latest = len(steps)
    if found > latest:
        raise SchemaVersionError(
            f"the {what} schema is at version {found}, newer than this build's {latest}; "
            "run a newer build"
        )
    for step in steps[found:]:
        step(conn)
    if found != latest:
        conn.execute(table.update().where(table.c.id == 1).values(version=latest))
    return int(found)


class DatabaseProbe:
    """Whether a database answers, asked at most every `interval_s` (health checks call often)."""

    def __init__(self, engine: AsyncEngine, *, interval_s: float = 2.0, timeout_s: float = 2.0):
        self._engine = engine
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._checked_at = -math.inf
        self.reachable = True

    async def check(self) -> bool:
        """Return whether the database answered its last probe, probing again when due."""
        now = time.monotonic()
        if now - self._checked_at < self._interval_s:
            return self.reachable
        self._checked_at = now
        try:
            async with asyncio.timeout(self._timeout_s), self._engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            if self.reachable:
                log.warning("the database does not answer: %s", exc)
            self.reachable = False
        else:
            if not self.reachable:
                log.info("the database answers again")
            self.reachable = True
        return self.reachable
