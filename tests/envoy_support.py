"""A real Envoy in front of gRPC fakes of the public services, or of the real mesh.

The fakes run the real service shell pieces (`mesh.server.CallInterceptor`, JWT verification,
rich error statuses, gRPC health) so that what Envoy transcodes is exactly what a service
sends; their behaviour is only as much as the Envoy tests need. `running_mesh` runs the real
thing, `cfd up --envoy`, for the parity suite and the benchmark.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from account_svc.issuer import TokenIssuer
from cfd.v1 import (
    account_pb2,
    account_pb2_grpc,
    common_pb2,
    engine_admin_pb2,
    market_admin_pb2,
    market_admin_pb2_grpc,
    market_pb2,
    trading_pb2,
    trading_pb2_grpc,
)
from envoy_front.runner import EnvoyOptions, envoy_command, envoy_ready
from mesh.auth import CallerPolicy, subject
from mesh.config import Settings
from mesh.errors import ApiError, validation_error
from mesh.server import CallInterceptor
from mesh.tokens import JwtVerifier, TokenConfig, load_signing_key
from support import ServiceProcess, mesh_env, wait_for

SYMBOLS = ("BTCUSD", "ETHUSD", "SOLUSD")
FIXED_TIME = timestamp_pb2.Timestamp(seconds=1_780_000_000, nanos=0)
QUOTES_PER_SYMBOL = 3
# StreamPrices fails on reaching this symbol, after the quotes of the symbols before it.
HALTING_SYMBOL = "HALTUSD"

Handler = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]
StreamHandler = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[Any]]


class FakeAccounts:
    """AccountService: sign-up with an in-memory user table, and GetUser."""

    def __init__(self, issuer: TokenIssuer) -> None:
        self._issuer = issuer
        self._users: dict[str, account_pb2.User] = {}

    async def signup(
        self, request: account_pb2.SignupRequest, _context: object
    ) -> account_pb2.SignupResponse:
        email = request.email.strip().lower()
        if "@" not in email:
            raise validation_error("email", "must be an email address")
        if not 8 <= len(request.password) <= 128:
            raise validation_error("password", "must be 8 to 128 characters")
        if any(user.email == email for user in self._users.values()):
            raise ApiError("EMAIL_TAKEN", "this email is already registered")
        user = account_pb2.User(
            id=f"user-{len(self._users) + 1}", email=email, create_time=FIXED_TIME
        )
        self._users[user.id] = user
        token, ttl = self._issuer.issue(user.id)
        return account_pb2.SignupResponse(
            user=user, access_token=token, refresh_token=f"refresh-{user.id}", expires_in=ttl
        )

    async def get_user(
        self, _request: account_pb2.GetUserRequest, _context: object
    ) -> account_pb2.GetUserResponse:
        user = self._users.get(subject())
        if user is None:
            raise ApiError("USER_NOT_FOUND", "no such user")
        return account_pb2.GetUserResponse(user=user)


class FakeTrading:
    """TradingService: OpenPosition, GetPosition, GetAccount and a finite StreamPrices."""

    def __init__(self) -> None:
        self._positions: dict[str, trading_pb2.Position] = {}
        self.last_metadata: dict[str, str] = {}
        # Pauses that make calls outlast a route timeout: before answering GetAccount, and
        # between the steps of StreamPrices.
        self.account_delay_s = 0.0
        self.stream_step_delay_s = 0.0

    async def get_account(
        self,
        _request: trading_pb2.GetAccountRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> trading_pb2.GetAccountResponse:
        subject()
        await asyncio.sleep(self.account_delay_s)
        self.last_metadata = {
            key: value if isinstance(value, str) else value.decode(errors="replace")
            for key, value in context.invocation_metadata() or ()
        }
        return trading_pb2.GetAccountResponse(
            balance="5000", used_margin="0", unrealized_pnl="0", equity="5000",
            free_margin="5000", currency="USD",
        )  # fmt: skip

    async def open_position(
        self, request: trading_pb2.OpenPositionRequest, _context: object
    ) -> trading_pb2.OpenPositionResponse:
        owner = subject()
        if request.symbol not in SYMBOLS:
            raise ApiError("UNKNOWN_SYMBOL", f"unknown symbol {request.symbol!r}")
        if request.side == common_pb2.SIDE_UNSPECIFIED:
            raise validation_error("side", "must be SIDE_BUY or SIDE_SELL")
        if not 1 <= request.leverage <= 100:
            raise ApiError("INVALID_LEVERAGE", "leverage must be between 1 and 100")
        # One coin a lot, as the default instruments: a volume is the quantity.
        quantity = request.volume_lots if request.volume_lots else request.quantity
        if request.volume_lots and request.WhichOneof("size") is not None:
            raise validation_error("volumeLots", "give quantity or volumeLots, not both")
        if not quantity:
            raise validation_error("quantity", "is required")
        if quantity == "1000":
            raise ApiError("INSUFFICIENT_BALANCE", "the margin exceeds the free balance")
        position = trading_pb2.Position(
            id=f"pos-{len(self._positions) + 1}",
            symbol=request.symbol,
            side=request.side,
            quantity=quantity,
            volume_lots=quantity,
            leverage=request.leverage,
            entry_price="64250.15",
            margin="64.25015",
            take_profit=request.take_profit,
            stop_loss=request.stop_loss,
            open_time=FIXED_TIME,
            client_order_id=request.client_order_id,
            status=trading_pb2.POSITION_STATUS_OPEN,
        )
        self._positions[f"{owner}/{position.id}"] = position
        return trading_pb2.OpenPositionResponse(position=position)

    async def get_position(
        self, request: trading_pb2.GetPositionRequest, _context: object
    ) -> trading_pb2.GetPositionResponse:
        position = self._positions.get(f"{subject()}/{request.position_id}")
        if position is None:
            raise ApiError("POSITION_NOT_FOUND", f"no position {request.position_id!r}")
        return trading_pb2.GetPositionResponse(position=position)

    async def stream_prices(
        self, request: trading_pb2.StreamPricesRequest, _context: object
    ) -> AsyncIterator[trading_pb2.StreamPricesResponse]:
        subject()
        symbols = list(request.symbols) or list(SYMBOLS)
        for symbol in symbols:
            if symbol not in (*SYMBOLS, HALTING_SYMBOL):
                raise ApiError("UNKNOWN_SYMBOL", f"unknown symbol {symbol!r}")
        sequence = 0
        for step in range(QUOTES_PER_SYMBOL):
            for symbol in symbols:
                if symbol == HALTING_SYMBOL:
                    raise ApiError("PRICE_UNAVAILABLE", "the feed of this symbol halted")
                sequence += 1
                yield trading_pb2.StreamPricesResponse(
                    symbol=symbol,
                    bid=f"{100 + step}.00",
                    ask=f"{100 + step}.10",
                    time=FIXED_TIME,
                    sequence=sequence,
                )
            # Let each step leave as its own HTTP/2 data, as a live stream would.
            await asyncio.sleep(self.stream_step_delay_s)


class FakeMarket:
    """MarketDataService.ListInstruments, public."""

    async def list_instruments(
        self, _request: market_pb2.ListInstrumentsRequest, _context: object
    ) -> market_pb2.ListInstrumentsResponse:
        return market_pb2.ListInstrumentsResponse(
            instruments=[
                market_pb2.Instrument(
                    symbol=symbol, quote_currency="USD", tick_size="0.01", max_leverage=100
                )
                for symbol in SYMBOLS
            ]
        )


class FakeEngineAdmin:
    """EngineAdminService.GetStats, internal: reachable directly, never through Envoy."""

    async def get_stats(
        self, _request: engine_admin_pb2.GetStatsRequest, _context: object
    ) -> engine_admin_pb2.GetStatsResponse:
        return engine_admin_pb2.GetStatsResponse(sequence=42)


def _unary(
    handler: Handler, request_type: Any, response_type: Any
) -> grpc.RpcMethodHandler[Any, Any]:
    return grpc.unary_unary_rpc_method_handler(
        handler,
        request_deserializer=request_type.FromString,
        response_serializer=response_type.SerializeToString,
    )


def _stream(
    handler: StreamHandler, request_type: Any, response_type: Any
) -> grpc.RpcMethodHandler[Any, Any]:
    return grpc.unary_stream_rpc_method_handler(
        handler,
        request_deserializer=request_type.FromString,
        response_serializer=response_type.SerializeToString,
    )


class FakeMesh:
    """The engine, market and accounts ports of `settings`, served by the fakes in a thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        key = load_signing_key(settings, TokenConfig())
        self.signing_key = key
        self.issuer = TokenIssuer(key)
        self.verifier = JwtVerifier(key.public_keys)
        self.accounts = FakeAccounts(self.issuer)
        self.trading = FakeTrading()
        # The trading fakes of engine shards 1.. (CFD_ENGINE_SHARDS), each on its own port.
        self.shard_trading = {shard: FakeTrading() for shard in range(1, settings.engine_shards)}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: dict[int, grpc.aio.Server] = {}

    def __enter__(self) -> FakeMesh:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=15)
        return self

    def __exit__(self, *_exc: object) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=15)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=15)
            self._loop.close()

    def _handlers(self) -> dict[int, dict[str, dict[str, grpc.RpcMethodHandler[Any, Any]]]]:
        accounts, trading = self.accounts, self.trading
        market, admin = FakeMarket(), FakeEngineAdmin()
        return {
            self.settings.account_port: {
                "cfd.v1.AccountService": {
                    "Signup": _unary(
                        accounts.signup, account_pb2.SignupRequest, account_pb2.SignupResponse
                    ),
                    "GetUser": _unary(
                        accounts.get_user, account_pb2.GetUserRequest, account_pb2.GetUserResponse
                    ),
                }
            },
            self.settings.engine_port: {
                "cfd.v1.TradingService": {
                    "GetAccount": _unary(
                        trading.get_account,
                        trading_pb2.GetAccountRequest,
                        trading_pb2.GetAccountResponse,
                    ),
                    "OpenPosition": _unary(
                        trading.open_position,
                        trading_pb2.OpenPositionRequest,
                        trading_pb2.OpenPositionResponse,
                    ),
                    "GetPosition": _unary(
                        trading.get_position,
                        trading_pb2.GetPositionRequest,
                        trading_pb2.GetPositionResponse,
                    ),
                    "StreamPrices": _stream(
                        trading.stream_prices,
                        trading_pb2.StreamPricesRequest,
                        trading_pb2.StreamPricesResponse,
                    ),
                },
                "cfd.v1.EngineAdminService": {
                    "GetStats": _unary(
                        admin.get_stats,
                        engine_admin_pb2.GetStatsRequest,
                        engine_admin_pb2.GetStatsResponse,
                    ),
                },
            },
            **{
                int(self.settings.engine_addr_of(shard).rpartition(":")[2]): {
                    "cfd.v1.TradingService": {
                        "GetAccount": _unary(
                            fake.get_account,
                            trading_pb2.GetAccountRequest,
                            trading_pb2.GetAccountResponse,
                        ),
                    }
                }
                for shard, fake in self.shard_trading.items()
            },
            self.settings.market_port: {
                "cfd.v1.MarketDataService": {
                    "ListInstruments": _unary(
                        market.list_instruments,
                        market_pb2.ListInstrumentsRequest,
                        market_pb2.ListInstrumentsResponse,
                    ),
                }
            },
        }

    async def _start(self) -> None:
        policy = CallerPolicy(self.verifier, self.settings.internal_token)
        for port, services in self._handlers().items():
            server = grpc.aio.server(interceptors=[CallInterceptor(policy)])
            server.add_generic_rpc_handlers(
                [grpc.method_handlers_generic_handler(name, h) for name, h in services.items()]
            )
            health_servicer = health.aio.HealthServicer()
            health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
            if server.add_insecure_port(f"127.0.0.1:{port}") == 0:
                raise RuntimeError(f"port {port} is taken")
            await server.start()
            for name in ("", *services):
                await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
            self._servers[port] = server

    async def _stop(self, ports: tuple[int, ...] | None = None) -> None:
        chosen = list(self._servers) if ports is None else list(ports)
        await asyncio.gather(*(self._servers.pop(port).stop(0) for port in chosen))

    def stop_market(self) -> None:
        """Stop the market fake while the others keep serving."""
        stop = self._stop((self.settings.market_port,))
        asyncio.run_coroutine_threadsafe(stop, self._loop).result(timeout=15)


