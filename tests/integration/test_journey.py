"""A user's whole journey over REST through `cfd edge`, with the real mesh behind it.

Every balance is checked against API.md's formulas, computed from the fill prices the API
returns. Prices move only through MarketDataAdminService.PublishTicks (manual feed).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import httpx
import jwt
import pytest
from websockets.sync.client import ClientConnection, connect

from integration.test_edge_support import PASSWORD, LiveMesh, live_mesh, signup
from mesh.tokens import KEYS_DIR_NAME, PRIVATE_KEY_FILE_NAME, SigningKey
from support import wait_for

USD = Decimal("0.000001")
Json = dict[str, Any]


def D(value: str) -> Decimal:
    return Decimal(value)


def margin_for(quantity: Decimal, price: Decimal, leverage: int) -> Decimal:
    """API.md: notional / leverage rounded up to 1e-6 USD."""
    return (quantity * price / leverage).quantize(USD, rounding=ROUND_CEILING)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveMesh]:
    data_dir = tmp_path_factory.mktemp("journey")
    with live_mesh(data_dir, CFD_LIMIT_SIGNIN_PER_EMAIL_AND_ADDRESS="3/3600") as running:
        yield running


@pytest.fixture
def http(mesh: LiveMesh) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mesh.url, timeout=15) as client:
        yield client


class User:
    """A signed-up user calling the REST API."""

    def __init__(self, http: httpx.Client, email: str) -> None:
        self.http = http
        self.token = signup(http, email)
        self.headers = {"authorization": f"Bearer {self.token}"}

    def get(self, path: str, **params: str) -> Json:
        response = self.http.get(path, params=params, headers=self.headers)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        body: Json = response.json()
        return body

    def send(self, method: str, path: str, body: Json) -> Json:
        response = self.http.request(method, path, json=body, headers=self.headers)
        assert response.status_code == 200, (
            f"{method} {path}: {response.status_code} {response.text}"
        )
        answer: Json = response.json()
        return answer

    def balance(self) -> Decimal:
        return D(self.get("/v1/account")["balance"])


def test_the_full_journey_over_rest(mesh: LiveMesh, http: httpx.Client) -> None:
    user = User(http, "journey@example.com")
    account = user.get("/v1/account")
    assert D(account["balance"]) == 5000
    assert account["currency"] == "USD"
    assert user.get("/v1/users/me")["user"]["email"] == "journey@example.com"
    mesh.publish(("ETHUSD", "3000.00", "3001.00"))
    mesh.publish_and_wait("BTCUSD", "60000.00", "60010.00", user.token)
    prices = {q["symbol"]: q for q in user.get("/v1/prices")["prices"]}
    assert (prices["BTCUSD"]["bid"], prices["BTCUSD"]["ask"]) == ("60000.00", "60010.00")
    balance = D("5000")

    # Open by quantity with TP/SL: a buy fills at the ask.
    btc = user.send(
        "POST",
        "/v1/positions",
        {
            "symbol": "BTCUSD",
            "side": "SIDE_BUY",
            "leverage": 10,
            "quantity": "0.0100",
            "takeProfit": "61000.00",
            "stopLoss": "59000.00",
            "clientOrderId": "open-btc-1",
        },
    )["position"]
    assert D(btc["entryPrice"]) == D("60010.00")
    btc_margin = margin_for(D("0.01"), D(btc["entryPrice"]), 10)
    assert D(btc["margin"]) == btc_margin
    balance -= btc_margin
    assert user.balance() == balance
    # Buy liquidation: entry - (margin - 0) / quantity, rounded up to the tick.
    assert D(btc["liquidationPrice"]) == D("60010.00") - btc_margin / D("0.01")
    # The same clientOrderId returns the first result and changes nothing.
    again = user.send(
        "POST",
        "/v1/positions",
        {
            "symbol": "BTCUSD",
            "side": "SIDE_BUY",
            "leverage": 10,
            "quantity": "0.0100",
            "takeProfit": "61000.00",
            "stopLoss": "59000.00",
            "clientOrderId": "open-btc-1",
        },
    )["position"]
    assert again["id"] == btc["id"]
    assert user.balance() == balance

    # Open by margin: a sell fills at the bid; quantity = floor to lot of margin x lev / price.
    eth = user.send(
        "POST",
        "/v1/positions",
        {"symbol": "ETHUSD", "side": "SIDE_SELL", "leverage": 20, "margin": "100"},
    )["position"]
    eth_entry = D(eth["entryPrice"])
    assert eth_entry == D("3000.00")
    eth_quantity = (D("100") * 20 / eth_entry).quantize(D("0.001"), rounding=ROUND_FLOOR)
    assert D(eth["quantity"]) == eth_quantity
    eth_margin = margin_for(eth_quantity, eth_entry, 20)
    assert D(eth["margin"]) == eth_margin
    balance -= eth_margin
    assert user.balance() == balance

    # Modify: new take profit, stop loss cleared.
    modified = user.send(
        "PATCH", f"/v1/positions/{btc['id']}", {"takeProfit": "62000.00", "stopLoss": ""}
    )["position"]
    assert D(modified["takeProfit"]) == D("62000.00")
    assert modified.get("stopLoss", "") == ""

    # Partial close of the short at the ask.
    half = eth_quantity / 2
    closed = user.send("POST", f"/v1/positions/{eth['id']}:close", {"quantity": str(half)})
    close_price = D(closed["closePrice"])
    assert close_price == D("3001.00")
    realized = (eth_entry - close_price) * half
    assert D(closed["realizedPnl"]) == realized
    released = (eth_margin * half / eth_quantity).quantize(USD, rounding=ROUND_FLOOR)
    balance += released + realized
    assert user.balance() == balance
    eth_margin -= released
    remaining = user.get(f"/v1/positions/{eth['id']}")["position"]
    assert D(remaining["quantity"]) == eth_quantity - half
    assert D(remaining["margin"]) == eth_margin

    # Add margin: the buy's liquidation price moves away.
    added = user.send("POST", f"/v1/positions/{btc['id']}:addMargin", {"amount": "40"})["position"]
    btc_margin += D("40")
    balance -= D("40")
    assert D(added["margin"]) == btc_margin
    assert D(added["liquidationPrice"]) == D("60010.00") - btc_margin / D("0.01")
    assert user.balance() == balance

    # Pending orders: one placed and filled by the market, one placed and cancelled.
    limit = user.send(
        "POST",
        "/v1/orders",
        {
            "symbol": "ETHUSD",
            "side": "SIDE_BUY",
            "type": "ORDER_TYPE_LIMIT",
            "triggerPrice": "2900.00",
            "leverage": 10,
            "quantity": "0.100",
        },
    )["order"]
    assert limit["status"] == "ORDER_STATUS_PENDING"
    stop = user.send(
        "POST",
        "/v1/orders",
        {
            "symbol": "BTCUSD",
            "side": "SIDE_SELL",
            "type": "ORDER_TYPE_STOP",
            "triggerPrice": "55000.00",
            "leverage": 5,
            "margin": "50",
        },
    )["order"]
    listed = {o["id"] for o in user.get("/v1/orders")["orders"]}
    assert listed == {limit["id"], stop["id"]}
    cancelled = user.send("POST", f"/v1/orders/{stop['id']}:cancel", {})["order"]
    assert cancelled["status"] == "ORDER_STATUS_CANCELLED"
    assert user.balance() == balance
    mesh.publish_and_wait("ETHUSD", "2899.00", "2899.50", user.token)
    open_positions = _wait_positions(user, 3)
    filled = next(p for p in open_positions if p["id"] not in (btc["id"], eth["id"]))
    # Triggered fills happen at the triggering quote (the ask for a buy).
    assert D(filled["entryPrice"]) == D("2899.50")
    filled_margin = margin_for(D("0.1"), D("2899.50"), 10)
    assert D(filled["margin"]) == filled_margin
    balance -= filled_margin
    assert user.get("/v1/orders").get("orders", []) == []
    assert user.balance() == balance

    # Account summary: usedMargin and equity per API.md.
    account = user.get("/v1/account")
    positions = user.get("/v1/positions")["positions"]
    used = sum((D(p["margin"]) for p in positions), Decimal(0))
    unrealized = sum((D(p.get("unrealizedPnl", "0")) for p in positions), Decimal(0))
    assert D(account["usedMargin"]) == used == btc_margin + eth_margin + filled_margin
    assert D(account["equity"]) == balance + used + unrealized
    assert D(account["marginLevel"]) == ((balance + used + unrealized) / used * 100).quantize(
        D(account["marginLevel"])
    )

    # Full close of the long at the bid.
    final = user.send("POST", f"/v1/positions/{btc['id']}:close", {})
    assert final["position"]["status"] == "POSITION_STATUS_CLOSED"
    btc_close = D(final["closePrice"])
    assert btc_close == D("60000.00")
    btc_pnl = (btc_close - D("60010.00")) * D("0.01")
    assert D(final["realizedPnl"]) == btc_pnl
    balance += btc_margin + btc_pnl
    assert user.balance() == balance

    # History: newest first, the partial close as its own entry.
    history = user.get("/v1/history")["positions"]
    assert [(h["symbol"], h["closeReason"]) for h in history] == [
        ("BTCUSD", "CLOSE_REASON_USER"),
        ("ETHUSD", "CLOSE_REASON_USER"),
    ]
    assert D(history[1]["quantity"]) == half
    page = user.get("/v1/history", pageSize="1")
    assert len(page["positions"]) == 1 and page["nextPageToken"]
    second = user.get("/v1/history", pageSize="1", pageToken=page["nextPageToken"])
    assert second["positions"][0]["symbol"] == "ETHUSD"
    assert [h["symbol"] for h in user.get("/v1/history", symbol="ETHUSD")["positions"]] == [
        "ETHUSD"
    ]


def _wait_positions(user: User, count: int) -> list[Json]:
    def positions() -> list[Json] | None:
        listed: list[Json] = user.get("/v1/positions").get("positions", [])
        return listed if len(listed) == count else None

    return wait_for(positions)


@contextlib.contextmanager
def _events_socket(
    mesh: LiveMesh, token: str, from_sequence: str = "0"
) -> Iterator[ClientConnection]:
    with connect(mesh.ws_url, compression=None, proxy=None, max_size=None) as ws:
        ws.send(json.dumps({"op": "auth", "token": token}))
        assert json.loads(ws.recv(timeout=10))["type"] == "ack"
        ws.send(json.dumps({"op": "subscribe", "channel": "events", "fromSequence": from_sequence}))
        assert json.loads(ws.recv(timeout=10))["type"] == "ack"
        yield ws


def _next_event(ws: ClientConnection, event_type: str) -> Json:
    deadline = time.monotonic() + 15
    while True:
        frame = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if frame.get("channel") == "events" and frame["data"]["type"] == event_type:
            data: Json = frame["data"]
            return data


def _closed(user: User, position_id: str) -> Json:
    def closed() -> Json | None:
        position: Json = user.get(f"/v1/positions/{position_id}")["position"]
        return position if position["status"] == "POSITION_STATUS_CLOSED" else None

    return wait_for(closed)


def test_liquidation_and_stops_are_driven_by_published_ticks(
    mesh: LiveMesh, http: httpx.Client
) -> None:
    user = User(http, "risk@example.com")
    mesh.publish_and_wait("BTCUSD", "60000.00", "60010.00", user.token)
    with _events_socket(mesh, user.token) as ws:
        # Liquidation: a 100x long is liquidated when the bid reaches its liquidation price.
        long = user.send(
            "POST",
            "/v1/positions",
            {"symbol": "BTCUSD", "side": "SIDE_BUY", "leverage": 100, "quantity": "0.0100"},
        )["position"]
        margin = D(long["margin"])
        assert margin == margin_for(D("0.01"), D("60010.00"), 100)
        liquidation = D(long["liquidationPrice"])
        assert liquidation == D("60010.00") - margin / D("0.01")
        balance = user.balance()
        bid = liquidation - D("50.00")
        mesh.publish(("BTCUSD", str(bid), str(bid + D("10.00"))))
        event = _next_event(ws, "EVENT_TYPE_POSITION_LIQUIDATED")
        assert event["position"]["closeReason"] == "CLOSE_REASON_LIQUIDATION"
        rest = _closed(user, long["id"])
        assert rest["closeReason"] == "CLOSE_REASON_LIQUIDATION"
        assert D(rest["closePrice"]) == bid
        # The loss is beyond the margin: negative balance protection credits nothing back.
        assert D(rest["houseCoveredLoss"]) == (D("60010.00") - bid) * D("0.01") - margin
        assert user.balance() == balance

        # Take profit of a long fires when the bid reaches it, at the triggering bid.
        mesh.publish_and_wait("BTCUSD", "60000.00", "60010.00", user.token)
        tp = user.send(
            "POST",
            "/v1/positions",
            {
                "symbol": "BTCUSD",
                "side": "SIDE_BUY",
                "leverage": 10,
                "quantity": "0.0100",
                "takeProfit": "60500.00",
            },
        )["position"]
        balance = user.balance()
        mesh.publish(("BTCUSD", "60600.00", "60610.00"))
        event = _next_event(ws, "EVENT_TYPE_POSITION_CLOSED")
        assert event["position"]["closeReason"] == "CLOSE_REASON_TAKE_PROFIT"
        rest = _closed(user, tp["id"])
        assert D(rest["closePrice"]) == D("60600.00")
        pnl = (D("60600.00") - D("60010.00")) * D("0.01")
        assert D(rest["realizedPnl"]) == pnl
        assert user.balance() == balance + D(tp["margin"]) + pnl

        # Stop loss of a short fires when the ask reaches it.
        sl = user.send(
            "POST",
            "/v1/positions",
            {
                "symbol": "BTCUSD",
                "side": "SIDE_SELL",
                "leverage": 10,
                "quantity": "0.0100",
                "stopLoss": "61000.00",
            },
        )["position"]
        assert D(sl["entryPrice"]) == D("60600.00")
        mesh.publish(("BTCUSD", "61100.00", "61110.00"))
        event = _next_event(ws, "EVENT_TYPE_POSITION_CLOSED")
        assert event["position"]["closeReason"] == "CLOSE_REASON_STOP_LOSS"
        rest = _closed(user, sl["id"])
        assert D(rest["closePrice"]) == D("61110.00")
        assert D(rest["realizedPnl"]) == (D("60600.00") - D("61110.00")) * D("0.01")


def _forged_expired_token(mesh: LiveMesh, subject: str) -> str:
    key = SigningKey.from_pem((mesh.data_dir / KEYS_DIR_NAME / PRIVATE_KEY_FILE_NAME).read_bytes())
    now = int(time.time())
    claims = {
        "iss": "cfd-mesh",
        "aud": "cfd-mesh-api",
        "sub": subject,
        "iat": now - 3600,
        "exp": now - 1800,
        "jti": "expired-1",
    }
    return jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": key.kid})


def test_every_error_reason_through_rest(mesh: LiveMesh, http: httpx.Client) -> None:
    user = User(http, "errors@example.com")
    mesh.publish_and_wait("BTCUSD", "60000.00", "60010.00", user.token)
    before = user.get("/v1/account")

    def expect(
        status: int, reason: str, method: str, path: str, body: Json | None = None, **kw: Any
    ) -> Json:
        headers = kw.pop("headers", user.headers)
        response = http.request(method, path, json=body, headers=headers, **kw)
        assert response.status_code == status, f"{path}: {response.status_code} {response.text}"
        payload: Json = response.json()
        assert set(payload) == {"code", "message", "details"}
        infos = [d for d in payload["details"] if d["@type"].endswith("google.rpc.ErrorInfo")]
        assert [(i["reason"], i["domain"]) for i in infos] == [(reason, "cfd.v1")], payload
        return payload

    buy = {"symbol": "BTCUSD", "side": "SIDE_BUY", "leverage": 10, "quantity": "0.0100"}
    expect(400, "VALIDATION_FAILED", "POST", "/v1/positions", {**buy, "quantity": "-1"})
    expect(400, "VALIDATION_FAILED", "POST", "/v1/positions", {**buy, "quantity": "0.1234567"})
    expect(400, "VALIDATION_FAILED", "POST", "/v1/positions", {**buy, "leverage": "x"})
    expect(400, "VALIDATION_FAILED", "POST", "/v1/positions", {**buy, "colour": "red"})
    expect(400, "UNKNOWN_SYMBOL", "POST", "/v1/positions", {**buy, "symbol": "DOGEUSD"})
    expect(400, "INVALID_LEVERAGE", "POST", "/v1/positions", {**buy, "leverage": 101})
    expect(400, "QUANTITY_TOO_SMALL", "POST", "/v1/positions", {**buy, "quantity": "0.00001"})
    expect(400, "INVALID_STOPS", "POST", "/v1/positions", {**buy, "stopLoss": "60005.00"})
    expect(400, "INSUFFICIENT_BALANCE", "POST", "/v1/positions", {**buy, "quantity": "10"})
    expect(
        400,
        "SLIPPAGE_EXCEEDED",
        "POST",
        "/v1/positions",
        {**buy, "expectedPrice": "50000.00", "maxSlippageBps": 1},
    )
    expect(400, "PRICE_UNAVAILABLE", "POST", "/v1/positions", {**buy, "symbol": "SOLUSD"})
    expect(404, "POSITION_NOT_FOUND", "GET", "/v1/positions/p-999999")
    expect(404, "POSITION_NOT_FOUND", "POST", "/v1/positions/p-999999:close", {})
    expect(404, "ORDER_NOT_FOUND", "POST", "/v1/orders/o-999999:cancel", {})
    expect(
        409,
        "EMAIL_TAKEN",
        "POST",
        "/v1/auth/signup",
        {"email": "errors@example.com", "password": PASSWORD},
        headers={},
    )
    for weak in ("\u0001" * 8, "qwerty123", "Errors2@Example.com"):
        refused = expect(
            400,
            "VALIDATION_FAILED",
            "POST",
            "/v1/auth/signup",
            {"email": "errors2@example.com", "password": weak},
            headers={},
        )
        bad = [d for d in refused["details"] if d["@type"].endswith("google.rpc.BadRequest")]
        assert [v["field"] for v in bad[0]["fieldViolations"]] == ["password"]
    wrong = {"email": "errors@example.com", "password": "not the password"}
    expect(401, "INVALID_CREDENTIALS", "POST", "/v1/auth/signin", wrong, headers={})
    expect(401, "TOKEN_INVALID", "GET", "/v1/account", headers={})
    expect(401, "TOKEN_INVALID", "GET", "/v1/account", headers={"authorization": "Bearer x.y.z"})
    expired = _forged_expired_token(mesh, "someone")
    expect(
        401, "TOKEN_EXPIRED", "GET", "/v1/account", headers={"authorization": f"Bearer {expired}"}
    )
    # The accounts service allows 3 sign-ins per email and address here; the 4th is limited.
    for _ in range(2):
        http.post("/v1/auth/signin", json=wrong)
    limited = http.post("/v1/auth/signin", json=wrong)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert [d["reason"] for d in limited.json()["details"] if "reason" in d] == ["RATE_LIMITED"]
    # Nothing above changed the account.
    assert user.get("/v1/account") == before
    assert user.get("/v1/positions").get("positions", []) == []


def test_another_users_position_is_not_found(mesh: LiveMesh, http: httpx.Client) -> None:
    owner = User(http, "owner@example.com")
    other = User(http, "other@example.com")
    mesh.publish_and_wait("BTCUSD", "60000.00", "60010.00", owner.token)
    position = owner.send(
        "POST",
        "/v1/positions",
        {"symbol": "BTCUSD", "side": "SIDE_BUY", "leverage": 10, "quantity": "0.0100"},
    )["position"]
    response = http.get(f"/v1/positions/{position['id']}", headers=other.headers)
    assert response.status_code == 404


def test_a_client_order_id_reused_on_another_position_is_409(
    mesh: LiveMesh, http: httpx.Client
) -> None:
    user = User(http, "reuse@example.com")
    mesh.publish_and_wait("BTCUSD", "60000.00", "60010.00", user.token)
    buy = {"symbol": "BTCUSD", "side": "SIDE_BUY", "leverage": 10, "quantity": "0.0100"}
    user.send("POST", "/v1/positions", {**buy, "clientOrderId": "open-1"})
    other = user.send("POST", "/v1/positions", buy)["position"]
    response = http.post(
        f"/v1/positions/{other['id']}:addMargin",
        json={"amount": "5", "clientOrderId": "open-1"},
        headers=user.headers,
    )
    assert response.status_code == 409, response.text
    reasons = [d.get("reason") for d in response.json()["details"]]
    assert "IDEMPOTENCY_KEY_REUSED" in reasons
    assert user.get(f"/v1/positions/{other['id']}")["position"]["margin"] == other["margin"]


def test_websocket_prices_private_channels_and_resume(mesh: LiveMesh, http: httpx.Client) -> None:
    user = User(http, "ws@example.com")
    with connect(mesh.ws_url, compression=None, proxy=None) as ws:
        ws.send(json.dumps({"op": "subscribe", "channel": "positions"}))
        error = json.loads(ws.recv(timeout=10))
        assert (error["type"], error["error"]["reason"]) == ("error", "TOKEN_INVALID")
        ws.send(json.dumps({"op": "subscribe", "channel": "prices", "symbols": ["ETHUSD"]}))
        assert json.loads(ws.recv(timeout=10))["type"] == "ack"
        mesh.publish(("ETHUSD", "3100.00", "3101.00"))
        deadline = time.monotonic() + 15
        while True:
            frame = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if frame.get("channel") == "prices" and frame["data"]["bid"] == "3100.00":
                assert frame["data"]["symbol"] == "ETHUSD"
                assert frame["data"]["ask"] == "3101.00"
                break
    mesh.publish_and_wait("ETHUSD", "3100.00", "3101.00", user.token)
    for quantity in ("0.010", "0.020", "0.030"):
        user.send(
            "POST",
            "/v1/positions",
            {"symbol": "ETHUSD", "side": "SIDE_BUY", "leverage": 5, "quantity": quantity},
        )
    # The deposit at sign-up, then per open: POSITION_OPENED and BALANCE_CHANGED.
    everything = _collect_events(mesh, user.token, "0", count=7)
    assert [e["type"] for e in everything].count("EVENT_TYPE_POSITION_OPENED") == 3
    positions = [(int(e["sequence"]), e.get("index", 0)) for e in everything]
    assert positions == sorted(positions)
    middle = positions[3][0]
    expected = [e for e in everything if int(e["sequence"]) > middle]
    resumed = _collect_events(mesh, user.token, str(middle), count=len(expected))
    assert resumed == expected


def _collect_events(mesh: LiveMesh, token: str, from_sequence: str, count: int) -> list[Json]:
    """Return the first `count` events after `from_sequence`."""
    events: list[Json] = []
    with _events_socket(mesh, token, from_sequence) as ws:
        while len(events) < count:
            frame = json.loads(ws.recv(timeout=15))
            if frame.get("channel") == "events":
                events.append(frame["data"])
    return events


def test_a_pending_order_is_modified_over_rest(mesh: LiveMesh, http: httpx.Client) -> None:
    user = User(http, "modify@example.com")
    other = User(http, "modify-other@example.com")
    mesh.publish_and_wait("ETHUSD", "3000.00", "3001.00", user.token)
    with _events_socket(mesh, user.token) as ws:
        order = user.send(
            "POST",
            "/v1/orders",
            {
                "symbol": "ETHUSD", "side": "SIDE_SELL", "type": "ORDER_TYPE_LIMIT",
                "triggerPrice": "3100.00", "leverage": 10, "quantity": "0.100",
                "stopLoss": "3200.00", "expireTime": "2200-01-01T00:00:00Z",
            },
        )["order"]  # fmt: skip
        path = f"/v1/orders/{order['id']}"
        changed = user.send(
            "PATCH",
            path,
            {
                "triggerPrice": "3050.00", "quantity": "0.200", "stopLoss": "",
                "clearExpireTime": True,
            },
        )["order"]
        assert (changed["triggerPrice"], changed["quantity"]) == ("3050.00", "0.200")
        assert changed["stopLoss"] == "" and "expireTime" not in changed
        event = _next_event(ws, "EVENT_TYPE_ORDER_MODIFIED")
        assert event["order"]["triggerPrice"] == "3050.00"
        # A sell limit below the bid, and another user's order, are refused.
        bad = http.patch(path, json={"triggerPrice": "2990.00"}, headers=user.headers)
        assert bad.status_code == 400 and "VALIDATION_FAILED" in bad.text
        hidden = http.patch(path, json={"triggerPrice": "3060.00"}, headers=other.headers)
        assert hidden.status_code == 404
        (listed,) = user.get("/v1/orders")["orders"]
        assert {**listed, "updateTime": ""} == {**changed, "updateTime": ""}
        mesh.publish(("ETHUSD", "3060.00", "3061.00"))
        _next_event(ws, "EVENT_TYPE_ORDER_FILLED")
    (position,) = _wait_positions(user, 1)
    assert (position["entryPrice"], position["quantity"]) == ("3060.00", "0.200")


def test_a_cross_account_is_chosen_at_signup_over_rest(mesh: LiveMesh, http: httpx.Client) -> None:
    body = {"email": "cross-rest@example.com", "password": PASSWORD}
    response = http.post("/v1/auth/signup", json={**body, "marginMode": "MARGIN_MODE_CROSS"})
    assert response.status_code == 200, response.text
    headers = {"authorization": f"Bearer {response.json()['accessToken']}"}
    account = http.get("/v1/account", headers=headers).json()
    assert (account["marginMode"], account["marginCallLevel"], account["stopOutLevel"]) == (
        "MARGIN_MODE_CROSS",
        "60",
        "0",
    )
    # No position: the whole equity may be lost before a stop-out.
    assert D(account["stopOutDistance"]) == 5000
    bad = http.post(
        "/v1/auth/signup",
        json={"email": "odd@example.com", "password": PASSWORD, "marginMode": 7},
    )
    assert bad.status_code == 400 and bad.json()["details"][0]["reason"] == "VALIDATION_FAILED"


def test_a_netting_account_is_chosen_at_signup_over_rest(
    mesh: LiveMesh, http: httpx.Client
) -> None:
    body = {"email": "netting-rest@example.com", "password": PASSWORD}
    response = http.post("/v1/auth/signup", json={**body, "positionMode": "POSITION_MODE_NETTING"})
    assert response.status_code == 200, response.text
    headers = {"authorization": f"Bearer {response.json()['accessToken']}"}
    account = http.get("/v1/account", headers=headers).json()
    assert (account["positionMode"], account["marginMode"]) == (
        "POSITION_MODE_NETTING",
        "MARGIN_MODE_ISOLATED",
    )
    bad = http.post(
        "/v1/auth/signup",
        json={"email": "odd-net@example.com", "password": PASSWORD, "positionMode": 9},
    )
    assert bad.status_code == 400 and bad.json()["details"][0]["reason"] == "VALIDATION_FAILED"
