"""Fail-over on the replicated journal, with real processes: a 3-node NATS cluster and `cfd
engine` primaries and standbys. Every acknowledged order must survive exactly once, a paused
former leader must not append, and losing NATS nodes must never acknowledge an unreplicated
order."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import nats
import pytest
from nats_support import NatsCluster

from account_svc.issuer import TokenIssuer
from cfd.v1 import common_pb2, trading_pb2
from engine_svc.core import Core
from engine_svc.core.codec import decode_command
from engine_svc.jetstream import JetStreamJournal
from integration.test_engine_harness import Client, FakeMarket, fake_market, user_issuer
from launcher.status import collect, render
from mesh.config import Settings
from support import ServiceProcess, mesh_env, until, wait_for

pytestmark = pytest.mark.nats

USERS = ("ann", "bob", "cyd", "dee")
LEASE_TTL_MS = 1000
# A standby takes over within the lease TTL plus one poll and its catch-up.
TAKEOVER_S = 6.0


@dataclass
class Platform:
    """Engines sharing one journal stream, one fake market and one token key."""

    root: Path
    cluster: NatsCluster
    market: FakeMarket
    market_addr: str
    stream: str = field(default_factory=lambda: f"F_{uuid.uuid4().hex[:8].upper()}")
    processes: list[ServiceProcess] = field(default_factory=list)
    key_file: str = ""
    # The environment of each engine, by its gRPC port.
    envs: dict[int, dict[str, str]] = field(default_factory=dict)

    def engine(
        self, *, standby: bool, lease_ttl_ms: int = LEASE_TTL_MS
    ) -> tuple[ServiceProcess, Settings]:
        """Start a `cfd engine` (a standby with --standby) with a data directory of its own."""
        data_dir = self.root / f"engine-{len(self.processes)}"
        env = mesh_env(
            data_dir,
            CFD_MARKET_ADDR=self.market_addr,
            CFD_JOURNAL_URL=self.cluster.url,
            CFD_JOURNAL_STREAM=self.stream,
            CFD_LEASE_TTL_MS=str(lease_ttl_ms),
            CFD_JOURNAL_TIMEOUT_MS="1500",
            CFD_PRICE_STALE_MS="5000",
            CFD_SNAPSHOT_EVERY="25",
        )
        if self.key_file:
            env["CFD_JWT_PRIVATE_KEY_FILE"] = self.key_file
        settings = Settings.from_env(env)
        if not self.key_file:
            user_issuer(settings)
            self.key_file = str(next((data_dir / "keys").glob("*")))
            env["CFD_JWT_PRIVATE_KEY_FILE"] = self.key_file
        self.envs[settings.engine_port] = env
        args = ["engine", "--standby"] if standby else ["engine"]
        process = ServiceProcess(args, env, self.root / f"engine-{len(self.processes)}.log")
        self.processes.append(process)
        return process, settings

    def issuer(self, settings: Settings) -> TokenIssuer:
        """Return an issuer every engine of the platform accepts."""
        return user_issuer(settings)

    def stream_commands(self) -> list[object]:
        """Return every command of the stream, decoded."""
        journal = JetStreamJournal.open(self.cluster.url, self.stream, 3)
        try:
            return [decode_command(payload) for _, payload in journal.read()]
        finally:
            journal.close()


@pytest.fixture
async def platform(nats_cluster: NatsCluster, tmp_path: Path) -> AsyncIterator[Platform]:
    """Return a platform on the module's NATS cluster; stop its engines afterwards."""
    async with fake_market() as (market, address):
        market.push("BTCUSD", "64250.00", "64251.00")
        found = Platform(tmp_path, nats_cluster, market, address)
        try:
            yield found
        finally:
            for process in found.processes:
                with contextlib.suppress(AssertionError):
                    process.stop(signal.SIGKILL)


@dataclass
class Ledger:
    """What the clients saw acknowledged: clientOrderId -> position id."""

    acked: dict[str, str] = field(default_factory=dict)
    refused: int = 0


async def _open(client: Client, user: str, key: str, deadline_s: float = 3) -> str:
    reply = await client.trading.OpenPosition(
        trading_pb2.OpenPositionRequest(
            symbol="BTCUSD",
            side=common_pb2.SIDE_BUY,
            leverage=10,
            quantity="0.001",
            client_order_id=key,
        ),
        metadata=client.auth(user),
        timeout=deadline_s,
    )
    position_id: str = reply.position.id
    return position_id


