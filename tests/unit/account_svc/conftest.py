"""Fixtures of the accounts tests: a migrated database on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from account_svc.schema import migrate
from mesh.db import create_engine


@asynccontextmanager
async def _engine(url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def bare_db(database_url: str) -> AsyncIterator[AsyncEngine]:
    """Yield an empty database on each SQL backend (the shared ``database_url`` fixture)."""
    async with _engine(database_url) as engine:
        yield engine


@pytest.fixture
async def db(bare_db: AsyncEngine) -> AsyncEngine:
    """Yield a database migrated to the current accounts schema."""
    await migrate(bare_db)
    return bare_db
