"""WebSocket fan-out of `cfd edge` with the real mesh: a client that stops reading does not
hold back the others. (Dropping a client stuck past the send timeout is tested in
tests/unit/edge, where frames are large enough to fill the socket buffers quickly.)"""

from __future__ import annotations

import base64
import json
import os
import socket
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from websockets.sync.client import connect

from integration.test_edge_support import LiveMesh, live_mesh

SUBSCRIBE = {"op": "subscribe", "channel": "prices", "symbols": ["BTCUSD"]}


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveMesh]:
    with live_mesh(tmp_path_factory.mktemp("edge-ws"), CFD_WS_SEND_TIMEOUT="1") as running:
        yield running


def _stalled_client(url: str) -> socket.socket:
    """Connect and subscribe at the TCP level, then never read again."""
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /v1/ws HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(1)
    assert answer.startswith(b"HTTP/1.1 101"), answer
    payload = json.dumps(SUBSCRIBE).encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    return sock


def test_a_stalled_client_does_not_hold_back_the_others(mesh: LiveMesh) -> None:
    stalled = _stalled_client(mesh.ws_url)
    try:
        with connect(mesh.ws_url, compression=None, proxy=None, max_queue=None) as fast:
            fast.send(json.dumps(SUBSCRIBE))
            assert json.loads(fast.recv(timeout=10))["type"] == "ack"
            base = Decimal("60000.00")
            batch, batches = 1000, 40
            delays: list[float] = []
            for round_ in range(batches):
                ticks = []
                for n in range(batch):
                    bid = base + Decimal(round_ * batch + n) / 100
                    ticks.append(("BTCUSD", str(bid), str(bid + Decimal("10.00"))))
                published = time.monotonic()
                mesh.publish(*ticks)
                # Quotes may be conflated on the way, but the latest always arrives, in order.
                last = Decimal("0")
                while last != Decimal(ticks[-1][1]):
                    frame = json.loads(fast.recv(timeout=10))
                    if frame.get("channel") == "prices":
                        bid = Decimal(frame["data"]["bid"])
                        assert bid > last
                        last = bid
                delays.append(time.monotonic() - published)
            assert max(delays) < 3.0, delays
            fast.send(json.dumps({"op": "ping"}))
            while json.loads(fast.recv(timeout=10)).get("type") != "pong":
                pass
        # The edge stays healthy with the stalled connection still open.
        assert mesh.processes["edge"].process.poll() is None
    finally:
        stalled.close()