async def _trader(
    addresses: list[str], issuer: TokenIssuer, user: str, ledger: Ledger, stop: asyncio.Event
) -> None:
    """Open positions one after another; on a failure retry the same clientOrderId on each
    engine in turn until one acknowledges it (as a reconnecting client does)."""
    number = 0
    target = 0
    while not stop.is_set():
        number += 1
        key = f"{user}-{number}"
        while key not in ledger.acked:
            async with grpc.aio.insecure_channel(addresses[target]) as channel:
                try:
                    ledger.acked[key] = await _open(Client(channel, issuer), user, key)
                except grpc.aio.AioRpcError:
                    ledger.refused += 1
                    target = (target + 1) % len(addresses)
                    await asyncio.sleep(0.05)


async def _serving(address: str, issuer: TokenIssuer) -> bool:
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            reply = await Client(channel, issuer).trading.ListPrices(
                trading_pb2.ListPricesRequest(), metadata=Client(channel, issuer).auth(USERS[0])
            )
        except grpc.aio.AioRpcError:
            return False
        return any(q.symbol == "BTCUSD" for q in reply.prices)


def _address(settings: Settings) -> str:
    return f"127.0.0.1:{settings.engine_port}"


async def _positions(address: str, issuer: TokenIssuer) -> dict[str, list[str]]:
    async with grpc.aio.insecure_channel(address) as channel:
        client = Client(channel, issuer)
        found: dict[str, list[str]] = {}
        for user in USERS:
            listed = await client.trading.ListPositions(
                trading_pb2.ListPositionsRequest(), metadata=client.auth(user)
            )
            found[user] = [p.id for p in listed.positions]
        return found


async def _leading(
    platform: Platform, lease_ttl_ms: int = LEASE_TTL_MS
) -> tuple[ServiceProcess, Settings, TokenIssuer]:
    primary, settings = platform.engine(standby=False, lease_ttl_ms=lease_ttl_ms)
    primary.wait_grpc_ready(settings.engine_port)
    issuer = platform.issuer(settings)
    async with grpc.aio.insecure_channel(_address(settings)) as channel:
        client = Client(channel, issuer)
        for user in USERS:
            await client.create_account(user, "100000")
    await until(lambda: _serving(_address(settings), issuer))
    return primary, settings, issuer


async def test_a_standby_takes_over_a_killed_primary_with_every_acknowledged_order_once(
    platform: Platform,
) -> None:
    primary, first, issuer = await _leading(platform)
    standby, second = _standing_by(platform)
    addresses = [_address(first), _address(second)]
    ledger = Ledger()
    stop = asyncio.Event()
    traders = [
        asyncio.create_task(_trader(addresses, issuer, user, ledger, stop)) for user in USERS
    ]
    await until(lambda: _acked(ledger, 40))
    await until(lambda: _logged(standby, "matches the leader's digest"), within=10)
    # It snapshots while it follows, so that its own restart would replay little.
    await until(lambda: _logged(standby, "snapshot at seq"), within=10)
    primary.process.send_signal(signal.SIGKILL)
    primary.process.wait(10)
    killed_at = time.monotonic()
    standby.wait_grpc_ready(second.engine_port, timeout=TAKEOVER_S)
    took_over_s = time.monotonic() - killed_at
    acked_before = len(ledger.acked)
    await until(lambda: _acked(ledger, acked_before + 20))
    stop.set()
    await asyncio.wait_for(asyncio.gather(*traders), 15)
    assert took_over_s < TAKEOVER_S
    positions = await _positions(_address(second), issuer)
    held = [position for ids in positions.values() for position in ids]
    assert len(held) == len(set(held))
    assert sorted(held) == sorted(ledger.acked.values())
    pattern = r"leading the journal \S+ from seq (\d+).*?at seq (\d+)"
    took_over = re.search(pattern, standby.output())
    assert took_over is not None
    # The standby was hot: it had applied batches and checked a digest of the old leader's.
    assert 0 < int(took_over[2]) <= int(took_over[1])


