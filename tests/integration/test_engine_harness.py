"""What the engine tests share: a hand-written fake market, an engine and a client.

The fake market is a real gRPC server implementing `MarketDataAdminService.StreamTicks`: it
streams the quotes a test pushes and re-sends each symbol's latest quote as a keepalive, as
the real market service does. The engine runs for real: in this process through
`engine_svc.main.run` (with a stop event) beside a recorder (`engine_svc.recorder_runtime`,
what `cfd recorder` runs) on the same data directory and database, or as a `cfd engine` child
for the crash tests.
The tests at the bottom check the harness itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.rpc import error_details_pb2

from account_svc.issuer import TokenIssuer, load_issuer
from cfd.v1 import (
    common_pb2,
    engine_admin_pb2,
    engine_admin_pb2_grpc,
    market_admin_pb2,
    market_admin_pb2_grpc,
    trading_pb2_grpc,
)
from engine_svc.config import EngineConfig
from engine_svc.main import run
from engine_svc.recorder_runtime import RecorderRuntime, run_recorder
from engine_svc.runtime import EngineRuntime
from mesh.config import Settings
from mesh.errors import reason_of, status_of
from support import mesh_env, until

T = TypeVar("T")
INTERNAL_TOKEN = "test-internal-token-0123456789"
KEEPALIVE_S = 0.2


class FakeMarket(market_admin_pb2_grpc.MarketDataAdminServiceServicer):
    """Streams pushed quotes to every subscriber, re-sending the latest ones as keepalives."""

    def __init__(self) -> None:
        self.latest: dict[str, common_pb2.Quote] = {}
        self.sequence = 0
        self.up = True
        self._changed = asyncio.Event()
        self.subscribers = 0

    def push(self, symbol: str, bid: str, ask: str) -> None:
        """Publish a quote."""
        self.sequence += 1
        self.latest[symbol] = common_pb2.Quote(
            symbol=symbol, bid=bid, ask=ask, sequence=self.sequence
        )
        self._changed.set()

    async def StreamTicks(
        self,
        request: market_admin_pb2.StreamTicksRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[market_admin_pb2.StreamTicksResponse]:
        self.subscribers += 1
        try:
            sent: dict[str, int] = {}
            while self.up:
                for symbol, quote in list(self.latest.items()):
                    if sent.get(symbol) != quote.sequence:
                        sent[symbol] = quote.sequence
                        yield market_admin_pb2.StreamTicksResponse(quote=quote)
                self._changed.clear()
                try:
                    await asyncio.wait_for(self._changed.wait(), KEEPALIVE_S)
                except TimeoutError:
                    # Nothing new: re-send every latest quote as a keepalive.
                    sent.clear()
        finally:
            self.subscribers -= 1

    async def PublishTicks(
        self,
        request: market_admin_pb2.PublishTicksRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> market_admin_pb2.PublishTicksResponse:
        """Publish the given quotes, as the real service does with its manual feed."""
        for tick in request.ticks:
            self.push(tick.symbol, tick.bid, tick.ask)
        return market_admin_pb2.PublishTicksResponse(
            quotes=[self.latest[tick.symbol] for tick in request.ticks]
        )


@asynccontextmanager
async def fake_market() -> AsyncIterator[tuple[FakeMarket, str]]:
    """Run a fake market on a free loopback port; yield it and its address."""
    market = FakeMarket()
    server = grpc.aio.server()
    market_admin_pb2_grpc.add_MarketDataAdminServiceServicer_to_server(market, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield market, f"127.0.0.1:{port}"
    finally:
        market.up = False
        await server.stop(0.2)


@dataclass
class Client:
    """Stubs of one caller: a user's trading stub and the internal admin stub."""

    channel: grpc.aio.Channel
    issuer: TokenIssuer
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, user: str) -> tuple[tuple[str, str], ...]:
        """Return the metadata of a user's calls."""
        if user not in self.tokens:
            self.tokens[user] = self.issuer.issue(user)[0]
        return (("authorization", f"Bearer {self.tokens[user]}"),)

    @property
    def trading(self) -> trading_pb2_grpc.TradingServiceAsyncStub:
        return trading_pb2_grpc.TradingServiceStub(self.channel)

    @property
    def admin(self) -> engine_admin_pb2_grpc.EngineAdminServiceAsyncStub:
        return engine_admin_pb2_grpc.EngineAdminServiceStub(self.channel)

    internal = (("x-cfd-internal-token", INTERNAL_TOKEN),)

    async def create_account(self, user: str, balance: str = "10000") -> None:
        """Open a user's account."""
        await self.admin.CreateAccount(
            engine_admin_pb2.CreateAccountRequest(user_id=user, initial_balance=balance),
            metadata=self.internal,
        )

    async def stats(self) -> engine_admin_pb2.GetStatsResponse:
        """Return the engine figures."""
        return await self.admin.GetStats(engine_admin_pb2.GetStatsRequest(), metadata=self.internal)


