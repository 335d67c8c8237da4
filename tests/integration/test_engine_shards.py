"""Two real `cfd engine` shards: the cross-shard transfer between a CFD balance on shard 1 and
the spot wallet on shard 0, both ways, across a SIGKILL of both sides while it is in flight,
and the shard checks of the public calls."""

from __future__ import annotations

import contextlib
import shutil
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import grpc
import jwt

from cfd.v1 import (
    engine_admin_pb2,
    engine_admin_pb2_grpc,
    exchange_pb2,
    exchange_pb2_grpc,
    trading_pb2,
    trading_pb2_grpc,
)
from engine_svc.transfers import transfer_id
from integration.test_engine_harness import (
    INTERNAL_TOKEN,
    engine_settings,
    failure,
    fake_market,
    start_engine,
)
from mesh.auth import SHARD_CLAIM
from mesh.config import Settings
from mesh.tokens import ALGORITHM, DEFAULT_AUDIENCE, DEFAULT_ISSUER, load_signing_key
from support import ServiceProcess, free_port, mesh_env, until

USER = "alice"
INTERNAL = (("x-cfd-internal-token", INTERNAL_TOKEN),)
TO_SPOT = exchange_pb2.TRANSFER_DIRECTION_TO_SPOT
TO_CFD = exchange_pb2.TRANSFER_DIRECTION_TO_CFD


@dataclass
class Shards:
    """Two engine shards' environments and processes, and the user's tokens."""

    envs: list[dict[str, str]]
    logs: Path
    processes: list[ServiceProcess | None]
    tokens: dict[int, str]
    starts: int = 0

    def port(self, shard: int) -> int:
        return int(self.envs[shard]["CFD_ENGINE_PORT"])

    def start(self, shard: int) -> None:
        self.starts += 1
        log = self.logs / f"shard-{shard}-{self.starts}.log"
        process = ServiceProcess(["engine"], self.envs[shard], log)
        self.processes[shard] = process
        process.wait_grpc_ready(self.port(shard))

    def kill(self, shard: int) -> None:
        process = self.processes[shard]
        assert process is not None
        with contextlib.suppress(AssertionError):
            process.stop(signal.SIGKILL)
        self.processes[shard] = None

    def user(self, shard: int) -> tuple[tuple[str, str], ...]:
        """Return the metadata of the user's calls with a token naming `shard`."""
        return (("authorization", f"Bearer {self.tokens[shard]}"),)


def _token(settings: Settings, shard: int) -> str:
    """Return an access token of USER whose shard claim is `shard`, as the accounts service
    signs them."""
    key = load_signing_key(settings)
    now = int(time.time())
    claims = {
        "iss": DEFAULT_ISSUER,
        "aud": DEFAULT_AUDIENCE,
        "sub": USER,
        "iat": now,
        "exp": now + 600,
        "jti": f"test-{shard}",
        SHARD_CLAIM: shard,
    }
    headers = {"kid": key.kid, "typ": "JWT"}
    return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers=headers)


@asynccontextmanager
async def two_shards(tmp_path: Path) -> AsyncIterator[Shards]:
    """Run shard 0 and shard 1 with their own data directories; open USER on both (its CFD
    balance on shard 1, a zero one on shard 0 for the spot wallet)."""
    async with fake_market() as (market, address):
        market.push("BTCUSD", "64250.00", "64251.00")
        ports = [free_port(), free_port()]
        shared = {
            "CFD_MARKET_ADDR": address,
            "CFD_ENGINE_SHARDS": "2",
            "CFD_ENGINE_ADDR": f"127.0.0.1:{ports[0]}",
            "CFD_ENGINE_ADDR_1": f"127.0.0.1:{ports[1]}",
        }
        envs = [
            mesh_env(
                tmp_path / f"shard-{shard}",
                **shared,
                CFD_ENGINE_SHARD=str(shard),
                CFD_ENGINE_PORT=str(ports[shard]),
            )
            for shard in (0, 1)
        ]
        settings = Settings.from_env(envs[0])
        tokens = {shard: _token(settings, shard) for shard in (0, 1)}
        # One signing key for the mesh: shard 1 verifies the tokens shard 0's key signs.
        shutil.copytree(tmp_path / "shard-0" / "keys", tmp_path / "shard-1" / "keys")
        shards = Shards(envs, tmp_path, [None, None], tokens)
        try:
            shards.start(0)
            shards.start(1)
            for shard, balance in ((1, "1000"), (0, "0")):
                async with _channel(shards, shard) as channel:
                    await _admin(channel).CreateAccount(
                        engine_admin_pb2.CreateAccountRequest(
                            user_id=USER, initial_balance=balance
                        ),
                        metadata=INTERNAL,
                    )
            yield shards
        finally:
            for shard in (0, 1):
                if shards.processes[shard] is not None:
                    shards.kill(shard)


