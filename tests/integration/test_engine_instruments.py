"""Configured instruments in a real engine: a new one is tradable, a changed one is refused."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import pytest

from cfd.v1 import common_pb2, trading_pb2
from engine_svc.config import EngineConfig
from engine_svc.instrument_set import InstrumentChangeError, core_instruments
from engine_svc.main import run
from engine_svc.runtime import EngineRuntime
from integration.test_engine_harness import (
    Client,
    Engine,
    engine_settings,
    fake_market,
    grpc_ready,
    start_recorder,
    user_issuer,
)
from mesh.config import Settings
from mesh.instruments import DEFAULT_SPECS, load_instruments
from support import until

XRP = {
    "symbol": "XRPUSD",
    "tick_size": "0.0001",
    "lot_step": "1",
    "max_leverage": 50,
    "contract_size": "1000",
}


def _instruments_file(tmp_path: Path, *extra: dict[str, object]) -> dict[str, str]:
    path = tmp_path / "instruments.json"
    path.write_text(json.dumps([*(spec.to_json() for spec in DEFAULT_SPECS), *extra]))
    return {"CFD_INSTRUMENTS_FILE": str(path)}


def _runtime(settings: Settings, env: dict[str, str], db_url: str) -> EngineRuntime:
    instruments = core_instruments(load_instruments(env))
    return EngineRuntime(
        settings, EngineConfig(fsync=False), instruments=instruments, db_url=db_url
    )


async def _serve(settings: Settings, runtime: EngineRuntime) -> Engine:
    stop = asyncio.Event()
    task = asyncio.create_task(run(settings, runtime.config, stop=stop, runtime=runtime))
    engine = Engine(settings, runtime, stop, task)

    async def serving() -> bool:
        if task.done():
            task.result()
            raise AssertionError("the engine stopped during start-up")
        return runtime.sequencer is not None and await grpc_ready(engine.address)

    await until(serving, within=30)
    engine.recorder = start_recorder(settings, runtime.config, runtime.db_url)
    return engine


async def test_an_added_instrument_is_tradable_and_a_changed_one_is_refused(
    tmp_path: Path,
) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'history.sqlite3'}"
    async with fake_market() as (market, address):
        settings, _ = engine_settings(tmp_path, address)
        issuer = user_issuer(settings)
        # A first life with the defaults leaves a snapshot without XRPUSD.
        engine = await _serve(settings, _runtime(settings, {}, db_url))
        async with grpc.aio.insecure_channel(engine.address) as channel:
            await Client(channel, issuer).create_account("alice", "1000")
        await engine.shutdown()

        runtime = _runtime(settings, _instruments_file(tmp_path, XRP), db_url)
        engine = await _serve(settings, runtime)
        assert runtime.snapshot_info is not None, "the second start should restore a snapshot"
        assert list(runtime.core.instruments) == ["BTCUSD", "ETHUSD", "SOLUSD", "XRPUSD"]
        market.push("XRPUSD", "0.5000", "0.5001")

        async def priced() -> bool:
            return runtime.core.get_quote("XRPUSD") is not None

        await until(priced)
        async with grpc.aio.insecure_channel(engine.address) as channel:
            client = Client(channel, issuer)
            opened = await client.trading.OpenPosition(
                trading_pb2.OpenPositionRequest(
                    symbol="XRPUSD", side=common_pb2.SIDE_BUY, quantity="1000", leverage=50
                ),
                metadata=client.auth("alice"),
            )
            assert (opened.position.entry_price, opened.position.quantity) == ("0.5001", "1000")
            assert opened.position.margin == "10.002"
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await client.trading.OpenPosition(
                    trading_pb2.OpenPositionRequest(
                        symbol="XRPUSD", side=common_pb2.SIDE_BUY, quantity="1000", leverage=51
                    ),
                    metadata=client.auth("alice"),
                )
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        await engine.shutdown()

        # Same instruments again: the position is still there, and sized in lots.
        runtime = _runtime(settings, _instruments_file(tmp_path, XRP), db_url)
        engine = await _serve(settings, runtime)
        assert [p.symbol for p in runtime.core.list_positions("alice")] == ["XRPUSD"]
        async with grpc.aio.insecure_channel(engine.address) as channel:
            client = Client(channel, issuer)
            listed = await client.trading.ListPositions(
                trading_pb2.ListPositionsRequest(), metadata=client.auth("alice")
            )
            assert [(p.quantity, p.volume_lots) for p in listed.positions] == [("1000", "1.000")]
            closed = await client.trading.ClosePosition(
                trading_pb2.ClosePositionRequest(
                    position_id=listed.positions[0].id, volume_lots="0.25"
                ),
                metadata=client.auth("alice"),
            )
            assert (closed.closed_quantity, closed.closed_volume_lots) == ("250", "0.250")
            assert closed.position.volume_lots == "0.750"
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await client.trading.ClosePosition(
                    trading_pb2.ClosePositionRequest(
                        position_id=listed.positions[0].id, volume_lots="0.0005"
                    ),
                    metadata=client.auth("alice"),
                )
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "0.001 lots" in (caught.value.details() or "")

            async def recorded() -> bool:
                history = await client.trading.ListHistory(
                    trading_pb2.ListHistoryRequest(), metadata=client.auth("alice")
                )
                return [(p.quantity, p.volume_lots) for p in history.positions] == [
                    ("250", "0.250")
                ]

            await until(recorded)
        await engine.shutdown()

        changed = _runtime(
            settings, _instruments_file(tmp_path, {**XRP, "tick_size": "0.001"}), db_url
        )
        with pytest.raises(InstrumentChangeError, match=r"XRPUSD: tick_size is 0.0001 in .*0.001"):
            await changed.start()
        await changed.stop()
        dropped = _runtime(settings, {}, db_url)
        with pytest.raises(InstrumentChangeError, match=r"XRPUSD is in .* no longer configured"):
            await dropped.start()
        await dropped.stop()
