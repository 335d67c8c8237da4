"""Hand-written fake services behind a real gRPC server, and the edge in front of them."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc
import uvicorn
from starlette.applications import Starlette

from account_svc.issuer import TokenIssuer
from cfd.v1 import (
    account_pb2,
    account_pb2_grpc,
    common_pb2,
    exchange_pb2_grpc,
    market_pb2,
    market_pb2_grpc,
    trading_pb2,
    trading_pb2_grpc,
)
from edge.app import create_app
from edge.coalesce import CoalescingHttpToolsProtocol
from edge.config import EdgeConfig
from edge.main import bind
from exchange_fake import FakeExchange
from mesh.auth import INTERNAL_TOKEN_HEADER, subject
from mesh.config import Settings
from mesh.errors import ApiError
from mesh.server import Service, serve
from mesh.tokens import JWKS_FILE_NAME, JwtVerifier, SigningKey, write_jwks_file
from support import free_port

INTERNAL = "internal-token-for-edge-tests"


class Broadcast:
    """Items pushed by a test to every open stream; counts the streams."""

    def __init__(self) -> None:
        self._queues: list[asyncio.Queue[Any]] = []
        self.opened = 0

    @property
    def open_streams(self) -> int:
        return len(self._queues)

    def publish(self, item: Any) -> None:
        for queue in self._queues:
            queue.put_nowait(item)

    def end(self) -> None:
        """End every open stream, as a service ending its calls does."""
        self.publish(_END)

    async def items(self) -> AsyncIterator[Any]:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._queues.append(queue)
        self.opened += 1
        try:
            while (item := await queue.get()) is not _END:
                yield item
        finally:
            self._queues.remove(queue)


_END = object()


@dataclass
class Recorder:
    """What the fakes saw: metadata of calls, and the shared streams."""

    metadata: dict[str, dict[str, str]] = field(default_factory=dict)
    ticks: Broadcast = field(default_factory=Broadcast)
    candles: Broadcast = field(default_factory=Broadcast)
    positions: Broadcast = field(default_factory=Broadcast)
    events: list[trading_pb2.StreamEventsResponse] = field(default_factory=list)
    live_events: Broadcast = field(default_factory=Broadcast)
    event_requests: list[int] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    # The market service's latest (bid, ask) of each symbol, which its tickers carry.
    bid_ask: dict[str, tuple[str, str]] = field(
        default_factory=lambda: {"BTCUSD": ("100.00", "100.10")}
    )
    # GetTicker answers PRICE_UNAVAILABLE while this is above 0, counting down.
    ticker_failures: int = 0
    # GetTicker answers once this is set (a test clears it to hold the calls).
    ticker_gate: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.ticker_gate.set()

    def saw(self, method: str, context: Any) -> None:
        self.calls[method] += 1
        self.metadata[method] = {
            k: v for k, v in context.invocation_metadata() if isinstance(v, str)
        }


def quote(symbol: str, bid: str, ask: str, sequence: int = 1) -> common_pb2.Quote:
    return common_pb2.Quote(symbol=symbol, bid=bid, ask=ask, sequence=sequence)


class Accounts(account_pb2_grpc.AccountServiceServicer):
    def __init__(self, recorder: Recorder, issuer: TokenIssuer) -> None:
        self.recorder = recorder
        self.issuer = issuer

    async def Signup(
        self, request: account_pb2.SignupRequest, context: Any
    ) -> account_pb2.SignupResponse:
        self.recorder.saw("Signup", context)
        if request.email == "taken@example.com":
            raise ApiError("EMAIL_TAKEN", "email already registered")
        if request.email == "busy@example.com":
            raise ApiError("RATE_LIMITED", "slow down", retry_after_s=7)
        token, ttl = self.issuer.issue("user-" + request.email.split("@")[0])
        return account_pb2.SignupResponse(
            user=account_pb2.User(id="user-1", email=request.email),
            access_token=token,
            refresh_token="refresh",
            expires_in=ttl,
        )

    async def GetUser(
        self, request: account_pb2.GetUserRequest, context: Any
    ) -> account_pb2.GetUserResponse:
        return account_pb2.GetUserResponse(user=account_pb2.User(id=subject()))


class Trading(trading_pb2_grpc.TradingServiceServicer):
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    async def GetAccount(
        self, request: trading_pb2.GetAccountRequest, context: Any
    ) -> trading_pb2.GetAccountResponse:
        self.recorder.saw("GetAccount", context)
        return trading_pb2.GetAccountResponse(balance="5000", currency=subject())

    async def ListPrices(
        self, request: trading_pb2.ListPricesRequest, context: Any
    ) -> trading_pb2.ListPricesResponse:
        await asyncio.sleep(30)  # longer than any deadline the tests give the edge
        return trading_pb2.ListPricesResponse()

    async def OpenPosition(
        self, request: trading_pb2.OpenPositionRequest, context: Any
    ) -> trading_pb2.OpenPositionResponse:
        self.recorder.saw("OpenPosition", context)
        if request.symbol == "NOPE":
            raise ApiError("UNKNOWN_SYMBOL", "unknown symbol NOPE")
        if request.leverage > 100:
            raise ApiError("INVALID_LEVERAGE", "leverage: 1 to 100", [("leverage", "1 to 100")])
        size = request.quantity if request.WhichOneof("size") == "quantity" else request.margin
        position = trading_pb2.Position(
            id="p1",
            symbol=request.symbol,
            side=request.side,
            quantity=size,
            leverage=request.leverage,
            client_order_id=request.client_order_id,
        )
        return trading_pb2.OpenPositionResponse(position=position)

    async def GetPosition(
        self, request: trading_pb2.GetPositionRequest, context: Any
    ) -> trading_pb2.GetPositionResponse:
        self.recorder.saw("GetPosition", context)
        if request.position_id == "missing":
            raise ApiError("POSITION_NOT_FOUND", "no such position")
        return trading_pb2.GetPositionResponse(
            position=trading_pb2.Position(id=request.position_id)
        )

    async def ClosePosition(
        self, request: trading_pb2.ClosePositionRequest, context: Any
    ) -> trading_pb2.ClosePositionResponse:
        return trading_pb2.ClosePositionResponse(
            position=trading_pb2.Position(id=request.position_id),
            closed_quantity=request.quantity,
        )

    async def ModifyPosition(
        self, request: trading_pb2.ModifyPositionRequest, context: Any
    ) -> trading_pb2.ModifyPositionResponse:
        self.recorder.saw("ModifyPosition", context)
        position = trading_pb2.Position(
            id=request.position_id,
            take_profit=request.take_profit if request.HasField("take_profit") else "unset",
        )
        return trading_pb2.ModifyPositionResponse(position=position)

    async def ListOrders(
        self, request: trading_pb2.ListOrdersRequest, context: Any
    ) -> trading_pb2.ListOrdersResponse:
        raise RuntimeError("the fake engine breaks here")

    async def ListHistory(
        self, request: trading_pb2.ListHistoryRequest, context: Any
    ) -> trading_pb2.ListHistoryResponse:
        echo = f"{request.page_size}|{request.page_token}|{request.symbol}"
        return trading_pb2.ListHistoryResponse(next_page_token=echo)

    async def StreamPrices(
        self, request: trading_pb2.StreamPricesRequest, context: Any
    ) -> AsyncIterator[trading_pb2.StreamPricesResponse]:
        if "NOPE" in request.symbols:
            raise ApiError("UNKNOWN_SYMBOL", "unknown symbol NOPE")
        if (INTERNAL_TOKEN_HEADER, INTERNAL) in context.invocation_metadata():
            # The edge's shared feed: the quotes a test publishes, as they come.
            async for item in self.recorder.ticks.items():
                if not request.symbols or item.symbol in request.symbols:
                    yield trading_pb2.StreamPricesResponse(
                        symbol=item.symbol, bid=item.bid, ask=item.ask, sequence=item.sequence
                    )
        for index, symbol in enumerate(request.symbols):
            yield trading_pb2.StreamPricesResponse(
                symbol=symbol, bid="1.00", ask="1.10", sequence=index + 1
            )

    async def StreamPositions(
        self, request: trading_pb2.StreamPositionsRequest, context: Any
    ) -> AsyncIterator[trading_pb2.StreamPositionsResponse]:
        user = subject()
        self.recorder.saw("StreamPositions", context)
        async for item in self.recorder.positions.items():
            yield trading_pb2.StreamPositionsResponse(
                account=trading_pb2.AccountSummary(currency=user), sequence=item
            )

    async def StreamEvents(
        self, request: trading_pb2.StreamEventsRequest, context: Any
    ) -> AsyncIterator[trading_pb2.StreamEventsResponse]:
        self.recorder.event_requests.append(request.from_sequence)
        live = aiter(self.recorder.live_events.items())
        # Registering the live subscription first means nothing published meanwhile is lost.
        pending = asyncio.ensure_future(live.__anext__())
        try:
            last = request.from_sequence
            for event in list(self.recorder.events):
                if event.sequence > request.from_sequence:
                    last = event.sequence
                    yield event
            while True:
                event = await pending
                pending = asyncio.ensure_future(live.__anext__())
                if event.sequence > last:
                    yield event
        finally:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
            await live.aclose()  # type: ignore[attr-defined]


class Market(market_pb2_grpc.MarketDataServiceServicer):
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    async def ListInstruments(
        self, request: market_pb2.ListInstrumentsRequest, context: Any
    ) -> market_pb2.ListInstrumentsResponse:
        self.recorder.saw("ListInstruments", context)
        return market_pb2.ListInstrumentsResponse(
            instruments=[market_pb2.Instrument(symbol="BTCUSD", max_leverage=100)]
        )

    async def GetTicker(
        self, request: market_pb2.GetTickerRequest, context: Any
    ) -> market_pb2.GetTickerResponse:
        self.recorder.saw("GetTicker", context)
        await self.recorder.ticker_gate.wait()
        if self.recorder.ticker_failures:
            self.recorder.ticker_failures -= 1
            raise ApiError("PRICE_UNAVAILABLE", f"{request.symbol} has no price yet")
        if request.symbol == "BTC_USD":
            # A spot market's ticker: made from trades, with no quote.
            ticker = market_pb2.Ticker(symbol=request.symbol, last="99.00")
            return market_pb2.GetTickerResponse(ticker=ticker)
        if request.symbol not in self.recorder.bid_ask:
            raise ApiError("UNKNOWN_SYMBOL", f"unknown symbol {request.symbol}")
        bid, ask = self.recorder.bid_ask[request.symbol]
        ticker = market_pb2.Ticker(symbol=request.symbol, last=bid, bid=bid, ask=ask)
        return market_pb2.GetTickerResponse(ticker=ticker)

    async def GetCandles(
        self, request: market_pb2.GetCandlesRequest, context: Any
    ) -> market_pb2.GetCandlesResponse:
        candle = market_pb2.Candle(
            open_time=request.start_time,
            close_time=request.end_time,
            volume=market_pb2.CandleInterval.Name(request.interval),
            tick_count=request.limit,
            open=request.symbol,
        )
        return market_pb2.GetCandlesResponse(candles=[candle])

    async def StreamCandles(
        self, request: market_pb2.StreamCandlesRequest, context: Any
    ) -> AsyncIterator[market_pb2.StreamCandlesResponse]:
        async for close in self.recorder.candles.items():
            yield market_pb2.StreamCandlesResponse(
                symbol=request.symbol,
                interval=request.interval,
                candle=market_pb2.Candle(close=close),
            )


@dataclass
class FakeMesh:
    """A running fake of every service on one port."""

    address: str
    recorder: Recorder
    issuer: TokenIssuer
    settings: Settings
    exchange: FakeExchange

    def token(self, user: str = "alice") -> str:
        return self.issuer.issue(user)[0]


@contextlib.asynccontextmanager
async def fake_mesh(data_dir: Path) -> AsyncIterator[FakeMesh]:
    """Run the fake services, with a signing key whose JWKS is in `data_dir`."""
    settings = Settings.from_env({"CFD_DATA_DIR": str(data_dir), "CFD_INTERNAL_TOKEN": INTERNAL})
    key = SigningKey.generate()
    write_jwks_file(data_dir / JWKS_FILE_NAME, key.public_keys)
    issuer = TokenIssuer(key)
    recorder = Recorder()
    exchange = FakeExchange()
    port = free_port()
    services = [
        Service(
            account_pb2_grpc.add_AccountServiceServicer_to_server,
            Accounts(recorder, issuer),  # type: ignore[abstract]
            "cfd.v1.AccountService",
        ),
        Service(
            trading_pb2_grpc.add_TradingServiceServicer_to_server,
            Trading(recorder),  # type: ignore[abstract]
            "cfd.v1.TradingService",
        ),
        Service(
            market_pb2_grpc.add_MarketDataServiceServicer_to_server,
            Market(recorder),
            "cfd.v1.MarketDataService",
        ),
        Service(
            exchange_pb2_grpc.add_ExchangeServiceServicer_to_server,
            exchange,
            "cfd.v1.ExchangeService",
        ),
    ]
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(
            "fakes",
            port,
            services,
            settings=settings,
            verifier=JwtVerifier(key.public_keys),
            stop=stop,
            grace=0.2,
        )
    )
    address = f"127.0.0.1:{port}"
    async with grpc.aio.insecure_channel(address) as channel:
        await asyncio.wait_for(channel.channel_ready(), 10)
    try:
        yield FakeMesh(address, recorder, issuer, settings, exchange)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def addresses_of(address: str) -> dict[str, str]:
    return {
        name: address
        for name in (
            "cfd.v1.AccountService",
            "cfd.v1.TradingService",
            "cfd.v1.MarketDataService",
            "cfd.v1.ExchangeService",
        )
    }


@dataclass
class RunningEdge:
    """The edge served by uvicorn on loopback."""

    url: str
    ws_url: str
    app: Starlette


@contextlib.asynccontextmanager
async def running_edge(
    settings: Settings,
    config: EdgeConfig,
    addresses: dict[str, str],
) -> AsyncIterator[RunningEdge]:
    """Serve the edge app on a free loopback port until the block ends."""
    port = free_port()
    settings = replace(settings, edge_port=port)
    app = create_app(settings, config, addresses=addresses)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            lifespan="on",
            # The protocol `cfd edge` runs, so every edge test goes through it.
            http=CoalescingHttpToolsProtocol,
            ws="websockets-sansio",
            ws_max_size=config.ws_max_frame_bytes,
            log_config=None,
            timeout_graceful_shutdown=2,
        )
    )
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    sock = bind("127.0.0.1", port)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = asyncio.get_running_loop().time() + 10
    while not server.started:
        if task.done() or asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the edge did not start")
        await asyncio.sleep(0.02)
    try:
        yield RunningEdge(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/v1/ws", app)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
        sock.close()
