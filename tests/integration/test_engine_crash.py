"""Crash safety of a real `cfd engine` process: SIGKILL under load, torn and corrupt journal
tails. After every restart each acknowledged result is there (CFD positions, spot orders and
fills), the state equals an offline replay of the journal (the same digest at the same
sequence number) and money is conserved."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import signal
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path

import grpc
import pytest

from account_svc.issuer import TokenIssuer
from cfd.v1 import common_pb2, engine_admin_pb2, exchange_pb2, exchange_pb2_grpc, trading_pb2
from engine_svc.core import Core
from engine_svc.core.codec import decode_command
from engine_svc.journal import Journal, frame
from engine_svc.snapshots import SnapshotStore
from integration.test_engine_harness import (
    Client,
    FakeMarket,
    engine_settings,
    fake_market,
    user_issuer,
)
from mesh.config import Settings
from support import ServiceProcess, until

USERS = [f"trader-{n}" for n in range(6)]
RECOVERED = re.compile(r"recovered to seq (\d+) from snapshot (\d+).*digest ([0-9a-f]{64})")


@dataclass
class Ledger:
    """What the clients were told: acknowledged opens and closes, observed digests."""

    opened: dict[str, str] = field(default_factory=dict)
    closed: set[str] = field(default_factory=set)
    digests: dict[int, str] = field(default_factory=dict)
    # Acknowledged spot order ids and own fill ids, by user.
    spot_orders: dict[str, set[str]] = field(default_factory=dict)
    spot_fills: dict[str, set[str]] = field(default_factory=dict)


def offline_replay(data_dir: Path, check: dict[int, str]) -> tuple[int, str]:
    """Rebuild the state from the files alone; assert the digests in `check` on the way."""
    # A view: the engine may be running, and this must neither wait for it nor cut its tail.
    journal = Journal.view(data_dir / "engine" / "journal")
    core: Core | None = None
    store = SnapshotStore(data_dir / "engine" / "snapshots", fsync=False)
    for path in store.paths():
        info, payload = store.read(path)
        if journal.covers(info.seq):
            core = Core.restore(payload)
            break
    if core is None:
        assert journal.covers(0)
        core = Core()
    for seq, payload in journal.read(core.last_seq):
        command = decode_command(payload)
        assert command.seq == seq
        core.apply(command)
        if seq in check:
            assert core.digest() == check[seq], f"digest differs at seq {seq}"
    journal.close()
    return core.last_seq, core.digest()


def recovered_line(process: ServiceProcess) -> tuple[int, str]:
    found = RECOVERED.findall(process.output())
    assert found, process.output()
    seq, _, digest = found[-1]
    return int(seq), digest


async def conservation(client: Client) -> None:
    stats = await client.stats()
    money = Decimal(stats.house_balance) + Decimal(stats.spot_wallets) + Decimal(stats.spot_fees)
    for user in USERS:
        account = await client.trading.GetAccount(
            trading_pb2.GetAccountRequest(), metadata=client.auth(user)
        )
        money += Decimal(account.balance) + Decimal(account.used_margin)
    assert money == Decimal(stats.total_deposits)


async def trader(client: Client, user: str, ledger: Ledger, stop: asyncio.Event) -> None:
    md = client.auth(user)
    mine: list[str] = []
    number = 0
    while not stop.is_set():
        number += 1
        try:
            if len(mine) < 3 or random.random() < 0.5:
                key = f"{user}-{number}"
                reply = await client.trading.OpenPosition(
                    trading_pb2.OpenPositionRequest(
                        symbol="BTCUSD",
                        side=random.choice([common_pb2.SIDE_BUY, common_pb2.SIDE_SELL]),
                        leverage=random.choice([1, 10, 50]),
                        quantity="0.001",
                        client_order_id=key,
                    ),
                    metadata=md,
                    timeout=5,
                )
                ledger.opened[reply.position.id] = user
                mine.append(reply.position.id)
            else:
                position = mine.pop(random.randrange(len(mine)))
                await client.trading.ClosePosition(
                    trading_pb2.ClosePositionRequest(position_id=position), metadata=md, timeout=5
                )
                ledger.closed.add(position)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                return
            # A liquidated or closed-by-trigger position is gone: that is a valid answer.
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise


async def fund_spot(client: Client, user: str) -> None:
    """Move USD to the user's spot wallet and give it BTC (idempotent across restarts)."""
    exchange = exchange_pb2_grpc.ExchangeServiceStub(client.channel)
    await exchange.TransferFunds(
        exchange_pb2.TransferFundsRequest(
            amount="20000", direction=exchange_pb2.TRANSFER_DIRECTION_TO_SPOT,
            client_order_id="fund-usd",
        ),
        metadata=client.auth(user),
    )  # fmt: skip
    await client.admin.DepositAsset(
        engine_admin_pb2.DepositAssetRequest(
            user_id=user, asset="BTC", amount="1", client_order_id="fund-btc"
        ),
        metadata=client.internal,
    )


