"""Accounts with the real engine and market: signup funds a real trading account, every
service rejects bad tokens, and one user's token cannot reach another user's positions."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import grpc
import jwt
import pytest

from account_svc.issuer import TokenIssuer
from cfd.v1 import (
    account_pb2,
    account_pb2_grpc,
    common_pb2,
    engine_admin_pb2,
    engine_admin_pb2_grpc,
    market_admin_pb2,
    market_admin_pb2_grpc,
    trading_pb2,
    trading_pb2_grpc,
)
from mesh.errors import reason_of
from mesh.tokens import KEYS_DIR_NAME, PRIVATE_KEY_FILE_NAME, SigningKey
from support import ServiceProcess, mesh_env, until

PASSWORD = "correct horse battery"
Metadata = tuple[tuple[str, str], ...]


@dataclass
class Mesh:
    env: dict[str, str]
    data_dir: Path

    def address(self, port_variable: str) -> str:
        return f"127.0.0.1:{self.env[port_variable]}"

    @property
    def internal(self) -> tuple[tuple[str, str]]:
        return (("x-cfd-internal-token", self.env["CFD_INTERNAL_TOKEN"]),)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    """Run market (manual feed), engine and accounts as separate processes."""
    data_dir = tmp_path_factory.mktemp("accounts-mesh")
    env = mesh_env(data_dir, CFD_FEED="manual")
    started: list[ServiceProcess] = []
    try:
        for name, port in (
            ("market", "CFD_MARKET_PORT"),
            ("engine", "CFD_ENGINE_PORT"),
            ("accounts", "CFD_ACCOUNT_PORT"),
        ):
            started.append(ServiceProcess([name], env, data_dir / f"{name}.log"))
            started[-1].wait_grpc_ready(int(env[port]), timeout=60)
        yield Mesh(env, data_dir)
    finally:
        for process in reversed(started):
            process.stop()


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


async def failure(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    return info.value


async def signup(
    mesh: Mesh,
    email: str,
    margin_mode: common_pb2.MarginMode.ValueType = common_pb2.MARGIN_MODE_UNSPECIFIED,
    position_mode: common_pb2.PositionMode.ValueType = common_pb2.POSITION_MODE_UNSPECIFIED,
) -> account_pb2.SignupResponse:
    async with grpc.aio.insecure_channel(mesh.address("CFD_ACCOUNT_PORT")) as channel:
        stub = account_pb2_grpc.AccountServiceStub(channel)
        response: account_pb2.SignupResponse = await stub.Signup(
            account_pb2.SignupRequest(
                email=email, password=PASSWORD, margin_mode=margin_mode, position_mode=position_mode
            )
        )
        return response


async def publish_price(mesh: Mesh, bid: str, ask: str) -> None:
    """Publish a BTCUSD quote and wait until the engine trades on it."""
    async with grpc.aio.insecure_channel(mesh.address("CFD_MARKET_PORT")) as market:
        await market_admin_pb2_grpc.MarketDataAdminServiceStub(market).PublishTicks(
            market_admin_pb2.PublishTicksRequest(
                ticks=[market_admin_pb2.TickInput(symbol="BTCUSD", bid=bid, ask=ask)]
            ),
            metadata=mesh.internal,
        )
    async with grpc.aio.insecure_channel(mesh.address("CFD_ENGINE_PORT")) as engine:
        trading = trading_pb2_grpc.TradingServiceStub(engine)
        token = (await signup(mesh, f"pricewatch{time.monotonic_ns()}@example.com")).access_token

        async def seen() -> bool:
            prices = await trading.ListPrices(
                trading_pb2.ListPricesRequest(), metadata=bearer(token)
            )
            return any(q.symbol == "BTCUSD" and q.bid == bid for q in prices.prices)

        await until(seen, within=20, interval=0.05)


async def test_signup_opens_a_real_trading_account_with_the_demo_balance(mesh: Mesh) -> None:
    session = await signup(mesh, "funded@example.com")
    async with grpc.aio.insecure_channel(mesh.address("CFD_ENGINE_PORT")) as channel:
        account = await trading_pb2_grpc.TradingServiceStub(channel).GetAccount(
            trading_pb2.GetAccountRequest(), metadata=bearer(session.access_token)
        )
    assert Decimal(account.balance) == Decimal(5000)
    assert Decimal(account.used_margin) == 0


async def test_a_cross_account_goes_through_margin_call_and_stop_out(mesh: Mesh) -> None:
    session = await signup(mesh, "cross@example.com", common_pb2.MARGIN_MODE_CROSS)
    me = bearer(session.access_token)
    await publish_price(mesh, "59999.90", "60000.00")
    async with grpc.aio.insecure_channel(mesh.address("CFD_ENGINE_PORT")) as channel:
        trading = trading_pb2_grpc.TradingServiceStub(channel)
        account = await trading.GetAccount(trading_pb2.GetAccountRequest(), metadata=me)
        assert account.margin_mode == common_pb2.MARGIN_MODE_CROSS
        assert (account.margin_call_level, account.stop_out_level) == ("60", "0")
        opened = await trading.OpenPosition(
            trading_pb2.OpenPositionRequest(
                symbol="BTCUSD", side=common_pb2.SIDE_BUY, leverage=100, quantity="0.1"
            ),
            metadata=me,
        )
        # Equity 5000 + (bid - 60000) x 0.1 reaches 0 at 10000.00.
        assert Decimal(opened.position.liquidation_price) == Decimal("10000")
        account = await trading.GetAccount(trading_pb2.GetAccountRequest(), metadata=me)
        # The balance keeps the margin; free margin = 4999.99 equity - 60 margin.
        assert (Decimal(account.balance), Decimal(account.free_margin)) == (
            Decimal(5000),
            Decimal("4939.99"),
        )
        assert Decimal(account.stop_out_distance) == Decimal("4999.99")
        # Equity 1 USD on 60 of margin: a margin call, no stop-out.
        await publish_price(mesh, "10010.00", "10010.10")
        account = await trading.GetAccount(trading_pb2.GetAccountRequest(), metadata=me)
        assert account.margin_call and Decimal(account.equity) == 1
        assert Decimal(account.margin_level) == Decimal("1.666666")
        # Equity -1: stopped out; negative balance protection leaves 0, not -1.
        await publish_price(mesh, "9990.00", "9990.10")
        account = await trading.GetAccount(trading_pb2.GetAccountRequest(), metadata=me)
        positions = await trading.ListPositions(trading_pb2.ListPositionsRequest(), metadata=me)
    assert list(positions.positions) == []
    assert Decimal(account.balance) == 0 and not account.margin_call


async def test_a_netting_account_nets_its_trades_on_a_symbol(mesh: Mesh) -> None:
    session = await signup(
        mesh, "netting@example.com", position_mode=common_pb2.POSITION_MODE_NETTING
    )
    me = bearer(session.access_token)
    await publish_price(mesh, "59999.90", "60000.00")

    def trade(side: common_pb2.Side.ValueType, quantity: str) -> trading_pb2.OpenPositionRequest:
        return trading_pb2.OpenPositionRequest(
            symbol="BTCUSD", side=side, leverage=10, quantity=quantity
        )

    async with grpc.aio.insecure_channel(mesh.address("CFD_ENGINE_PORT")) as channel:
        trading = trading_pb2_grpc.TradingServiceStub(channel)
        account = await trading.GetAccount(trading_pb2.GetAccountRequest(), metadata=me)
        assert account.position_mode == common_pb2.POSITION_MODE_NETTING
        first = await trading.OpenPosition(trade(common_pb2.SIDE_BUY, "0.1"), metadata=me)
        grown = await trading.OpenPosition(trade(common_pb2.SIDE_BUY, "0.1"), metadata=me)
        assert grown.position.id == first.position.id
        assert (Decimal(grown.position.quantity), Decimal(grown.position.margin)) == (
            Decimal("0.2"),
            Decimal(1200),
        )
        # Selling 0.3 closes the 0.2 long at the bid and opens 0.1 short.
        flipped = await trading.OpenPosition(trade(common_pb2.SIDE_SELL, "0.3"), metadata=me)
        assert flipped.position.side == common_pb2.SIDE_SELL
        assert Decimal(flipped.position.quantity) == Decimal("0.1")
        assert flipped.position.id != first.position.id
        # Buying 0.1 closes it exactly: the answer is the closed entry.
        closed = await trading.OpenPosition(trade(common_pb2.SIDE_BUY, "0.1"), metadata=me)
        assert closed.position.status == trading_pb2.POSITION_STATUS_CLOSED
        assert closed.position.id == flipped.position.id
        positions = await trading.ListPositions(trading_pb2.ListPositionsRequest(), metadata=me)
        assert list(positions.positions) == []
        account = await trading.GetAccount(trading_pb2.GetAccountRequest(), metadata=me)
    # Two spreads of 0.10 on 0.2 and one on 0.1: 0.03 lost.
    assert Decimal(account.balance) == Decimal("4999.97")
    odd = await failure(
        signup(mesh, "odd-mode@example.com", position_mode=7)  # type: ignore[arg-type]
    )
    assert odd.code() == grpc.StatusCode.INVALID_ARGUMENT


def b64url(document: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


async def test_every_service_rejects_bad_tokens(mesh: Mesh) -> None:
    session = await signup(mesh, "victim-of-forgery@example.com")
    key = SigningKey.from_pem((mesh.data_dir / KEYS_DIR_NAME / PRIVATE_KEY_FILE_NAME).read_bytes())
    now = int(time.time())
    claims = {
        "iss": "cfd-mesh",
        "aud": "cfd-mesh-api",
        "sub": session.user.id,
        "iat": now,
        "exp": now + 60,
        "jti": "j",
    }

    def signed(with_key: SigningKey, **changes: object) -> str:
        return jwt.encode(
            {**claims, **changes}, with_key.private_key, algorithm="EdDSA", headers={"kid": key.kid}
        )

    bad = {
        "expired": (
            TokenIssuer(key, ttl_s=60, clock=lambda: now - 600).issue(session.user.id)[0],
            "TOKEN_EXPIRED",
        ),
        "forged": (signed(SigningKey.generate()), "TOKEN_INVALID"),
        "wrong audience": (signed(key, aud="other-api"), "TOKEN_INVALID"),
        "alg none": (
            ".".join([b64url({"alg": "none", "kid": key.kid}), b64url(claims), ""]),
            "TOKEN_INVALID",
        ),
    }
    async with (
        grpc.aio.insecure_channel(mesh.address("CFD_ENGINE_PORT")) as engine,
        grpc.aio.insecure_channel(mesh.address("CFD_ACCOUNT_PORT")) as accounts,
    ):
        trading = trading_pb2_grpc.TradingServiceStub(engine)
        users = account_pb2_grpc.AccountServiceStub(accounts)
        calls: dict[str, Callable[[Metadata], Awaitable[object]]] = {
            "GetAccount": lambda md: trading.GetAccount(
                trading_pb2.GetAccountRequest(), metadata=md
            ),
            "ListPositions": lambda md: trading.ListPositions(
                trading_pb2.ListPositionsRequest(), metadata=md
            ),
            "GetUser": lambda md: users.GetUser(account_pb2.GetUserRequest(), metadata=md),
        }
        for call_name, call in calls.items():
            for token_name, (token, expected) in bad.items():
                error = await failure(call(bearer(token)))
                assert (error.code(), reason_of(error)) == (
                    grpc.StatusCode.UNAUTHENTICATED,
                    expected,
                ), f"{call_name} with a {token_name} token"
            missing = await failure(call(()))
            assert missing.code() == grpc.StatusCode.UNAUTHENTICATED, call_name
            # The genuine token passes, so the rejections above are about the tokens.
            await call(bearer(session.access_token))
        # A user's token is no internal credential.
        admin = engine_admin_pb2_grpc.EngineAdminServiceStub(engine)
        error = await failure(
            admin.CreateAccount(
                engine_admin_pb2.CreateAccountRequest(user_id="x", initial_balance="1000000"),
                metadata=bearer(session.access_token),
            )
        )
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_another_users_token_cannot_touch_my_positions(mesh: Mesh) -> None:
    alice = await signup(mesh, "alice@example.com")
    mallory = await signup(mesh, "mallory@example.com")
    await publish_price(mesh, "50000.00", "50010.00")
    async with grpc.aio.insecure_channel(mesh.address("CFD_ENGINE_PORT")) as channel:
        trading = trading_pb2_grpc.TradingServiceStub(channel)
        opened = await trading.OpenPosition(
            trading_pb2.OpenPositionRequest(
                symbol="BTCUSD", side=common_pb2.SIDE_BUY, leverage=10, quantity="0.01"
            ),
            metadata=bearer(alice.access_token),
        )
        position_id = opened.position.id
        before = await trading.GetAccount(
            trading_pb2.GetAccountRequest(), metadata=bearer(alice.access_token)
        )
        as_mallory = bearer(mallory.access_token)
        attempts = {
            "GetPosition": trading.GetPosition(
                trading_pb2.GetPositionRequest(position_id=position_id), metadata=as_mallory
            ),
            "ClosePosition": trading.ClosePosition(
                trading_pb2.ClosePositionRequest(position_id=position_id), metadata=as_mallory
            ),
            "AddMargin": trading.AddMargin(
                trading_pb2.AddMarginRequest(position_id=position_id, amount="10"),
                metadata=as_mallory,
            ),
            "ModifyPosition": trading.ModifyPosition(
                trading_pb2.ModifyPositionRequest(position_id=position_id, stop_loss="40000"),
                metadata=as_mallory,
            ),
        }
        for name, attempt in attempts.items():
            error = await failure(attempt)
            assert (error.code(), reason_of(error)) == (
                grpc.StatusCode.NOT_FOUND,
                "POSITION_NOT_FOUND",
            ), name
        listed = await trading.ListPositions(
            trading_pb2.ListPositionsRequest(), metadata=as_mallory
        )
        assert list(listed.positions) == []
        mine = await trading.GetPosition(
            trading_pb2.GetPositionRequest(position_id=position_id),
            metadata=bearer(alice.access_token),
        )
        assert (
            mine.position.id == position_id and mine.position.quantity == opened.position.quantity
        )
        assert mine.position.stop_loss == ""
        after = await trading.GetAccount(
            trading_pb2.GetAccountRequest(), metadata=bearer(alice.access_token)
        )
        assert (after.balance, after.used_margin) == (before.balance, before.used_margin)
