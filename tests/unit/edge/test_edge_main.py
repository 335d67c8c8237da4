"""The listening socket of `cfd edge`."""

from __future__ import annotations

import socket

import pytest

from edge.main import bind
from mesh.server import ServeError
from support import free_port


def test_the_socket_names_tcp_so_responses_are_not_delayed_by_nagle() -> None:
    sock = bind("127.0.0.1", free_port())
    try:
        # asyncio sets TCP_NODELAY on accepted connections only for IPPROTO_TCP sockets.
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


def test_a_taken_port_raises_serve_error() -> None:
    sock = bind("127.0.0.1", free_port())
    try:
        with pytest.raises(ServeError, match="already in use"):
            bind("127.0.0.1", sock.getsockname()[1])
    finally:
        sock.close()
