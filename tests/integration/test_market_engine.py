"""`cfd market` on the manual feed driving a real `cfd engine`: exact prices reach the engine."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import grpc

from account_svc.issuer import load_issuer
from cfd.v1 import market_admin_pb2, market_admin_pb2_grpc, trading_pb2, trading_pb2_grpc
from mesh.tokens import TokenConfig
from support import ServiceProcess, mesh_env, until

TOKEN = "test-internal-token-0123456789"
INTERNAL = (("x-cfd-internal-token", TOKEN),)


@dataclass(frozen=True)
class DataDir:
    """What the token helpers need to find the mesh's signing key."""

    data_dir: Path


async def engine_prices(
    trading: trading_pb2_grpc.TradingServiceAsyncStub, token: str
) -> dict[str, tuple[str, str]]:
    reply = await trading.ListPrices(
        trading_pb2.ListPricesRequest(), metadata=(("authorization", f"Bearer {token}"),)
    )
    return {q.symbol: (q.bid, q.ask) for q in reply.prices}


async def engine_sees(
    trading: trading_pb2_grpc.TradingServiceAsyncStub,
    token: str,
    expected: dict[str, tuple[str, str]],
    within: float = 30.0,
) -> None:

    async def seen() -> bool:
        prices = await engine_prices(trading, token)
        return all(prices.get(symbol) == quote for symbol, quote in expected.items())

    await until(seen, within=within, interval=0.05)


async def test_published_prices_reach_the_engine_exactly_and_stay_fresh(tmp_path: Path) -> None:
    env = mesh_env(
        tmp_path / "data",
        CFD_INTERNAL_TOKEN=TOKEN,
        CFD_FEED="manual",
        CFD_BACKFILL_DAYS="0",
        CFD_QUOTE_KEEPALIVE_MS="200",
        CFD_PRICE_STALE_MS="1000",
    )
    market = ServiceProcess(["market"], env, tmp_path / "market.log")
    engine: ServiceProcess | None = None
    try:
        market.wait_grpc_ready(int(env["CFD_MARKET_PORT"]), timeout=60)
        engine = ServiceProcess(["engine"], env, tmp_path / "engine.log")
        engine.wait_grpc_ready(int(env["CFD_ENGINE_PORT"]), timeout=60)
        token, _ = load_issuer(DataDir(tmp_path / "data"), TokenConfig.from_env(env)).issue("u1")
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{env['CFD_MARKET_PORT']}") as market_channel,
            grpc.aio.insecure_channel(f"127.0.0.1:{env['CFD_ENGINE_PORT']}") as engine_channel,
        ):
            admin = market_admin_pb2_grpc.MarketDataAdminServiceStub(market_channel)
            trading = trading_pb2_grpc.TradingServiceStub(engine_channel)

            async def publish(symbol: str, bid: str, ask: str) -> None:
                tick = market_admin_pb2.TickInput(symbol=symbol, bid=bid, ask=ask)
                request = market_admin_pb2.PublishTicksRequest(ticks=[tick])
                await admin.PublishTicks(request, metadata=INTERNAL)

            await publish("BTCUSD", "64250.15", "64250.16")
            await engine_sees(trading, token, {"BTCUSD": ("64250.15", "64250.16")})
            await publish("BTCUSD", "60000.00", "60010.00")
            await publish("SOLUSD", "150.123", "150.125")
            await engine_sees(
                trading,
                token,
                {"BTCUSD": ("60000.00", "60010.00"), "SOLUSD": ("150.123", "150.125")},
            )
            # Nothing published for twice the engine's staleness window: the standing quotes
            # are repeated by the market service, so the engine keeps them.
            until = time.monotonic() + 2.0
            while time.monotonic() < until:
                prices = await engine_prices(trading, token)
                assert prices.get("BTCUSD") == ("60000.00", "60010.00"), prices
                await asyncio.sleep(0.1)
    finally:
        codes = [engine.stop() if engine is not None else 0, market.stop()]
    assert codes == [0, 0], market.output() + (engine.output() if engine else "")
