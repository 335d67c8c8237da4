"""The spot exchange contract binds exactly API.md's REST surface and documents its errors."""

from __future__ import annotations

from edge.descriptors import load

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


def test_the_exchange_is_not_routed_until_a_service_serves_it() -> None:
    assert all(rpc.service != EXCHANGE for rpc in load().rpcs)
