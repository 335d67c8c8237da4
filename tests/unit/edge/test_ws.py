"""The WebSocket endpoint through the real edge against fake services on loopback."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from account_svc.issuer import TokenIssuer
from cfd.v1 import trading_pb2
from edge.app import state_of
from edge.hub import Hub
from mesh.revocation import REVOKED_FILE_NAME, FileRevocationStore, RevokedTokens, issued_token
from support import until
from unit.edge.edge_fakes import FakeMesh, RunningEdge, quote

Frame = dict[str, Any]


@contextlib.asynccontextmanager
async def client(edge: RunningEdge) -> AsyncIterator[ClientConnection]:
    async with connect(edge.ws_url, compression=None, proxy=None, max_size=None) as ws:
        yield ws


async def send(ws: ClientConnection, frame: Frame) -> None:
    await ws.send(json.dumps(frame))


async def next_frame(
    ws: ClientConnection, match: Callable[[Frame], bool] = lambda f: True, within: float = 10
) -> Frame:
    """Return the first frame that matches, skipping others, failing after `within` s."""
    deadline = time.monotonic() + within
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("no matching frame in time")
        frame: Frame = json.loads(await asyncio.wait_for(ws.recv(), remaining))
        if match(frame):
            return frame


def is_type(kind: str) -> Callable[[Frame], bool]:
    return lambda f: f.get("type") == kind


def on_channel(channel: str) -> Callable[[Frame], bool]:
    return lambda f: f.get("channel") == channel and "data" in f


async def test_ping_and_bad_frames_keep_the_connection_usable(edge: RunningEdge) -> None:
    async with client(edge) as ws:
        await send(ws, {"op": "ping", "id": 7})
        assert await next_frame(ws) == {"type": "pong", "id": 7}
        await ws.send("{not json")
        error = await next_frame(ws)
        assert error["type"] == "error"
        assert (error["error"]["code"], error["error"]["reason"]) == (3, "VALIDATION_FAILED")
        await send(ws, {"op": "dance"})
        assert (await next_frame(ws))["op"] == "dance"
        await ws.send(b"\x00\x01")
        assert (await next_frame(ws))["error"]["reason"] == "VALIDATION_FAILED"
        await send(ws, {"op": "subscribe", "channel": "weather"})
        assert (await next_frame(ws))["error"]["reason"] == "VALIDATION_FAILED"
        await send(ws, {"op": "subscribe", "channel": "prices", "symbols": ["btc usd"]})
        assert (await next_frame(ws))["error"]["reason"] == "VALIDATION_FAILED"
        await send(ws, {"op": "subscribe", "channel": "candles", "symbol": "BTCUSD"})
        assert (await next_frame(ws))["error"]["reason"] == "VALIDATION_FAILED"
        await send(ws, {"op": "ping"})
        assert await next_frame(ws) == {"type": "pong"}


async def test_a_frame_with_a_key_given_twice_is_refused_and_does_nothing(
    edge: RunningEdge, mesh: FakeMesh
) -> None:
    async with client(edge) as ws:
        await ws.send(
            '{"op":"subscribe","channel":"prices","symbols":["BTCUSD"],"symbols":["ETHUSD"]}'
        )
        error = await next_frame(ws)
        assert error["type"] == "error"
        assert (error["error"]["code"], error["error"]["reason"]) == (3, "VALIDATION_FAILED")
        assert "symbols" in error["error"]["message"]
        await ws.send(json.dumps({"op": "auth", "token": mesh.token()})[:-1] + ',"op":"ping"}')
        assert (await next_frame(ws))["error"]["reason"] == "VALIDATION_FAILED"
        # Still unauthenticated and subscribed to nothing: the refused frames did nothing.
        await send(ws, {"op": "subscribe", "channel": "positions"})
        assert (await next_frame(ws))["error"]["reason"] == "TOKEN_INVALID"
        await send(ws, {"op": "ping"})
        assert await next_frame(ws) == {"type": "pong"}
    assert mesh.recorder.ticks.opened == 0


async def test_prices_are_shared_by_all_subscribers(edge: RunningEdge, mesh: FakeMesh) -> None:
    ticks = mesh.recorder.ticks
    async with client(edge) as first, client(edge) as second:
        for ws in (first, second):
            await send(ws, {"op": "subscribe", "channel": "prices", "symbols": ["BTCUSD"]})
            ack = await next_frame(ws)
            assert ack == {
                "type": "ack",
                "op": "subscribe",
                "channel": "prices",
                "symbols": ["BTCUSD"],
            }
        await until(lambda: ticks.open_streams == 1)
        ticks.publish(quote("ETHUSD", "1.00", "1.01"))
        ticks.publish(quote("BTCUSD", "64250.15", "64260.00", sequence=9))
        for ws in (first, second):
            frame = await next_frame(ws, on_channel("prices"))
            assert frame == {
                "channel": "prices",
                "data": {"symbol": "BTCUSD", "bid": "64250.15", "ask": "64260.00", "sequence": "9"},
            }
        assert ticks.opened == 1
        await send(first, {"op": "unsubscribe", "channel": "prices", "symbols": ["BTCUSD"]})
        await next_frame(first, is_type("ack"))
        assert ticks.open_streams == 1
    await until(lambda: ticks.open_streams == 0)


async def test_an_upstream_error_is_reported_on_the_channel(edge: RunningEdge) -> None:
    async with client(edge) as ws:
        await send(ws, {"op": "subscribe", "channel": "prices", "symbols": ["NOPE"]})
        await next_frame(ws, is_type("ack"))
        error = await next_frame(ws, is_type("error"))
        assert error["channel"] == "prices"
        assert error["symbols"] == ["NOPE"]
        assert error["error"]["reason"] == "UNKNOWN_SYMBOL"
        await send(ws, {"op": "ping"})
        assert await next_frame(ws) == {"type": "pong"}


async def test_candles_carry_the_stream_message(edge: RunningEdge, mesh: FakeMesh) -> None:
    async with client(edge) as ws:
        await send(
            ws,
            {
                "op": "subscribe",
                "channel": "candles",
                "symbol": "BTCUSD",
                "interval": "CANDLE_INTERVAL_1M",
            },
        )
        await next_frame(ws, is_type("ack"))
        await until(lambda: mesh.recorder.candles.open_streams == 1)
        mesh.recorder.candles.publish("64000.5")
        frame = await next_frame(ws, on_channel("candles"))
        assert frame["data"] == {
            "symbol": "BTCUSD",
            "interval": "CANDLE_INTERVAL_1M",
            "candle": {"close": "64000.5"},
        }


async def test_private_channels_need_a_valid_token(edge: RunningEdge, mesh: FakeMesh) -> None:
    async with client(edge) as ws:
        await send(ws, {"op": "subscribe", "channel": "positions"})
        error = await next_frame(ws)
        assert (error["error"]["code"], error["error"]["reason"]) == (16, "TOKEN_INVALID")
        await send(ws, {"op": "auth", "token": "not-a-jwt"})
        assert (await next_frame(ws))["error"]["reason"] == "TOKEN_INVALID"
        expired = TokenIssuer(_key_of(mesh), ttl_s=1, clock=lambda: time.time() - 100)
        await send(ws, {"op": "auth", "token": expired.issue("alice")[0]})
        assert (await next_frame(ws))["error"]["reason"] == "TOKEN_EXPIRED"
        await send(ws, {"op": "auth", "token": mesh.token("alice")})
        assert await next_frame(ws) == {"type": "ack", "op": "auth", "userId": "alice"}
        await send(ws, {"op": "subscribe", "channel": "positions"})
        await next_frame(ws, is_type("ack"))
        await until(lambda: mesh.recorder.positions.open_streams == 1)
        mesh.recorder.positions.publish(5)
        frame = await next_frame(ws, on_channel("positions"))
        assert frame["data"] == {"account": {"currency": "alice"}, "sequence": "5"}


def _key_of(mesh: FakeMesh) -> Any:
    return mesh.issuer._key


async def test_an_expiring_token_drops_private_channels(edge: RunningEdge, mesh: FakeMesh) -> None:
    short = TokenIssuer(_key_of(mesh), ttl_s=1)
    async with client(edge) as ws:
        await send(ws, {"op": "auth", "token": short.issue("dave")[0]})
        await next_frame(ws, is_type("ack"))
        await send(ws, {"op": "subscribe", "channel": "positions"})
        await next_frame(ws, is_type("ack"))
        error = await next_frame(ws, is_type("error"), within=5)
        assert error["error"]["reason"] == "TOKEN_EXPIRED"
        assert error["channels"] == ["positions"]
        await until(lambda: mesh.recorder.positions.open_streams == 0)
        await send(ws, {"op": "subscribe", "channel": "positions"})
        assert (await next_frame(ws))["error"]["reason"] == "TOKEN_INVALID"


async def test_a_private_feed_reopens_with_the_newest_token_of_its_user(
    edge: RunningEdge, mesh: FakeMesh
) -> None:
    first, second = mesh.issuer.issue("fay")[0], mesh.issuer.issue("fay")[0]
    assert first != second
    async with client(edge) as ws:
        await send(ws, {"op": "auth", "token": first})
        await next_frame(ws, is_type("ack"))
        await send(ws, {"op": "subscribe", "channel": "positions"})
        await next_frame(ws, is_type("ack"))
        await until(lambda: mesh.recorder.positions.open_streams == 1)
        assert mesh.recorder.metadata["StreamPositions"]["authorization"] == f"Bearer {first}"
        # The page swaps its token before expiry; later the stream breaks and is reopened.
        await send(ws, {"op": "auth", "token": second})
        await next_frame(ws, is_type("ack"))
        opened = mesh.recorder.positions.opened
        mesh.recorder.positions.end()
        await until(lambda: mesh.recorder.positions.opened > opened, within=10)
        assert mesh.recorder.metadata["StreamPositions"]["authorization"] == f"Bearer {second}"
        mesh.recorder.positions.publish(7)
        frame = await next_frame(ws, on_channel("positions"), within=10)
        assert frame["data"] == {"account": {"currency": "fay"}, "sequence": "7"}


async def test_signing_out_drops_private_channels_and_refuses_the_token(
    edge: RunningEdge, mesh: FakeMesh
) -> None:
    token = mesh.issuer.issue("erin")[0]
    issued = issued_token(token)
    assert issued is not None
    async with client(edge) as ws:
        await send(ws, {"op": "auth", "token": token})
        await next_frame(ws, is_type("ack"))
        await send(ws, {"op": "subscribe", "channel": "positions"})
        await next_frame(ws, is_type("ack"))
        # The accounts service's sign-out writes the list every process on the machine reads.
        accounts = RevokedTokens(FileRevocationStore(mesh.settings.data_dir / REVOKED_FILE_NAME))
        await accounts.revoke([issued])
        error = await next_frame(ws, is_type("error"), within=5)
        assert error["error"]["reason"] == "TOKEN_INVALID"
        assert error["channels"] == ["positions"]
        await until(lambda: mesh.recorder.positions.open_streams == 0)
        await send(ws, {"op": "auth", "token": token})
        assert (await next_frame(ws))["error"]["reason"] == "TOKEN_INVALID"


def event(sequence: int, index: int = 0) -> trading_pb2.StreamEventsResponse:
    return trading_pb2.StreamEventsResponse(
        sequence=sequence, index=index, type=trading_pb2.EVENT_TYPE_BALANCE_CHANGED
    )


async def test_events_resume_from_a_sequence_without_gaps(
    edge: RunningEdge, mesh: FakeMesh
) -> None:
    mesh.recorder.events.extend(event(s) for s in range(1, 6))
    token = mesh.token("erin")
    async with client(edge) as ws:
        await send(ws, {"op": "auth", "token": token})
        await send(ws, {"op": "subscribe", "channel": "events", "fromSequence": "2"})
        got = [
            int((await next_frame(ws, on_channel("events")))["data"]["sequence"]) for _ in range(3)
        ]
        assert got == [3, 4, 5]
        await until(lambda: mesh.recorder.live_events.open_streams == 1)
        mesh.recorder.events.append(event(6))
        mesh.recorder.live_events.publish(event(6))
        frame = await next_frame(ws, on_channel("events"))
        assert frame["data"] == {"sequence": "6", "type": "EVENT_TYPE_BALANCE_CHANGED"}
    async with client(edge) as ws:
        await send(ws, {"op": "auth", "token": token})
        await send(ws, {"op": "subscribe", "channel": "events", "fromSequence": 4})
        got = [
            int((await next_frame(ws, on_channel("events")))["data"]["sequence"]) for _ in range(2)
        ]
        assert got == [5, 6]


async def test_a_sequence_number_is_a_whole_number_or_its_digits(
    edge: RunningEdge, mesh: FakeMesh
) -> None:
    async with client(edge) as ws:
        await send(ws, {"op": "auth", "token": mesh.token("fay")})
        await next_frame(ws, is_type("ack"))
        for bad in ("1.5", "1e3", "-1", "9223372036854775808"):
            await ws.send('{"op":"subscribe","channel":"events","fromSequence":' + bad + "}")
            error = await next_frame(ws)
            assert error["error"]["reason"] == "VALIDATION_FAILED", bad
        for bad_text in ("1.5", "1e3", "true", "-1", " 1"):
            await send(ws, {"op": "subscribe", "channel": "events", "fromSequence": bad_text})
            assert (await next_frame(ws))["error"]["reason"] == "VALIDATION_FAILED", bad_text
        await ws.send('{"op":"subscribe","channel":"events","fromSequence":true}')
        assert (await next_frame(ws))["error"]["reason"] == "VALIDATION_FAILED"
    assert mesh.recorder.event_requests == []


async def test_a_second_subscriber_is_served_from_the_shared_feed(
    edge: RunningEdge, mesh: FakeMesh
) -> None:
    mesh.recorder.events.extend(event(s) for s in range(1, 4))
    token = mesh.token("fay")
    async with client(edge) as first, client(edge) as second:
        await send(first, {"op": "auth", "token": token})
        await send(first, {"op": "subscribe", "channel": "events", "fromSequence": "0"})
        for expected in (1, 2, 3):
            frame = await next_frame(first, on_channel("events"))
            assert frame["data"]["sequence"] == str(expected)
        await send(second, {"op": "auth", "token": token})
        await send(second, {"op": "subscribe", "channel": "events", "fromSequence": "1"})
        got = [
            (await next_frame(second, on_channel("events")))["data"]["sequence"] for _ in range(2)
        ]
        assert got == ["2", "3"]
        assert mesh.recorder.event_requests == [0]


async def test_ws_messages_are_rate_limited(mesh: FakeMesh) -> None:
    from edge.config import EdgeConfig
    from unit.edge.edge_fakes import addresses_of, running_edge

    config = EdgeConfig(ws_rate_limit=3)
    async with (
        running_edge(mesh.settings, config, addresses_of(mesh.address)) as edge,
        client(edge) as ws,
    ):
        for _ in range(3):
            await send(ws, {"op": "ping"})
            assert await next_frame(ws) == {"type": "pong"}
        await send(ws, {"op": "ping"})
        error = await next_frame(ws)
        assert error["error"]["reason"] == "RATE_LIMITED"
        assert error["error"]["retryAfter"] >= 1
        # Opening connections is limited per address as well: the handshake is refused.
        async with client(edge), client(edge):
            pass
        with pytest.raises(InvalidStatus) as refused:
            async with client(edge):
                pass
        assert refused.value.response.status_code == 403


async def test_an_oversized_frame_closes_with_1009(edge: RunningEdge) -> None:
    async with client(edge) as ws:
        await ws.send("x" * 20_000)
        with pytest.raises(Exception) as info:
            await asyncio.wait_for(ws.recv(), 5)
        assert "1009" in str(info.value)


async def _raw_ws(url: str, receive_buffer: int) -> asyncio.StreamWriter:
    """Open a WebSocket at the TCP level whose reader stops reading after the handshake."""
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    reader, writer = await asyncio.open_connection(sock=sock, limit=receive_buffer)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /v1/ws HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    answer = await reader.readuntil(b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return writer


def _masked_text(payload: bytes) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + body


async def test_a_slow_client_does_not_slow_the_others(edge: RunningEdge, mesh: FakeMesh) -> None:
    ticks = mesh.recorder.ticks
    hub = _hub(edge)
    subscribe = {"op": "subscribe", "channel": "prices", "symbols": ["BTCUSD"]}
    slow = await _raw_ws(edge.ws_url, 4096)
    try:
        slow.write(_masked_text(json.dumps(subscribe).encode()))
        async with client(edge) as fast:
            await send(fast, subscribe)
            await next_frame(fast, is_type("ack"))

            def subscribers() -> int:
                feed = hub.feed(("prices", "BTCUSD"))
                return 0 if feed is None else len(feed.subscribers)

            await until(lambda: subscribers() == 2 and ticks.open_streams == 1)
            published: dict[int, float] = {}
            stop = asyncio.Event()

            async def publish() -> None:
                n = 0
                while not stop.is_set() and n < 20_000:
                    # Large, incompressible frames fill the slow client's buffers quickly.
                    published[n] = time.monotonic()
                    ticks.publish(quote("BTCUSD", str(n), os.urandom(16_000).hex(), sequence=n + 1))
                    n += 1
                    await asyncio.sleep(0.002)

            publisher = asyncio.create_task(publish())
            seen: list[int] = []
            worst = 0.0
            deadline = time.monotonic() + 20
            try:
                # Until the slow one is dropped (stuck past the 2 s send timeout), the fast one
                # keeps receiving fresh quotes in order.
                while subscribers() == 2:
                    assert time.monotonic() < deadline, "the slow client was never dropped"
                    frame = await next_frame(fast, on_channel("prices"))
                    n = int(frame["data"]["bid"])
                    worst = max(worst, time.monotonic() - published[n])
                    seen.append(n)
            finally:
                stop.set()
                await publisher
            last = max(published)
            while seen[-1] != last:
                seen.append(int((await next_frame(fast, on_channel("prices")))["data"]["bid"]))
            assert seen == sorted(seen)
            assert len(seen) > 100
            assert worst < 1.0, worst
            await send(fast, {"op": "ping"})
            assert await next_frame(fast, is_type("pong")) == {"type": "pong"}
    finally:
        slow.transport.abort()


def _hub(edge: RunningEdge) -> Hub:
    return state_of(edge.app).hub


async def test_a_second_positions_subscriber_gets_the_current_snapshot_at_once(
    edge: RunningEdge, mesh: FakeMesh
) -> None:
    positions = mesh.recorder.positions
    token = mesh.token("gus")
    async with client(edge) as first, client(edge) as second:
        await send(first, {"op": "auth", "token": token})
        await send(first, {"op": "subscribe", "channel": "positions"})
        await next_frame(first, is_type("ack"))
        await until(lambda: positions.open_streams == 1)
        positions.publish(4)
        positions.publish(5)
        await next_frame(
            first, lambda f: on_channel("positions")(f) and f["data"]["sequence"] == "5"
        )
        await send(second, {"op": "auth", "token": token})
        await send(second, {"op": "subscribe", "channel": "positions"})
        await next_frame(second, lambda f: f.get("type") == "ack" and f["op"] == "subscribe")
        # No further change upstream: the snapshot comes from the running shared stream.
        frame = await next_frame(second, on_channel("positions"), within=5)
        assert frame["data"] == {"account": {"currency": "gus"}, "sequence": "5"}
        assert positions.opened == 1


async def test_a_second_prices_subscriber_gets_the_latest_quote_of_each_symbol_at_once(
    edge: RunningEdge, mesh: FakeMesh
) -> None:
    ticks = mesh.recorder.ticks
    hub = _hub(edge)
    async with client(edge) as first, client(edge) as second:
        await send(first, {"op": "subscribe", "channel": "prices", "symbols": ["BTCUSD", "ETHUSD"]})
        await next_frame(first, is_type("ack"))
        await until(lambda: ticks.open_streams == 2)
        ticks.publish(quote("BTCUSD", "64000.00", "64001.00", sequence=1))
        ticks.publish(quote("ETHUSD", "3000.00", "3000.50", sequence=2))
        ticks.publish(quote("BTCUSD", "64100.00", "64101.00", sequence=3))
        latest: dict[str, str] = {}
        while latest != {"BTCUSD": "3", "ETHUSD": "2"}:
            data = (await next_frame(first, on_channel("prices")))["data"]
            latest[data["symbol"]] = data["sequence"]
        await send(
            second, {"op": "subscribe", "channel": "prices", "symbols": ["ETHUSD", "BTCUSD"]}
        )
        await next_frame(second, is_type("ack"))
        got = {}
        for _ in range(2):
            data = (await next_frame(second, on_channel("prices"), within=5))["data"]
            got[data["symbol"]] = (data["bid"], data["sequence"])
        assert got == {"BTCUSD": ("64100.00", "3"), "ETHUSD": ("3000.00", "2")}
        assert ticks.opened == 2
        feed = hub.feed(("prices", "BTCUSD"))
        assert feed is not None and len(feed.subscribers) == 2


async def test_a_second_candles_subscriber_gets_the_latest_candle_at_once(
    edge: RunningEdge, mesh: FakeMesh
) -> None:
    candles = mesh.recorder.candles
    subscribe = {
        "op": "subscribe",
        "channel": "candles",
        "symbol": "BTCUSD",
        "interval": "CANDLE_INTERVAL_1M",
    }
    async with client(edge) as first, client(edge) as second:
        await send(first, subscribe)
        await next_frame(first, is_type("ack"))
        await until(lambda: candles.open_streams == 1)
        candles.publish("64000.5")
        candles.publish("64010.5")
        await next_frame(
            first, lambda f: on_channel("candles")(f) and f["data"]["candle"]["close"] == "64010.5"
        )
        await send(second, subscribe)
        await next_frame(second, is_type("ack"))
        frame = await next_frame(second, on_channel("candles"), within=5)
        assert frame["data"] == {
            "symbol": "BTCUSD",
            "interval": "CANDLE_INTERVAL_1M",
            "candle": {"close": "64010.5"},
        }
        assert candles.opened == 1


async def test_a_caught_up_events_subscriber_gets_no_state_replay(
    edge: RunningEdge, mesh: FakeMesh
) -> None:
    mesh.recorder.events.extend(event(s) for s in range(1, 3))
    token = mesh.token("hal")
    async with client(edge) as first, client(edge) as second:
        await send(first, {"op": "auth", "token": token})
        await send(first, {"op": "subscribe", "channel": "events", "fromSequence": "0"})
        for expected in ("1", "2"):
            frame = await next_frame(first, on_channel("events"))
            assert frame["data"]["sequence"] == expected
        await send(second, {"op": "auth", "token": token})
        await send(second, {"op": "subscribe", "channel": "events", "fromSequence": "2"})
        await next_frame(second, lambda f: f.get("type") == "ack" and f["op"] == "subscribe")
        await until(lambda: mesh.recorder.live_events.open_streams == 1)
        mesh.recorder.events.append(event(3))
        mesh.recorder.live_events.publish(event(3))
        # Nothing was delivered on joining: the first data frame is the new event.
        frame = await next_frame(second, lambda f: "data" in f)
        assert frame["channel"] == "events" and frame["data"]["sequence"] == "3"
        assert mesh.recorder.event_requests == [0]