def engine_settings(
    data_dir: Path, market_addr: str, **env: str
) -> tuple[Settings, dict[str, str]]:
    """Return settings (and their environment) of an engine on a free port."""
    environment = mesh_env(data_dir, CFD_MARKET_ADDR=market_addr, **env)
    return Settings.from_env(environment), environment


def user_issuer(settings: Settings) -> TokenIssuer:
    """Return an issuer whose tokens the engine of `settings` accepts (keys in the data dir)."""
    return load_issuer(settings)


@dataclass
class Recorder:
    """An in-process history recorder (what `cfd recorder` runs) with its task."""

    runtime: RecorderRuntime
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def shutdown(self) -> None:
        """Stop it cleanly (write what it read)."""
        self.stop.set()
        await asyncio.wait_for(self.task, 30)


def start_recorder(
    settings: Settings, config: EngineConfig | None = None, db_url: str | None = None
) -> Recorder:
    """Run a recorder of the engine of `settings` in this process."""
    runtime = RecorderRuntime(
        settings, config or EngineConfig(price_stale_ms=2000), db_url=db_url, poll_s=0.005
    )
    stop = asyncio.Event()
    return Recorder(runtime, stop, asyncio.create_task(run_recorder(runtime, stop)))


@dataclass
class Engine:
    """An in-process engine with its stop event, task and runtime, and its recorder."""

    settings: Settings
    runtime: EngineRuntime
    stop: asyncio.Event
    task: asyncio.Task[None]
    recorder: Recorder | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.settings.engine_port}"

    async def shutdown(self) -> None:
        """Stop it cleanly (drain, snapshot), then its recorder (record what is left)."""
        self.stop.set()
        try:
            await asyncio.wait_for(self.task, 30)
        finally:
            if self.recorder is not None:
                await self.recorder.shutdown()


async def start_engine(
    settings: Settings,
    config: EngineConfig | None = None,
    db_url: str | None = None,
    *,
    recorder: bool = True,
) -> Engine:
    """Run an engine in this process (with a recorder unless told not to) and wait until it
    serves."""
    config = config or EngineConfig(price_stale_ms=2000)
    runtime = EngineRuntime(settings, config, db_url=db_url)
    stop = asyncio.Event()
    task = asyncio.create_task(run(settings, config, stop=stop, runtime=runtime))
    engine = Engine(settings, runtime, stop, task)
    if recorder:
        engine.recorder = start_recorder(settings, config, db_url)

    async def serving() -> bool:
        if task.done():
            task.result()
            raise AssertionError("the engine stopped during start-up")
        return runtime.sequencer is not None and await grpc_ready(engine.address)

    await until(serving, within=30)
    return engine


async def grpc_ready(address: str) -> bool:
    """Return whether a gRPC server answers at `address`."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    async with grpc.aio.insecure_channel(address) as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=0.5
            )
        except grpc.aio.AioRpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def violations(exc: grpc.aio.AioRpcError) -> list[str]:
    """Return the BadRequest field names of a failed call."""
    status = status_of(exc)
    fields: list[str] = []
    if status is None:
        return fields
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            fields.extend(v.field for v in bad.field_violations)
    return fields


def failure(exc: grpc.aio.AioRpcError) -> tuple[grpc.StatusCode, str | None]:
    """Return the status code and ErrorInfo reason of a failed call."""
    return exc.code(), reason_of(exc)


# ---------------------------------------------------------------------- the harness itself


async def test_fake_market_streams_pushed_quotes_and_keepalives() -> None:
    async with fake_market() as (market, address):
        market.push("BTCUSD", "100.00", "100.10")
        async with grpc.aio.insecure_channel(address) as channel:
            stub = market_admin_pb2_grpc.MarketDataAdminServiceStub(channel)
            call = stub.StreamTicks(market_admin_pb2.StreamTicksRequest())
            first = await call.read()
            assert isinstance(first, market_admin_pb2.StreamTicksResponse)
            assert (first.quote.symbol, first.quote.bid) == ("BTCUSD", "100.00")
            again = await call.read()
            assert isinstance(again, market_admin_pb2.StreamTicksResponse)
            assert again.quote.sequence == first.quote.sequence
            market.push("BTCUSD", "101.00", "101.10")
            newer = await call.read()
            assert isinstance(newer, market_admin_pb2.StreamTicksResponse)
            assert newer.quote.bid in ("100.00", "101.00")
            call.cancel()
