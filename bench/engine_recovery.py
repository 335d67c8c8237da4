"""Recovery time of `cfd engine`: a snapshot with 1M open positions plus 100k journal records.

Builds the state with the real core in this process, writes the snapshot and the journal the
way the engine does, marks the SQL history as recorded up to the snapshot, then starts a real
`cfd engine` child and measures the time until it serves. BENCH_RECOVERY_POSITIONS and
BENCH_RECOVERY_RECORDS scale the run.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import update

from bench.engine_common import (
    EngineProcess,
    emit,
    engine_env,
    free_port,
    start_quote_source,
)
from engine_svc.core import (
    ApplyQuote,
    ClosePosition,
    Command,
    Core,
    CreateAccount,
    OpenPosition,
    PositionView,
    Side,
)
from engine_svc.core.codec import encode_command
from engine_svc.history import HistoryStore, recorder_state
from engine_svc.journal import Journal
from engine_svc.snapshots import SnapshotStore
from mesh.db import create_engine

BENCH = "engine_recovery"
POSITIONS = int(os.environ.get("BENCH_RECOVERY_POSITIONS", "1000000"))
RECORDS = int(os.environ.get("BENCH_RECOVERY_RECORDS", "100000"))
ACCOUNTS = 10_000
RECOVERED = re.compile(
    r"replayed (\d+) commands in ([0-9.]+)s \(snapshot load ([0-9.]+)s, "
    r"replay ([0-9.]+)s, digest ([0-9.]+)s\)"
)
BID, ASK = 6_425_000, 6_425_100


def build(core: Core) -> int:
    """Open POSITIONS positions; return the last seq."""
    seq = 0
    for number in range(ACCOUNTS):
        seq += 1
        core.apply(CreateAccount(seq, seq, f"acct-{number}", 10**15))
    seq += 1
    core.apply(ApplyQuote(seq, seq, "BTCUSD", BID, ASK))
    for number in range(POSITIONS):
        seq += 1
        side = Side.BUY if number % 2 else Side.SELL
        core.apply(
            OpenPosition(seq, seq, f"acct-{number % ACCOUNTS}", "BTCUSD", side, 10, quantity=1)
        )
    return seq


def journal_tail(core: Core, seq: int) -> list[Command]:
    """Return RECORDS commands after `seq`: opens, closes and ticks, applied to `core`."""
    commands: list[Command] = []
    opened: list[str] = []
    for number in range(RECORDS):
        seq += 1
        kind = number % 4
        command: Command
        if kind == 0:
            move = (number // 4) % 50
            command = ApplyQuote(seq, seq, "BTCUSD", BID + move, ASK + move)
        elif kind == 3 and opened:
            command = ClosePosition(seq, seq, f"acct-{number % ACCOUNTS}", opened.pop())
        else:
            command = OpenPosition(
                seq, seq, f"acct-{number % ACCOUNTS}", "BTCUSD", Side.BUY, 10, quantity=1
            )
        result = core.apply(command)
        if isinstance(command, OpenPosition) and isinstance(result.payload, PositionView):
            opened.append(result.payload.id)
        commands.append(command)
    return commands


async def mark_recorded(url: str, seq: int) -> None:
    """Create the history schema and mark everything up to `seq` as recorded."""
    store = HistoryStore(create_engine(url))
    await store.create_schema()
    async with store.engine.begin() as conn:
        await conn.execute(update(recorder_state).values(seq=seq))
    await store.engine.dispose()


async def main() -> None:
    """Prepare the data dir, start the engine and report the recovery time."""
    with tempfile.TemporaryDirectory(prefix="cfd-bench-") as tmp:
        data_dir = Path(tmp)
        root = data_dir / "engine"
        started = time.perf_counter()
        core = Core()
        snapshot_seq = build(core)
        payload = core.snapshot()
        digest = core.digest()
        info = SnapshotStore(root / "snapshots").write(
            snapshot_seq, time.time_ns(), digest, payload
        )
        commands = journal_tail(core, snapshot_seq)
        journal = Journal.open(root / "journal")
        for first in range(0, len(commands), 1000):
            chunk = commands[first : first + 1000]
            journal.append([(c.seq, encode_command(c)) for c in chunk])
        journal.close()
        expected_digest = core.digest()
        expected_seq = core.last_seq
        del core
        emit(BENCH, "prepare", round(time.perf_counter() - started, 1), "s")
        emit(BENCH, "snapshot_positions", POSITIONS, "positions")
        emit(BENCH, "snapshot_bytes", info.size, "bytes")
        emit(BENCH, "journal_records", len(commands), "records")
        await mark_recorded(f"sqlite+aiosqlite:///{data_dir / 'engine.sqlite3'}", snapshot_seq)
        server, market_addr = await start_quote_source({"BTCUSD": ("64250.00", "64251.00")})
        port = free_port()
        env = engine_env(data_dir, port, market_addr, CFD_LOG_LEVEL="INFO")
        log_path = data_dir / "engine.log"
        engine = EngineProcess(env, log_path)
        try:
            elapsed = await engine.wait_serving(f"127.0.0.1:{port}", limit_s=600)
        finally:
            engine.stop()
            await server.stop(0)
        output = log_path.read_text()
        emit(BENCH, "recovery_to_serving", round(elapsed, 3), "s")
        found = RECOVERED.search(output)
        if found is not None:
            emit(BENCH, "recovery_reported", float(found.group(2)), "s")
            emit(BENCH, "recovery_snapshot_load", float(found.group(3)), "s")
            emit(BENCH, "recovery_replay", float(found.group(4)), "s")
            emit(BENCH, "recovery_digest", float(found.group(5)), "s")
        if f"recovered to seq {expected_seq}" not in output or expected_digest not in output:
            raise SystemExit(f"the engine did not recover the expected state:\n{output[-3000:]}")
        emit(BENCH, "recovered_digest_matches", 1, "bool")


if __name__ == "__main__":
    asyncio.run(main())
