"""`cfd maker` against the real mesh (manual feed): full books around the published price,
re-quoting as it moves, putting back what a taker filled, and an engine killed under it."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from integration.test_edge_support import LiveMesh, live_mesh, maker_serving, signup
from launcher.status import scrape
from maker.config import DEFAULT_EMAIL, PASSWORD_FILE
from support import ServiceProcess, wait_for

LEVELS = 3
PRICES = {
    "BTC_USD": ("BTCUSD", "60000.00", "60010.00"),
    "ETH_USD": ("ETHUSD", "3000.00", "3000.60"),
    "SOL_USD": ("SOLUSD", "150.000", "150.030"),
}
# Around the mid 60005.00: 5, 10 and 15 bps out, bids down and asks up to the cent; each level
# worth 1000 USD: 1000 / 60005 = 0.01666..., floored to the lot of 0.0001.
BTC_BIDS = [("59974.99", "0.0166"), ("59944.99", "0.0166"), ("59914.99", "0.0166")]
BTC_ASKS = [("60035.01", "0.0166"), ("60065.01", "0.0166"), ("60095.01", "0.0166")]


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveMesh]:
    with live_mesh(
        tmp_path_factory.mktemp("maker"),
        with_maker=True,
        CFD_MAKER_LEVELS=str(LEVELS),
        CFD_MAKER_LEVEL_SIZE="1000",
        CFD_MAKER_SPREAD_BPS="5",
        CFD_MAKER_STEP_BPS="5",
        CFD_MAKER_REQUOTE_BPS="5",
        CFD_MAKER_REFRESH_MS="300",
        # No trades of its own: the books must stay exactly as quoted.
        CFD_MAKER_TRADE_MS="0",
        CFD_FEED_STALE_MS="600000",
    ) as running:
        running.publish(*PRICES.values())
        yield running


def book(mesh: LiveMesh, market: str) -> dict[str, list[tuple[str, str]]]:
    reply = httpx.get(f"{mesh.url}/v1/markets/{market}/book", timeout=10)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return {
        side: [(level["price"], level["quantity"]) for level in body.get(side, [])]
        for side in ("bids", "asks")
    }


def full(mesh: LiveMesh, market: str) -> dict[str, list[tuple[str, str]]] | None:
    """Return the book of `market` once it has LEVELS levels a side of one order each."""
    found = book(mesh, market)
    sides = found["bids"], found["asks"]
    if all(len(side) == LEVELS and len({q for _, q in side}) == 1 for side in sides):
        return found
    return None


def maker_token(mesh: LiveMesh) -> str:
    password = (mesh.data_dir / PASSWORD_FILE).read_text()
    reply = httpx.post(
        f"{mesh.url}/v1/auth/signin",
        json={"email": DEFAULT_EMAIL, "password": password},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    token: str = reply.json()["accessToken"]
    return token


def maker_orders(mesh: LiveMesh, token: str) -> list[dict[str, Any]]:
    reply = httpx.get(
        f"{mesh.url}/v1/spot/orders",
        headers={"authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    orders: list[dict[str, Any]] = reply.json().get("orders", [])
    return orders


def maker_figure(mesh: LiveMesh, name: str) -> float:
    samples = scrape(f"127.0.0.1:{mesh.env['CFD_MAKER_METRICS_PORT']}")
    return sum(value for _, value in samples.get(name, []))


def test_the_maker_fills_both_sides_of_every_book_around_the_price(mesh: LiveMesh) -> None:
    books = {market: wait_for(partial(full, mesh, market), 30) for market in PRICES}

    assert books["BTC_USD"] == {"bids": BTC_BIDS, "asks": BTC_ASKS}
    for market, (_, bid, ask) in PRICES.items():
        mid = (Decimal(bid) + Decimal(ask)) / 2
        best_bid, best_ask = books[market]["bids"][0][0], books[market]["asks"][0][0]
        assert Decimal(best_bid) < mid < Decimal(best_ask), market


def test_the_maker_quotes_again_when_the_price_moves(mesh: LiveMesh) -> None:
    wait_for(lambda: full(mesh, "BTC_USD"), 30)
    mesh.publish(("BTCUSD", "61000.00", "61010.00"))

    def moved() -> dict[str, list[tuple[str, str]]] | None:
        found = full(mesh, "BTC_USD")
        return found if found is not None and found["bids"][0][0] == "60974.49" else None

    found = wait_for(moved, 30)
    # Mid 61005.00; 1000 / 61005 = 0.01639... BTC a level.
    assert found["bids"] == [("60974.49", "0.0163"), ("60943.99", "0.0163"), ("60913.49", "0.0163")]
    assert found["asks"] == [("61035.51", "0.0163"), ("61066.01", "0.0163"), ("61096.51", "0.0163")]
    mesh.publish(PRICES["BTC_USD"])
    wait_for(lambda: full(mesh, "BTC_USD") == {"bids": BTC_BIDS, "asks": BTC_ASKS}, 30)


def test_a_level_a_taker_filled_is_put_back(mesh: LiveMesh) -> None:
    wait_for(lambda: full(mesh, "BTC_USD") == {"bids": BTC_BIDS, "asks": BTC_ASKS}, 30)
    with httpx.Client(base_url=mesh.url, timeout=10) as client:
        token = signup(client, "taker@example.com")
        bearer = {"authorization": f"Bearer {token}"}
        moved = client.post(
            "/v1/wallet:transfer",
            json={"amount": "1000", "direction": "TRANSFER_DIRECTION_TO_SPOT"},
            headers=bearer,
        )
        assert moved.status_code == 200, moved.text
        bought = client.post(
            "/v1/spot/orders",
            json={
                "market": "BTC_USD",
                "side": "SIDE_BUY",
                "type": "SPOT_ORDER_TYPE_MARKET",
                "quantity": "0.0100",
            },
            headers=bearer,
        )
    assert bought.status_code == 200, bought.text
    assert [(f["price"], f["quantity"]) for f in bought.json()["fills"]] == [("60035.01", "0.0100")]

    wait_for(lambda: full(mesh, "BTC_USD") == {"bids": BTC_BIDS, "asks": BTC_ASKS}, 30)


def test_the_maker_resumes_after_an_engine_kill_without_duplicating_orders(
    mesh: LiveMesh, tmp_path: Path
) -> None:
    wait_for(lambda: full(mesh, "BTC_USD") == {"bids": BTC_BIDS, "asks": BTC_ASKS}, 30)
    for market in PRICES:
        wait_for(partial(full, mesh, market), 30)
    token = maker_token(mesh)
    before = {order["id"] for order in maker_orders(mesh, token)}
    assert len(before) == 2 * LEVELS * len(PRICES)
    placed = maker_figure(mesh, "cfd_maker_orders_placed_total")
    reconnects = maker_figure(mesh, "cfd_maker_reconnects_total")

    mesh.processes["engine"].stop(signal.SIGKILL)
    wait_for(lambda: not maker_serving(mesh.env), 30)
    engine = ServiceProcess(["engine"], mesh.env, tmp_path / "engine-again.log")
    mesh.processes["engine"] = engine
    engine.wait_grpc_ready(int(mesh.env["CFD_ENGINE_PORT"]), timeout=60)
    # SERVING again only once it has put its books right from the listed orders.
    wait_for(lambda: maker_serving(mesh.env), 60)

    assert maker_figure(mesh, "cfd_maker_reconnects_total") > reconnects
    assert {order["id"] for order in maker_orders(mesh, token)} == before
    assert maker_figure(mesh, "cfd_maker_orders_placed_total") == placed
    assert full(mesh, "BTC_USD") == {"bids": BTC_BIDS, "asks": BTC_ASKS}

    # And it goes on quoting.
    mesh.publish(("BTCUSD", "61000.00", "61010.00"))
    wait_for(lambda: (f := full(mesh, "BTC_USD")) is not None and f["bids"][0][0] == "60974.49", 30)
    assert len(maker_orders(mesh, token)) == 2 * LEVELS * len(PRICES)