@asynccontextmanager
async def _channel(shards: Shards, shard: int) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{shards.port(shard)}") as channel:
        yield channel


def _admin(channel: grpc.aio.Channel) -> engine_admin_pb2_grpc.EngineAdminServiceAsyncStub:
    return engine_admin_pb2_grpc.EngineAdminServiceStub(channel)


async def _transfer(
    shards: Shards, amount: str, direction: exchange_pb2.TransferDirection.ValueType, key: str
) -> exchange_pb2.TransferFundsResponse:
    """Transfer as the user's edge does: ExchangeService on shard 0, with its shard-1 token."""
    async with _channel(shards, 0) as channel:
        reply: exchange_pb2.TransferFundsResponse = await exchange_pb2_grpc.ExchangeServiceStub(
            channel
        ).TransferFunds(
            exchange_pb2.TransferFundsRequest(
                amount=amount, direction=direction, client_order_id=key
            ),
            metadata=shards.user(1),
            timeout=20,
        )
        return reply


def _usd(balances: Iterable[exchange_pb2.WalletBalance]) -> Decimal:
    return sum((Decimal(b.available) for b in balances if b.asset == "USD"), Decimal(0))


async def _wallet_usd(shards: Shards) -> Decimal:
    async with _channel(shards, 0) as channel:
        reply = await exchange_pb2_grpc.ExchangeServiceStub(channel).GetWallet(
            exchange_pb2.GetWalletRequest(), metadata=shards.user(1)
        )
    return _usd(reply.balances)


async def _cfd_balance(shards: Shards, shard: int) -> Decimal:
    async with _channel(shards, shard) as channel:
        reply = await trading_pb2_grpc.TradingServiceStub(channel).GetAccount(
            trading_pb2.GetAccountRequest(), metadata=shards.user(shard)
        )
    return Decimal(reply.balance)


async def _stats(shards: Shards, shard: int) -> engine_admin_pb2.GetStatsResponse:
    async with _channel(shards, shard) as channel:
        reply: engine_admin_pb2.GetStatsResponse = await _admin(channel).GetStats(
            engine_admin_pb2.GetStatsRequest(), metadata=INTERNAL
        )
        return reply


async def _conserved(shards: Shards) -> None:
    """Per shard: holdings = deposits + received - sent; over both: holdings + the money
    sent and not yet received = deposits."""
    holdings: list[Decimal] = []
    stats = [await _stats(shards, shard) for shard in (0, 1)]
    for shard, figures in enumerate(stats):
        held = Decimal(figures.house_balance) + Decimal(figures.spot_wallets)
        held += Decimal(figures.spot_fees) + await _cfd_balance(shards, shard)
        moved = Decimal(figures.transfers_received) - Decimal(figures.transfers_sent)
        assert held == Decimal(figures.total_deposits) + moved
        holdings.append(held)
    sent = sum(Decimal(s.transfers_sent) for s in stats)
    received = sum(Decimal(s.transfers_received) for s in stats)
    assert sum(holdings) + sent - received == sum(Decimal(s.total_deposits) for s in stats)


