"""`cfd engine recover`: the operator's way on when the engine refuses to start because its
journal is corrupt or ends below a durable witness (`engine_svc.witnesses`).

It reports the journal's damage, each witness, how far the files can rebuild the state and
which acknowledged commands are lost, then changes nothing: the operator can still restore the
journal from a backup or repair it by hand. With ``--accept-loss`` it makes the files
consistent again, the lost commands staying lost:

- the journal keeps its valid records up to the damage (or none, when a valid snapshot
  reaches further), the damaged or dropped segments going to ``engine/recovery-<time>/``;
- snapshot files above the recoverable seq (damaged ones) go there too;
- the rows the history database holds for the lost seqs go there as JSON lines and are
  deleted, so history matches the state again;
- one `ExpireOrders` command is journaled at the highest witnessed seq: it spends the lost
  seqs, so the next command gets a seq no witness has seen and no id is handed out twice.

When a valid snapshot holds every lost command, nothing is lost and no flag is needed.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from engine_svc.config import EngineConfig
from engine_svc.core import ExpireOrders
from engine_svc.core.codec import decode_command, encode_command
from engine_svc.journal import SUFFIX as JOURNAL_SUFFIX
from engine_svc.journal import Journal, JournalError, Survey, seq_range, survey
from engine_svc.recorder import read_hint
from engine_svc.runtime import EngineRuntime
from engine_svc.snapshots import SUFFIX, SnapshotError, SnapshotStore
from engine_svc.witnesses import Witness, witnesses
from mesh.config import ConfigError, Settings

log = logging.getLogger("engine.recovery")


@dataclass(frozen=True, slots=True)
class Plan:
    """What the files can rebuild and what is lost."""

    journal: Survey
    # The newest valid snapshot above the journal's last record, which then replaces it.
    snapshot_seq: int | None
    recovered: int
    witnessed: list[Witness]

    @property
    def highest(self) -> int:
        """Return the highest seq any witness (or the journal) has seen."""
        return max([self.recovered, *(witness.seq for witness in self.witnessed)])

    @property
    def refused(self) -> bool:
        """Return whether the engine would refuse to start on these files."""
        mark = self.journal.mark
        below_mark = mark is not None and self.journal.last_seq < mark.seq
        return bool(self.journal.unread) or below_mark or self.recovered < self.highest


def _newest_valid_snapshot(snapshots: SnapshotStore) -> int | None:
    for path in snapshots.paths():
        try:
            info, _ = snapshots.read(path)
        except (OSError, SnapshotError):
            continue
        return info.seq
    return None


def plan(journal_dir: Path, snapshots: SnapshotStore, hint_path: Path, recorded: int) -> Plan:
    """Work out, without changing anything, what the engine's files can rebuild."""
    found = survey(journal_dir)
    newest = _newest_valid_snapshot(snapshots)
    beyond = newest if newest is not None and newest > found.last_seq else None
    recovered = found.last_seq if beyond is None else beyond
    witnessed = witnesses(found.mark, snapshots, hint_path, recorded)
    if found.unread:
        # Segments after a damaged one cannot be read, but their names say what they held.
        later = max(int(path.name[: -len(JOURNAL_SUFFIX)]) for path in found.unread)
        witnessed.append(Witness("the journal's unreadable later segments", later))
    return Plan(found, beyond, recovered, witnessed)


def describe(plan: Plan) -> list[str]:
    """Return the report lines of a plan."""
    found = plan.journal
    lines = [f"journal: valid through seq {found.last_seq}"]
    if found.damage is not None:
        damage = found.damage
        lines.append(
            f"  damage: {damage.problem} in {damage.path.name} at byte {damage.offset}, "
            f"after seq {damage.after_seq} ({damage.size - damage.offset} bytes from there"
            f"{f', and {len(found.unread)} later segments' if found.unread else ''})"
        )
    lines += [f"{witness.source}: seq {witness.seq}" for witness in plan.witnessed]
    source = (
        "the journal" if plan.snapshot_seq is None else f"the snapshot at seq {plan.snapshot_seq}"
    )
    lines.append(f"the files rebuild the state to seq {plan.recovered} (from {source})")
    if plan.recovered < plan.highest:
        lines.append(
            f"lost: the acknowledged commands of {seq_range(plan.recovered + 1, plan.highest)}"
        )
    return lines


