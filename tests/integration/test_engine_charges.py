"""Swaps and commissions in a real engine: charged through the API, accrued across a simulated
rollover, kept across a restart that replays the journal, shown in positions, account and
history."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf import timestamp_pb2

from cfd.v1 import common_pb2, engine_admin_pb2, trading_pb2
from engine_svc.rollover import RolloverSchedule
from integration.test_engine_harness import Client, engine_settings, fake_market, user_issuer
from integration.test_engine_instruments import _runtime, _serve
from mesh.instruments import DEFAULT_SPECS
from support import until

NS = 1_000_000_000


def charged_instruments_env(tmp_path: Path) -> dict[str, str]:
    """Return the environment of the default instruments with BTCUSD charging a swap of -10
    bps a day on longs and a commission of 30 USD per million."""
    rows = [spec.to_json() for spec in DEFAULT_SPECS]
    rows[0] |= {"swap_long_bps": "-10", "commission_per_million": "30"}
    path = tmp_path / "instruments.json"
    path.write_text(json.dumps(rows))
    return {"CFD_INSTRUMENTS_FILE": str(path)}


def _time(ns: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=ns // NS, nanos=ns % NS)


async def test_swaps_accrue_across_a_rollover_and_survive_a_replay(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'history.sqlite3'}"
    env = charged_instruments_env(tmp_path)
    schedule = RolloverSchedule()
    async with fake_market() as (market, address):
        settings, _ = engine_settings(tmp_path, address)
        issuer = user_issuer(settings)
        runtime = _runtime(settings, env, db_url)
        engine = await _serve(settings, runtime)
        # Nothing is open: the engine issues no rollover.
        assert runtime.core.last_rollover == 0
        market.push("BTCUSD", "59999.00", "60000.00")
        await until(lambda: runtime.core.get_quote("BTCUSD") is not None)
        async with grpc.aio.insecure_channel(engine.address) as channel:
            client = Client(channel, issuer)
            await client.create_account("alice", "10000")
            alice = client.auth("alice")
            opened = await client.trading.OpenPosition(
                trading_pb2.OpenPositionRequest(
                    symbol="BTCUSD", side=common_pb2.SIDE_BUY, quantity="0.1", leverage=10
                ),
                metadata=alice,
            )
            # 6000 USD of notional: commission 6000 x 30 / 10^6 = 0.18 USD.
            assert (opened.position.commission, opened.position.swap) == ("0.18", "0.00")
            account = await client.trading.GetAccount(
                trading_pb2.GetAccountRequest(), metadata=alice
            )
            assert (account.balance, account.commission) == ("9399.82", "0.18")

            # The next rollover, simulated: -10 bps of 6000 USD a day, times its multiplier.
            at = schedule.next_after(time.time_ns()) + NS
            day, _ = schedule.latest(at)
            multiplier = schedule.multiplier(day)
            rolled = await client.admin.RunRollover(
                engine_admin_pb2.RunRolloverRequest(rollover_time=_time(at)),
                metadata=client.internal,
            )
            assert (rolled.multiplier, rolled.positions_charged) == (multiplier, 1)
            assert rolled.total == f"-{6 * multiplier}.00"
            listed = await client.trading.ListPositions(
                trading_pb2.ListPositionsRequest(), metadata=alice
            )
            (position,) = listed.positions
            assert position.swap == f"-{6 * multiplier}.00"
            assert position.margin == f"{600 - 6 * multiplier}.00"
            account = await client.trading.GetAccount(
                trading_pb2.GetAccountRequest(), metadata=alice
            )
            assert account.swap == f"-{6 * multiplier}.00"
            # The same rollover again changes nothing.
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await client.admin.RunRollover(
                    engine_admin_pb2.RunRolloverRequest(rollover_time=_time(at)),
                    metadata=client.internal,
                )
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await client.admin.RunRollover(
                    engine_admin_pb2.RunRolloverRequest(), metadata=client.internal
                )
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        digest = runtime.core.digest()
        await engine.shutdown()

        # Without its snapshots the engine replays the whole journal, rollovers included.
        shutil.rmtree(tmp_path / "engine" / "snapshots")
        runtime = _runtime(settings, env, db_url)
        engine = await _serve(settings, runtime)
        assert runtime.snapshot_info is None and runtime.replayed > 0
        assert runtime.core.digest() == digest
        assert runtime.core.last_rollover == day
        market.push("BTCUSD", "61000.00", "61001.00")

        def moved() -> bool:
            quote = runtime.core.get_quote("BTCUSD")
            return quote is not None and quote.bid == 6_100_000

        await until(moved)
        async with grpc.aio.insecure_channel(engine.address) as channel:
            client = Client(channel, issuer)
            alice = client.auth("alice")
            closed = await client.trading.ClosePosition(
                trading_pb2.ClosePositionRequest(position_id=position.id), metadata=alice
            )
            assert closed.realized_pnl == "100.00"

            async def recorded() -> bool:
                page = await client.trading.ListHistory(
                    trading_pb2.ListHistoryRequest(), metadata=alice
                )
                return len(page.positions) == 1

            await until(recorded)
            page = await client.trading.ListHistory(
                trading_pb2.ListHistoryRequest(), metadata=alice
            )
            (entry,) = page.positions
            # 0.18 on the open, 6100 x 30 / 10^6 = 0.183 on the close.
            assert (entry.swap, entry.commission) == (f"-{6 * multiplier}.00", "0.363")
        await engine.shutdown()
