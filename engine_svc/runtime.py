"""The engine process wired in one place: recovery, the single writer, prices, snapshots
and streams.

Layout under ``<CFD_DATA_DIR>/engine/``: ``journal/`` (segments), ``snapshots/`` and
``recorded_seq`` (the progress hint of the recorder, `cfd recorder`, which follows the journal
in its own process and writes the SQL history).

Start-up picks the newest valid snapshot the journal continues, replays the journal after it,
logs the digest and only then lets the server accept calls. Snapshots are taken every
CFD_SNAPSHOT_EVERY commands, every CFD_SNAPSHOT_INTERVAL_S seconds when anything changed, and
on clean shutdown; older snapshots and journal segments that neither recovery nor the recorder
can need any more are deleted. The engine writes no SQL: it reads the history for queries.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import socket
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from pathlib import Path
from typing import Any

import nats.errors

from engine_svc.config import EngineConfig, shard_files, shard_stream
from engine_svc.core import Command, Core, Instrument, Result, TransferView
from engine_svc.core.codec import CodecError, decode_command
from engine_svc.core.engine import snapshot_digest
from engine_svc.fee_schedule import adopt_fees
from engine_svc.history import HistoryStore
from engine_svc.instrument_set import adopt_instruments
from engine_svc.jetstream import JetStreamJournal
from engine_svc.journal import CommandLog, Journal, JournalError
from engine_svc.leader import LeadershipError, Lease, LeaseValue
from engine_svc.market_streams import MarketHub
from engine_svc.metrics import SNAPSHOT_SECONDS
from engine_svc.pipeline import CommittedBatch, CommittedBatches
from engine_svc.prices import Freshness, TickSubscriber
from engine_svc.recorder import RecorderProgress
from engine_svc.sequencer import Applied, Sequencer, apply_logged
from engine_svc.snapshots import SnapshotInfo, SnapshotStore, restore_core
from engine_svc.streams import EventHub
from engine_svc.transfers import PeerShards, TransferDriver
from engine_svc.witnesses import check_recovered, witnesses
from mesh.config import Settings
from mesh.db import SchemaVersionError, create_engine, database_url
from mesh.errors import ApiError

log = logging.getLogger("engine")

REPLAY_CHUNK = 1000
DB_PROBE_TIMEOUT_S = 3.0
ROLLOVER_RETRY_S = 5.0


class RecoveryError(RuntimeError):
    """The state cannot be rebuilt from the snapshots and journal on disk."""


class EngineRuntime:
    """Everything the engine process runs; the servicers read through it."""

    def __init__(
        self,
        settings: Settings,
        config: EngineConfig,
        *,
        instruments: Mapping[str, Instrument] | None = None,
        market_addr: str | None = None,
        db_url: str | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.instruments = instruments
        # Each shard has its own files (and, without CFD_DATABASE_URL, its own SQLite history).
        name = shard_files(settings.engine_shard)
        root = settings.data_dir / name
        self.journal_dir = root / "journal"
        self.snapshot_dir = root / "snapshots"
        self.hint_path = root / "recorded_seq"
        self.market_addr = market_addr or settings.market_addr
        self.db_url = db_url or database_url(settings, name)
        self.freshness = Freshness(config.price_stale_ms)
        self.core = Core(instruments, config.fees)
        self.journal: CommandLog | None = None
        self.snapshots = SnapshotStore(self.snapshot_dir, config.fsync)
        self.snapshot_info: SnapshotInfo | None = None
        self.history = HistoryStore(create_engine(self.db_url), settings.engine_shard)
        self.progress = RecorderProgress(self.history, self.hint_path)
        self.hub = EventHub()
        self.market_hub = MarketHub()
        self.sequencer: Sequencer | None = None
        self.subscriber: TickSubscriber | None = None
        self.failed = asyncio.Event()
        self.failure = ""
        self.committed = CommittedBatches([], self._on_failure)
        self.recovery_s = 0.0
        self.replayed = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._since_snapshot = 0
        self._last_snapshot_at = time.monotonic()
        self._snapshot_task: asyncio.Task[None] | None = None
        # Seconds the last snapshot held up the single writer (encoding the state).
        self.snapshot_stall_s = 0.0
        self._digest: tuple[int, str] = (-1, "")
        # Replicated journal only: the lease, this engine's role, and the leader's newest
        # snapshot digest a standby checks its state against when it reaches that seq.
        self.lease: Lease | None = None
        # Set by the server on SIGTERM: a standby that has not taken the lead stops waiting.
        self.stopping = asyncio.Event()
        self.role = "primary"
        self._expected_digest: tuple[int, str] = (-1, "")
        self.digest_checked_seq = 0
        # Each shard of several replicates its own journal stream under its own lease.
        self.journal_stream = shard_stream(
            config.journal_stream, settings.engine_shards, settings.engine_shard
        )
        self.transfers = TransferDriver(
            settings.engine_shard, PeerShards(settings), self._in_flight, self._submit
        )

    # ------------------------------------------------------------------ start

    async def start(self) -> None:
        """Recover the state and start the background tasks (before the port opens)."""
        started = time.perf_counter()
        self.snapshot_dir.parent.mkdir(parents=True, exist_ok=True)
        journal = self.journal = self.open_journal()
        recorded = await self._recorded_seq()
        # The state is millions of long-lived objects: collecting while building it only
        # rescans them, and afterwards they are moved out of the collector's way for good.
        gc.disable()
        try:
            loading = time.perf_counter()
            core, base = self._load_base(journal)
            core = adopt_instruments(core, self.instruments, self.snapshot_dir.parent)
            adopt_fees(core, self.config.fees, self.snapshot_dir.parent, self.config.fsync)
            load_s = time.perf_counter() - loading
            self.core = core
            sequencer, loops = self._wire(core, journal, base)
            replaying = time.perf_counter()
            last_ts, expiries = self._replay(journal, core, base)
            replay_s = time.perf_counter() - replaying
        finally:
            gc.freeze()
            gc.enable()
        check_recovered(
            core.last_seq, witnesses(journal.mark, self.snapshots, self.hint_path, recorded)
        )
        # Replayed commands are not in a snapshot yet either.
        self._since_snapshot = self.replayed
        digesting = time.perf_counter()
        digest = self.state_digest()
        digest_s = time.perf_counter() - digesting
        self.recovery_s = time.perf_counter() - started
        log.info(
            "recovered to seq %d from snapshot %d: replayed %d commands in %.3fs "
            "(snapshot load %.3fs, replay %.3fs, digest %.3fs); digest %s",
            core.last_seq,
            base,
            self.replayed,
            self.recovery_s,
            load_s,
            replay_s,
            digest_s,
            digest,
            extra={
                "fields": {
                    "seq": core.last_seq,
                    "snapshot_seq": base,
                    "replayed": self.replayed,
                    "seconds": round(self.recovery_s, 3),
                    "digest": digest,
                }
            },
        )
        self.progress.recorded_seq = recorded
        if isinstance(journal, JetStreamJournal):
            last_ts = max(last_ts, await self._take_lead(journal, core))
            expiries = pending_expiries(core)
        sequencer.last_ts = last_ts
        for expire in expiries:
            sequencer.watch_expiry(expire)
        # Calls reach the sequencer only from here on, with the state fully recovered.
        self.sequencer = sequencer
        # In the order of `loops`, which `stop` relies on (sequencer first), and set only
        # now: while following, the snapshot trigger leaves counting to `_follow`.
        self._tasks = [asyncio.create_task(loop(), name=name) for name, loop in loops]
        if self.lease is not None:
            self._tasks.append(asyncio.create_task(self._keep_lead(), name="lease"))
            await self._fence(sequencer)

    def _in_flight(self) -> list[TransferView]:
        return self.core.transfers_in_flight()

    async def _submit(self, command: Command) -> Result:
        sequencer = self.sequencer
        if sequencer is None:
            raise ApiError("SERVICE_UNAVAILABLE", "the engine is starting")
        return await sequencer.submit(command)

    def _wire(
        self, core: Core, journal: CommandLog, base: int
    ) -> tuple[Sequencer, list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]]]:
        """Wire the engine's pipeline around the recovered core, in the order a command flows.

        Commands (RPC handlers' `submit`, the ticks' `offer_quote`, due expiries) → the
        sequencer, the single writer, numbers them and batches them → the journal appends and
        fsyncs each batch → the core applies it → the committed-batch consumers take it in
        turn: the stream hub (live streams), the market hub (spot books, trades and fills) and
        the snapshot trigger. (The SQL history is written by `cfd recorder`, which replays
        the journal in its own process.) Replay feeds
        the same consumers; a failing journal or consumer stops the engine (`failed`). Return
        the sequencer and the loops to run once recovery is done (the order `stop` relies on).
        """
        self.hub = EventHub(floor=base, ring=self.config.event_ring)
        self.market_hub = MarketHub()
        self.committed = CommittedBatches(
            [
                ("stream hub", self.hub.consume),
                ("market hub", self.market_hub.consume),
                ("snapshot trigger", self._count_for_snapshot),
            ],
            self._on_failure,
        )
        sequencer = Sequencer(
            core, journal, is_fresh=self.freshness.is_fresh, max_batch=self.config.max_batch
        )
        sequencer.listeners.append(self.committed)
        sequencer.on_failure = self._on_journal_failure
        ticks = TickSubscriber(
            self.market_addr,
            self.settings.internal_token,
            core.instruments,
            self.freshness,
            sequencer.offer_quote,
        )
        self.subscriber = ticks
        return sequencer, [
            ("sequencer", sequencer.run),
            ("recorder progress", self.progress.watch),
            ("ticks", ticks.run),
            ("snapshot-timer", self._snapshot_timer),
            ("rollover", self._rollover_timer),
            ("transfers", self.transfers.run),
        ]

    def open_journal(self) -> CommandLog:
        """Open the configured journal: the replicated JetStream stream when CFD_JOURNAL_URL
        names one, else the local segment files."""
        config = self.config
        if config.journal_url:
            return JetStreamJournal.open(
                config.journal_url,
                self.journal_stream,
                replicas=config.journal_replicas,
                timeout_s=config.journal_timeout_ms / 1000,
            )
        return Journal.open(self.journal_dir, config.segment_bytes, config.fsync)

    async def _recorded_seq(self) -> int:
        """Return the recorder's seq (a witness of the seqs the journal must hold)."""
        hint = self.progress.retained_from()
        try:
            await asyncio.wait_for(self.history.create_schema(), DB_PROBE_TIMEOUT_S)
            recorded = await asyncio.wait_for(self.history.recorded_seq(), DB_PROBE_TIMEOUT_S)
        except SchemaVersionError:
            raise
        except Exception as exc:
            log.warning("history database unavailable at start (%s); using the hint %d", exc, hint)
            return hint
        return recorded

    def _load_base(self, journal: CommandLog) -> tuple[Core, int]:
        """Return the core to replay onto and its seq: the newest valid snapshot the journal
        continues, else the empty state when the journal still starts at seq 1."""
        for path in self.snapshots.paths():
            stem = path.name.split(".", 1)[0]
            usable = stem.isdigit() and journal.covers(int(stem))
            if usable and (core := self._restore(path, int(stem))) is not None:
                return core, int(stem)
        if journal.covers(0):
            return Core(self.instruments, self.config.fees), 0
        raise RecoveryError(
            f"no usable snapshot and the journal starts at seq "
            f"{journal.first_seq}: cannot rebuild the state"
        )

    def _restore(self, path: Path, seq: int) -> Core | None:
        restored = restore_core(self.snapshots, path, seq)
        if restored is None:
            return None
        self.snapshot_info, core = restored
        return core

    def _replay(self, journal: CommandLog, core: Core, base: int) -> tuple[int, list[int]]:
        """Apply the journal after `base`; return the last ts and pending expiries."""
        return self._apply_records(journal.read(base), core), pending_expiries(core)

    def _apply_records(self, records: Iterable[tuple[int, bytes]], core: Core) -> int:
        """Apply journal records in order, handing the results to the hub; return the last ts.
        A digest the leader published for one of these seqs is compared on the way."""
        last_ts = 0
        chunk: list[Applied] = []
        for seq, payload in records:
            try:
                command: Command = decode_command(payload)
            except CodecError as exc:
                raise RecoveryError(f"journal record {seq} does not decode: {exc}") from None
            if command.seq != seq:
                raise RecoveryError(f"journal record {seq} holds seq {command.seq}")
            result = apply_logged(core, command)
            self.replayed += 1
            last_ts = max(last_ts, command.ts)
            if result is not None:
                chunk.append((command, result))
            if len(chunk) >= REPLAY_CHUNK:
                self.committed(chunk)
                chunk = []
            if seq == self._expected_digest[0]:
                self._check_digest(core)
        if chunk:
            self.committed(chunk)
        return last_ts

    def state_digest(self) -> str:
        """Return the digest of the current state, computed once per seq."""
        seq = self.core.last_seq
        if self._digest[0] != seq:
            # Only `apply` changes the state, and every apply raises last_seq.
            self._digest = (seq, self.core.digest())
        return self._digest[1]

    # ------------------------------------------------------------------ snapshots

    def _count_for_snapshot(self, batch: CommittedBatch) -> None:
        if not self._tasks:
            return  # replaying: recovery counts what it replayed itself
        self._since_snapshot += len(batch.applied)
        if self._since_snapshot >= self.config.snapshot_every:
            self.request_snapshot()

    async def _snapshot_timer(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            due = time.monotonic() - self._last_snapshot_at >= self.config.snapshot_interval_s
            if due and self._since_snapshot > 0:
                self.request_snapshot()

    async def _rollover_timer(self) -> None:
        """Charge each daily rollover when it is due (`rollover`): at start-up the latest one
        not charged yet, then each one as its time comes. A rollover that would charge no
        position is not issued (it would change nothing but the day last charged)."""
        schedule = self.config.rollover
        while True:
            now = time.time_ns()
            day, moment = schedule.latest(now)
            if day > self.core.last_rollover and self._swaps_held_over(moment):
                try:
                    result = await self.charge_rollover(now)
                except ApiError as exc:
                    # The journal refused the batch: try again shortly.
                    log.warning("the rollover of day %d is not charged yet: %s", day, exc)
                    await asyncio.sleep(ROLLOVER_RETRY_S)
                    continue
                log.info(
                    "rollover of day %d charged: %s", day, result.payload or result.message
                )
            delay_s = (schedule.next_after(time.time_ns()) - time.time_ns()) / 1e9
            await asyncio.sleep(max(0.0, delay_s))

    def _swaps_held_over(self, moment_ns: int) -> bool:
        """Return True when a position opened at or before `moment_ns` has a swap rate."""
        instruments = self.core.instruments
        for position in self.core.positions.values():
            if position.open_ts <= moment_ns:
                charges = instruments[position.symbol].charges
                if charges.swap_long if position.is_buy else charges.swap_short:
                    return True
        return False

    async def charge_rollover(self, at_ns: int) -> Result:
        """Submit the `ChargeSwaps` of the last rollover at or before `at_ns`; return its
        result (a rejection when that day is already charged)."""
        sequencer = self.sequencer
        if sequencer is None:
            raise ApiError("SERVICE_UNAVAILABLE", "the engine is starting")
        return await sequencer.submit(self.config.rollover.command(at_ns))

    def request_snapshot(self) -> asyncio.Task[None] | None:
        """Start writing a snapshot of the current state unless one is being written."""
        if self._snapshot_task is not None and not self._snapshot_task.done():
            return self._snapshot_task
        # Taken synchronously: the state is a whole number of committed batches right now.
        # Only the encoding holds up the writer; the pieces are immutable bytes, so the digest
        # (sha256 of the state encoding), the checksum, the write and the fsync run on a thread.
        taking = time.perf_counter()
        seq, parts = self.core.last_seq, self.core.snapshot_parts()
        self.snapshot_stall_s = time.perf_counter() - taking
        known = self._digest[1] if self._digest[0] == seq else None
        self._since_snapshot = 0
        self._last_snapshot_at = time.monotonic()
        self._snapshot_task = asyncio.create_task(self._write_snapshot(seq, parts, known))
        return self._snapshot_task

    def _digest_and_write(
        self, seq: int, parts: list[bytes], known: str | None
    ) -> tuple[SnapshotInfo, str]:
        digest = snapshot_digest(parts) if known is None else known
        return self.snapshots.write(seq, time.time_ns(), digest, parts), digest

    async def _write_snapshot(self, seq: int, parts: list[bytes], known: str | None) -> None:
        writing = time.perf_counter()
        try:
            info, digest = await asyncio.to_thread(self._digest_and_write, seq, parts, known)
        except OSError as exc:
            log.error("snapshot at seq %d failed: %s", seq, exc)
            return
        SNAPSHOT_SECONDS.observe(self.snapshot_stall_s + time.perf_counter() - writing)
        if self.core.last_seq == seq:
            self._digest = (seq, digest)
        self.snapshot_info = info
        # Retention keeps what the recorder needs: ask how far it is now, off the order path.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.progress.refresh(), DB_PROBE_TIMEOUT_S)
        log.info(
            "snapshot at seq %d written (%d bytes, writer held %.3fs)",
            seq,
            info.size,
            self.snapshot_stall_s,
            extra={
                "fields": {
                    "seq": seq,
                    "bytes": info.size,
                    "digest": digest,
                    "stall_s": self.snapshot_stall_s,
                }
            },
        )
        self.prune()

    def prune(self) -> None:
        """Delete snapshots and journal segments that recovery and the recorder cannot need:
        the recorder restarts from a snapshot at or before its recorded seq (its hint file)."""
        if self.journal is None or self.snapshot_info is None:
            return
        recorded = self.progress.retained_from()
        keep = {self.snapshot_info.seq}
        for path in self.snapshots.paths():
            stem = path.name.split(".", 1)[0]
            if stem.isdigit() and int(stem) <= recorded:
                keep.add(int(stem))
                break
        self.snapshots.prune(keep)
        if len(keep) == 1 and self.snapshot_info.seq > recorded:
            # No snapshot at or before the recorded seq: keep the journal for the recorder.
            return
        self.journal.delete_through(min(keep))

    # ------------------------------------------------------------------ leadership

    @property
    def leader(self) -> str:
        """Return who leads the replicated journal as the lease names it ("host:pid:port"):
        this engine while it holds the lease, else ""; always "" on the file journal."""
        if self.lease is None or self.role != "primary":
            return ""
        return self.lease.holder

    def _lease_value(self) -> LeaseValue:
        info = self.snapshot_info
        holder = f"{socket.gethostname()}:{os.getpid()}:{self.settings.engine_port}"
        if info is None:
            return LeaseValue(holder)
        return LeaseValue(holder, info.seq, info.digest)

    async def _take_lead(self, journal: JetStreamJournal, core: Core) -> int:
        """Hold the stream's lease before serving. A standby follows the stream, applying
        every batch, until the lease is free; a primary refuses to start while another engine
        holds it. Return the newest command ts applied."""
        config = self.config
        lease = Lease(
            config.journal_url,
            self.journal_stream,
            self._lease_value().holder,
            config.lease_ttl_ms / 1000,
            config.journal_replicas,
            config.journal_timeout_ms / 1000,
        )
        await lease.open()
        self.lease = lease
        last_ts = 0
        announced = False
        self.role = "standby"
        # A primary waits this long for a held lease to lapse: the holder may be this engine's
        # own former process, killed within the TTL, whose lease nobody renews any more.
        held_until = time.monotonic() + 2 * lease.ttl_s + config.journal_timeout_ms / 1000
        waited = False
        while not await self._try_lease(lease):
            if self.stopping.is_set():
                raise LeadershipError("stopped while standing by")
            try:
                current = await lease.read()
            except Exception as exc:
                log.warning("standing by: the lease cannot be read: %s", exc)
                await asyncio.sleep(lease.ttl_s / 4)
                continue
            if not config.standby:
                if current is None:
                    # Nobody holds it, yet it could not be taken: the cluster did not answer
                    # (a bucket that has just been created, a node that is starting). Try again.
                    await asyncio.sleep(lease.ttl_s / 4)
                    continue
                if time.monotonic() < held_until:
                    if not waited:
                        waited = True
                        log.info(
                            "%s holds the lease of the journal %s; waiting up to %.1fs for it "
                            "to lapse",
                            current.holder,
                            journal.stream,
                            held_until - time.monotonic(),
                        )
                    await asyncio.sleep(lease.ttl_s / 4)
                    continue
                raise LeadershipError(
                    f"{current.holder} leads the journal {journal.stream}; start this engine "
                    "with --standby to follow it"
                )
            if current is not None and current.seq > core.last_seq:
                self._expected_digest = (current.seq, current.digest)
            if not announced:
                announced = True
                log.info(
                    "standing by: %s leads the journal %s; following it from seq %d",
                    current.holder if current is not None else "another engine",
                    journal.stream,
                    core.last_seq,
                )
            last_ts = max(last_ts, await self._follow(journal, core))
            await asyncio.sleep(lease.ttl_s / 4)
        # The lease is ours: nothing more can be appended but by us, so this reaches the end.
        last_ts = max(last_ts, await self._follow(journal, core))
        self.role = "primary"
        log.info(
            "leading the journal %s from seq %d; digest %s (checked against the previous "
            "leader's at seq %d)",
            journal.stream,
            core.last_seq,
            self.state_digest(),
            self.digest_checked_seq,
            extra={"fields": {"seq": core.last_seq, "checked_seq": self.digest_checked_seq}},
        )
        return last_ts

    async def _try_lease(self, lease: Lease) -> bool:
        try:
            return await lease.acquire(self._lease_value())
        except Exception as exc:
            log.warning("the lease cannot be taken now: %s", exc)
            return False

    async def _follow(self, journal: JetStreamJournal, core: Core) -> int:
        try:
            records = await asyncio.to_thread(journal.follow)
        except (JournalError, nats.errors.Error, TimeoutError) as exc:
            log.warning("the journal cannot be followed now: %s", exc)
            return 0
        self.replayed += len(records)
        last_ts = self._apply_records(records, core)
        # A standby snapshots as the leader does, so its own restart replays little.
        self._since_snapshot += len(records)
        if self._since_snapshot >= self.config.snapshot_every:
            self.request_snapshot()
        return last_ts

    def _check_digest(self, core: Core) -> None:
        seq, expected = self._expected_digest
        actual = core.digest()
        if actual != expected:
            raise RecoveryError(
                f"the state at seq {seq} has digest {actual}, but the leader's snapshot at that "
                f"seq has {expected}: this engine diverged and must not lead"
            )
        self.digest_checked_seq = seq
        log.info("standby state at seq %d matches the leader's digest %s", seq, expected)

    async def _fence(self, sequencer: Sequencer) -> None:
        """Append a batch at once, so a paused former leader's next publish is refused."""
        sequencer.watch_expiry(0)
        deadline = time.monotonic() + self.config.journal_timeout_ms / 1000 * 2
        while sequencer.batches == 0:
            if sequencer.failure is not None or time.monotonic() > deadline:
                raise LeadershipError("the first batch as leader could not be appended")
            await asyncio.sleep(0.005)

    async def _keep_lead(self) -> None:
        """Renew the lease; step down (stop writing and stop the engine) once another engine
        holds it. While the cluster cannot be reached the engine keeps the lead it has: the
        journal refuses its writes anyway if another engine took over."""
        lease = self.lease
        journal = self.journal
        assert lease is not None and isinstance(journal, JetStreamJournal)
        while True:
            await asyncio.sleep(lease.ttl_s / 3)
            try:
                kept = await lease.renew(self._lease_value())
            except Exception as exc:
                log.warning("the lease could not be renewed: %s", exc)
                continue
            if not kept:
                journal.fenced = True
                self.role = "standby"
                self._on_failure(LeadershipError("another engine took the lead"))
                return

    def _on_journal_failure(self, exc: BaseException) -> None:
        self._on_failure(RuntimeError(f"the journal could not be written: {exc}"))

    def _on_failure(self, exc: BaseException) -> None:
        log.critical("the engine cannot continue: %s", exc)
        if not self.failed.is_set():
            self.failure = str(exc)
        self.failed.set()

    def failing_consumers(self) -> list[str]:
        """Return the committed-batch consumers that failed."""
        return sorted(self.committed.broken)

    async def stop(self) -> None:
        """Commit what is queued, snapshot and close (after the drain)."""
        sequencer = self.sequencer
        tasks = self._tasks
        if sequencer is not None:
            sequencer.stop()
            with contextlib.suppress(Exception):
                await tasks[0]
        for task in tasks[1:]:
            task.cancel()
        if self._snapshot_task is not None:
            with contextlib.suppress(Exception):
                await self._snapshot_task
        if sequencer is not None and sequencer.failure is None and self._since_snapshot > 0:
            final = self.request_snapshot()
            if final is not None:
                with contextlib.suppress(Exception):
                    await final
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.lease is not None:
            with contextlib.suppress(Exception):
                if self.role == "primary":
                    await self.lease.release()
                await self.lease.close()
        if self.journal is not None:
            self.journal.close()
        await self.history.engine.dispose()

    # ------------------------------------------------------------------ figures

    @property
    def journal_stats(self) -> tuple[int, int]:
        """Return (bytes, segments) of the journal on disk."""
        if self.journal is None:
            return 0, 0
        return self.journal.total_bytes, self.journal.segment_count


def pending_expiries(core: Core) -> list[int]:
    """Return the expiry times of the pending orders that expire."""
    return [
        order.expire_time
        for account_id in list(core.accounts)
        for order in core.list_orders(account_id)
        if order.expire_time is not None
    ]
