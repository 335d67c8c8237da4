"""The `book` and `trades` WebSocket channels through the real edge against a fake exchange."""

from __future__ import annotations

from typing import Any

from cfd.v1 import common_pb2
from support import until
from unit.edge.edge_fakes import FakeMesh, RunningEdge
from unit.edge.test_ws import client, is_type, next_frame, on_channel, send

BUY, SELL = common_pb2.SIDE_BUY, common_pb2.SIDE_SELL


def book_of(market: str) -> dict[str, Any]:
    return {"op": "subscribe", "channel": "book", "market": market}


async def test_the_book_is_a_snapshot_then_changes(edge: RunningEdge, mesh: FakeMesh) -> None:
    mesh.exchange.rest("BTC_USD", BUY, "99.00", "1.000")
    async with client(edge) as ws:
        await send(ws, book_of("BTC_USD"))
        ack = await next_frame(ws, is_type("ack"))
        assert ack == {"type": "ack", "op": "subscribe", "channel": "book", "market": "BTC_USD"}
        snapshot = await next_frame(ws, on_channel("book"))
        mesh.exchange.rest("BTC_USD", SELL, "101.00", "0.500")
        change = await next_frame(ws, on_channel("book"))

    assert snapshot["data"] == {
        "market": "BTC_USD",
        "snapshot": True,
        "sequence": "1",
        "bids": [{"price": "99.00", "quantity": "1.000"}],
    }
    assert change["data"] == {
        "market": "BTC_USD",
        "sequence": "2",
        "asks": [{"price": "101.00", "quantity": "0.500"}],
    }


async def test_a_gap_in_the_book_sequence_resubscribes_and_sends_a_fresh_snapshot(
    edge: RunningEdge, mesh: FakeMesh
) -> None:
    async with client(edge) as ws:
        await send(ws, book_of("ETH_USD"))
        first = await next_frame(ws, on_channel("book"))
        mesh.exchange.skip("ETH_USD")
        mesh.exchange.rest("ETH_USD", BUY, "10.00", "2.000")
        fresh = await next_frame(ws, on_channel("book"))

    assert first["data"] == {"market": "ETH_USD", "snapshot": True}
    assert fresh["data"] == {
        "market": "ETH_USD",
        "snapshot": True,
        "sequence": "2",
        "bids": [{"price": "10.00", "quantity": "2.000"}],
    }
    assert mesh.exchange.book_streams_opened == 2


async def test_a_later_book_subscriber_gets_the_whole_current_book_at_once(
    edge: RunningEdge, mesh: FakeMesh
) -> None:
    async with client(edge) as first:
        await send(first, book_of("BTC_USD"))
        await next_frame(first, on_channel("book"))
        mesh.exchange.rest("BTC_USD", BUY, "98.00", "1.000")
        mesh.exchange.rest("BTC_USD", BUY, "99.00", "3.000")
        await next_frame(first, lambda f: f.get("data", {}).get("sequence") == "2")
        async with client(edge) as second:
            await send(second, book_of("BTC_USD"))
            joined = await next_frame(second, on_channel("book"))

    assert joined["data"] == {
        "market": "BTC_USD",
        "snapshot": True,
        "sequence": "2",
        "bids": [
            {"price": "99.00", "quantity": "3.000"},
            {"price": "98.00", "quantity": "1.000"},
        ],
    }
    assert mesh.exchange.book_streams_opened == 1


async def test_trades_carry_each_public_trade(edge: RunningEdge, mesh: FakeMesh) -> None:
    async with client(edge) as ws:
        await send(ws, {"op": "subscribe", "channel": "trades", "market": "BTC_USD", "id": 1})
        await next_frame(ws, is_type("ack"))
        await until(lambda: mesh.exchange.books["BTC_USD"].trade_queues != [])
        mesh.exchange.trade("BTC_USD", "100.00", "0.100", BUY, 1_700_000_000)
        mesh.exchange.trade("BTC_USD", "100.50", "0.200", SELL, 1_700_000_001)
        first = await next_frame(ws, on_channel("trades"))
        second = await next_frame(ws, on_channel("trades"))

    assert [t["price"] for f in (first, second) for t in f["data"]["trades"]] == [
        "100.00",
        "100.50",
    ]
    assert second["data"]["trades"][0]["takerSide"] == "SIDE_SELL"


async def test_an_unknown_market_or_a_missing_one_is_an_error(edge: RunningEdge) -> None:
    async with client(edge) as ws:
        await send(ws, {"op": "subscribe", "channel": "book"})
        assert (await next_frame(ws))["error"]["reason"] == "VALIDATION_FAILED"
        await send(ws, book_of("NOPE_USD"))
        await next_frame(ws, is_type("ack"))
        error = await next_frame(ws, is_type("error"))

    assert error["channel"] == "book"
    assert error["market"] == "NOPE_USD"
    assert error["error"]["reason"] == "UNKNOWN_MARKET"
