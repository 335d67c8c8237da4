"""The accounts tables and their explicit, versioned migrations.

The database records the schema version it is at in ``account_schema_version`` (kept by
``mesh.db``, as every service's); at start the service applies, in one transaction, each
migration step above that version, in order. A database newer than this build is refused
rather than used. Nothing is created implicitly: a table exists because a numbered step
created it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    inspect,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from mesh.db import migrate_schema
from mesh.db import schema_version_table as schema_version_table_of

metadata = MetaData()

schema_version_table = schema_version_table_of(metadata, "account_schema_version")

# Times are integer milliseconds since the Unix epoch (UTC), exact on every backend.

users_table = Table(
    "account_users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("create_time_ms", BigInteger, nullable=False),
)

# The signup outbox: a row exists while the user's trading account may not exist yet.
provisioning_table = Table(
    "account_provisioning",
    metadata,
    Column("user_id", String(36), ForeignKey("account_users.id"), primary_key=True),
    Column("initial_balance", String(40), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("last_error", String(200), nullable=True),
    # The margin mode chosen at signup (a cfd.v1.MarginMode name); NULL: the engine's default.
    Column("margin_mode", String(24), nullable=True),
)

refresh_families_table = Table(
    "account_refresh_families",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", String(36), ForeignKey("account_users.id"), nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("create_time_ms", BigInteger, nullable=False),
    Column("expire_time_ms", BigInteger, nullable=False),
    Index("account_refresh_families_user_id", "user_id"),
)

refresh_tokens_table = Table(
    "account_refresh_tokens",
    metadata,
    # SHA-256 of the token, hex: the token itself is never stored.
    Column("token_hash", String(64), primary_key=True),
    Column("family_id", String(32), ForeignKey("account_refresh_families.id"), nullable=False),
    Column("used", Boolean, nullable=False, default=False),
    Column("expire_time_ms", BigInteger, nullable=False),
    Index("account_refresh_tokens_family_id", "family_id"),
)


# Access tokens issued in each session (family), kept until they expire, so that signing
# out can put the ones still valid on the revocation list.
access_tokens_table = Table(
    "account_access_tokens",
    metadata,
    # The token's jti claim.
    Column("token_id", String(64), primary_key=True),
    Column("family_id", String(32), ForeignKey("account_refresh_families.id"), nullable=False),
    Column("expire_time_ms", BigInteger, nullable=False),
    Index("account_access_tokens_family_id", "family_id"),
)


# What the session list shows of each family: where it signed in from and when it was last
# used. Kept beside the family rather than in it: its rows live and die with the family.
session_details_table = Table(
    "account_session_details",
    metadata,
    Column(
        "family_id", String(32), ForeignKey("account_refresh_families.id"), primary_key=True
    ),
    Column("last_use_ms", BigInteger, nullable=False),
    Column("client_address", String(64), nullable=False),
    Column("user_agent", String(256), nullable=False),
)


# Two-factor authentication: a row per user who enrolled. The secret is encrypted
# (``account_svc.totp``); ``last_step`` is the newest TOTP time step accepted, so that no
# code is accepted twice.
totp_table = Table(
    "account_totp",
    metadata,
    Column("user_id", String(36), ForeignKey("account_users.id"), primary_key=True),
    Column("secret_ciphertext", String(255), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("last_step", BigInteger, nullable=False),
    Column("create_time_ms", BigInteger, nullable=False),
)

# One-time recovery codes, salted SHA-256 hex; a used code's row is deleted.
recovery_codes_table = Table(
    "account_recovery_codes",
    metadata,
    Column("user_id", String(36), ForeignKey("account_users.id"), primary_key=True),
    Column("code_hash", String(64), primary_key=True),
)


def _v1_initial(conn: Connection) -> None:
    for table in (
        users_table,
        provisioning_table,
        refresh_families_table,
        refresh_tokens_table,
    ):
        table.create(conn)


def _v2_access_tokens(conn: Connection) -> None:
    access_tokens_table.create(conn)


def _v3_session_details(conn: Connection) -> None:
    session_details_table.create(conn)


def _v4_totp(conn: Connection) -> None:
    totp_table.create(conn)
    recovery_codes_table.create(conn)


def _v5_margin_mode(conn: Connection) -> None:
    # A database created at version 5 or later already has the column from the table.
    columns = {column["name"] for column in inspect(conn).get_columns("account_provisioning")}
    if "margin_mode" not in columns:
        conn.execute(text("ALTER TABLE account_provisioning ADD COLUMN margin_mode VARCHAR(24)"))


# Step n brings the schema from version n - 1 to n. Append only; never edit a released step.
MIGRATIONS: Final[Sequence[Callable[[Connection], None]]] = (
    _v1_initial,
    _v2_access_tokens,
    _v3_session_details,
    _v4_totp,
    _v5_margin_mode,
)
SCHEMA_VERSION: Final = len(MIGRATIONS)

# Arbitrary, fixed: the PostgreSQL advisory lock key serializing accounts migrations.
_PG_LOCK_KEY: Final = 0x43464441


def _migrate(conn: Connection) -> int:
    if conn.dialect.name == "postgresql":
        # Two replicas starting together must not both apply a step.
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    return migrate_schema(conn, schema_version_table, MIGRATIONS, "accounts")


async def migrate(engine: AsyncEngine) -> int:
    """Bring the accounts schema to ``SCHEMA_VERSION``; return the version found before."""
    async with engine.begin() as conn:
        return await conn.run_sync(_migrate)
