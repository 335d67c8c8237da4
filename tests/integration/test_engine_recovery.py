"""A corrupt journal under a real `cfd engine`: the last record, an acknowledged close that the
recorder already wrote to SQL, is damaged after the engine stopped. The engine refuses to serve
and names the seqs; `cfd engine recover` reports, then repairs when the loss is accepted; the
engine then serves again without handing any seq out twice."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import grpc

from cfd.v1 import common_pb2, trading_pb2
from engine_svc.history import HistoryStore
from engine_svc.journal import SUFFIX
from integration.test_engine_harness import Client, engine_settings, fake_market, user_issuer
from launcher.cli import grpc_serving
from mesh.config import Settings
from mesh.db import create_engine, database_url
from support import REPO, ServiceProcess, until, wait_for

USER = "trader-1"


def _cfd(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "launcher.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def _recorded(settings: Settings) -> int:
    store = HistoryStore(create_engine(database_url(settings, "engine")))
    try:
        return await store.recorded_seq()
    finally:
        await store.engine.dispose()


async def _open(client: Client, key: str) -> str:
    reply = await client.trading.OpenPosition(
        trading_pb2.OpenPositionRequest(
            symbol="BTCUSD",
            side=common_pb2.SIDE_BUY,
            leverage=10,
            quantity="0.001",
            client_order_id=key,
        ),
        metadata=client.auth(USER),
    )
    return str(reply.position.id)


async def _closed_ids(client: Client) -> set[str]:
    history = await client.trading.ListHistory(
        trading_pb2.ListHistoryRequest(), metadata=client.auth(USER)
    )
    return {entry.id for entry in history.positions}


async def test_a_corrupt_acknowledged_tail_refuses_to_serve_until_recovered(
    tmp_path: Path, database_url: str
) -> None:
    async with fake_market() as (market, address):
        market.push("BTCUSD", "64250.00", "64251.00")
        settings, env = engine_settings(
            tmp_path, address, CFD_PRICE_STALE_MS="60000", CFD_DATABASE_URL=database_url
        )
        issuer = user_issuer(settings)
        first = ServiceProcess(["engine"], env, tmp_path / "engine-0.log")
        recorder = ServiceProcess(["recorder"], env, tmp_path / "recorder-0.log")
        try:
            first.wait_grpc_ready(settings.engine_port)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.engine_port}") as ch:
                client = Client(ch, issuer)
                await client.create_account(USER, "100000")
                kept = await _open(client, "open-1")
                lost = await _open(client, "open-2")
                await client.trading.ClosePosition(
                    trading_pb2.ClosePositionRequest(position_id=lost),
                    metadata=client.auth(USER),
                )
                acknowledged = (await client.stats()).sequence

                async def recorded() -> bool:
                    return await _recorded(settings) >= acknowledged

                await until(recorded)
                assert lost in await _closed_ids(client)
        finally:
            first.stop(signal.SIGKILL)
            # A recorder replays the journal as it was: it is stopped while the journal is
            # repaired, as the engine is.
            recorder.stop(signal.SIGKILL)

        # The acknowledged, recorded close is the journal's last record: damage its last bytes.
        segment = max((tmp_path / "engine" / "journal").glob(f"*{SUFFIX}"))
        data = bytearray(segment.read_bytes())
        for offset in range(1, 5):
            data[-offset] ^= 0xFF
        segment.write_bytes(bytes(data))

        refused = ServiceProcess(["engine"], env, tmp_path / "engine-1.log")

        def exited_or_serving() -> str | None:
            if refused.process.poll() is not None:
                return "exited"
            return "serving" if grpc_serving(f"127.0.0.1:{settings.engine_port}", 0.5) else None

        outcome = wait_for(exited_or_serving, timeout=60, interval=0.1)
        code = refused.stop()
        output = refused.output()
        assert outcome == "exited" and code != 0, output
        assert "refusing to start" in output
        assert f"fsync'd through seq {acknowledged}" in output
        assert f"acknowledged commands of seq {acknowledged} are damaged" in output
        assert "cfd engine recover" in output
        assert "unacknowledged" not in output and "never acknowledged" not in output

        report = _cfd(env, "engine", "recover")
        assert report.returncode == 1, report.stdout + report.stderr
        assert f"lost: the acknowledged commands of seq {acknowledged}" in report.stdout
        assert f"the recorded history: seq {acknowledged}" in report.stdout
        assert segment.read_bytes() == bytes(data)

        repaired = _cfd(env, "engine", "recover", "--accept-loss")
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr

        again = ServiceProcess(["engine"], env, tmp_path / "engine-2.log")
        recorder = ServiceProcess(["recorder"], env, tmp_path / "recorder-1.log")
        try:
            again.wait_grpc_ready(settings.engine_port)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.engine_port}") as ch:
                client = Client(ch, issuer)
                assert (await client.stats()).sequence >= acknowledged
                # The state lost the close, and so did the history: they agree again.
                position = await client.trading.GetPosition(
                    trading_pb2.GetPositionRequest(position_id=lost), metadata=client.auth(USER)
                )
                assert position.position.status == trading_pb2.POSITION_STATUS_OPEN
                assert lost not in await _closed_ids(client)
                await client.trading.ClosePosition(
                    trading_pb2.ClosePositionRequest(position_id=kept),
                    metadata=client.auth(USER),
                )
                fresh = await _open(client, "open-3")
                assert fresh not in {kept, lost}
                latest = (await client.stats()).sequence
                assert latest > acknowledged

                async def recorded_again() -> bool:
                    return await _recorded(settings) >= latest

                await until(recorded_again)
                # Recorded under new seqs, not skipped as already written.
                assert kept in await _closed_ids(client)
        finally:
            again.stop()
            recorder.stop()
