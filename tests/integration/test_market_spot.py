"""Spot candles and tickers from real trades on the engine, through the edge, across a restart
of the market service (and trades made while it was down)."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from cfd.v1 import engine_admin_pb2, engine_admin_pb2_grpc
from integration.test_edge_support import LiveMesh, live_mesh, signup
from support import ServiceProcess, wait_for


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveMesh]:
    with live_mesh(
        tmp_path_factory.mktemp("spot-candles"), CFD_CANDLE_FLUSH_MS="100"
    ) as running:
        yield running


def user_id(client: httpx.Client, token: str) -> str:
    reply = client.get("/v1/users/me", headers={"authorization": f"Bearer {token}"})
    assert reply.status_code == 200, reply.text
    found: str = reply.json()["user"]["id"]
    return found


def deposit_btc(mesh: LiveMesh, user: str, amount: str, key: str) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{mesh.env['CFD_ENGINE_PORT']}") as channel:
        engine_admin_pb2_grpc.EngineAdminServiceStub(channel).DepositAsset(
            engine_admin_pb2.DepositAssetRequest(
                user_id=user, asset="BTC", amount=amount, client_order_id=key
            ),
            metadata=(("x-cfd-internal-token", mesh.env["CFD_INTERNAL_TOKEN"]),),
            timeout=10,
        )


def trade(client: httpx.Client, seller: str, buyer: str, price: str, quantity: str) -> None:
    """Rest a sell of `seller` and take it with a market buy of `buyer`."""
    for token, order in (
        (seller, {"side": "SIDE_SELL", "type": "SPOT_ORDER_TYPE_LIMIT", "price": price}),
        (buyer, {"side": "SIDE_BUY", "type": "SPOT_ORDER_TYPE_MARKET"}),
    ):
        reply = client.post(
            "/v1/spot/orders",
            json={"market": "BTC_USD", "quantity": quantity, **order},
            headers={"authorization": f"Bearer {token}"},
        )
        assert reply.status_code == 200, reply.text


def candle(client: httpx.Client) -> dict[str, Any] | None:
    reply = client.get(
        "/v1/instruments/BTC_USD/candles", params={"interval": "CANDLE_INTERVAL_1D"}
    )
    assert reply.status_code == 200, reply.text
    candles: list[dict[str, Any]] = reply.json().get("candles", [])
    return candles[-1] if candles else None


def next_candle(ws: ClientConnection, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Return the first candle the `candles` channel sends that is `wanted`."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        frame = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if frame.get("channel") == "candles" and "data" in frame:
            found: dict[str, Any] = frame["data"]["candle"]
            if wanted(found):
                return found
    raise AssertionError("no such candle on the candles channel")


def test_trades_make_candles_and_a_ticker_that_survive_a_market_restart(
    mesh: LiveMesh, tmp_path: Path
) -> None:
    with httpx.Client(base_url=mesh.url, timeout=10) as client:
        seller, buyer = signup(client, "seller@example.com"), signup(client, "buyer@example.com")
        deposit_btc(mesh, user_id(client, seller), "1", "seed-btc")
        moved = client.post(
            "/v1/wallet:transfer",
            json={"amount": "4000", "direction": "TRANSFER_DIRECTION_TO_SPOT"},
            headers={"authorization": f"Bearer {buyer}"},
        )
        assert moved.status_code == 200, moved.text
        trade(client, seller, buyer, "60000.00", "0.0100")
        trade(client, seller, buyer, "60200.00", "0.0200")
        trade(client, seller, buyer, "59900.00", "0.0050")

        first = wait_for(lambda: (c := candle(client)) and c.get("tickCount") == "3" and c)
        assert (first["open"], first["high"], first["low"], first["close"]) == (
            "60000.00",
            "60200.00",
            "59900.00",
            "59900.00",
        )
        assert first["volume"] == "0.035"
        ticker = client.get("/v1/instruments/BTC_USD/ticker")
        assert ticker.status_code == 200, ticker.text
        figures = ticker.json()["ticker"]
        assert (figures["symbol"], figures["last"], figures["change"], figures["volume"]) == (
            "BTC_USD",
            "59900.00",
            "-100.00",
            "0.035",
        )
        assert figures["bid"] == ""

        # Down while one more trade happens: caught up after the restart, none counted twice.
        assert mesh.processes["market"].stop(signal.SIGTERM) == 0
        trade(client, seller, buyer, "60100.00", "0.0010")
        market = ServiceProcess(["market"], mesh.env, tmp_path / "market-again.log")
        mesh.processes["market"] = market
        market.wait_grpc_ready(int(mesh.env["CFD_MARKET_PORT"]), timeout=60)

        again = wait_for(lambda: (c := candle(client)) and c.get("tickCount") == "4" and c)
        assert (again["high"], again["close"], again["volume"]) == ("60200.00", "60100.00", "0.036")
        with connect(mesh.ws_url) as ws:
            ws.send(json.dumps({"op": "subscribe", "channel": "candles", "symbol": "BTC_USD",
                                "interval": "CANDLE_INTERVAL_1D"}))  # fmt: skip
            trade(client, seller, buyer, "60150.00", "0.0020")
            streamed = next_candle(ws, lambda c: c["close"] == "60150.00")
        assert (streamed["tickCount"], streamed["volume"]) == ("5", "0.038")
        last = wait_for(lambda: (c := candle(client)) and c.get("tickCount") == "5" and c)
        assert (last["close"], last["volume"]) == ("60150.00", "0.038")
        unknown = client.get("/v1/instruments/DOGE_USD/candles")
        assert unknown.status_code == 400 and "UNKNOWN_SYMBOL" in unknown.text
