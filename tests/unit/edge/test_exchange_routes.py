"""The spot exchange contract binds API.md's REST surface, and the edge serves and documents it."""

from __future__ import annotations

import json

import httpx

from edge.descriptors import load
from edge.openapi import build_openapi
from edge.rest import routes_of
from unit.edge.edge_fakes import FakeMesh, RunningEdge

EXCHANGE = "cfd.v1.ExchangeService"

# API.md "Spot exchange": RPC -> (verb, path, body); the streams follow the ":stream" style.
EXPECTED = {
    "ListMarkets": ("GET", "/v1/markets", ""),
    "GetOrderBook": ("GET", "/v1/markets/{market}/book", ""),
    "ListMarketTrades": ("GET", "/v1/markets/{market}/trades", ""),
    "GetWallet": ("GET", "/v1/wallet", ""),
    "TransferFunds": ("POST", "/v1/wallet:transfer", "*"),
    "PlaceSpotOrder": ("POST", "/v1/spot/orders", "*"),
    "CancelSpotOrder": ("POST", "/v1/spot/orders/{order_id}:cancel", "*"),
    "ListSpotOrders": ("GET", "/v1/spot/orders", ""),
    "ListSpotFills": ("GET", "/v1/spot/fills", ""),
    "StreamOrderBook": ("GET", "/v1/markets/{market}/book:stream", ""),
    "StreamMarketTrades": ("GET", "/v1/markets/{market}/trades:stream", ""),
}


def test_every_exchange_rpc_has_its_api_md_binding_and_an_errors_comment() -> None:
    contracts = load(services=(EXCHANGE,))
    found = {
        rpc.name: (rpc.bindings[0].method, rpc.bindings[0].template.text, rpc.bindings[0].body)
        for rpc in contracts.rpcs
    }
    assert found == EXPECTED
    for rpc in contracts.rpcs:
        assert "Errors:" in rpc.comment, rpc.name
        assert rpc.server_streaming == rpc.name.startswith("Stream")
    assert contracts.service_comments[EXCHANGE]


def test_the_edge_routes_the_exchange_and_documents_it() -> None:
    contracts = load()
    routed = {rpc.name for rpc in contracts.rpcs if rpc.service == EXCHANGE}
    assert routed == set(EXPECTED)
    paths = build_openapi(contracts, routes_of(contracts.rpcs))["paths"]
    book = paths["/v1/markets/{market}/book"]["get"]
    assert "security" not in book
    assert paths["/v1/spot/orders"]["post"]["security"] == [{"bearerAuth": []}]
    assert "security" in paths["/v1/wallet"]["get"]


async def test_a_limit_order_through_the_edge_shows_in_the_public_book(
    edge: RunningEdge, mesh: FakeMesh
) -> None:
    auth = {"authorization": f"Bearer {mesh.token()}"}
    order = {
        "market": "BTC_USD",
        "side": "SIDE_BUY",
        "type": "SPOT_ORDER_TYPE_LIMIT",
        "price": "100.50",
        "quantity": "0.250",
    }
    async with httpx.AsyncClient(base_url=edge.url, timeout=10) as http:
        placed = await http.post("/v1/spot/orders", json=order, headers=auth)
        book = await http.get("/v1/markets/BTC_USD/book", params={"depth": "5"})
        anonymous = await http.post("/v1/spot/orders", json=order)
        unknown = await http.get("/v1/markets/NOPE/book")
        mine = await http.get("/v1/spot/orders", headers=auth)

    assert placed.status_code == 200, placed.text
    assert placed.json()["order"]["status"] == "SPOT_ORDER_STATUS_OPEN"
    assert book.status_code == 200
    assert book.json() == {
        "market": "BTC_USD",
        "bids": [{"price": "100.50", "quantity": "0.250"}],
        "asks": [],
        "sequence": "1",
    }
    assert anonymous.status_code == 401
    assert unknown.status_code == 400
    assert unknown.json()["details"][0]["reason"] == "UNKNOWN_MARKET"
    assert [o["id"] for o in mine.json()["orders"]] == [placed.json()["order"]["id"]]


async def test_a_book_stream_through_the_edge_is_ndjson_snapshot_then_changes(
    edge: RunningEdge, mesh: FakeMesh
) -> None:
    auth = {"authorization": f"Bearer {mesh.token()}"}
    order = {
        "market": "ETH_USD",
        "side": "SIDE_SELL",
        "type": "SPOT_ORDER_TYPE_LIMIT",
        "price": "20.00",
        "quantity": "1.000",
    }
    async with (
        httpx.AsyncClient(base_url=edge.url, timeout=10) as http,
        http.stream("GET", "/v1/markets/ETH_USD/book:stream") as stream,
    ):
        lines = stream.aiter_lines()
        first = json.loads(await anext(lines))
        await http.post("/v1/spot/orders", json=order, headers=auth)
        second = json.loads(await anext(lines))

    assert first == {"market": "ETH_USD", "snapshot": True, "sequence": "0", "bids": [], "asks": []}
    assert second == {
        "market": "ETH_USD",
        "snapshot": False,
        "sequence": "1",
        "bids": [],
        "asks": [{"price": "20.00", "quantity": "1.000"}],
    }
