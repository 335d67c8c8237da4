"""One worker process of `cfd edge`, started by `edge.main.supervise` on an inherited socket.

Usage (internal): ``python -m edge.worker <listening socket fd> <parent-alive pipe fd> <number>``.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable

from edge.main import serve_socket
from mesh.config import ConfigError, Settings
from mesh.logs import setup_logging
from mesh.server import ServeError


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """Return uvloop's event loop factory when it is installed, else None (asyncio's own)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(fd: int, alive_fd: int, number: int) -> int:
    """Serve on the listening socket `fd` until SIGTERM/SIGINT; return the exit code."""
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"cfd edge: configuration error: {exc}", file=sys.stderr)
        return 1
    setup_logging("edge", settings.log_level)
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            runner.run(serve_socket(sock, settings, alive_fd, number))
    except ServeError as exc:
        print(f"cfd edge: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run(*(int(arg) for arg in sys.argv[1:4])))
