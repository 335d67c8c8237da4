"""Each WebSocket channel's data is the message CHANNEL_DATA names (the reference relies on it)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from google.protobuf import json_format, message

from cfd.v1 import common_pb2, exchange_pb2, market_pb2, trading_pb2
from edge.channels import CHANNEL_DATA, Channels
from edge.descriptors import load
from edge.hub import FeedSpec, Hub
from edge.upstream import Upstreams
from unit.edge.edge_fakes import addresses_of

QUOTE = common_pb2.Quote(symbol="BTCUSD", bid="64000.00", ask="64010.00", sequence=7)
CANDLE = market_pb2.StreamCandlesResponse(
    symbol="BTCUSD",
    interval=market_pb2.CANDLE_INTERVAL_1M,
    candle=market_pb2.Candle(open="1.00", high="2.00", low="0.50", close="1.50", tick_count=3),
)
POSITION = trading_pb2.Position(id="p-3", symbol="BTCUSD", side=common_pb2.SIDE_BUY, leverage=10)
POSITIONS = trading_pb2.StreamPositionsResponse(
    positions=[POSITION], account=trading_pb2.AccountSummary(balance="10.5"), sequence=4
)
BOOK = exchange_pb2.StreamOrderBookResponse(
    market="BTC_USD",
    sequence=9,
    snapshot=True,
    bids=[exchange_pb2.BookLevel(price="10.00", quantity="1.5")],
)
TRADES = exchange_pb2.StreamMarketTradesResponse(
    market="BTC_USD",
    trades=[
        exchange_pb2.MarketTrade(
            id="t1", price="10.00", quantity="0.5", taker_side=common_pb2.SIDE_BUY
        )
    ],
)
EVENT = trading_pb2.StreamEventsResponse(
    sequence=3, type=trading_pb2.EVENT_TYPE_POSITION_OPENED, position=POSITION
)


@pytest.fixture
async def channels() -> AsyncIterator[Channels]:
    # Nothing is dialled: the feeds are only built and asked to render items.
    upstreams = Upstreams(addresses_of("127.0.0.1:1"))
    try:
        yield Channels(load(), upstreams, Hub(backlog=10), "internal-token-0123456789")
    finally:
        await upstreams.close()


def data_of(spec: FeedSpec, item: Any, channel: str) -> message.Message:
    frames = spec.frames(item)
    assert len(frames) == 1
    frame = json.loads(frames[0].text)
    assert frame["channel"] == channel
    parsed = load().message_class(CHANNEL_DATA[channel])()
    json_format.ParseDict(frame["data"], parsed)  # unknown fields fail
    return parsed


async def test_every_channel_sends_the_message_channel_data_names(channels: Channels) -> None:
    cases = {
        "prices": (
            channels.prices("BTCUSD"),
            trading_pb2.StreamPricesResponse(
                symbol="BTCUSD", bid="64000.00", ask="64010.00", sequence=7
            ),
            QUOTE,
        ),
        "candles": (channels.candles("BTCUSD", "CANDLE_INTERVAL_1M"), CANDLE, CANDLE),
        "positions": (channels.positions("u1", "token"), POSITIONS, POSITIONS),
        "events": (channels.events("u1", "token"), EVENT, EVENT),
        "book": (channels.book("BTC_USD"), BOOK, BOOK),
        "trades": (channels.trades("BTC_USD"), TRADES, TRADES),
    }
    assert set(cases) == set(CHANNEL_DATA)
    for channel, (spec, item, expected) in cases.items():
        assert data_of(spec, item, channel).SerializeToString(
            deterministic=True
        ) == expected.SerializeToString(deterministic=True), channel