def _standing_by(
    platform: Platform, lease_ttl_ms: int = LEASE_TTL_MS
) -> tuple[ServiceProcess, Settings]:
    standby, settings = platform.engine(standby=True, lease_ttl_ms=lease_ttl_ms)
    wait_for(lambda: "standing by" in standby.output(), timeout=20)
    return standby, settings


async def _logged(process: ServiceProcess, text: str) -> bool:
    await asyncio.sleep(0.05)
    return text in process.output()


async def _acked(ledger: Ledger, count: int) -> bool:
    await asyncio.sleep(0.02)
    return len(ledger.acked) >= count


async def test_a_primary_stopped_cleanly_exits_and_hands_the_lead_over_without_the_ttl(
    platform: Platform,
) -> None:
    # Twice the hand-over's bound (a standby looks every quarter TTL): only a released lease
    # explains a take-over within it.
    ttl_ms = int(TAKEOVER_S * 2000)
    primary, first, issuer = await _leading(platform, ttl_ms)
    standby, second = _standing_by(platform, ttl_ms)
    async with grpc.aio.insecure_channel(_address(first)) as channel:
        acked = await _open(Client(channel, issuer), "ann", "before")
    await _shows_as_leader(platform, primary, first, issuer)
    stopped_at = time.monotonic()
    assert primary.stop(signal.SIGTERM, timeout=15) == 0
    standby.wait_grpc_ready(second.engine_port, timeout=TAKEOVER_S)
    assert time.monotonic() - stopped_at < ttl_ms / 1000
    assert "leading the journal" in standby.output()
    positions = await _positions(_address(second), issuer)
    assert positions["ann"] == [acked]
    await _shows_as_leader(platform, standby, second, issuer)


async def test_a_primary_restarted_within_the_ttl_waits_for_its_old_lease_and_leads(
    platform: Platform,
) -> None:
    ttl_ms = 3000
    primary, first, issuer = await _leading(platform, ttl_ms)
    async with grpc.aio.insecure_channel(_address(first)) as channel:
        acked = await _open(Client(channel, issuer), "ann", "before")
    primary.process.send_signal(signal.SIGKILL)
    primary.process.wait(10)
    # The dead process's lease is still in the bucket: the new primary waits for it to lapse
    # rather than refusing to start.
    restarted, second = platform.engine(standby=False, lease_ttl_ms=ttl_ms)
    restarted.wait_grpc_ready(second.engine_port, timeout=ttl_ms / 1000 * 2 + 10)
    assert "waiting up to" in restarted.output()
    positions = await _positions(_address(second), issuer)
    assert positions["ann"] == [acked]


async def test_a_second_primary_refuses_to_start_while_the_first_leads(
    platform: Platform,
) -> None:
    primary, first, issuer = await _leading(platform)
    second, _ = platform.engine(standby=False)
    assert second.process.wait(20) != 0
    assert "leads the journal" in second.output()
    assert "--standby" in second.output()
    assert primary.process.poll() is None
    await _shows_as_leader(platform, primary, first, issuer)


async def _shows_as_leader(
    platform: Platform, engine: ServiceProcess, settings: Settings, issuer: TokenIssuer
) -> None:
    """Check that GetStats and `cfd status` name `engine` as the journal's leader."""
    holder = f"{socket.gethostname()}:{engine.process.pid}:{settings.engine_port}"
    async with grpc.aio.insecure_channel(_address(settings)) as channel:
        stats = await Client(channel, issuer).stats()
    assert stats.journal_leader == holder
    env = platform.envs[settings.engine_port]
    rows = await asyncio.to_thread(collect, settings, env)
    engine_row = next(row for row in rows if row.service == "engine")
    assert (engine_row.health, engine_row.leader) == ("SERVING", holder)
    assert holder in render(rows)


async def test_a_paused_former_primary_cannot_append_after_a_fail_over(
    platform: Platform,
) -> None:
    primary, first, issuer = await _leading(platform)
    standby, second = _standing_by(platform)
    async with grpc.aio.insecure_channel(_address(first)) as channel:
        acked = await _open(Client(channel, issuer), "ann", "before")
    primary.process.send_signal(signal.SIGSTOP)
    try:
        standby.wait_grpc_ready(second.engine_port, timeout=TAKEOVER_S)
    finally:
        primary.process.send_signal(signal.SIGCONT)
    async with grpc.aio.insecure_channel(_address(first)) as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await _open(Client(channel, issuer), "ann", "after")
    assert primary.process.wait(10) != 0
    commands = platform.stream_commands()
    keys = [getattr(command, "client_order_id", None) for command in commands]
    assert "after" not in keys
    positions = await _positions(_address(second), issuer)
    assert positions["ann"] == [acked]
    # The stream replays to the state the new leader serves.
    core = Core()
    for command in commands:
        core.apply(command)  # type: ignore[arg-type]
    assert core.last_seq == len(commands)


