"""Wire and run the accounts service (``cfd accounts``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import grpc
import sqlalchemy.exc
from sqlalchemy.ext.asyncio import AsyncEngine

from account_svc import metrics
from account_svc.accounts import Accounts
from account_svc.config import AccountConfig, AccountConfigError
from account_svc.email_identity import EmailIdentity
from account_svc.email_tokens import load_signer
from account_svc.external import ExternalSignin
from account_svc.identities import IdentityStore
from account_svc.issuer import load_issuer
from account_svc.keys import KeyFileError
from account_svc.mail import open_transport
from account_svc.notifications import (
    FOLLOW_INTERVAL_S,
    GrpcEventSource,
    NotificationSettings,
    Notifier,
)
from account_svc.oidc import OidcConfig, OidcConfigError, create_providers, http_client
from account_svc.outbox import EmailOutbox, Postman
from account_svc.passwords import PasswordHasher
from account_svc.provisioning import GrpcEngineAccounts, Provisioner
from account_svc.schema import migrate
from account_svc.servicer import AccountServicer
from account_svc.sessions import (
    RedisRefreshTokenStore,
    RefreshTokenStore,
    SqlRefreshTokenStore,
)
from account_svc.totp import SecretBox, TotpKeyError, TotpStore, load_or_create_key
from account_svc.users import UserStore
from cfd.v1 import account_pb2_grpc
from mesh.config import Settings
from mesh.db import DatabaseProbe, SchemaVersionError, create_engine, database_url
from mesh.ratelimit import create_rate_limiter
from mesh.revocation import open_revoked_tokens
from mesh.server import ServeError, Service, serve
from mesh.tokens import TokenKeyError, load_verifier

_log = logging.getLogger(__name__)

SERVICE_NAME = "cfd.v1.AccountService"
OUTBOX_SWEEP_INTERVAL_S = 2.0
MAIL_SWEEP_INTERVAL_S = 1.0
PURGE_INTERVAL_S = 3600.0
# How long each resource may take to close at shutdown before it is left behind (the data is
# all in SQL: nothing is lost by not waiting), so that one stuck close cannot hold the exit.
CLOSE_TIMEOUT_S = 3.0


def quiet_parameter_logging() -> None:
    """Keep database drivers from logging statement parameters (hashes) even at DEBUG."""
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)


def open_database(settings: Settings) -> AsyncEngine:
    """Return the accounts database engine, with statement parameters kept out of errors."""
    engine = create_engine(database_url(settings, "accounts"))
    # Parameters include password and token hashes; SQLAlchemy would quote them in the
    # message of any database error, which then reaches a log line.
    engine.sync_engine.hide_parameters = True
    return engine


async def _every(interval_s: float, job: Callable[[], Awaitable[object]], name: str) -> None:
    while True:
        try:
            await job()
        except Exception:
            # One failed round (database restarting) must not stop the periodic job.
            _log.exception("%s failed", name)
        await asyncio.sleep(interval_s)


async def main(settings: Settings, config: AccountConfig | None = None) -> None:
    """Run the accounts service until SIGTERM/SIGINT."""
    quiet_parameter_logging()
    try:
        config = (
            AccountConfig.from_env(edge_port=settings.edge_port) if config is None else config
        )
        issuer = load_issuer(settings, config.tokens)
        revoked = open_revoked_tokens(settings)
        verifier = load_verifier(settings, config.tokens, revoked)
        secret_box = SecretBox(load_or_create_key(settings.data_dir))
        signer = load_signer(settings.data_dir)
        oidc_config = OidcConfig.from_env(edge_port=settings.edge_port)
    except (
        AccountConfigError,
        TokenKeyError,
        TotpKeyError,
        KeyFileError,
        OidcConfigError,
    ) as exc:
        raise ServeError(str(exc)) from exc
    engine = open_database(settings)
    try:
        await migrate(engine)
    except SchemaVersionError as exc:
        await engine.dispose()
        raise ServeError(str(exc)) from exc
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as exc:
        await engine.dispose()
        raise ServeError(f"cannot reach the database: {exc.orig}") from exc
    users = UserStore(engine, shards=settings.engine_shards)
    sql_sessions = SqlRefreshTokenStore(engine, ttl_s=config.refresh_ttl_s)
    sessions: RefreshTokenStore = (
        RedisRefreshTokenStore.from_url(settings.redis_url, ttl_s=config.refresh_ttl_s)
        if settings.redis_url
        else sql_sessions
    )
    limiter = create_rate_limiter(settings.redis_url, prefix="cfd:ratelimit:accounts:")
    channels = [
        grpc.aio.insecure_channel(settings.engine_addr_of(shard))
        for shard in range(settings.engine_shards)
    ]
    provisioner = Provisioner(users, GrpcEngineAccounts(channels, settings.internal_token))
    accounts = Accounts(
        users=users,
        hasher=PasswordHasher(config.hash_cost),
        sessions=sessions,
        issuer=issuer,
        provisioner=provisioner,
        limiter=limiter,
        limits=config.limits,
        demo_balance=settings.demo_balance,
        revoked=revoked,
        totp=TotpStore(engine),
        secret_box=secret_box,
        email=EmailIdentity(
            engine,
            signer,
            config.mail,
            verify_ttl_s=config.verify_email_ttl_s,
            reset_ttl_s=config.password_reset_ttl_s,
        ),
        notifications=NotificationSettings(engine),
    )
    notifier = Notifier(engine, GrpcEventSource(channels, issuer, users.shard_of))
    postman = Postman(
        EmailOutbox(engine), open_transport(config.mail, settings.data_dir), config.mail.sender
    )

    async def sweep_signups() -> None:
        await provisioner.run_due()
        metrics.OUTBOX_DEPTH.labels("signup").set(await users.count_pending_accounts())

    provider_client = http_client()
    identities = IdentityStore(engine)
    external = ExternalSignin(
        accounts=accounts,
        identities=identities,
        providers=create_providers(oidc_config, provider_client),
        config=oidc_config,
        limits=config.limits,
    )
    servicer = AccountServicer(accounts, settings.internal_token, external)
    tasks: list[asyncio.Task[None]] = []

    async def on_start() -> None:
        await revoked.start()
        tasks.append(
            asyncio.create_task(
                _every(OUTBOX_SWEEP_INTERVAL_S, sweep_signups, "signup outbox sweep")
            )
        )
        tasks.append(
            asyncio.create_task(_every(MAIL_SWEEP_INTERVAL_S, postman.run_due, "email outbox"))
        )
        tasks.append(
            asyncio.create_task(
                _every(FOLLOW_INTERVAL_S, notifier.follow_new_users, "trading notifications")
            )
        )
        if not settings.redis_url:
            tasks.append(
                asyncio.create_task(
                    _every(PURGE_INTERVAL_S, sql_sessions.purge, "refresh token purge")
                )
            )
        tasks.append(
            asyncio.create_task(
                _every(PURGE_INTERVAL_S, identities.purge_requests, "authorization request purge")
            )
        )

    async def on_stop() -> None:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        closes: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("trading notifications", notifier.aclose),
            *((f"engine channel {shard}", c.close) for shard, c in enumerate(channels)),
            ("provider client", provider_client.aclose),
            ("sessions", sessions.aclose),
            ("rate limiter", limiter.aclose),
            ("revoked tokens", revoked.aclose),
            ("database", engine.dispose),
        ]
        for what, close in closes:
            await _close_within(what, close)

    await serve(
        "accounts",
        settings.account_port,
        [Service(account_pb2_grpc.add_AccountServiceServicer_to_server, servicer, SERVICE_NAME)],
        settings=settings,
        verifier=verifier,
        on_start=on_start,
        on_stop=on_stop,
        # Sign-up and sign-in need the database: NOT_SERVING while it does not answer.
        health_check=DatabaseProbe(engine).check,
    )


async def _close_within(what: str, close: Callable[[], Awaitable[object]]) -> None:
    """Close one resource, giving up after CLOSE_TIMEOUT_S with a warning naming it."""
    try:
        await asyncio.wait_for(close(), CLOSE_TIMEOUT_S)
    except TimeoutError:
        _log.warning("%s did not close within %.0fs; exiting without it", what, CLOSE_TIMEOUT_S)