async def spot_trader(client: Client, user: str, ledger: Ledger, stop: asyncio.Event) -> None:
    """Place crossing spot limit orders and cancel some; note what was acknowledged."""
    exchange = exchange_pb2_grpc.ExchangeServiceStub(client.channel)
    md = client.auth(user)
    orders = ledger.spot_orders.setdefault(user, set())
    fills = ledger.spot_fills.setdefault(user, set())
    while not stop.is_set():
        try:
            if orders and random.random() < 0.2:
                await exchange.CancelSpotOrder(
                    exchange_pb2.CancelSpotOrderRequest(order_id=random.choice(sorted(orders))),
                    metadata=md,
                    timeout=5,
                )
                continue
            reply = await exchange.PlaceSpotOrder(
                exchange_pb2.PlaceSpotOrderRequest(
                    market="BTC_USD",
                    side=random.choice([common_pb2.SIDE_BUY, common_pb2.SIDE_SELL]),
                    type=exchange_pb2.SPOT_ORDER_TYPE_LIMIT,
                    price=f"{64000 + random.randint(-5, 5)}.00",
                    quantity="0.001",
                ),
                metadata=md,
                timeout=5,
            )
            orders.add(reply.order.id)
            fills.update(fill.id for fill in reply.fills)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                return
            # An order already filled or cancelled by self-trade prevention is gone; a wallet
            # spent by resting orders refuses more: both are valid answers.
            if exc.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                raise


async def verify_spot(client: Client, ledger: Ledger) -> None:
    """Every acknowledged spot order and fill is among the user's events after a restart."""
    for user, orders in ledger.spot_orders.items():
        missing_orders = set(orders)
        missing_fills = set(ledger.spot_fills.get(user, ()))
        events = client.trading.StreamEvents(
            trading_pb2.StreamEventsRequest(from_sequence=0), metadata=client.auth(user)
        )
        try:
            while missing_orders or missing_fills:
                item = await asyncio.wait_for(events.read(), 20)
                assert isinstance(item, trading_pb2.StreamEventsResponse), (user, missing_orders)
                if item.type == trading_pb2.EVENT_TYPE_SPOT_ORDER_PLACED:
                    missing_orders.discard(item.spot_order.id)
                elif item.type == trading_pb2.EVENT_TYPE_SPOT_FILL:
                    missing_fills.discard(item.spot_fill.id)
        finally:
            events.cancel()


async def watcher(client: Client, ledger: Ledger, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            stats = await client.stats()
        except grpc.aio.AioRpcError:
            return
        ledger.digests[stats.sequence] = stats.state_digest
        await asyncio.sleep(0.05)


async def ticker(market: FakeMarket, stop: asyncio.Event) -> None:
    mid = 6_425_000
    while not stop.is_set():
        mid += random.randint(-300, 300)
        market.push("BTCUSD", f"{mid / 100:.2f}", f"{(mid + 100) / 100:.2f}")
        await asyncio.sleep(0.01)


def start(settings: Settings, env: dict[str, str], data_dir: Path, n: int) -> ServiceProcess:
    process = ServiceProcess(["engine"], env, data_dir / f"engine-{n}.log")
    process.wait_grpc_ready(settings.engine_port)
    return process


async def verify(client: Client, ledger: Ledger) -> None:
    """Every acknowledged open and close is present after a restart."""
    open_now: dict[str, set[str]] = {}
    for user in USERS:
        listed = await client.trading.ListPositions(
            trading_pb2.ListPositionsRequest(), metadata=client.auth(user)
        )
        open_now[user] = {p.id for p in listed.positions}
    for position_id, user in ledger.opened.items():
        reply = await client.trading.GetPosition(
            trading_pb2.GetPositionRequest(position_id=position_id), metadata=client.auth(user)
        )
        if position_id in ledger.closed:
            assert reply.position.status == trading_pb2.POSITION_STATUS_CLOSED
            assert position_id not in open_now[user]
        elif reply.position.status == trading_pb2.POSITION_STATUS_OPEN:
            assert position_id in open_now[user]


async def test_sigkill_under_load_loses_no_acknowledged_result(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    random.seed(7)
    async with fake_market() as (market, address):
        settings, env = engine_settings(
            tmp_path,
            address,
            CFD_SNAPSHOT_EVERY="300",
            CFD_JOURNAL_SEGMENT_BYTES="16384",
            CFD_PRICE_STALE_MS="5000",
        )
        issuer = user_issuer(settings)
        market.push("BTCUSD", "64250.00", "64251.00")
        ledger = Ledger()
        # One recorder follows the journal through every crash and restart of the engine: the
        # closed positions and old events read back below come from the history it writes.
        recorder = ServiceProcess(["recorder"], env, tmp_path / "recorder.log")
        request.addfinalizer(recorder.stop)
        last_seen = 0
        for cycle in range(4):
            process = start(settings, env, tmp_path, cycle)
            try:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.engine_port}") as ch:
                    client = Client(ch, issuer)
                    if cycle:
                        seq, digest = recovered_line(process)
                        assert seq >= last_seen
                        assert offline_replay(tmp_path, {})[0] >= seq
                        await verify(client, ledger)
                        await verify_spot(client, ledger)
                        await conservation(client)
                    for user in USERS:
                        await client.create_account(user, "100000")
                        await fund_spot(client, user)
                    await until(partial(_priced, client))
                    stop = asyncio.Event()
                    tasks = [asyncio.create_task(trader(client, u, ledger, stop)) for u in USERS]
                    tasks.extend(
                        asyncio.create_task(spot_trader(client, u, ledger, stop)) for u in USERS
                    )
                    tasks.append(asyncio.create_task(watcher(client, ledger, stop)))
                    tasks.append(asyncio.create_task(ticker(market, stop)))
                    await asyncio.sleep(random.uniform(0.8, 1.6))
                    process.process.send_signal(signal.SIGKILL)
                    process.process.wait(10)
                    stop.set()
                    await asyncio.gather(*tasks)
            finally:
                with contextlib.suppress(AssertionError):
                    process.stop(signal.SIGKILL)
            last_seen = max(ledger.digests, default=0)
            final_seq, _ = offline_replay(tmp_path, ledger.digests)
            assert final_seq >= last_seen
        assert len(ledger.opened) > 50
        assert any(p.startswith("p-") for p in ledger.closed)
        assert sum(map(len, ledger.spot_orders.values())) > 50
        assert sum(map(len, ledger.spot_fills.values())) > 10
        # The last restart: acknowledged results, conservation and the recovery digest.
        process = start(settings, env, tmp_path, 99)
        try:
            seq, digest = recovered_line(process)
            assert offline_replay(tmp_path, {seq: digest})[0] == seq
            async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.engine_port}") as ch:
                client = Client(ch, issuer)
                await verify(client, ledger)
                await verify_spot(client, ledger)
                await conservation(client)
                stats = await client.stats()
                assert stats.sequence >= seq
                assert stats.snapshot_sequence > 0
        finally:
            process.stop()
        assert recorder.stop() == 0, recorder.output()[-3000:]


