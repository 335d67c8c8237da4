"""Helpers the tests share: free ports, real service processes, polling with a deadline,
and a Redis server of a test's own (to stop it mid-test)."""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TypeVar, overload

import uvicorn
from starlette.applications import Starlette

from launcher.cli import grpc_serving

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent


def load_tool(name: str) -> ModuleType:
    """Import a script of tools/ (not a package) as a module, once."""
    qualified = f"tools.{name}"
    if qualified in sys.modules:
        return sys.modules[qualified]
    spec = importlib.util.spec_from_file_location(qualified, REPO / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs: dataclasses look their module up while it is executing.
    sys.modules[qualified] = module
    spec.loader.exec_module(module)
    return module


def _ephemeral_range() -> range:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


# Ports for servers the tests start come from below the kernel's ephemeral range. A port the
# kernel handed out with bind(0) is free only "right now": until the server binds it, any
# outgoing connection on the machine may take it as its local port (a mesh that starts in
# seconds loses that race now and then). Outgoing connections never take a port below the
# ephemeral range, and the counter never hands the same port out twice in one run.
_EPHEMERAL = _ephemeral_range()
_LOW = max(1024, _EPHEMERAL.start - 12000)
_SPAN = _EPHEMERAL.start - _LOW
# Two test runs side by side start at different places in the span.
_PORTS = itertools.count(os.getpid() * 7919)


def free_port() -> int:
    """Return a TCP port on the loopback interface that is free and no other test was given."""
    for _ in range(_SPAN):
        port = _LOW + next(_PORTS) % _SPAN
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise AssertionError("no free loopback port below the ephemeral range")


def wait_for(
    condition: Callable[[], T | bool | None], timeout: float = 15.0, interval: float = 0.05
) -> T:
    """Poll `condition` until it returns something truthy and return that; fail after `timeout`.

    For synchronous tests; `until` is the same wait for asyncio tests.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {condition}")
        time.sleep(interval)


@overload
async def until(
    condition: Callable[[], Awaitable[T | bool | None]], within: float = ..., interval: float = ...
) -> T: ...


@overload
async def until(
    condition: Callable[[], T | bool | None], within: float = ..., interval: float = ...
) -> T: ...


async def until(
    condition: Callable[[], object], within: float = 15.0, interval: float = 0.01
) -> object:
    """Poll `condition` (plain or async) until it returns something truthy and return that;
    fail after `within` seconds. The event loop runs between polls."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s: {condition}")
        await asyncio.sleep(interval)


def mesh_env(data_dir: Path, **overrides: str) -> dict[str, str]:
    """Return an environment for mesh processes on fresh free ports under `data_dir`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CFD_")}
    env.update(
        CFD_DATA_DIR=str(data_dir),
        CFD_ENGINE_PORT=str(free_port()),
        CFD_MARKET_PORT=str(free_port()),
        CFD_ACCOUNT_PORT=str(free_port()),
        CFD_EDGE_PORT=str(free_port()),
        CFD_ENVOY_PORT=str(free_port()),
        CFD_ENVOY_ADMIN_PORT=str(free_port()),
        CFD_ENGINE_METRICS_PORT=str(free_port()),
        CFD_MARKET_METRICS_PORT=str(free_port()),
        CFD_ACCOUNT_METRICS_PORT=str(free_port()),
        CFD_EDGE_METRICS_PORT=str(free_port()),
        CFD_MAKER_METRICS_PORT=str(free_port()),
        CFD_RECORDER_METRICS_PORT=str(free_port()),
        CFD_INTERNAL_TOKEN="test-internal-token-0123456789",
        CFD_LOG_LEVEL="INFO",
    )
    env.update(overrides)
    return env


class ServiceProcess:
    """A `cfd <command>` child process with its output captured to a file."""

    def __init__(self, args: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "launcher.cli", *args],
            env=dict(env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )

    def output(self) -> str:
        """Return what the process has printed so far."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_grpc_ready(self, port: int, timeout: float = 30.0) -> None:
        """Wait until the gRPC server on `port` is SERVING; fail early if the process exits."""

        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"cfd {' '.join(self.args)} exited:\n{self.output()}")
            return grpc_serving(f"127.0.0.1:{port}", timeout=0.5)

        wait_for(ready, timeout=timeout, interval=0.1)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Signal the process and return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
            raise AssertionError(f"cfd {' '.join(self.args)} ignored signal {sig}") from None
        finally:
            self._log.close()
        return code


@contextmanager
def running_up(args: list[str], env: Mapping[str, str], data_dir: Path) -> Iterator[ServiceProcess]:
    """Run `cfd up <args>` until it says the mesh is up; stop it afterwards."""
    up = ServiceProcess(["up", *args], env, data_dir / "up.log")
    try:
        wait_for(lambda: "CFD Mesh is up" in up.output() or up.process.poll() is not None, 120)
        assert up.process.poll() is None, up.output()
        yield up
    finally:
        up.stop()


@contextmanager
def running_redis(directory: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run a redis-server of this test's own, so the test can stop it."""
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: _answers(port), timeout=10)
        yield f"redis://127.0.0.1:{port}/0", server
    finally:
        server.terminate()
        server.wait()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def serving(app: Starlette) -> Iterator[str]:
    """Serve `app` on a free loopback port from a thread; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def set_fields(value: object) -> object:
    """Return a REST JSON value without the fields printed at their default value (`""`, `0`,
    `"0"`, `false`, `[]`, `{}`, a `*_UNSPECIFIED` enum): what the service actually set, for
    comparing with a few expected fields."""
    if isinstance(value, dict):
        kept = {key: set_fields(item) for key, item in value.items()}
        return {key: item for key, item in kept.items() if not _default(item)}
    if isinstance(value, list):
        return [set_fields(item) for item in value]
    return value


def _default(value: object) -> bool:
    if isinstance(value, str):
        return value in ("", "0") or value.endswith("_UNSPECIFIED")
    return value is False or (value == 0 and not isinstance(value, float)) or value in ([], {})
