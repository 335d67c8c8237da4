"""`cfd engine`: the stateful trading engine behind TradingService and EngineAdminService."""

from __future__ import annotations

import asyncio
import contextlib

from cfd.v1 import engine_admin_pb2, engine_admin_pb2_grpc, trading_pb2, trading_pb2_grpc
from engine_svc.config import EngineConfig
from engine_svc.instrument_set import InstrumentChangeError, core_instruments
from engine_svc.journal import JournalError
from engine_svc.leader import LeadershipError
from engine_svc.runtime import EngineRuntime, RecoveryError
from engine_svc.servicer import EngineAdminServicer, TradingServicer
from engine_svc.witnesses import LostCommandsError
from mesh.auth import TokenVerifier
from mesh.config import ConfigError, Settings
from mesh.db import SchemaVersionError
from mesh.instruments import load_instruments
from mesh.server import ServeError, Service, serve
from mesh.token_cache import CachedVerifier
from mesh.tokens import load_verifier

TRADING = trading_pb2.DESCRIPTOR.services_by_name["TradingService"].full_name
ADMIN = engine_admin_pb2.DESCRIPTOR.services_by_name["EngineAdminService"].full_name


def services(runtime: EngineRuntime) -> list[Service]:
    """Return the engine's gRPC services bound to `runtime`."""
    return [
        Service(
            trading_pb2_grpc.add_TradingServiceServicer_to_server,
            TradingServicer(runtime),
            TRADING,
        ),
        Service(
            engine_admin_pb2_grpc.add_EngineAdminServiceServicer_to_server,
            EngineAdminServicer(runtime),
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
    """Serve the engine until SIGTERM/SIGINT or `stop`; stop early if the journal fails."""
    runtime = runtime or EngineRuntime(settings, config)
    if stop is not None:
        runtime.stopping = stop
    stop = runtime.stopping

    async def stop_on_failure() -> None:
        await runtime.failed.wait()
        stop.set()

    watcher = asyncio.create_task(stop_on_failure())
    try:
        await serve(
            "engine",
            settings.engine_port,
            services(runtime),
            settings=settings,
            verifier=verifier if verifier is not None else CachedVerifier(load_verifier(settings)),
            on_start=runtime.start,
            on_stop=runtime.stop,
            stop=stop,
        )
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    if runtime.failed.is_set():
        raise SystemExit("engine stopped: the journal could not be written")


async def main(settings: Settings) -> None:
    """Run the engine with the configuration and instruments of the environment."""
    try:
        config = EngineConfig.from_env()
        instruments = core_instruments(load_instruments())
    except ConfigError as exc:
        raise ServeError(f"engine: {exc}") from exc
    runtime = EngineRuntime(settings, config, instruments=instruments)
    try:
        await run(settings, config, runtime=runtime)
    except (
        InstrumentChangeError,
        SchemaVersionError,
        JournalError,
        LeadershipError,
        RecoveryError,
        LostCommandsError,
    ) as exc:
        raise ServeError(f"engine: {exc}") from exc
