"""The maker's rounds against a fake exchange on loopback: re-quoting, retries, restarts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from account_svc.issuer import TokenIssuer
from cfd.v1 import exchange_pb2_grpc
from exchange_fake import FakeExchange, RunningExchange, running_exchange
from maker.quotes import MarketSteps, QuoteConfig
from maker.session import MakerSession, with_backoff

BTC = MarketSteps("BTC_USD", Decimal("0.01"), Decimal("0.001"))
CONFIG = QuoteConfig(levels=2, spread_bps=Decimal(10), level_quantity=Decimal("0.010"))


@pytest.fixture
async def exchange(tmp_path: Path) -> AsyncIterator[RunningExchange]:
    async with running_exchange(tmp_path) as running:
        yield running


def token_of(exchange: RunningExchange) -> str:
    return TokenIssuer(exchange.key).issue("maker")[0]


def resting(fake: FakeExchange) -> list[tuple[str, str, str]]:
    return [(o.client_order_id, o.price, o.quantity) for o in fake.open_orders("BTC_USD")]


async def test_a_new_round_replaces_the_previous_quotes(exchange: RunningExchange) -> None:
    async with grpc.aio.insecure_channel(exchange.address) as channel:
        session = MakerSession(
            exchange_pb2_grpc.ExchangeServiceStub(channel), token_of(exchange), CONFIG
        )
        await session.quote(BTC, Decimal(1000))
        first = resting(exchange.exchange)
        await session.quote(BTC, Decimal(1010))

    assert first == [
        ("mm-BTC_USD-1-b1", "999.00", "0.010"),
        ("mm-BTC_USD-1-b2", "998.00", "0.010"),
        ("mm-BTC_USD-1-a1", "1001.00", "0.010"),
        ("mm-BTC_USD-1-a2", "1002.00", "0.010"),
    ]
    assert resting(exchange.exchange) == [
        ("mm-BTC_USD-2-b1", "1008.99", "0.010"),
        ("mm-BTC_USD-2-b2", "1007.98", "0.010"),
        ("mm-BTC_USD-2-a1", "1011.01", "0.010"),
        ("mm-BTC_USD-2-a2", "1012.02", "0.010"),
    ]


async def test_a_repeated_round_places_nothing_twice(exchange: RunningExchange) -> None:
    async with grpc.aio.insecure_channel(exchange.address) as channel:
        session = MakerSession(
            exchange_pb2_grpc.ExchangeServiceStub(channel), token_of(exchange), CONFIG
        )
        await session.quote(BTC, Decimal(1000))
        await session.reconcile("BTC_USD")

    assert len(resting(exchange.exchange)) == 4
    assert exchange.exchange.place_calls == 8


async def test_the_maker_waits_out_a_restart_and_then_puts_its_orders_right(
    tmp_path: Path,
) -> None:
    fake = FakeExchange()
    async with running_exchange(tmp_path, exchange=fake) as first:
        port, key = first.port, first.key
        channel = grpc.aio.insecure_channel(first.address)
        session = MakerSession(
            exchange_pb2_grpc.ExchangeServiceStub(channel), token_of(first), CONFIG
        )
        await session.quote(BTC, Decimal(1000))
    # While the exchange is down a stale order appears (as if a round had been half done).
    stale = fake.rest("BTC_USD", 1, "500.00", "0.010", owner="maker")
    stop = asyncio.Event()
    retrying = asyncio.create_task(with_backoff(session, ["BTC_USD"], stop))
    async with running_exchange(tmp_path, port=port, exchange=fake, key=key):
        await asyncio.wait_for(retrying, 15)
    await channel.close()

    assert stale.id not in {o.id for o in fake.open_orders("BTC_USD")}
    assert [c for c, _, _ in resting(fake)] == [
        "mm-BTC_USD-1-b1",
        "mm-BTC_USD-1-b2",
        "mm-BTC_USD-1-a1",
        "mm-BTC_USD-1-a2",
    ]
