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
    Text,
    UniqueConstraint,
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
    # The CFD engine shard holding the user's account, chosen at signup and never changed.
    Column("shard", Integer, nullable=False, server_default="0"),
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
    # The position mode chosen at signup (a cfd.v1.PositionMode name); NULL: the engine's
    # default.
    Column("position_mode", String(24), nullable=True),
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


# A row per user whose current email was proved theirs by a verification link (or a
# password reset, which proves the same). Kept beside the user rather than in it, so that
# the users table stays as the first step made it.
email_verifications_table = Table(
    "account_email_verifications",
    metadata,
    Column("user_id", String(36), ForeignKey("account_users.id"), primary_key=True),
    # The address that was verified: a later change of email is not verified by it.
    Column("email", String(254), nullable=False),
    Column("verify_time_ms", BigInteger, nullable=False),
)

# The emailed one-time tokens (``account_svc.email_tokens``): the signature proves a token
# was issued here; this row makes it single-use. The token itself is never stored.
email_tokens_table = Table(
    "account_email_tokens",
    metadata,
    Column("token_id", String(32), primary_key=True),
    Column("user_id", String(36), ForeignKey("account_users.id"), nullable=False),
    # verify_email or reset_password.
    Column("purpose", String(16), nullable=False),
    Column("email", String(254), nullable=False),
    Column("create_time_ms", BigInteger, nullable=False),
    Column("expire_time_ms", BigInteger, nullable=False),
    Column("use_time_ms", BigInteger, nullable=True),
    Index("account_email_tokens_user_id", "user_id"),
)

# The email outbox (``account_svc.outbox``): a message is inserted in the transaction of the
# change that causes it and sent later, retried until the mail server takes it.
email_outbox_table = Table(
    "account_email_outbox",
    metadata,
    # Also the message's Message-ID, so that a receiver can recognize a repeat.
    Column("id", String(32), primary_key=True),
    Column("recipient", String(254), nullable=False),
    Column("subject", String(200), nullable=False),
    # Emptied once sent: a message may carry a one-time link.
    Column("body", Text, nullable=False),
    # pending, sent or failed (refused for good by the mail server).
    Column("state", String(8), nullable=False),
    Column("create_time_ms", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False),
    # When the next attempt is due; while one is under way, when it may be taken over.
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("sent_time_ms", BigInteger, nullable=True),
    Column("last_error", String(200), nullable=True),
    Index("account_email_outbox_state_next_attempt", "state", "next_attempt_ms"),
)


# Email notifications of trading events: a row per (user, kind) the user changed; a kind
# without a row is on.
notification_settings_table = Table(
    "account_notification_settings",
    metadata,
    Column("user_id", String(36), ForeignKey("account_users.id"), primary_key=True),
    # The NotificationKind name, e.g. NOTIFICATION_KIND_STOP_LOSS.
    Column("kind", String(40), primary_key=True),
    Column("enabled", Boolean, nullable=False),
)

# How far the notifier has read each user's engine event stream: the (sequence, index) of
# the last event handled. Events older than ``since_ms`` (before the user was first followed)
# are passed over without a message.
notification_cursors_table = Table(
    "account_notification_cursors",
    metadata,
    Column("user_id", String(36), ForeignKey("account_users.id"), primary_key=True),
    Column("sequence", BigInteger, nullable=False),
    Column("event_index", Integer, nullable=False),
    Column("since_ms", BigInteger, nullable=False),
)

# Sign-in with an external identity provider (``account_svc.oidc``): each linked identity
# is the provider's subject for one user, at most one per provider and user.
identities_table = Table(
    "account_identities",
    metadata,
    Column("provider", String(32), primary_key=True),
    Column("subject", String(255), primary_key=True),
    Column("user_id", String(36), ForeignKey("account_users.id"), nullable=False),
    Column("email", String(254), nullable=False),
    Column("link_time_ms", BigInteger, nullable=False),
    UniqueConstraint("user_id", "provider", name="account_identities_user_provider"),
)

# Authorization requests in flight, keyed by the SHA-256 of their ``state``; a row is deleted
# when its callback arrives, so each state is accepted once. ``user_id`` is set for a link.
oidc_requests_table = Table(
    "account_oidc_requests",
    metadata,
    Column("state_hash", String(64), primary_key=True),
    Column("provider", String(32), nullable=False),
    Column("user_id", String(36), nullable=True),
    Column("nonce", String(64), nullable=False),
    Column("code_verifier", String(128), nullable=False),
    Column("return_url", String(2048), nullable=False),
    Column("expire_time_ms", BigInteger, nullable=False),
    Index("account_oidc_requests_expire_time_ms", "expire_time_ms"),
)

# Provider sign-ins waiting for the user's second factor, keyed by the SHA-256 of their
# ticket; a row is deleted when the sign-in completes, so each ticket signs in once.
signin_tickets_table = Table(
    "account_signin_tickets",
    metadata,
    Column("ticket_hash", String(64), primary_key=True),
    Column("user_id", String(36), ForeignKey("account_users.id"), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("return_url", String(2048), nullable=False),
    Column("expire_time_ms", BigInteger, nullable=False),
    Index("account_signin_tickets_expire_time_ms", "expire_time_ms"),
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


def _v5_email(conn: Connection) -> None:
    for table in (
        email_verifications_table,
        email_tokens_table,
        email_outbox_table,
        notification_settings_table,
        notification_cursors_table,
    ):
        table.create(conn)


def _v6_identities(conn: Connection) -> None:
    identities_table.create(conn)
    oidc_requests_table.create(conn)


def _v7_margin_mode(conn: Connection) -> None:
    # A database created at version 7 or later already has the column from the table.
    columns = {column["name"] for column in inspect(conn).get_columns("account_provisioning")}
    if "margin_mode" not in columns:
        conn.execute(text("ALTER TABLE account_provisioning ADD COLUMN margin_mode VARCHAR(24)"))


def _v8_signin_tickets(conn: Connection) -> None:
    signin_tickets_table.create(conn)


def _v9_position_mode(conn: Connection) -> None:
    # A database created at version 9 or later already has the column from the table.
    columns = {column["name"] for column in inspect(conn).get_columns("account_provisioning")}
    if "position_mode" not in columns:
        conn.execute(
            text("ALTER TABLE account_provisioning ADD COLUMN position_mode VARCHAR(24)")
        )


def _v10_user_shard(conn: Connection) -> None:
    # A database created at version 10 or later already has the column from the table.
    columns = {column["name"] for column in inspect(conn).get_columns("account_users")}
    if "shard" not in columns:
        conn.execute(
            text("ALTER TABLE account_users ADD COLUMN shard INTEGER NOT NULL DEFAULT 0")
        )


# Step n brings the schema from version n - 1 to n. Append only; never edit a released step.
MIGRATIONS: Final[Sequence[Callable[[Connection], None]]] = (
    _v1_initial,
    _v2_access_tokens,
    _v3_session_details,
    _v4_totp,
    _v5_email,
    _v6_identities,
    _v7_margin_mode,
    _v8_signin_tickets,
    _v9_position_mode,
    _v10_user_shard,
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
