"""The frames between a service's fronts and the process that runs its calls."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfd.v1 import trading_pb2, trading_pb2_grpc
from mesh.auth import CallerPolicy
from mesh.local_calls import (
    MAX_FRAME_BYTES,
    Call,
    FrameError,
    FrameReader,
    LocalCallClient,
    LocalCallServer,
    Reply,
    decode_call,
    decode_reply,
    encode_call,
    encode_reply,
    unary_handlers,
)
from mesh.server import CallInterceptor
from unit.mesh.test_mesh_server import INTERNAL, FixedVerifier, Trading

keys = st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)
text_entries = st.tuples(keys.filter(lambda k: not k.endswith("-bin")), st.text(max_size=40))
binary_entries = st.tuples(keys.map(lambda k: f"{k}-bin"), st.binary(max_size=40))
metadata = st.lists(st.one_of(text_entries, binary_entries), max_size=6).map(tuple)


@given(
    call_id=st.integers(0, 2**32 - 1),
    method=st.text(min_size=1, max_size=80),
    entries=metadata,
    body=st.binary(max_size=300),
)
def test_a_call_survives_its_frame(call_id: int, method: str, entries: Any, body: bytes) -> None:
    call = Call(call_id, method, entries, body)
    frame = encode_call(call)
    assert decode_call(frame[4:]) == call


@given(
    call_id=st.integers(0, 2**32 - 1),
    code=st.sampled_from(list(grpc.StatusCode)),
    details=st.text(max_size=80),
    entries=metadata,
    body=st.binary(max_size=300),
)
def test_a_reply_survives_its_frame(
    call_id: int, code: grpc.StatusCode, details: str, entries: Any, body: bytes
) -> None:
    reply = Reply(call_id, code, details, entries, body)
    assert decode_reply(encode_reply(reply)[4:]) == reply


@given(cuts=st.lists(st.integers(0, 400), max_size=8))
def test_frames_split_anywhere_in_the_stream_come_out_whole(cuts: list[int]) -> None:
    calls = [
        Call(n, f"/svc/M{n}", (("authorization", "Bearer x"),), bytes([n]) * n) for n in range(5)
    ]
    stream = b"".join(encode_call(call) for call in calls)
    reader = FrameReader()
    frames: list[bytes] = []
    at = 0
    for cut in sorted({min(c, len(stream)) for c in cuts}):
        frames += reader.feed(stream[at:cut])
        at = cut
    frames += reader.feed(stream[at:])
    assert [decode_call(frame) for frame in frames] == calls


def test_a_frame_over_the_limit_is_refused() -> None:
    with pytest.raises(FrameError, match="over the limit"):
        FrameReader().feed((MAX_FRAME_BYTES + 1).to_bytes(4, "little"))


@pytest.mark.parametrize("cut", [3, 9, 20])
def test_a_truncated_call_is_a_frame_error(cut: int) -> None:
    frame = encode_call(Call(1, "/svc/Method", (("key", "value"),), b""))[4:]
    with pytest.raises(FrameError):
        decode_call(frame[:cut])


def test_an_unknown_status_code_is_a_frame_error() -> None:
    frame = bytearray(encode_reply(Reply(1, grpc.StatusCode.OK, "", (), b""))[4:])
    frame[4] = 99
    with pytest.raises(FrameError, match="unknown status code"):
        decode_reply(bytes(frame))


@pytest.fixture
async def client(tmp_path: Path) -> Any:
    handlers = unary_handlers(
        [(trading_pb2_grpc.add_TradingServiceServicer_to_server, Trading())]  # type: ignore[abstract]
    )
    assert "/cfd.v1.TradingService/StreamPrices" not in handlers
    interceptor = CallInterceptor(CallerPolicy(FixedVerifier(), INTERNAL))
    server = LocalCallServer(handlers, interceptor.intercept_service)
    path = str(tmp_path / "calls.sock")
    await server.start(path)
    calls = LocalCallClient()
    await calls.connect(path)
    yield calls
    calls.close()
    await server.stop()


GOOD = (("authorization", "Bearer good-token"),)


async def test_a_call_runs_through_the_interceptor_and_its_handler(client: Any) -> None:
    request = trading_pb2.GetAccountRequest().SerializeToString()
    replies = await asyncio.gather(
        *(client.call("/cfd.v1.TradingService/GetAccount", GOOD, request) for _ in range(20))
    )
    for reply in replies:
        assert reply.code is grpc.StatusCode.OK
        assert trading_pb2.GetAccountResponse.FromString(reply.response).balance == "alice"
    assert len({reply.call_id for reply in replies}) == 20


async def test_errors_come_back_as_rich_statuses(client: Any) -> None:
    empty = b""
    denied = await client.call("/cfd.v1.TradingService/GetAccount", (), empty)
    assert denied.code is grpc.StatusCode.UNAUTHENTICATED
    refused = await client.call("/cfd.v1.TradingService/ClosePosition", GOOD, empty)
    assert refused.code is grpc.StatusCode.INVALID_ARGUMENT
    assert refused.details == "quantity: not a number"
    assert any(key == "grpc-status-details-bin" for key, _ in refused.trailing)
    failed = await client.call("/cfd.v1.TradingService/ListOrders", GOOD, empty)
    assert failed.code is grpc.StatusCode.INTERNAL
    assert "boom" not in failed.details
    missing = await client.call("/cfd.v1.TradingService/Nope", GOOD, empty)
    assert missing.code is grpc.StatusCode.UNIMPLEMENTED
    malformed = await client.call("/cfd.v1.TradingService/GetAccount", GOOD, b"\xff\xff")
    assert malformed.code is grpc.StatusCode.INVALID_ARGUMENT


async def test_calls_under_way_fail_unavailable_when_the_connection_closes(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "silent.sock")
    accepted: list[asyncio.StreamWriter] = []

    async def keep(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    silent = await asyncio.start_unix_server(keep, path)
    calls = LocalCallClient()
    await calls.connect(path)
    pending = asyncio.create_task(calls.call("/svc/M", (), b""))
    await asyncio.sleep(0.05)
    accepted[0].close()
    reply = await asyncio.wait_for(pending, 5)
    assert reply.code is grpc.StatusCode.UNAVAILABLE
    after = await calls.call("/svc/M", (), b"")
    assert after.code is grpc.StatusCode.UNAVAILABLE
    silent.close()
