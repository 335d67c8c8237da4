"""`cfd engine`: the stateful trading engine behind TradingService, ExchangeService and
EngineAdminService."""

from __future__ import annotations

import asyncio
import contextlib

from cfd.v1 import (
    engine_admin_pb2,
    engine_admin_pb2_grpc,
    exchange_pb2,
    exchange_pb2_grpc,
    trading_pb2,
    trading_pb2_grpc,
)
from engine_svc.config import EngineConfig
from engine_svc.core import Instrument
from engine_svc.exchange_servicer import ExchangeServicer
from engine_svc.fee_schedule import FeeChangeError
from engine_svc.instrument_set import InstrumentChangeError, core_instruments
from engine_svc.journal import JournalError
from engine_svc.leader import LeadershipError
from engine_svc.metrics import COLLECTOR
from engine_svc.port import EnginePort
from engine_svc.runtime import EngineRuntime, RecoveryError
from engine_svc.servicer import EngineAdminServicer, TradingServicer
from engine_svc.witnesses import LostCommandsError
from mesh.auth import TokenVerifier
from mesh.config import ConfigError, Settings
from mesh.db import DatabaseProbe, SchemaVersionError
from mesh.instruments import load_instruments
from mesh.revocation import open_revoked_tokens
from mesh.server import ServeError, Service, serve
from mesh.token_cache import CachedVerifier
from mesh.tokens import load_verifier

TRADING = trading_pb2.DESCRIPTOR.services_by_name["TradingService"].full_name
EXCHANGE = exchange_pb2.DESCRIPTOR.services_by_name["ExchangeService"].full_name
ADMIN = engine_admin_pb2.DESCRIPTOR.services_by_name["EngineAdminService"].full_name


def services(runtime: EngineRuntime) -> list[Service]:
    """Return the engine's gRPC services, bound to the port of `runtime`."""
    engine = EnginePort(runtime)
    return [
        Service(
            trading_pb2_grpc.add_TradingServiceServicer_to_server,
            TradingServicer(engine),
            TRADING,
        ),
        Service(
            exchange_pb2_grpc.add_ExchangeServiceServicer_to_server,
            ExchangeServicer(engine),
            EXCHANGE,
        ),
        Service(
            engine_admin_pb2_grpc.add_EngineAdminServiceServicer_to_server,
            EngineAdminServicer(engine),
            ADMIN,
        ),
    ]


async def run(
    settings: Settings,
    config: EngineConfig,
    *,
    verifier: TokenVerifier | None = None,
    stop: asyncio.Event | None = None,
    runtime: EngineRuntime | None = None,
) -> None:
    """Serve the engine until SIGTERM/SIGINT or `stop`; stop early when the journal or a
    committed-batch consumer fails."""
    runtime = runtime or EngineRuntime(settings, config)
    if stop is not None:
        runtime.stopping = stop
    stop = runtime.stopping

    async def stop_on_failure() -> None:
        await runtime.failed.wait()
        stop.set()

    revoked = open_revoked_tokens(settings)
    if verifier is None:
        verifier = CachedVerifier(load_verifier(settings, revoked=revoked), revoked=revoked)

    async def start() -> None:
        await revoked.start()
        await runtime.start()
        COLLECTOR.bind(runtime)

    async def stop_all() -> None:
        try:
            await runtime.stop()
        finally:
            await revoked.aclose()

    history = DatabaseProbe(runtime.history.engine)

    async def healthy() -> bool:
        # NOT_SERVING once the journal or a consumer failed, and while the history database
        # refuses (orders still trade; history and statements wait for it).
        if runtime.failed.is_set():
            return False
        return await history.check()

    watcher = asyncio.create_task(stop_on_failure())
    try:
        await serve(
            "engine",
            settings.engine_port,
            services(runtime),
            settings=settings,
            verifier=verifier,
            on_start=start,
            on_stop=stop_all,
            stop=stop,
            health_check=healthy,
            open_early=True,
            fronts=config.fronts,
        )
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    if runtime.failed.is_set():
        raise SystemExit(f"engine stopped: {runtime.failure}")


def configuration(command: str) -> tuple[EngineConfig, dict[str, Instrument]]:
    """Return the engine's configuration and instruments from the environment (the engine's
    and its recorder's); raise ServeError, naming `command`, when they are not valid."""
    try:
        return EngineConfig.from_env(), core_instruments(load_instruments())
    except ConfigError as exc:
        raise ServeError(f"{command}: {exc}") from exc


async def main(settings: Settings) -> None:
    """Run the engine with the configuration and instruments of the environment."""
    config, instruments = configuration("engine")
    runtime = EngineRuntime(settings, config, instruments=instruments)
    try:
        await run(settings, config, runtime=runtime)
    except (
        InstrumentChangeError,
        FeeChangeError,
        SchemaVersionError,
        JournalError,
        LeadershipError,
        RecoveryError,
        LostCommandsError,
    ) as exc:
        raise ServeError(f"engine: {exc}") from exc
