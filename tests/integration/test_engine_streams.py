"""The engine's server streams on a real server: prices, positions, and account events that
resume from a sequence number with every event exactly once, from memory or from SQL, and
across a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from cfd.v1 import common_pb2, trading_pb2
from engine_svc.config import EngineConfig
from integration.test_engine_harness import (
    Client,
    Engine,
    FakeMarket,
    engine_settings,
    fake_market,
    start_engine,
    user_issuer,
)
from mesh.auth import INTERNAL_TOKEN_HEADER
from mesh.config import Settings
from support import until

Key = tuple[int, int]


async def _next(call: Any) -> Any:
    """Return the next message of a stream within 10 s."""
    item = await asyncio.wait_for(call.read(), 10)
    assert item is not grpc.aio.EOF
    return item


async def _read(call: Any, count: int) -> list[trading_pb2.StreamEventsResponse]:
    events: list[trading_pb2.StreamEventsResponse] = []
    while len(events) < count:
        item = await asyncio.wait_for(call.read(), 10)
        assert item is not grpc.aio.EOF
        events.append(item)
    return events


def _keys(events: list[trading_pb2.StreamEventsResponse]) -> list[Key]:
    return [(event.sequence, event.index) for event in events]


async def _trade(client: Client, user: str, rounds: int) -> None:
    md = client.auth(user)
    for _ in range(rounds):
        opened = await client.trading.OpenPosition(
            trading_pb2.OpenPositionRequest(
                symbol="BTCUSD", side=common_pb2.SIDE_BUY, leverage=10, quantity="0.001"
            ),
            metadata=md,
        )
        await client.trading.ClosePosition(
            trading_pb2.ClosePositionRequest(position_id=opened.position.id), metadata=md
        )


async def _all_events(client: Client, user: str, expected: int) -> list[Key]:
    call = client.trading.StreamEvents(
        trading_pb2.StreamEventsRequest(from_sequence=0), metadata=client.auth(user)
    )
    try:
        return _keys(await _read(call, expected))
    finally:
        call.cancel()


async def _resume_in_pieces(client: Client, user: str, total: int, piece: int) -> list[Key]:
    """Read the stream in pieces, reconnecting after the last complete seq each time."""
    received: list[Key] = []
    after = 0
    while len(received) < total:
        call = client.trading.StreamEvents(
            trading_pb2.StreamEventsRequest(from_sequence=after), metadata=client.auth(user)
        )
        wanted = min(piece, total - len(received))
        events = _keys(await _read(call, wanted))
        call.cancel()
        if len(received) + len(events) < total:
            # The last seq may be incomplete: keep only whole seqs and resume after them.
            last = events[-1][0]
            whole = [key for key in events if key[0] < last]
            if whole:
                events = whole
        received.extend(events)
        after = received[-1][0]
    return received


@pytest.fixture
async def market() -> AsyncIterator[tuple[FakeMarket, str]]:
    async with fake_market() as running:
        running[0].push("BTCUSD", "64250.00", "64251.00")
        yield running


async def _start(settings: Settings, db_url: str, ring: int) -> Engine:
    engine = await start_engine(
        settings, EngineConfig(price_stale_ms=5000, event_ring=ring), db_url=db_url
    )

    async def priced() -> bool:
        return engine.runtime.core.get_quote("BTCUSD") is not None

    await until(priced)
    return engine


@pytest.mark.parametrize("ring", [4096, 3])
async def test_resuming_event_streams_receive_every_event_exactly_once(
    tmp_path: Path, database_url: str, market: tuple[FakeMarket, str], ring: int
) -> None:
    settings, _ = engine_settings(tmp_path, market[1])
    engine = await _start(settings, database_url, ring)
    try:
        async with grpc.aio.insecure_channel(engine.address) as channel:
            client = Client(channel, user_issuer(settings))
            await client.create_account("alice", "100000")
            await client.create_account("bob", "100000")
            live = client.trading.StreamEvents(
                trading_pb2.StreamEventsRequest(), metadata=client.auth("alice")
            )
            await asyncio.gather(_trade(client, "alice", 6), _trade(client, "bob", 3))
            # One deposit event, then 4 per round (reserve, open, close, settle).
            total = 1 + 6 * 4
            streamed = _keys(await _read(live, total))
            live.cancel()
            assert streamed == sorted(set(streamed))
            everything = await _all_events(client, "alice", total)
            assert everything == streamed
            assert await _resume_in_pieces(client, "alice", total, 5) == everything
            bob = await _all_events(client, "bob", 1 + 3 * 4)
            # Each account sees only its own events.
            assert not {k[0] for k in bob} & {k[0] for k in everything}
    finally:
        await engine.shutdown()


async def test_event_streams_resume_across_a_restart(
    tmp_path: Path, database_url: str, market: tuple[FakeMarket, str]
) -> None:
    settings, _ = engine_settings(tmp_path, market[1])
    engine = await _start(settings, database_url, 8)
    async with grpc.aio.insecure_channel(engine.address) as channel:
        client = Client(channel, user_issuer(settings))
        await client.create_account("alice", "100000")
        await _trade(client, "alice", 4)
        before = await _all_events(client, "alice", 1 + 4 * 4)
    await engine.shutdown()
    engine = await _start(settings, database_url, 8)
    try:
        async with grpc.aio.insecure_channel(engine.address) as channel:
            client = Client(channel, user_issuer(settings))
            resume_after = before[6][0]
            call = client.trading.StreamEvents(
                trading_pb2.StreamEventsRequest(from_sequence=resume_after),
                metadata=client.auth("alice"),
            )
            await _trade(client, "alice", 2)
            expected = [key for key in before if key[0] > resume_after]
            tail = _keys(await _read(call, len(expected) + 8))
            call.cancel()
            after = await _all_events(client, "alice", len(before) + 8)
            assert after[: len(before)] == before
            assert tail == [key for key in after if key[0] > resume_after]
            assert tail[: len(expected)] == expected
    finally:
        await engine.shutdown()


async def test_price_and_position_streams_start_with_the_current_state(
    tmp_path: Path, market: tuple[FakeMarket, str]
) -> None:
    settings, _ = engine_settings(tmp_path, market[1])
    engine = await _start(settings, f"sqlite+aiosqlite:///{tmp_path / 'h.sqlite3'}", 4096)
    try:
        async with grpc.aio.insecure_channel(engine.address) as channel:
            client = Client(channel, user_issuer(settings))
            await client.create_account("alice", "100000")
            md = client.auth("alice")
            prices = client.trading.StreamPrices(
                trading_pb2.StreamPricesRequest(symbols=["BTCUSD"]), metadata=md
            )
            first = await _next(prices)
            assert (first.symbol, first.bid, first.ask) == ("BTCUSD", "64250.00", "64251.00")
            # The edge reads the same quotes as an internal caller, without a user token.
            internal = ((INTERNAL_TOKEN_HEADER, settings.internal_token),)
            shared = client.trading.StreamPrices(
                trading_pb2.StreamPricesRequest(symbols=["BTCUSD"]), metadata=internal
            )
            assert await _next(shared) == first
            shared.cancel()
            anonymous = client.trading.StreamPrices(trading_pb2.StreamPricesRequest())
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await anonymous.read()
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            market[0].push("BTCUSD", "64260.00", "64261.00")
            market[0].push("ETHUSD", "3000.00", "3000.10")
            second = await _next(prices)
            assert (second.symbol, second.bid) == ("BTCUSD", "64260.00")
            assert second.sequence > first.sequence
            prices.cancel()
            positions = client.trading.StreamPositions(
                trading_pb2.StreamPositionsRequest(), metadata=md
            )
            initial = await _next(positions)
            assert list(initial.positions) == []
            assert initial.account.balance == "100000.00"
            await client.trading.OpenPosition(
                trading_pb2.OpenPositionRequest(
                    symbol="BTCUSD", side=common_pb2.SIDE_BUY, leverage=10, quantity="0.01"
                ),
                metadata=md,
            )
            changed = await _next(positions)
            assert [p.symbol for p in changed.positions] == ["BTCUSD"]
            assert changed.sequence > initial.sequence
            market[0].push("BTCUSD", "64300.00", "64301.00")
            moved = await _next(positions)
            assert moved.positions[0].unrealized_pnl != changed.positions[0].unrealized_pnl
            positions.cancel()
            bad = client.trading.StreamPrices(
                trading_pb2.StreamPricesRequest(symbols=["NOPE"]), metadata=md
            )
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await bad.read()
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            negative = client.trading.StreamEvents(
                trading_pb2.StreamEventsRequest(from_sequence=-1), metadata=md
            )
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await negative.read()
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await engine.shutdown()
