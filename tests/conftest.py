"""Fixtures shared by every test: databases and Redis for each implementation."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from nats_support import NatsCluster

POSTGRES_ENV = "CFD_TEST_DATABASE_URL"
REDIS_ENV = "CFD_TEST_REDIS_URL"


def _required(var: str) -> str:
    """Return the variable, skipping locally and failing in CI when it is absent."""
    value = os.environ.get(var)
    if value:
        return value
    if os.environ.get("CI"):
        pytest.fail(f"{var} is not set: run the suite through `make test`")
    pytest.skip(f"{var} is not set (run through `make test` for PostgreSQL and Redis)")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """Return the URL of a fresh, empty PostgreSQL database, dropped after the test."""
    base = _required(POSTGRES_ENV)
    name = f"cfd_test_{uuid.uuid4().hex[:12]}"
    admin = base.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Return a SQLAlchemy URL of each implementation in turn: a SQLite file, PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """Return the URL of the test Redis, emptied before and after the test."""
    import redis.asyncio as redis

    url = _required(REDIS_ENV)
    client = redis.from_url(url)
    await client.flushdb()
    try:
        yield url
    finally:
        await client.flushdb()
        await client.aclose()


@pytest.fixture(scope="module")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """Start a 3-node NATS cluster with JetStream on loopback, shared by one test module."""
    cluster = NatsCluster(tmp_path_factory.mktemp("nats"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
