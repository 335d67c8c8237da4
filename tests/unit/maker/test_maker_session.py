"""The maker's rounds against a fake exchange on loopback: re-quoting, retries, reconnections."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from account_svc.issuer import TokenIssuer
from cfd.v1 import exchange_pb2_grpc
from exchange_fake import FakeExchange, RunningExchange, running_exchange
from maker.quotes import MarketSteps, QuoteConfig
from maker.session import MakerSession, MarketState

BTC = MarketSteps("BTC_USD", Decimal("0.01"), Decimal("0.001"))
CONFIG = QuoteConfig(
    levels=2, level_size=Decimal("10.1"), spread_bps=Decimal(10), step_bps=Decimal(10)
)


@pytest.fixture
async def exchange(tmp_path: Path) -> AsyncIterator[RunningExchange]:
    async with running_exchange(tmp_path) as running:
        yield running


def token_of(exchange: RunningExchange) -> str:
    return TokenIssuer(exchange.key).issue("maker")[0]


def resting(fake: FakeExchange) -> list[tuple[str, str, str]]:
    return [(o.client_order_id, o.price, o.quantity) for o in fake.open_orders("BTC_USD")]


def session_on(
    channel: grpc.aio.Channel,
    exchange: RunningExchange,
    markets: dict[str, MarketState] | None = None,
) -> MakerSession:
    token = token_of(exchange)
    session = MakerSession(
        exchange_pb2_grpc.ExchangeServiceStub(channel),
        lambda: (("authorization", f"Bearer {token}"),),
        CONFIG,
        "r1",
        markets,
    )
    session.add_market(BTC)
    return session


async def test_a_new_round_replaces_the_previous_quotes(exchange: RunningExchange) -> None:
    async with grpc.aio.insecure_channel(exchange.address) as channel:
        session = session_on(channel, exchange)
        await session.quote("BTC_USD", Decimal(1000))
        first = resting(exchange.exchange)
        await session.quote("BTC_USD", Decimal(1010))

    assert first == [
        ("mm-BTC_USD-r1-1-b1", "999.00", "0.010"),
        ("mm-BTC_USD-r1-2-b2", "998.00", "0.010"),
        ("mm-BTC_USD-r1-3-a1", "1001.00", "0.010"),
        ("mm-BTC_USD-r1-4-a2", "1002.00", "0.010"),
    ]
    assert resting(exchange.exchange) == [
        ("mm-BTC_USD-r1-5-b1", "1008.99", "0.010"),
        ("mm-BTC_USD-r1-6-b2", "1007.98", "0.010"),
        ("mm-BTC_USD-r1-7-a1", "1011.01", "0.010"),
        ("mm-BTC_USD-r1-8-a2", "1012.02", "0.010"),
    ]


async def test_a_repeated_round_places_and_cancels_nothing(exchange: RunningExchange) -> None:
    async with grpc.aio.insecure_channel(exchange.address) as channel:
        session = session_on(channel, exchange)
        await session.quote("BTC_USD", Decimal(1000))
        again = await session.sync("BTC_USD")

    assert again.empty
    assert len(resting(exchange.exchange)) == 4
    assert (exchange.exchange.place_calls, exchange.exchange.cancel_calls) == (4, 0)


async def test_a_round_around_the_same_mid_keeps_the_orders(exchange: RunningExchange) -> None:
    async with grpc.aio.insecure_channel(exchange.address) as channel:
        session = session_on(channel, exchange)
        await session.quote("BTC_USD", Decimal(1000))
        before = {o.id for o in exchange.exchange.open_orders("BTC_USD")}
        await session.quote("BTC_USD", Decimal(1000))

    assert {o.id for o in exchange.exchange.open_orders("BTC_USD")} == before
    assert exchange.exchange.place_calls == 4


async def test_a_filled_level_is_put_back_on_the_next_sync(exchange: RunningExchange) -> None:
    async with grpc.aio.insecure_channel(exchange.address) as channel:
        session = session_on(channel, exchange)
        await session.quote("BTC_USD", Decimal(1000))
        taken = exchange.exchange.open_orders("BTC_USD")[2]
        del exchange.exchange.books["BTC_USD"].orders[taken.id]
        steps = await session.sync("BTC_USD")

    assert [q.price for q in steps.place] == [Decimal("1001.00")]
    assert len(resting(exchange.exchange)) == 4


async def test_after_a_reconnection_the_books_are_put_right_from_the_listed_orders(
    tmp_path: Path,
) -> None:
    fake = FakeExchange()
    markets: dict[str, MarketState] = {}
    async with running_exchange(tmp_path, exchange=fake) as first:
        port, key = first.port, first.key
        async with grpc.aio.insecure_channel(first.address) as channel:
            await session_on(channel, first, markets).quote("BTC_USD", Decimal(1000))
    placed = {o.id for o in fake.open_orders("BTC_USD")}
    # While the exchange is down a stale order appears (as if a round had been half done).
    stale = fake.rest("BTC_USD", 1, "500.00", "0.010", owner="maker")
    async with (
        running_exchange(tmp_path, port=port, exchange=fake, key=key) as second,
        grpc.aio.insecure_channel(second.address) as channel,
    ):
        steps = await session_on(channel, second, markets).sync("BTC_USD")

    assert steps.cancel_after == (stale.id,) and steps.place == ()
    assert {o.id for o in fake.open_orders("BTC_USD")} == placed
    assert fake.place_calls == 4
