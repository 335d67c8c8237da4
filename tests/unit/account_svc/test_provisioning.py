"""Tests for the signup outbox: trading accounts are confirmed whatever fails in between."""

from __future__ import annotations

import grpc
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from account_svc.provisioning import (
    EngineUnavailableError,
    GrpcEngineAccounts,
    Provisioner,
    backoff_s,
)
from account_svc.users import UserStore, assign_shard
from cfd.v1 import engine_admin_pb2, engine_admin_pb2_grpc
from mesh.errors import ApiError


class FakeEngine:
    """An engine admin API that can be switched off, recording accounts like the real one."""

    def __init__(self) -> None:
        self.up = True
        self.accounts: dict[str, str] = {}
        self.shards: dict[str, int] = {}
        self.calls = 0

    async def create_account(
        self,
        user_id: str,
        initial_balance: str,
        margin_mode: str,
        position_mode: str,
        shard: int = 0,
    ) -> None:
        self.calls += 1
        if not self.up:
            raise EngineUnavailableError("CreateAccount failed: UNAVAILABLE")
        self.accounts.setdefault(user_id, initial_balance)
        self.shards.setdefault(user_id, shard)


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


async def test_ensure_creates_the_account_and_clears_the_outbox(db: AsyncEngine) -> None:
    users, engine = UserStore(db), FakeEngine()
    user = await users.create("a@example.com", "h", "5000")
    await Provisioner(users, engine).ensure(user.id)
    assert engine.accounts == {user.id: "5000"}
    assert await users.pending_account(user.id) is None
    await Provisioner(users, engine).ensure(user.id)
    assert engine.calls == 1


async def test_engine_outage_keeps_the_entry_and_reports_unavailable(db: AsyncEngine) -> None:
    clock = FakeClock()
    users, engine = UserStore(db, clock=clock), FakeEngine()
    provisioner = Provisioner(users, engine)
    user = await users.create("b@example.com", "h", "5000")
    engine.up = False
    with pytest.raises(ApiError) as info:
        await provisioner.ensure(user.id)
    assert info.value.reason == "SERVICE_UNAVAILABLE"
    pending = await users.pending_account(user.id)
    assert pending is not None and pending.attempts == 1
    # The next sign-in retries regardless of the backoff, and succeeds once the engine is back.
    engine.up = True
    await provisioner.ensure(user.id)
    assert engine.accounts == {user.id: "5000"}
    assert await users.pending_account(user.id) is None


async def test_sweep_retries_with_backoff_until_confirmed(db: AsyncEngine) -> None:
    clock = FakeClock()
    users, engine = UserStore(db, clock=clock), FakeEngine()
    provisioner = Provisioner(users, engine)
    first = await users.create("c@example.com", "h", "5000")
    second = await users.create("d@example.com", "h", "7000")
    engine.up = False
    assert await provisioner.run_due() == 0
    assert engine.calls == 2
    assert await provisioner.run_due() == 0
    assert engine.calls == 2, "postponed entries are not due yet"
    clock.now += backoff_s(0)
    engine.up = True
    assert await provisioner.run_due() == 2
    assert engine.accounts == {first.id: "5000", second.id: "7000"}
    assert await users.count_pending_accounts() == 0


async def test_crash_after_the_engine_confirmed_is_harmless(db: AsyncEngine) -> None:
    users, engine = UserStore(db), FakeEngine()
    user = await users.create("e@example.com", "h", "5000")
    # The engine created the account, then the process died before clearing the outbox.
    await engine.create_account(user.id, "5000", "", "")
    assert await Provisioner(users, engine).run_due() == 1
    assert engine.accounts == {user.id: "5000"}
    assert await users.pending_account(user.id) is None


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_s(n) for n in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff_s(50) == 300.0


async def test_the_account_is_opened_on_the_users_shard(db: AsyncEngine) -> None:
    users, engine = UserStore(db, shards=3), FakeEngine()
    created = [await users.create(f"u{n}@example.com", "h", "5000") for n in range(30)]
    assert await Provisioner(users, engine).run_due() == 30
    assert engine.shards == {user.id: assign_shard(user.id, 3) for user in created}
    # Spread over every shard, and stored: a later read gives the same shard.
    assert set(engine.shards.values()) == {0, 1, 2}
    for user in created:
        assert await users.shard_of(user.id) == user.shard


class AdminServer(engine_admin_pb2_grpc.EngineAdminServiceServicer):
    """One engine shard's admin API, recording the accounts it was asked to open."""

    def __init__(self) -> None:
        self.created: list[tuple[str, str]] = []

    async def CreateAccount(
        self, request: engine_admin_pb2.CreateAccountRequest, context: object
    ) -> engine_admin_pb2.CreateAccountResponse:
        self.created.append((request.user_id, request.initial_balance))
        return engine_admin_pb2.CreateAccountResponse()


async def test_a_user_of_another_shard_also_gets_a_wallet_account_on_shard_0() -> None:
    # Only CreateAccount is called; the other methods answer UNIMPLEMENTED as generated.
    shards = [AdminServer(), AdminServer()]  # type: ignore[abstract]
    servers, channels = [], []
    for servicer in shards:
        server = grpc.aio.server()
        engine_admin_pb2_grpc.add_EngineAdminServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        channels.append(grpc.aio.insecure_channel(f"127.0.0.1:{port}"))
    try:
        engine = GrpcEngineAccounts(channels, "internal")
        await engine.create_account("home-0", "5000", "", "", 0)
        await engine.create_account("home-1", "5000", "", "", 1)
        assert shards[0].created == [("home-0", "5000"), ("home-1", "0")]
        assert shards[1].created == [("home-1", "5000")]
        with pytest.raises(EngineUnavailableError, match="shard 2"):
            await engine.create_account("nowhere", "5000", "", "", 2)
    finally:
        for channel in channels:
            await channel.close()
        for server in servers:
            await server.stop(None)