async def test_transfers_move_usd_between_the_home_shard_and_the_spot_wallet(
    tmp_path: Path,
) -> None:
    async with two_shards(tmp_path) as shards:
        out = await _transfer(shards, "300", TO_SPOT, "out-1")
        assert Decimal(out.cfd_balance) == 700
        assert _usd(out.balances) == 300
        assert await _cfd_balance(shards, 1) == 700 and await _wallet_usd(shards) == 300
        back = await _transfer(shards, "120", TO_CFD, "back-1")
        assert Decimal(back.cfd_balance) == 820
        assert _usd(back.balances) == 180
        assert await _cfd_balance(shards, 1) == 820 and await _wallet_usd(shards) == 180
        # Retries name the same transfers: nothing moves again.
        assert await _transfer(shards, "120", TO_CFD, "back-1") == back
        again = await _transfer(shards, "300", TO_SPOT, "out-1")
        assert Decimal(again.cfd_balance) == 820
        assert await _cfd_balance(shards, 1) == 820 and await _wallet_usd(shards) == 180
        too_much = None
        try:
            await _transfer(shards, "5000", TO_SPOT, "out-2")
        except grpc.aio.AioRpcError as exc:
            too_much = failure(exc)
        assert too_much == (grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_BALANCE")
        for shard in (0, 1):
            stats = await _stats(shards, shard)
            assert Decimal(stats.transfers_in_flight) == 0
        await _conserved(shards)


async def _refused(call: Awaitable[object]) -> tuple[grpc.StatusCode, str | None]:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return failure(exc)
    raise AssertionError("the call was served")


async def test_each_shard_refuses_the_calls_of_another_shard(tmp_path: Path) -> None:
    wrong = (grpc.StatusCode.FAILED_PRECONDITION, "WRONG_SHARD")
    async with two_shards(tmp_path) as shards:
        async with _channel(shards, 0) as channel:
            cfd_call = trading_pb2_grpc.TradingServiceStub(channel).GetAccount(
                trading_pb2.GetAccountRequest(), metadata=shards.user(1)
            )
            assert await _refused(cfd_call) == wrong
        async with _channel(shards, 1) as channel:
            spot_call = exchange_pb2_grpc.ExchangeServiceStub(channel).GetWallet(
                exchange_pb2.GetWalletRequest(), metadata=shards.user(1)
            )
            assert await _refused(spot_call) == wrong
        # Each serves its own calls.
        assert await _cfd_balance(shards, 1) == 1000
        assert await _wallet_usd(shards) == 0


async def test_a_single_engine_ignores_the_shard_claim(tmp_path: Path) -> None:
    async with fake_market() as (_, address):
        settings, _ = engine_settings(tmp_path, address)
        engine = await start_engine(settings)
        try:
            async with grpc.aio.insecure_channel(engine.address) as channel:
                await _admin(channel).CreateAccount(
                    engine_admin_pb2.CreateAccountRequest(user_id=USER, initial_balance="100"),
                    metadata=INTERNAL,
                )
                user = (("authorization", f"Bearer {_token(settings, 1)}"),)
                account = await trading_pb2_grpc.TradingServiceStub(channel).GetAccount(
                    trading_pb2.GetAccountRequest(), metadata=user
                )
                assert Decimal(account.balance) == 100
                moved = await exchange_pb2_grpc.ExchangeServiceStub(channel).TransferFunds(
                    exchange_pb2.TransferFundsRequest(amount="40", direction=TO_SPOT),
                    metadata=user,
                )
                assert Decimal(moved.cfd_balance) == 60 and _usd(moved.balances) == 40
                stats = await _admin(channel).GetStats(
                    engine_admin_pb2.GetStatsRequest(), metadata=INTERNAL
                )
                assert Decimal(stats.transfers_sent) == 0
        finally:
            await engine.shutdown()


async def test_a_transfer_in_flight_through_kill_9_of_both_shards_moves_once(
    tmp_path: Path,
) -> None:
    async with two_shards(tmp_path) as shards:
        shards.kill(0)
        key = "kill-1"
        request = engine_admin_pb2.SendTransferRequest(
            user_id=USER,
            transfer_id=transfer_id(USER, key),
            amount="250",
            direction=TO_SPOT,
            peer_shard=0,
        )
        async with _channel(shards, 1) as channel:
            try:
                await _admin(channel).SendTransfer(request, metadata=INTERNAL, timeout=2)
            except grpc.aio.AioRpcError as exc:
                assert exc.code() in (
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                )
            else:
                raise AssertionError("the transfer settled with shard 0 down")

        async def debited() -> bool:
            return Decimal((await _stats(shards, 1)).transfers_in_flight) == 250

        await until(debited, within=10)
        shards.kill(1)
        shards.start(0)
        shards.start(1)

        async def settled() -> bool:
            stats = await _stats(shards, 1)
            return Decimal(stats.transfers_in_flight) == 0

        await until(settled, within=30)
        assert await _cfd_balance(shards, 1) == 750 and await _wallet_usd(shards) == 250
        received = await _stats(shards, 0)
        assert Decimal(received.transfers_received) == 250
        await _conserved(shards)
        # The client's retry names the same transfer and answers its result.
        retry = await _transfer(shards, "250", TO_SPOT, key)
        assert Decimal(retry.cfd_balance) == 750
        assert _usd(retry.balances) == 250
        assert await _cfd_balance(shards, 1) == 750 and await _wallet_usd(shards) == 250
        assert Decimal((await _stats(shards, 0)).transfers_received) == 250
        await _conserved(shards)
