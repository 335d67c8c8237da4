"""`cfd edge`: serve the Starlette app with uvicorn until SIGTERM/SIGINT, then drain and stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Iterator

import uvicorn

from edge.app import create_app
from edge.config import EdgeConfig
from mesh.config import ConfigError, Settings
from mesh.server import ServeError
from mesh.tokens import TokenConfig, TokenKeyError

log = logging.getLogger("edge")

GRACE_S = 5.0


class _Server(uvicorn.Server):
    """A uvicorn server whose signals are handled by `main`, so the process exits normally."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    """Return a listening socket on host:port; raise ServeError when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # With the protocol named, asyncio sets TCP_NODELAY on accepted connections; without it,
    # Nagle's algorithm delays every keep-alive response by the peer's delayed ACK (~40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise ServeError(
            f"edge: cannot listen on {host}:{port}: is the port already in use? ({exc.strerror})"
        ) from exc
    sock.setblocking(False)
    return sock


async def main(settings: Settings, config: EdgeConfig | None = None) -> None:
    """Run the edge on `settings.bind_host:settings.edge_port`."""
    try:
        config = EdgeConfig.from_env() if config is None else config
        tokens = TokenConfig.from_env()
    except (ConfigError, TokenKeyError) as exc:
        raise ServeError(f"edge: configuration error: {exc}") from exc
    sock = bind(settings.bind_host, settings.edge_port)
    app = create_app(settings, config, tokens=tokens)
    server = _Server(
        uvicorn.Config(
            app,
            lifespan="on",
            ws="websockets-sansio",
            ws_max_size=config.ws_max_frame_bytes,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=int(GRACE_S),
            server_header=False,
        )
    )
    loop = asyncio.get_running_loop()

    def request_stop() -> None:
        server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, request_stop)
    try:
        log.info(
            "edge listening on %s:%d",
            settings.bind_host,
            settings.edge_port,
            extra={"fields": {"port": settings.edge_port}},
        )
        await server.serve(sockets=[sock])
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        sock.close()
    if not server.started:
        raise ServeError("edge: the server failed to start; see the log")
    log.info("edge stopped")