class EnvoyProcess:
    """The real `envoy` binary with the rendered configuration, its output in a file."""

    def __init__(
        self, settings: Settings, log_path: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.settings = settings
        self.log_path = log_path
        self._log = log_path.open("wb")
        command = envoy_command(settings, EnvoyOptions.from_env(env or {}))
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def base_url(self) -> str:
        """Return the URL of Envoy's public listener."""
        return f"http://127.0.0.1:{self.settings.envoy_port}"

    def output(self) -> str:
        """Return what Envoy has logged so far."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Wait until Envoy reports itself live; fail early when it exits."""

        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"envoy exited:\n{self.output()}")
            return envoy_ready(self.settings, timeout=0.5)

        wait_for(ready, timeout=timeout, interval=0.1)

    def stop(self) -> int:
        """Stop Envoy with SIGTERM and return its exit code."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(timeout=15)
        finally:
            self._log.close()


@contextmanager
def running_front(base: Path, **env: str) -> Iterator[tuple[Settings, FakeMesh, EnvoyProcess]]:
    """Run the fakes and an Envoy in front of them on fresh ports under `base`.

    `env` adds `CFD_*` variables, such as `CFD_ENVOY_RATE_LIMIT`, to the Envoy settings.
    """
    environment = mesh_env(base / "data", **env)
    settings = Settings.from_env(environment)
    with FakeMesh(settings) as mesh:
        front = EnvoyProcess(settings, base / "envoy.log", environment)
        try:
            front.wait_ready()
            yield settings, mesh, front
        finally:
            front.stop()


@dataclass
class RealMesh:
    """`cfd up --envoy` on the manual feed: the real services, the edge and Envoy."""

    env: dict[str, str]
    up: ServiceProcess

    @property
    def edge_url(self) -> str:
        """Return the edge's base URL."""
        return f"http://127.0.0.1:{self.env['CFD_EDGE_PORT']}"

    @property
    def envoy_url(self) -> str:
        """Return Envoy's base URL."""
        return f"http://127.0.0.1:{self.env['CFD_ENVOY_PORT']}"

    def address(self, port_variable: str) -> str:
        """Return the loopback address of one port of the mesh."""
        return f"127.0.0.1:{self.env[port_variable]}"

    @property
    def internal(self) -> tuple[tuple[str, str]]:
        """Return the metadata internal callers send."""
        return (("x-cfd-internal-token", self.env["CFD_INTERNAL_TOKEN"]),)

    def signup(self, email: str, password: str) -> account_pb2.SignupResponse:
        """Create a user directly on the accounts service."""
        with grpc.insecure_channel(self.address("CFD_ACCOUNT_PORT")) as channel:
            reply: account_pb2.SignupResponse = account_pb2_grpc.AccountServiceStub(channel).Signup(
                account_pb2.SignupRequest(email=email, password=password), timeout=10
            )
            return reply

    def publish(self, quotes: Mapping[str, tuple[str, str]]) -> None:
        """Publish exact quotes and wait until the engine trades on all of them."""
        ticks = [
            market_admin_pb2.TickInput(symbol=symbol, bid=bid, ask=ask)
            for symbol, (bid, ask) in quotes.items()
        ]
        with grpc.insecure_channel(self.address("CFD_MARKET_PORT")) as channel:
            market_admin_pb2_grpc.MarketDataAdminServiceStub(channel).PublishTicks(
                market_admin_pb2.PublishTicksRequest(ticks=ticks),
                metadata=self.internal,
                timeout=10,
            )
        watcher = self.signup(f"watcher-{uuid.uuid4().hex[:12]}@example.com", "watching-prices")
        metadata = (("authorization", f"Bearer {watcher.access_token}"),)
        with grpc.insecure_channel(self.address("CFD_ENGINE_PORT")) as channel:
            trading = trading_pb2_grpc.TradingServiceStub(channel)

            def applied() -> bool:
                prices = trading.ListPrices(
                    trading_pb2.ListPricesRequest(), metadata=metadata, timeout=5
                )
                seen = {q.symbol: (q.bid, q.ask) for q in prices.prices}
                return all(seen.get(s) == quote for s, quote in quotes.items())

            wait_for(applied, timeout=20)


@contextmanager
def running_mesh(base: Path, **env: str) -> Iterator[RealMesh]:
    """Run `cfd up --envoy` on the manual feed under `base` until the block ends."""
    environment = mesh_env(
        base / "data",
        CFD_FEED="manual",
        # The suites sign up more users from one address than the default abuse limits allow.
        CFD_LIMIT_SIGNUP_PER_ADDRESS="1000/3600",
        CFD_LIMIT_SIGNIN_PER_ADDRESS="1000/300",
        # Candle history is not what these suites compare; a day keeps the start quick.
        CFD_BACKFILL_DAYS="1",
        **env,
    )
    up = ServiceProcess(["up", "--envoy"], environment, base / "up.log")
    try:
        wait_for(lambda: "CFD Mesh is up" in up.output() or up.process.poll() is not None, 120)
        assert up.process.poll() is None, up.output()
        yield RealMesh(environment, up)
    finally:
        up.stop()
