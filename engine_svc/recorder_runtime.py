"""`cfd recorder`: the SQL history written by its own process, off the engine's CPU.

The recorder keeps a replica of the core. It restores the newest of the engine's snapshots at
or before the seq it has recorded (the empty state while the journal still starts at seq 1),
then follows the engine's journal: the segment files under ``<data dir>/engine/journal`` (a
record still being written is read on the next poll), or the JetStream stream when
CFD_JOURNAL_URL names one. Each batch of records is applied to the replica, which yields the
same events the engine's core yielded, and handed to the `Recorder`, which writes them
idempotently by seq. A restart, or a batch seen twice, never writes a row twice.

It writes its progress to the history database (per engine shard) and to the hint file
``<data dir>/engine/recorded_seq``, which the engine reads to keep the snapshots and journal
segments the recorder still needs. Every CFD_SNAPSHOT_EVERY commands it also snapshots its
replica under ``<data dir>/recorder/snapshots`` (where the engine's snapshots are out of reach,
as in a pod of its own, a restart then replays little of the stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from engine_svc.config import EngineConfig, shard_files, shard_stream
from engine_svc.core import Command, Core, Instrument
from engine_svc.core.codec import CodecError, decode_command
from engine_svc.core.engine import snapshot_digest
from engine_svc.fee_schedule import FEES_FILE
from engine_svc.fee_schedule import read_recorded as read_fees
from engine_svc.history import HistoryStore
from engine_svc.instrument_set import INSTRUMENTS_FILE, adopt_instruments
from engine_svc.instrument_set import read_recorded as read_instruments
from engine_svc.jetstream import JetStreamJournal, StreamTail
from engine_svc.journal import JournalError, JournalTail
from engine_svc.pipeline import CommittedBatch
from engine_svc.recorder import Recorder
from engine_svc.sequencer import Applied, apply_logged
from engine_svc.snapshots import SnapshotStore, restore_core
from mesh.aio import wait_event
from mesh.config import Settings
from mesh.db import create_engine, database_url

log = logging.getLogger("engine.recorder")

APPLY_CHUNK = 1000
# Batches held for the database at most; following pauses while it is behind this far.
MAX_BACKLOG = 64
DRAIN_TIMEOUT_S = 10.0
RETRY_S = 1.0


class RecorderError(RuntimeError):
    """The journal cannot be followed: the recorder stops rather than leave a hole."""


class Tail(Protocol):
    """A journal as the recorder follows it."""

    last_seq: int

    def covers(self) -> bool:
        """Return whether every record after `last_seq` can still be read."""

    def poll(self) -> list[tuple[int, bytes]]:
        """Return the records after `last_seq` that are there now (blocking)."""


class RecorderRuntime:
    """The replica, the journal it follows and the recorder it feeds."""

    def __init__(
        self,
        settings: Settings,
        config: EngineConfig,
        *,
        instruments: Mapping[str, Instrument] | None = None,
        db_url: str | None = None,
        poll_s: float = 0.02,
    ) -> None:
        self.settings = settings
        self.config = config
        self.configured = instruments
        # The files of the engine shard this recorder follows, and its own beside them.
        name = shard_files(settings.engine_shard)
        self.engine_dir = settings.data_dir / name
        self.journal_dir = self.engine_dir / "journal"
        self.snapshots = SnapshotStore(self.engine_dir / "snapshots", fsync=False)
        self.own_snapshots = SnapshotStore(
            settings.data_dir / name.replace("engine", "recorder", 1) / "snapshots",
            fsync=config.fsync,
        )
        self._since_snapshot = 0
        self._snapshot_task: asyncio.Task[None] | None = None
        self.hint_path = self.engine_dir / "recorded_seq"
        self.history = HistoryStore(
            create_engine(db_url or database_url(settings, name)), settings.engine_shard
        )
        self.poll_s = poll_s
        self.core: Core | None = None
        self.recorder: Recorder | None = None
        self.tail: Tail | None = None
        # The newest seq seen in the journal; `recorded_seq` trails it.
        self.journal_seq = 0
        # The seq of the snapshot (or the empty state) the replica started from.
        self.base_seq = 0
        self.stopping = asyncio.Event()
        self.ready = asyncio.Event()
        self.failure = ""
        self._instruments_mtime = 0.0

    @property
    def recorded_seq(self) -> int:
        """Return the seq the history holds every event up to."""
        return self.recorder.recorded_seq if self.recorder is not None else 0

    @property
    def serving(self) -> bool:
        """Return whether the recorder follows the journal and the database takes its rows."""
        recorder = self.recorder
        return (
            self.ready.is_set()
            and not self.failure
            and recorder is not None
            and not recorder.retrying
        )

    async def run(self) -> None:
        """Record until `stopping` is set, then write what was read; raise RecorderError
        when the journal cannot be followed."""
        recorder = Recorder(self.history, {}, self.hint_path)
        self.recorder = recorder
        # Until the schema is there nothing can be decided: the seq to start from is in it.
        preparing = asyncio.create_task(recorder.prepare())
        try:
            await self._until(preparing)
        finally:
            if not preparing.done():
                preparing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await preparing
        if self.stopping.is_set():
            return
        if not await self._engine_files():
            return
        core, base = await asyncio.to_thread(self._load_base, recorder.recorded_seq)
        self.core = core
        recorder.instruments = core.instruments
        recorder.offered_seq = max(recorder.recorded_seq, base)
        self.journal_seq = self.base_seq = base
        tail = self.tail = await asyncio.to_thread(self._open_tail, base)
        log.info(
            "recorder: recorded seq %d; following the journal from seq %d",
            recorder.recorded_seq,
            base,
            extra={"fields": {"recorded_seq": recorder.recorded_seq, "from_seq": base}},
        )
        self.ready.set()
        writing = asyncio.create_task(recorder.run(), name="recorder")
        try:
            await self._follow(tail, core, recorder, writing)
        except Exception as exc:
            self.failure = str(exc)
            raise RecorderError(str(exc)) from exc
        finally:
            if not writing.done():
                drained = await recorder.drain(DRAIN_TIMEOUT_S)
                if not drained:
                    log.warning(
                        "recorder: stopped at seq %d with seqs up to %d not written",
                        recorder.recorded_seq,
                        recorder.offered_seq,
                    )
            writing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writing
            if isinstance(tail, StreamTail):
                tail.journal.close()

    async def close(self) -> None:
        """Release the database connections."""
        await self.history.engine.dispose()

    async def _until(self, task: asyncio.Task[None]) -> None:
        stopping = asyncio.create_task(self.stopping.wait())
        try:
            await asyncio.wait((task, stopping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if task.done():
            task.result()

    async def _engine_files(self) -> bool:
        """Wait until the engine has started once (its instruments are recorded); return
        False when stopped first."""
        path = self.engine_dir / INSTRUMENTS_FILE
        announced = False
        # The stream needs no engine files: the configured instruments are the engines' own.
        while not self.config.journal_url and not path.exists():
            if not announced:
                announced = True
                log.info("recorder: waiting for the engine's files in %s", self.engine_dir)
            await wait_event(self.stopping, RETRY_S)
            if self.stopping.is_set():
                return False
        return True

    def _load_base(self, recorded: int) -> tuple[Core, int]:
        """Return the replica to follow the journal from, and its seq: the newest snapshot at
        or before `recorded`, else the empty state, else (the journal no longer reaching back
        that far) the oldest snapshot, with the history after `recorded` lost."""
        found: list[tuple[int, Path, SnapshotStore]] = []
        for store in (self.own_snapshots, self.snapshots):
            for path in store.paths():
                stem = path.name.split(".", 1)[0]
                if stem.isdigit() and self._covers(int(stem)):
                    found.append((int(stem), path, store))
        found.sort(key=lambda item: item[0], reverse=True)
        for seq, path, store in found:
            if seq <= recorded and (core := self._restore(store, path, seq)) is not None:
                return self._adopt(core), seq
        if self._covers(0):
            fees = read_fees(self.engine_dir / FEES_FILE) or self.config.fees
            return self._adopt(Core(self._instruments(), fees)), 0
        for seq, path, store in reversed(found):
            if (core := self._restore(store, path, seq)) is not None:
                log.warning(
                    "recorder: history from seq %d to %d cannot be rebuilt: the journal no "
                    "longer reaches back that far",
                    recorded,
                    seq,
                )
                return self._adopt(core), seq
        raise RecorderError(
            f"no snapshot at or before seq {recorded} and the journal does not start at seq 1"
        )

    def _covers(self, seq: int) -> bool:
        if self.config.journal_url:
            return True  # the stream is never trimmed by the engine
        return JournalTail(self.journal_dir, seq).covers()

    def _restore(self, store: SnapshotStore, path: Path, seq: int) -> Core | None:
        restored = restore_core(store, path, seq)
        return None if restored is None else restored[1]

    def _instruments(self) -> Mapping[str, Instrument] | None:
        recorded = read_instruments(self.engine_dir / INSTRUMENTS_FILE)
        return recorded if recorded is not None else self.configured

    def _adopt(self, core: Core) -> Core:
        """Give the replica the instruments the engine records (it adds new ones at start)."""
        path = self.engine_dir / INSTRUMENTS_FILE
        with contextlib.suppress(OSError):
            self._instruments_mtime = path.stat().st_mtime
        # The recorded set is what the engine runs with, so nothing is written here.
        return adopt_instruments(core, self._instruments(), self.engine_dir, fsync=False)

    def _open_tail(self, base: int) -> Tail:
        config = self.config
        if config.journal_url:
            journal = JetStreamJournal.open(
                config.journal_url,
                # The stream of the shard this recorder follows, named as its engine names it.
                shard_stream(
                    config.journal_stream, self.settings.engine_shards, self.settings.engine_shard
                ),
                replicas=config.journal_replicas,
                timeout_s=config.journal_timeout_ms / 1000,
            )
            return StreamTail(journal, base)
        return JournalTail(self.journal_dir, base)

    async def _follow(
        self, tail: Tail, core: Core, recorder: Recorder, writing: asyncio.Task[None]
    ) -> None:
        while not self.stopping.is_set():
            if writing.done():
                writing.result()
                raise RecorderError("the recorder stopped writing")
            if recorder.backlog >= MAX_BACKLOG:
                # The database is behind: hold the journal's records there, not in memory.
                await wait_event(self.stopping, self.poll_s)
                continue
            try:
                records = await asyncio.to_thread(tail.poll)
            except JournalError as exc:
                raise RecorderError(f"the journal cannot be followed: {exc}") from exc
            if not records:
                await wait_event(self.stopping, self.poll_s)
                continue
            self._check_instruments(core)
            for start in range(0, len(records), APPLY_CHUNK):
                self._apply(core, records[start : start + APPLY_CHUNK], recorder)
                await asyncio.sleep(0)  # let the writer and /metrics run between chunks
            self._since_snapshot += len(records)
            if self._since_snapshot >= self.config.snapshot_every:
                self._snapshot(core, recorder)
        if self._snapshot_task is not None:
            with contextlib.suppress(Exception):
                await self._snapshot_task

    def _snapshot(self, core: Core, recorder: Recorder) -> None:
        """Write a snapshot of the replica on a thread (one at a time), then delete the older
        ones but the newest at or before the recorded seq."""
        if self._snapshot_task is not None and not self._snapshot_task.done():
            return
        self._since_snapshot = 0
        seq, parts = core.last_seq, core.snapshot_parts()
        store = self.own_snapshots

        def write() -> None:
            store.write(seq, time.time_ns(), snapshot_digest(parts), parts)

        async def write_and_prune() -> None:
            try:
                await asyncio.to_thread(write)
            except OSError as exc:
                log.warning("recorder: the snapshot at seq %d failed: %s", seq, exc)
                return
            recorded = recorder.recorded_seq
            keep: set[int] = set()
            for path in store.paths():
                stem = path.name.split(".", 1)[0]
                if stem.isdigit():
                    keep.add(int(stem))
                    if int(stem) <= recorded:
                        break
            store.prune(keep)

        self._snapshot_task = asyncio.create_task(write_and_prune())

    def _check_instruments(self, core: Core) -> None:
        """Adopt instruments the engine added since (it records them before journaling)."""
        try:
            mtime = (self.engine_dir / INSTRUMENTS_FILE).stat().st_mtime
        except OSError:
            return
        if mtime != self._instruments_mtime:
            self._instruments_mtime = mtime
            adopt_instruments(core, self._instruments(), self.engine_dir, fsync=False)
            if self.recorder is not None:
                self.recorder.instruments = core.instruments

    def _apply(self, core: Core, records: list[tuple[int, bytes]], recorder: Recorder) -> None:
        applied: list[Applied] = []
        for seq, payload in records:
            if seq <= core.last_seq:
                continue  # seen already (a chunk read again)
            try:
                command: Command = decode_command(payload)
            except CodecError as exc:
                raise RecorderError(f"journal record {seq} does not decode: {exc}") from None
            if command.seq != seq:
                raise RecorderError(f"journal record {seq} holds seq {command.seq}")
            result = apply_logged(core, command)
            if result is not None:
                applied.append((command, result))
            self.journal_seq = seq
        if applied:
            recorder.consume(CommittedBatch.of(applied))


async def run_recorder(runtime: RecorderRuntime, stop: asyncio.Event | None = None) -> None:
    """Run `runtime` until `stop` is set (then drain it); raise RecorderError on failure."""
    watcher: asyncio.Task[None] | None = None
    if stop is not None:

        async def forward() -> None:
            await stop.wait()
            runtime.stopping.set()

        watcher = asyncio.create_task(forward())
    started = time.monotonic()
    try:
        await runtime.run()
    finally:
        if watcher is not None:
            watcher.cancel()
        await runtime.close()
        log.info(
            "recorder: stopped at recorded seq %d after %.1fs",
            runtime.recorded_seq,
            time.monotonic() - started,
        )
