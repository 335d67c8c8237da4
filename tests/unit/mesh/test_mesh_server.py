"""The service shell with real gRPC servers on loopback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from cfd.v1 import engine_admin_pb2, engine_admin_pb2_grpc, trading_pb2, trading_pb2_grpc
from mesh.auth import INTERNAL_TOKEN_HEADER, CallerPolicy, subject
from mesh.config import Settings
from mesh.errors import ApiError, reason_of, status_of
from mesh.server import ServeError, Service, serve
from support import free_port

INTERNAL = "internal-token-for-tests-0123"


class FixedVerifier:
    """Accepts exactly one token, as the subject "alice"."""

    def verify(self, token: str) -> str:
        if token != "good-token":
            raise ApiError("TOKEN_INVALID", "unknown token")
        return "alice"


class Trading(trading_pb2_grpc.TradingServiceServicer):
    async def GetAccount(
        self, request: trading_pb2.GetAccountRequest, context: object
    ) -> trading_pb2.GetAccountResponse:
        return trading_pb2.GetAccountResponse(balance=subject(), currency="USD")

    async def ClosePosition(
        self, request: trading_pb2.ClosePositionRequest, context: object
    ) -> trading_pb2.ClosePositionResponse:
        raise ApiError(
            "VALIDATION_FAILED", "quantity: not a number", [("quantity", "not a number")]
        )

    async def StreamPrices(
        self, request: trading_pb2.StreamPricesRequest, context: object
    ) -> AsyncIterator[trading_pb2.StreamPricesResponse]:
        for symbol in request.symbols:
            yield trading_pb2.StreamPricesResponse(symbol=symbol, bid=subject())

    async def ListOrders(
        self, request: trading_pb2.ListOrdersRequest, context: object
    ) -> trading_pb2.ListOrdersResponse:
        raise RuntimeError("boom")

    async def StreamEvents(
        self, request: trading_pb2.StreamEventsRequest, context: object
    ) -> AsyncIterator[trading_pb2.StreamEventsResponse]:
        # A feed: one event, then nothing until the client goes away.
        yield trading_pb2.StreamEventsResponse(sequence=1)
        await asyncio.Event().wait()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"CFD_DATA_DIR": str(tmp_path), "CFD_INTERNAL_TOKEN": INTERNAL})


async def _running(
    settings: Settings, port: int, fronts: int = 0, grace: float = 0.5
) -> tuple[asyncio.Task[None], asyncio.Event]:
    stop = asyncio.Event()
    services = [
        Service(
            trading_pb2_grpc.add_TradingServiceServicer_to_server,
            Trading(),  # type: ignore[abstract]
            "cfd.v1.TradingService",
        ),
        Service(
            engine_admin_pb2_grpc.add_EngineAdminServiceServicer_to_server,
            engine_admin_pb2_grpc.EngineAdminServiceServicer(),  # type: ignore[abstract]
            "cfd.v1.EngineAdminService",
        ),
    ]
    task = asyncio.create_task(
        serve(
            "test",
            port,
            services,
            settings=settings,
            verifier=FixedVerifier(),
            stop=stop,
            grace=grace,
            fronts=fronts,
        )
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        await asyncio.wait_for(channel.channel_ready(), 10)
    return task, stop


# Every call of these tests runs once on the service's own port and once through two front
# processes (`mesh.front`) that pass it on: the answers must not differ.
@pytest.fixture(params=[0, 2], ids=["own-port", "fronts"])
async def channel(
    settings: Settings, request: pytest.FixtureRequest
) -> AsyncIterator[grpc.aio.Channel]:
    port = free_port()
    task, stop = await _running(settings, port, request.param)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as chan:
        yield chan
    stop.set()
    await asyncio.wait_for(task, 10)


BEARER = (("authorization", "Bearer good-token"),)


async def test_health_reports_serving_for_each_service(channel: grpc.aio.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "cfd.v1.TradingService", "cfd.v1.EngineAdminService"):
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_services(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    names = set()
    async for reply in stub.ServerReflectionInfo(iter([request])):
        names |= {s.name for s in reply.list_services_response.service}
    assert {"cfd.v1.TradingService", "cfd.v1.EngineAdminService", "grpc.health.v1.Health"} <= names


async def test_the_verified_subject_reaches_the_handler(channel: grpc.aio.Channel) -> None:
    stub = trading_pb2_grpc.TradingServiceStub(channel)
    reply = await stub.GetAccount(trading_pb2.GetAccountRequest(), metadata=BEARER)
    assert reply.balance == "alice"
    stream = stub.StreamPrices(trading_pb2.StreamPricesRequest(symbols=["A", "B"]), metadata=BEARER)
    assert [(m.symbol, m.bid) async for m in stream] == [("A", "alice"), ("B", "alice")]


@pytest.mark.parametrize(
    "metadata",
    [(), (("authorization", "Bearer bad"),), (("authorization", "Basic good-token"),)],
)
async def test_user_rpcs_need_a_valid_bearer_token(
    channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...]
) -> None:
    stub = trading_pb2_grpc.TradingServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.GetAccount(trading_pb2.GetAccountRequest(), metadata=metadata)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason_of(info.value) == "TOKEN_INVALID"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in stub.StreamPrices(trading_pb2.StreamPricesRequest(), metadata=metadata):
            pass
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_admin_services_need_the_internal_token(channel: grpc.aio.Channel) -> None:
    stub = engine_admin_pb2_grpc.EngineAdminServiceStub(channel)
    for metadata in [(), BEARER, (("x-cfd-internal-token", "wrong"),)]:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.GetStats(engine_admin_pb2.GetStatsRequest(), metadata=metadata)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # With the token the call reaches the (not yet implemented) handler.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.GetStats(
            engine_admin_pb2.GetStatsRequest(), metadata=(("x-cfd-internal-token", INTERNAL),)
        )
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_api_errors_carry_error_info_and_field_violations(channel: grpc.aio.Channel) -> None:
    stub = trading_pb2_grpc.TradingServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ClosePosition(trading_pb2.ClosePositionRequest(), metadata=BEARER)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = status_of(info.value)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad_request) for d in status.details)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("quantity", "not a number")
    ]
    assert reason_of(info.value) == "VALIDATION_FAILED"


async def test_unexpected_exceptions_become_internal(channel: grpc.aio.Channel) -> None:
    stub = trading_pb2_grpc.TradingServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ListOrders(trading_pb2.ListOrdersRequest(), metadata=BEARER)
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert "boom" not in (info.value.details() or "")


async def test_a_taken_port_is_a_clear_error(settings: Settings) -> None:
    port = free_port()
    task, stop = await _running(settings, port)
    try:
        with pytest.raises(ServeError, match=f"127.0.0.1:{port}: is the port already in use"):
            await serve("second", port, [], settings=settings, verifier=None)
    finally:
        stop.set()
        await task


@pytest.mark.parametrize("fronts", [0, 1], ids=["own-port", "fronts"])
async def test_a_stop_ends_open_feeds_with_unavailable_instead_of_waiting_out_the_grace(
    settings: Settings, fronts: int
) -> None:
    port = free_port()
    task, stop = await _running(settings, port, fronts, grace=30.0)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = trading_pb2_grpc.TradingServiceStub(channel)
        feed = stub.StreamEvents(trading_pb2.StreamEventsRequest(), metadata=BEARER)
        first = await feed.read()
        assert isinstance(first, trading_pb2.StreamEventsResponse) and first.sequence == 1
        started = asyncio.get_running_loop().time()
        stop.set()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await asyncio.wait_for(feed.read(), 10)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert reason_of(info.value) == "SERVICE_UNAVAILABLE"
        await asyncio.wait_for(task, 10)
        assert asyncio.get_running_loop().time() - started < 10


async def test_stop_runs_the_hooks_in_order(settings: Settings) -> None:
    calls: list[str] = []

    def hook(name: str) -> Callable[[], asyncio.Future[None]]:
        async def run() -> None:
            calls.append(name)

        return run  # type: ignore[return-value]

    stop = asyncio.Event()
    stop.set()
    await serve(
        "hooks",
        free_port(),
        [],
        settings=replace(settings),
        verifier=None,
        on_start=hook("start"),
        on_stop=hook("stop"),
        stop=stop,
    )
    assert calls == ["start", "stop"]


def _add_upload(_servicer: object, server: grpc.aio.Server) -> None:
    async def upload(requests: AsyncIterator[bytes], context: object) -> bytes:
        return b"".join([chunk async for chunk in requests])

    handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.stream_unary_rpc_method_handler(upload)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("cfd.v1.TradingService", {"Upload": handler}),)
    )


async def test_request_streams_are_authenticated_too(settings: Settings) -> None:
    port, stop = free_port(), asyncio.Event()
    service = Service(_add_upload, None, "cfd.v1.TradingService")
    task = asyncio.create_task(
        serve("upload", port, [service], settings=settings, verifier=FixedVerifier(), stop=stop)
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as chan:
            await asyncio.wait_for(chan.channel_ready(), 10)
            upload: grpc.aio.StreamUnaryMultiCallable[bytes, bytes] = chan.stream_unary(
                "/cfd.v1.TradingService/Upload"
            )
            assert await upload(iter([b"a", b"b"]), metadata=BEARER) == b"ab"
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await upload(iter([b"a"]))
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        stop.set()
        await task


def test_only_the_quote_stream_accepts_the_internal_token_instead_of_a_user() -> None:
    policy = CallerPolicy(FixedVerifier(), INTERNAL)
    internal = ((INTERNAL_TOKEN_HEADER, INTERNAL),)
    assert policy.authenticate("/cfd.v1.TradingService/StreamPrices", internal) is None
    for method in ("/cfd.v1.TradingService/GetAccount", "/cfd.v1.TradingService/StreamEvents"):
        with pytest.raises(ApiError):
            policy.authenticate(method, internal)
    with pytest.raises(ApiError):
        policy.authenticate("/cfd.v1.TradingService/StreamPrices", ((INTERNAL_TOKEN_HEADER, "x"),))
    # Envoy forwards the user's token beside the internal one: the user stays the caller.
    both = (*internal, ("authorization", "Bearer good-token"))
    assert policy.authenticate("/cfd.v1.TradingService/StreamPrices", both) == "alice"
    with pytest.raises(ApiError):
        policy.authenticate(
            "/cfd.v1.TradingService/StreamPrices", (*internal, ("authorization", "Bearer bad"))
        )


# A string field (number 1) holding bytes that are not UTF-8, and a field cut short.
NOT_UTF8 = b"\x0a\x02\xff\xfe"
TRUNCATED = b"\x0a\x05ab"


@pytest.mark.parametrize("payload", [NOT_UTF8, TRUNCATED])
@pytest.mark.parametrize(
    ("method", "metadata"),
    [
        ("/cfd.v1.TradingService/ClosePosition", BEARER),
        ("/cfd.v1.TradingService/StreamPrices", BEARER),
        ("/grpc.health.v1.Health/Check", ()),
    ],
)
async def test_a_malformed_request_is_invalid_argument_without_a_traceback(
    channel: grpc.aio.Channel,
    caplog: pytest.LogCaptureFixture,
    method: str,
    metadata: tuple[tuple[str, str], ...],
    payload: bytes,
) -> None:
    identity: Callable[[bytes], bytes] = lambda data: data  # noqa: E731
    with pytest.raises(grpc.aio.AioRpcError) as info:
        if method.endswith("StreamPrices"):
            call = channel.unary_stream(method, identity, identity)
            async for _ in call(payload, metadata=metadata):
                pass
        else:
            await channel.unary_unary(method, identity, identity)(payload, metadata=metadata)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason_of(info.value) == "VALIDATION_FAILED"
    assert "not a valid" in (info.value.details() or "")
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []


async def test_a_malformed_message_in_a_request_stream_is_invalid_argument(
    channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    identity: Callable[[bytes], bytes] = lambda data: data  # noqa: E731
    method = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
    call = channel.stream_stream(method, identity, identity)
    good = reflection_pb2.ServerReflectionRequest(list_services="").SerializeToString()
    # host (field 1, a string) that is not UTF-8, after a well-formed request.
    stream = call(iter([good, NOT_UTF8]))
    replies = []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for reply in stream:
            replies.append(reply)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason_of(info.value) == "VALIDATION_FAILED"
    assert len(replies) == 1
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []
