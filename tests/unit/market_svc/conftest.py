"""Fixtures of the market service tests: a candle store on every SQL implementation."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from market_svc.store import CandleStore
from mesh.db import create_engine


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[CandleStore]:
    """Return an initialised candle store on SQLite and on PostgreSQL in turn."""
    engine = create_engine(database_url)
    candle_store = CandleStore(engine)
    await candle_store.initialize()
    try:
        yield candle_store
    finally:
        await engine.dispose()
