"""`cfd edge`: worker processes serving the Starlette app on one shared listening socket.

The parent binds the socket (so a taken port is one clear error), starts CFD_EDGE_WORKERS
worker processes that inherit it, and on SIGTERM/SIGINT tells them to drain and stop. Each
worker runs uvicorn on uvloop with httptools when they are installed; a worker that dies on
its own stops the edge, so `cfd up` sees it exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator

import uvicorn

from edge.app import create_app
from edge.coalesce import CoalescingHttpToolsProtocol
from edge.config import EdgeConfig
from mesh.config import ConfigError, Settings
from mesh.server import ServeError
from mesh.tokens import TokenConfig, TokenKeyError

log = logging.getLogger("edge")

GRACE_S = 5.0
# A worker gets the grace period to drain, plus time to close its upstream connections.
STOP_WAIT_S = GRACE_S + 5.0


class _Server(uvicorn.Server):
    """A uvicorn server whose signals are handled by `serve_socket`, so it exits normally."""

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


def read_config() -> tuple[EdgeConfig, TokenConfig]:
    """Return the edge's settings from the environment; raise ServeError when one is bad."""
    try:
        return EdgeConfig.from_env(), TokenConfig.from_env()
    except (ConfigError, TokenKeyError) as exc:
        raise ServeError(f"edge: configuration error: {exc}") from exc


async def main(settings: Settings) -> None:
    """Run the edge's workers on `settings.bind_host:settings.edge_port` until told to stop.

    The workers read the same environment: a bad setting stops the start here, once.
    """
    config = read_config()[0]
    sock = bind(settings.bind_host, settings.edge_port)
    log.info(
        "edge starting %d workers on %s:%d",
        config.workers,
        settings.bind_host,
        settings.edge_port,
        extra={"fields": {"workers": config.workers}},
    )
    try:
        await supervise(sock, config.workers)
    finally:
        sock.close()


async def supervise(sock: socket.socket, count: int) -> None:
    """Run `count` workers on `sock`; stop them all on SIGTERM/SIGINT or when one exits."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Workers hold the read end: it reaches end of file when this process is gone, however.
    alive_read, alive_write = os.pipe()
    workers: list[asyncio.subprocess.Process] = []
    try:
        for number in range(count):
            workers.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "edge.worker",
                    str(sock.fileno()),
                    str(alive_read),
                    str(number),
                    pass_fds=(sock.fileno(), alive_read),
                )
            )
        exited = [asyncio.ensure_future(w.wait()) for w in workers]
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait([stopping, *exited], return_when=asyncio.FIRST_COMPLETED)
        # A worker that ends before the edge was told to stop is a failure of the whole edge.
        failed = [] if stop.is_set() else [w for w in workers if w.returncode is not None]
        stopping.cancel()
    finally:
        os.close(alive_read)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        signalled = [w for w in workers if w.returncode is None]
        for worker in signalled:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            await _reap(worker)
        os.close(alive_write)
    if failed:
        raise ServeError(f"edge: worker {failed[0].pid} exited with code {failed[0].returncode}")
    # A worker told to stop while it was still starting has no handler yet and dies of the
    # signal itself: that is a clean stop too.
    codes = {
        0 if w in signalled and w.returncode == -signal.SIGTERM else w.returncode for w in workers
    }
    if codes != {0}:
        raise ServeError(f"edge: workers stopped with exit codes {sorted(map(str, codes))}")
    log.info("edge stopped")


async def _reap(worker: asyncio.subprocess.Process) -> None:
    try:
        await asyncio.wait_for(worker.wait(), STOP_WAIT_S)
    except TimeoutError:
        log.error("edge worker %d did not stop in time; killing it", worker.pid)
        worker.kill()
        await worker.wait()


async def serve_socket(
    sock: socket.socket, settings: Settings, alive_fd: int | None = None, number: int = 0
) -> None:
    """Serve the app on an already listening socket until SIGTERM/SIGINT, then drain.

    `alive_fd` is a pipe's read end that reaches end of file when the parent is gone: the
    worker then stops as if told to.
    """
    config, tokens = read_config()
    app = create_app(settings, config, tokens=tokens)
    server = _Server(
        uvicorn.Config(
            app,
            lifespan="on",
            http=CoalescingHttpToolsProtocol,
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
    if alive_fd is not None:
        loop.add_reader(alive_fd, _on_parent_gone, loop, alive_fd, request_stop)
    try:
        log.info(
            "edge listening on %s:%d",
            settings.bind_host,
            settings.edge_port,
            extra={"fields": {"port": settings.edge_port, "worker": number}},
        )
        await server.serve(sockets=[sock])
    finally:
        if alive_fd is not None:
            loop.remove_reader(alive_fd)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        sock.close()
    if not server.started:
        raise ServeError("edge: the server failed to start; see the log")


def _on_parent_gone(
    loop: asyncio.AbstractEventLoop, alive_fd: int, request_stop: Callable[[], None]
) -> None:
    """Stop this worker: its parent is gone (killed without passing a signal on)."""
    loop.remove_reader(alive_fd)
    log.warning("the edge's parent process is gone; this worker stops")
    request_stop()
