"""The durable witnesses of how far the engine got, and the check start-up makes before serving.

The journal's durable mark, the seq the recorder wrote to SQL (and its hint file) and the
snapshot files each know a seq the engine reached. The state start-up rebuilds must reach every
one of them; if it ends below one, acknowledged commands are gone and serving would hand their
seqs out again (the recorder would then skip the new commands as already written), so the
engine refuses to start and names the seqs. `cfd engine recover` (`engine_svc.recovery`) is
the way on from there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine_svc.journal import RECOVER_HINT, DurableMark, seq_range
from engine_svc.recorder import read_hint
from engine_svc.snapshots import SUFFIX, SnapshotStore


class LostCommandsError(RuntimeError):
    """The rebuilt state ends below a seq a durable witness has seen."""


@dataclass(frozen=True, slots=True)
class Witness:
    """A durable record of how far the engine got."""

    source: str
    seq: int


def snapshot_seqs(snapshots: SnapshotStore) -> list[int]:
    """Return the seq in each snapshot file's name, damaged files included."""
    stems = (path.name[: -len(SUFFIX)] for path in snapshots.paths())
    return [int(stem) for stem in stems if stem.isdigit()]


def witnesses(
    mark: DurableMark | None, snapshots: SnapshotStore, hint_path: Path, recorded: int
) -> list[Witness]:
    """Return every durable witness of how far the engine got."""
    found = [
        Witness("the recorded history", recorded),
        Witness("the recorder's hint file", read_hint(hint_path)),
        Witness("the newest snapshot file", max(snapshot_seqs(snapshots), default=0)),
    ]
    if mark is not None:
        found.append(Witness("the journal's durable mark", mark.seq))
    return found


def check_recovered(recovered: int, found: Sequence[Witness]) -> None:
    """Refuse (raise LostCommandsError) when a witness has seen a seq above `recovered`."""
    ahead = [witness for witness in found if witness.seq > recovered]
    if not ahead:
        return
    top = max(witness.seq for witness in ahead)
    seen = ", ".join(f"{witness.source} is at seq {witness.seq}" for witness in ahead)
    raise LostCommandsError(
        f"refusing to serve: the snapshots and the journal rebuild the state only to seq "
        f"{recovered}, but {seen}; the acknowledged commands of "
        f"{seq_range(recovered + 1, top)} are lost, and serving would hand their seqs out "
        f"again; {RECOVER_HINT}"
    )
