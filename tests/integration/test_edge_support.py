"""The whole mesh as real processes on loopback (manual feed), driven through the edge.

Shared by the journey, WebSocket and fuzzing tests of the edge; it holds no tests itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx

from cfd.v1 import market_admin_pb2, market_admin_pb2_grpc
from launcher.status import SERVING, maker_health, recorder_health, scrape
from support import ServiceProcess, mesh_env, wait_for

PASSWORD = "correct horse battery staple"
# Generous edge and accounts limits: these tests exercise behaviour, not abuse protection.
TEST_ENV = {
    "CFD_FEED": "manual",
    "CFD_MAX_JUMP_BPS": "100000",
    "CFD_RATE_LIMIT_IP": "1000000",
    "CFD_RATE_LIMIT_USER": "1000000",
    "CFD_WS_RATE_LIMIT": "100000",
    "CFD_LIMIT_SIGNUP_PER_ADDRESS": "100000/60",
    "CFD_LIMIT_SIGNIN_PER_ADDRESS": "100000/60",
    "CFD_LIMIT_SIGNUP_PER_EMAIL": "100000/60",
    "CFD_LIMIT_SIGNIN_PER_EMAIL_AND_ADDRESS": "100000/60",
    "CFD_ARGON2_TIME_COST": "1",
    "CFD_ARGON2_MEMORY_KIB": "1024",
}


@dataclass
class LiveMesh:
    """Addresses of a running mesh and a way to move prices exactly."""

    env: dict[str, str]
    data_dir: Path
    processes: dict[str, ServiceProcess]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['CFD_EDGE_PORT']}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.env['CFD_EDGE_PORT']}/v1/ws"

    def publish(self, *ticks: tuple[str, str, str]) -> None:
        """Publish exact quotes through MarketDataAdminService.PublishTicks."""
        request = market_admin_pb2.PublishTicksRequest(
            ticks=[market_admin_pb2.TickInput(symbol=s, bid=b, ask=a) for s, b, a in ticks]
        )
        with grpc.insecure_channel(f"127.0.0.1:{self.env['CFD_MARKET_PORT']}") as channel:
            market_admin_pb2_grpc.MarketDataAdminServiceStub(channel).PublishTicks(
                request,
                metadata=(("x-cfd-internal-token", self.env["CFD_INTERNAL_TOKEN"]),),
                timeout=10,
            )

    def publish_and_wait(self, symbol: str, bid: str, ask: str, token: str) -> None:
        """Publish a quote and wait until the engine quotes it (so trades fill at it)."""
        self.publish((symbol, bid, ask))

        def engine_has_it() -> bool:
            response = httpx.get(
                f"{self.url}/v1/prices",
                headers={"authorization": f"Bearer {token}"},
                timeout=5,
            )
            quotes = {q["symbol"]: q for q in response.json().get("prices", [])}
            got = quotes.get(symbol)
            return got is not None and got["bid"] == bid and got["ask"] == ask

        wait_for(engine_has_it, timeout=15, interval=0.02)


def maker_serving(env: dict[str, str]) -> bool:
    """Tell whether the market maker of a mesh reports that it reaches the exchange."""
    samples = scrape(f"127.0.0.1:{env['CFD_MAKER_METRICS_PORT']}")
    return maker_health(samples) == SERVING


def recorder_serving(env: dict[str, str]) -> bool:
    """Tell whether the history recorder of a mesh follows the journal and writes."""
    samples = scrape(f"127.0.0.1:{env['CFD_RECORDER_METRICS_PORT']}")
    return recorder_health(samples) == SERVING


@contextlib.contextmanager
def live_mesh(data_dir: Path, *, with_maker: bool = False, **overrides: str) -> Iterator[LiveMesh]:
    """Start market, engine, recorder, accounts and edge (and the maker when asked) as
    processes; stop them all afterwards."""
    env = mesh_env(data_dir, **(TEST_ENV | overrides))
    processes: dict[str, ServiceProcess] = {}
    try:
        for name, port in (
            ("market", "CFD_MARKET_PORT"),
            ("engine", "CFD_ENGINE_PORT"),
            ("accounts", "CFD_ACCOUNT_PORT"),
        ):
            processes[name] = ServiceProcess([name], env, data_dir / f"{name}.log")
            processes[name].wait_grpc_ready(int(env[port]), timeout=60)
        recorder = processes["recorder"] = ServiceProcess(
            ["recorder"], env, data_dir / "recorder.log"
        )

        def recording() -> bool:
            if recorder.process.poll() is not None:
                raise AssertionError(f"cfd recorder exited:\n{recorder.output()}")
            return recorder_serving(env)

        wait_for(recording, timeout=60, interval=0.1)
        edge = ServiceProcess(["edge"], env, data_dir / "edge.log")
        processes["edge"] = edge
        mesh = LiveMesh(env, data_dir, processes)

        def ready() -> bool:
            if edge.process.poll() is not None:
                raise AssertionError(f"cfd edge exited:\n{edge.output()}")
            try:
                return httpx.get(f"{mesh.url}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=60, interval=0.1)
        if with_maker:
            maker = processes["maker"] = ServiceProcess(["maker"], env, data_dir / "maker.log")

            def quoting() -> bool:
                if maker.process.poll() is not None:
                    raise AssertionError(f"cfd maker exited:\n{maker.output()}")
                return maker_serving(env)

            wait_for(quoting, timeout=60, interval=0.1)
        yield mesh
    finally:
        for process in reversed(list(processes.values())):
            process.stop()


def signup(client: httpx.Client, email: str) -> str:
    """Sign a new user up through the edge and return the access token."""
    response = client.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    token: str = response.json()["accessToken"]
    return token