async def _priced(client: Client) -> bool:
    reply = await client.trading.ListPrices(
        trading_pb2.ListPricesRequest(), metadata=client.auth(USERS[0])
    )
    return any(q.symbol == "BTCUSD" for q in reply.prices)


async def _session(settings: Settings, issuer: TokenIssuer, trades: int) -> list[str]:
    """Open positions and return their ids."""
    ids: list[str] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.engine_port}") as channel:
        client = Client(channel, issuer)
        for user in USERS[:2]:
            await client.create_account(user, "100000")
        await until(lambda: _priced(client))
        for number in range(trades):
            reply = await client.trading.OpenPosition(
                trading_pb2.OpenPositionRequest(
                    symbol="BTCUSD",
                    side=common_pb2.SIDE_BUY,
                    leverage=10,
                    quantity="0.001",
                    client_order_id=f"t-{number}",
                ),
                metadata=client.auth(USERS[0]),
            )
            ids.append(reply.position.id)
    return ids


async def _damaged_tail(tmp_path: Path, damage: str) -> None:
    async with fake_market() as (market, address):
        market.push("BTCUSD", "64250.00", "64251.00")
        settings, env = engine_settings(tmp_path, address, CFD_PRICE_STALE_MS="5000")
        issuer = user_issuer(settings)
        process = start(settings, env, tmp_path, 0)
        try:
            ids = await _session(settings, issuer, 10)
        finally:
            process.stop(signal.SIGKILL)
        journal = Journal.open(tmp_path / "engine" / "journal", fsync=False)
        last = journal.last_seq
        segment = journal.segments[-1].path
        journal.close()
        intact_seq, intact_digest = offline_replay(tmp_path, {})
        unacknowledged = frame(last + 1, b'["ApplyQuote",0,0,"BTCUSD",1,2]')
        if damage == "torn":
            garbage = unacknowledged[: len(unacknowledged) // 2]
        else:
            flipped = bytearray(unacknowledged)
            flipped[-5] ^= 0x20
            garbage = bytes(flipped)
        with segment.open("ab") as handle:
            handle.write(garbage)
        process = start(settings, env, tmp_path, 1)
        try:
            assert f"dropped {len(garbage)} bytes after seq {last}; never acknowledged" in (
                process.output()
            )
            seq, digest = recovered_line(process)
            assert (seq, digest) == (intact_seq, intact_digest)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.engine_port}") as ch:
                client = Client(ch, issuer)
                positions = await client.trading.ListPositions(
                    trading_pb2.ListPositionsRequest(), metadata=client.auth(USERS[0])
                )
                assert {p.id for p in positions.positions} >= set(ids)
        finally:
            process.stop()


async def test_a_torn_journal_tail_is_cut_and_the_state_kept(tmp_path: Path) -> None:
    await _damaged_tail(tmp_path, "torn")


async def test_a_flipped_byte_in_the_journal_tail_is_detected(tmp_path: Path) -> None:
    await _damaged_tail(tmp_path, "flipped")