@pytest.fixture
def cluster_restored(nats_cluster: NatsCluster) -> Iterator[NatsCluster]:
    """Restart any node a test stopped, so the module's later tests find the whole cluster."""
    yield nats_cluster
    for node in nats_cluster.nodes:
        if node.process is None:
            nats_cluster.restart(node)
    wait_for(nats_cluster.ready, timeout=20.0, interval=0.2)


async def _stream_leader(platform: Platform) -> str:
    nc = await nats.connect(servers=[node.url for node in platform.cluster.nodes])
    try:
        info = await nc.jetstream().stream_info(platform.stream)
    finally:
        await nc.close()
    assert info.cluster is not None and info.cluster.leader is not None
    return info.cluster.leader


async def _load(
    platform: Platform, settings: Settings, issuer: TokenIssuer, ledger: Ledger
) -> tuple[asyncio.Event, list[asyncio.Task[None]]]:
    stop = asyncio.Event()
    addresses = [_address(settings)]
    tasks = [asyncio.create_task(_trader(addresses, issuer, u, ledger, stop)) for u in USERS]
    return stop, tasks


async def _all_acknowledged_once(settings: Settings, issuer: TokenIssuer, ledger: Ledger) -> None:
    positions = await _positions(_address(settings), issuer)
    held = [position for ids in positions.values() for position in ids]
    assert sorted(held) == sorted(ledger.acked.values())


async def test_losing_the_stream_leader_node_loses_nothing_and_the_engine_keeps_serving(
    platform: Platform, cluster_restored: NatsCluster
) -> None:
    primary, settings, issuer = await _leading(platform)
    ledger = Ledger()
    stop, traders = await _load(platform, settings, issuer, ledger)
    await until(lambda: _acked(ledger, 20))
    leader = await _stream_leader(platform)
    node = next(node for node in cluster_restored.nodes if node.name == leader)
    node.stop(signal.SIGKILL)
    before = len(ledger.acked)
    await until(lambda: _acked(ledger, before + 20), within=20)
    cluster_restored.restart(node)
    after = len(ledger.acked)
    await until(lambda: _acked(ledger, after + 20), within=20)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*traders), 15)
    assert primary.process.poll() is None
    await _all_acknowledged_once(settings, issuer, ledger)


async def test_without_a_majority_writes_are_refused_and_resume_when_it_returns(
    platform: Platform, cluster_restored: NatsCluster
) -> None:
    primary, settings, issuer = await _leading(platform)
    async with grpc.aio.insecure_channel(_address(settings)) as channel:
        client = Client(channel, issuer)
        first = await _open(client, "ann", "before")
        stopped = cluster_restored.nodes[1:]
        for node in stopped:
            node.stop(signal.SIGKILL)
        for number in range(3):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                # Long enough for the engine's own refusal (CFD_JOURNAL_TIMEOUT_MS) to arrive.
                await _open(client, "ann", f"during-{number}", deadline_s=15)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert primary.process.poll() is None
        for node in stopped:
            cluster_restored.restart(node)
        resumed = await until(lambda: _opened(client, "ann", "after"), within=30)
    positions = await _positions(_address(settings), issuer)
    keys = {getattr(command, "client_order_id", None) for command in platform.stream_commands()}
    assert {"before", "after"} <= keys
    # A refused order is in the state only if its batch reached the stream before the nodes
    # went (stored, unacknowledged, then applied); every order is there at most once.
    stored = {f"during-{number}" for number in range(3)} & keys
    assert len(positions["ann"]) == len(set(positions["ann"])) == 2 + len(stored)
    assert {first, resumed} <= set(positions["ann"])


async def _opened(client: Client, user: str, key: str) -> str | None:
    try:
        return await _open(client, user, key)
    except grpc.aio.AioRpcError:
        await asyncio.sleep(0.2)
        return None