async def recover(
    settings: Settings,
    config: EngineConfig,
    *,
    accept_loss: bool,
    db_url: str | None = None,
    out: Callable[[str], None] = print,
) -> int:
    """Report what the engine's files can rebuild; with `accept_loss` (or when nothing is
    lost) make them consistent so the engine starts. Return the exit code."""
    runtime = EngineRuntime(settings, config, db_url=db_url)
    history = runtime.history
    try:
        try:
            await history.create_schema()
            recorded = await history.recorded_seq()
        except Exception as exc:
            out(f"cannot read the history database ({exc}); recovery needs it, nothing changed")
            return 1
        found = plan(runtime.journal_dir, runtime.snapshots, runtime.hint_path, recorded)
        for line in describe(found):
            out(line)
        if not found.refused:
            out("nothing to recover: the engine starts on these files as they are")
            return 0
        lost = found.recovered < found.highest
        if lost and not accept_loss:
            out(
                "nothing changed. Restore the journal from a backup or repair it by hand, or "
                "run `cfd engine recover --accept-loss` to go on from seq "
                f"{found.recovered} with those commands lost (see the README, Recovery)"
            )
            return 1
        quarantine = runtime.journal_dir.parent / time.strftime(
            "recovery-%Y%m%dT%H%M%SZ", time.gmtime()
        )
        try:
            # Before anything changes: the repair must not race a running engine.
            Journal.check_unused(runtime.journal_dir)
        except JournalError as exc:
            out(f"{exc}: stop the engine first; nothing changed")
            return 1
        # The history first: until the journal closes, its mark (and the hint file) still
        # witness every lost seq, so a repair cut short can be run again to the same result.
        export = quarantine / f"history-after-{found.recovered}.jsonl"
        rows = await history.discard_after(found.recovered, partial(_export, export))
        _repair_files(found, runtime.journal_dir, runtime.snapshots, quarantine, config)
        if read_hint(runtime.hint_path) > found.recovered:
            runtime.hint_path.unlink()
        out(f"moved the damaged files to {quarantine}")
        if rows:
            out(f"moved {rows} history rows of the lost seqs out of the database into it")
        out(f"the engine now starts at seq {found.highest}; the next command gets a higher one")
        log.warning(
            "recovered the engine's files: state at seq %d, %s",
            found.recovered,
            f"lost {seq_range(found.recovered + 1, found.highest)}" if lost else "nothing lost",
            extra={"fields": {"recovered": found.recovered, "highest": found.highest}},
        )
        return 0
    finally:
        await history.engine.dispose()


def _repair_files(
    found: Plan, journal_dir: Path, snapshots: SnapshotStore, quarantine: Path, config: EngineConfig
) -> None:
    keep_records = found.snapshot_seq is None
    journal = Journal.salvage(
        journal_dir,
        quarantine / "journal",
        keep_records=keep_records,
        segment_bytes=config.segment_bytes,
        fsync=config.fsync,
    )
    if found.recovered < found.highest:
        tail = journal.read(max(0, found.recovered - 1))
        last_ts = max((decode_command(payload).ts for _, payload in tail), default=0)
        # A segment named after the recovered seq keeps the journal continuing the state (the
        # snapshot's, when the records went), however many seqs the record skips.
        journal.continue_after(found.recovered)
        spend = ExpireOrders(found.highest, max(last_ts, time.time_ns()))
        journal.append([(spend.seq, encode_command(spend))])
    for path in snapshots.paths():
        stem = path.name[: -len(SUFFIX)]
        if not stem.isdigit() or int(stem) > found.recovered:
            (quarantine / "snapshots").mkdir(parents=True, exist_ok=True)
            path.replace(quarantine / "snapshots" / path.name)
    # Last, and only on success: closing replaces the old durable mark.
    journal.close()


def _export(path: Path, taken: dict[str, list[dict[str, Any]]]) -> None:
    def plain(value: object) -> object:
        return base64.b64encode(value).decode("ascii") if isinstance(value, bytes) else value

    if not any(taken.values()):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        for table, table_rows in taken.items():
            for row in table_rows:
                fields = {name: plain(value) for name, value in row.items()}
                handle.write(json.dumps({"table": table, "row": fields}) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


async def main(settings: Settings, accept_loss: bool) -> int:
    """Run `cfd engine recover` with the configuration of the environment."""
    try:
        config = EngineConfig.from_env()
    except ConfigError as exc:
        print(f"cfd engine recover: {exc}")
        return 2
    return await recover(settings, config, accept_loss=accept_loss)
