"""gRPC-Web through Envoy, framed by hand from Python: a call, a server stream, errors."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2

from cfd.v1 import common_pb2, engine_admin_pb2, trading_pb2
from envoy_support import QUOTES_PER_SYMBOL, EnvoyProcess, FakeMesh, running_front
from grpcweb import (
    CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    FrameReader,
    FramingError,
    decode_body,
    decode_text,
    encode_message,
    encode_text_message,
)
from mesh.config import Settings

Front = tuple[Settings, FakeMesh, EnvoyProcess]
GRPC_WEB_HEADERS = {"content-type": CONTENT_TYPE, "x-grpc-web": "1", "accept": CONTENT_TYPE}


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    with running_front(tmp_path_factory.mktemp("envoy-grpcweb")) as running:
        yield running


@pytest.fixture(scope="module")
def client(front: Front) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=front[2].base_url, timeout=10) as http:
        yield http


@pytest.fixture(scope="module")
def headers(front: Front) -> dict[str, str]:
    token, _ = front[1].issuer.issue("user-web")
    return GRPC_WEB_HEADERS | {"authorization": f"Bearer {token}"}


def test_unary_call(client: httpx.Client, headers: dict[str, str]) -> None:
    request = encode_message(trading_pb2.GetAccountRequest().SerializeToString())
    reply = client.post("/cfd.v1.TradingService/GetAccount", content=request, headers=headers)

    assert reply.status_code == 200
    assert reply.headers["content-type"] == CONTENT_TYPE
    result = decode_body(reply.content, dict(reply.headers))
    assert result.status == 0
    (message,) = result.messages
    account = trading_pb2.GetAccountResponse.FromString(message)
    assert (account.balance, account.currency) == ("5000", "USD")


def test_stream_prices_frames_arrive_incrementally(
    client: httpx.Client, headers: dict[str, str]
) -> None:
    request = trading_pb2.StreamPricesRequest(symbols=["SOLUSD"])
    reader = FrameReader()
    quotes: list[trading_pb2.StreamPricesResponse] = []
    with client.stream(
        "POST",
        "/cfd.v1.TradingService/StreamPrices",
        content=encode_message(request.SerializeToString()),
        headers=headers,
    ) as reply:
        assert reply.status_code == 200
        for chunk in reply.iter_bytes():
            quotes += [trading_pb2.StreamPricesResponse.FromString(m) for m in reader.feed(chunk)]

    assert [q.symbol for q in quotes] == ["SOLUSD"] * QUOTES_PER_SYMBOL
    assert [q.sequence for q in quotes] == list(range(1, QUOTES_PER_SYMBOL + 1))
    assert [q.bid for q in quotes] == ["100.00", "101.00", "102.00"]
    assert reader.trailers["grpc-status"] == "0"


def test_stream_prices_in_text_mode(client: httpx.Client, headers: dict[str, str]) -> None:
    request = trading_pb2.StreamPricesRequest(symbols=["BTCUSD", "ETHUSD"])
    text_headers = headers | {"content-type": TEXT_CONTENT_TYPE, "accept": TEXT_CONTENT_TYPE}
    reply = client.post(
        "/cfd.v1.TradingService/StreamPrices",
        content=encode_text_message(request.SerializeToString()),
        headers=text_headers,
    )

    assert reply.status_code == 200
    assert reply.headers["content-type"] == TEXT_CONTENT_TYPE
    result = decode_body(decode_text(reply.content))
    quotes = [trading_pb2.StreamPricesResponse.FromString(m) for m in result.messages]
    assert [q.symbol for q in quotes] == ["BTCUSD", "ETHUSD"] * QUOTES_PER_SYMBOL
    assert result.status == 0


def test_error_carries_the_rich_status(client: httpx.Client, headers: dict[str, str]) -> None:
    request = trading_pb2.OpenPositionRequest(
        symbol="DOGEUSD", side=common_pb2.SIDE_BUY, leverage=5, quantity="1"
    )
    reply = client.post(
        "/cfd.v1.TradingService/OpenPosition",
        content=encode_message(request.SerializeToString()),
        headers=headers,
    )
    result = decode_body(reply.content, dict(reply.headers))

    assert result.status == 3
    raw = reply.headers.get("grpc-status-details-bin") or result.trailers["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(base64.b64decode(raw + "=" * (-len(raw) % 4)))
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert (info.reason, info.domain) == ("UNKNOWN_SYMBOL", "cfd.v1")


def test_missing_token_is_unauthenticated(client: httpx.Client) -> None:
    request = encode_message(trading_pb2.GetAccountRequest().SerializeToString())
    reply = client.post(
        "/cfd.v1.TradingService/GetAccount", content=request, headers=GRPC_WEB_HEADERS
    )

    result = decode_body(reply.content, dict(reply.headers))
    assert result.status == 16
    assert result.trailers["grpc-message"] == "Jwt is missing"


def test_internal_service_is_unreachable(front: Front, client: httpx.Client) -> None:
    request = encode_message(engine_admin_pb2.GetStatsRequest().SerializeToString())
    reply = client.post(
        "/cfd.v1.EngineAdminService/GetStats",
        content=request,
        headers=GRPC_WEB_HEADERS | {"x-cfd-internal-token": front[0].internal_token},
    )

    # No route: HTTP 404, which gRPC-Web clients read as UNIMPLEMENTED (gRPC's HTTP mapping).
    assert reply.status_code == 404
    assert decode_body(reply.content, dict(reply.headers)).messages == []


def test_browser_preflight_allows_the_grpc_web_headers(front: Front, client: httpx.Client) -> None:
    reply = client.options(
        "/cfd.v1.TradingService/StreamPrices",
        headers={
            "origin": f"http://127.0.0.1:{front[0].edge_port}",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type,x-grpc-web,x-user-agent",
        },
    )

    assert reply.status_code == 200
    allowed = reply.headers["access-control-allow-headers"]
    assert all(h in allowed for h in ("x-grpc-web", "x-user-agent", "authorization"))


def test_framing_rejects_truncated_and_unknown_frames() -> None:
    frame = encode_message(b"abc")

    assert decode_body(frame).messages == [b"abc"]
    with pytest.raises(FramingError, match="needs 3 bytes"):
        decode_body(frame[:-1])
    with pytest.raises(FramingError, match="truncated frame header"):
        decode_body(frame + b"\x00\x00")
    with pytest.raises(FramingError, match="unknown frame flag"):
        decode_body(b"\x01" + frame[1:])
    reader = FrameReader()
    assert reader.feed(frame[:4]) == []
    assert reader.feed(frame[4:] + frame) == [b"abc", b"abc"]
    # Two separately padded base64 runs, as a server sends chunk by chunk.
    two_runs = encode_text_message(b"a") + encode_text_message(b"bc")
    assert decode_body(decode_text(two_runs)).messages == [b"a", b"bc"]
    with pytest.raises(FramingError, match="truncated"):
        decode_text(two_runs[:-1])
    with pytest.raises(FramingError, match="not base64"):
        decode_text(b"AA!A")
