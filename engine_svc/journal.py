"""The command journal: append-only segment files of length-prefixed, CRC-checked records.

A record is a 16-byte header ``<payload length u32> <crc32 u32> <seq u64>`` (little endian)
followed by the payload. The CRC covers the length, the seq and the payload, so a torn write
or a flipped bit anywhere in a record is detected. Segments are named after the seq of their
first record, so they sort by name and a segment's range is known without reading it. Seqs
only grow; they may skip numbers (a recovery spends the numbers of lost commands that way).

A bad record is either a torn write or corruption, and the two call for opposite answers: a
torn write was never acknowledged and is cut off, while corrupt acknowledged data must stop
the engine rather than be silently cut (the seqs would then be handed out again). The journal
tells them apart with its durable mark, the small file ``durable`` beside the segments: after
each group commit's fsync returns, and before any of its results is released, the journal
overwrites it in place with the seq, segment and byte offset that fsync made durable (and a
checksum). Every acknowledged record therefore lies at or below the mark. On open:

- a bad record past the mark is the tail of a batch whose fsync had not returned: it is cut
  and the log says it was never acknowledged;
- a bad record at or below the mark, or a journal that ends below it (a segment truncated or
  missing), is corruption of acknowledged commands: opening refuses and names the seqs;
- a bad record in an older segment is corruption whatever the mark says.

A new journal starts with a mark at seq 0, so only a journal written before marks existed has
none; a tail cut from such a journal is logged as possibly acknowledged.

The mark is written without an fsync of its own, so a group commit still costs one fsync. That
is exact whenever the machine kept running (a crash or `kill -9` of the process leaves the
written page to the kernel). A power loss may lose the latest mark update, so the mark can lag
behind the journal, never lead it (it is written only after the data's fsync returned): it
records the machine's boot id, and a tail past a mark from an earlier boot is reported as
possibly acknowledged. A clean close fsyncs the mark, which then holds across a reboot. Either
way the engine also checks the recovered seq against the other durable witnesses (the
recorder's seq, the snapshots) before it serves.

Only the newest segment may end in a torn write. A journal that opening refuses is repaired
by `cfd engine recover` (see `engine_svc.recovery`), which uses `salvage` here. An open journal
holds an exclusive lock on the file ``lock`` beside the segments, so a second engine, or a
repair, cannot write it while an engine runs.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import struct
import threading
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger("engine.journal")

HEADER = struct.Struct("<IIQ")
_PREFIX = struct.Struct("<IQ")
MAX_PAYLOAD = 1 << 20
SUFFIX = ".journal"
MARK_FILE = "durable"
LOCK_FILE = "lock"
MARK_MAGIC = b"CFDMARK1"
# magic, seq, segment (its first seq), end offset, fsync'd by a clean close, boot id
_MARK = struct.Struct("<8sQQQ?16s")
_CRC = struct.Struct("<I")
# The most records `JournalTail.poll` returns at once (it stops at a segment boundary).
TAIL_BATCH = 20_000
RECOVER_HINT = "run `cfd engine recover` to see what is lost and how to go on"


class JournalError(RuntimeError):
    """The journal cannot be opened or written safely."""


class JournalUnavailableError(JournalError):
    """The batch was not acknowledged now (a replicated journal without quorum): none of it may
    be released, though it may have been stored. `settle`, called before the next append,
    returns whether the batch is now stored (it must then be applied first) or was dropped,
    or raises again while neither can be done yet."""

    def __init__(self, message: str, settle: Callable[[], bool] | None = None) -> None:
        super().__init__(message)
        self.settle = settle if settle is not None else _never_stored


def _never_stored() -> bool:
    return False


class JournalCorruptError(JournalError):
    """Acknowledged records are damaged or missing; nothing was cut."""


def _read_boot_id() -> bytes:
    try:
        return uuid.UUID(Path("/proc/sys/kernel/random/boot_id").read_text().strip()).bytes
    except (OSError, ValueError):
        return bytes(16)


# Tells a mark written since this machine started from one a power loss may have left behind.
BOOT_ID = _read_boot_id()


@dataclass(slots=True)
class Segment:
    """One segment file: the seqs it holds and its size in bytes."""

    path: Path
    first_seq: int
    last_seq: int
    size: int


@dataclass(frozen=True, slots=True)
class TailRepair:
    """What opening the journal cut from the newest segment's end, and whether any of it can
    have been acknowledged (a lagging or missing durable mark cannot rule it out)."""

    path: Path
    offset: int
    dropped_bytes: int
    problem: str
    maybe_acknowledged: bool


@dataclass(frozen=True, slots=True)
class DurableMark:
    """How far the journal is known to be fsync'd: a seq and where its record ends."""

    seq: int
    segment: int
    offset: int
    # Written since this machine started, or fsync'd by a clean close: it does not lag.
    current: bool


@dataclass(frozen=True, slots=True)
class Damage:
    """The first bad record: where the valid records of its segment end, and after which seq."""

    path: Path
    offset: int
    size: int
    problem: str
    after_seq: int


@dataclass(frozen=True, slots=True)
class Survey:
    """What a read-only pass over the journal found: the valid segments (the damaged one cut at
    its damage), the first damage, the segments after a damaged one, and the durable mark."""

    segments: list[Segment]
    damage: Damage | None
    unread: list[Path]
    mark: DurableMark | None

    @property
    def last_seq(self) -> int:
        """Return the seq of the newest valid record, 0 when there is none."""
        return _last_seq(self.segments)


def encode_mark(seq: int, segment: int, offset: int, synced: bool, boot: bytes = BOOT_ID) -> bytes:
    """Return the bytes of a durable mark file."""
    body = _MARK.pack(MARK_MAGIC, seq, segment, offset, synced, boot)
    return body + _CRC.pack(zlib.crc32(body))


def read_mark(directory: Path) -> DurableMark | None:
    """Return the journal's durable mark; None when it has none or it is damaged (logged)."""
    try:
        data = (directory / MARK_FILE).read_bytes()
    except FileNotFoundError:
        return None
    size = _MARK.size
    if len(data) != size + _CRC.size or zlib.crc32(data[:size]) != _CRC.unpack_from(data, size)[0]:
        log.warning("the journal's durable mark is damaged; the other witnesses still apply")
        return None
    magic, seq, segment, offset, synced, boot = _MARK.unpack_from(data)
    if magic != MARK_MAGIC:
        log.warning("the journal's durable mark is not a mark file; ignoring it")
        return None
    return DurableMark(seq, segment, offset, synced or (boot == BOOT_ID and any(boot)))


def seq_range(low: int, high: int) -> str:
    """Return "seq 5" or "seqs 5..9"."""
    return f"seq {low}" if low == high else f"seqs {low}..{high}"


def _last_seq(segments: Sequence[Segment]) -> int:
    for segment in reversed(segments):
        if segment.last_seq >= segment.first_seq:
            return segment.last_seq
    return 0


def frame(seq: int, payload: bytes) -> bytes:
    """Return one record: header and payload."""
    crc = zlib.crc32(payload, zlib.crc32(_PREFIX.pack(len(payload), seq)))
    return HEADER.pack(len(payload), crc, seq) + payload


def _segment_path(directory: Path, first_seq: int) -> Path:
    return directory / f"{first_seq:020d}{SUFFIX}"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _truncate_file(path: Path, offset: int) -> None:
    with path.open("r+b") as handle:
        handle.truncate(offset)
        handle.flush()
        os.fsync(handle.fileno())


def _lock(directory: Path) -> int:
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise JournalError(
            f"{directory}: the journal is open in another process (a running engine?)"
        ) from None
    return fd


def survey(directory: Path) -> Survey:
    """Check every record of the journal in `directory` without changing anything."""
    if not directory.is_dir():
        return Survey([], None, [], None)
    paths = sorted(p for p in directory.iterdir() if p.name.endswith(SUFFIX))
    segments: list[Segment] = []
    previous = 0
    for index, path in enumerate(paths):
        stem = path.name[: -len(SUFFIX)]
        if not stem.isdigit():
            raise JournalError(f"{path}: not a journal segment name")
        first = int(stem)
        data = path.read_bytes()
        _, last, valid, problem = scan(data, max(previous, first - 1))
        segments.append(Segment(path, first, last, valid))
        if problem:
            damage = Damage(path, valid, len(data), problem, last)
            return Survey(segments, damage, paths[index + 1 :], read_mark(directory))
        previous = last
    return Survey(segments, None, [], read_mark(directory))


def scan(data: bytes, after_seq: int) -> tuple[list[tuple[int, bytes]], int, int, str]:
    """Parse records from `data`; return (records, last seq, end offset of the valid part,
    problem or "" when the whole buffer is valid). Records must have seqs above `after_seq`."""
    records: list[tuple[int, bytes]] = []
    offset = 0
    last = after_seq
    size = len(data)
    header_size = HEADER.size
    while offset < size:
        if size - offset < header_size:
            return records, last, offset, "incomplete record header"
        length, crc, seq = HEADER.unpack_from(data, offset)
        if length > MAX_PAYLOAD:
            return records, last, offset, f"record length {length} is out of range"
        start = offset + header_size
        end = start + length
        if end > size:
            return records, last, offset, "incomplete record payload"
        payload = data[start:end]
        if zlib.crc32(payload, zlib.crc32(_PREFIX.pack(length, seq))) != crc:
            return records, last, offset, "CRC mismatch"
        if seq <= last:
            return records, last, offset, f"seq {seq} does not follow {last}"
        records.append((seq, payload))
        last = seq
        offset = end
    return records, last, offset, ""


class CommandLog(Protocol):
    """What the engine needs of a journal: the file journal here, or the replicated one in
    `engine_svc.jetstream`."""

    # Whether `append` blocks (and the sequencer runs it off the event loop).
    fsync: bool
    # How far the journal is known to be durable, a witness start-up checks; None if unknown.
    mark: DurableMark | None

    @property
    def last_seq(self) -> int:
        """Return the seq of the newest record, 0 when the journal is empty."""

    @property
    def first_seq(self) -> int:
        """Return the seq of the oldest record held, 1 when the journal holds none."""

    @property
    def segment_count(self) -> int:
        """Return how many units of storage (segment files, streams) hold records."""

    @property
    def total_bytes(self) -> int:
        """Return the bytes the journal holds."""

    def read(self, after_seq: int = 0) -> Iterator[tuple[int, bytes]]:
        """Yield (seq, payload) of every record with a seq above `after_seq`, in order."""

    def covers(self, after_seq: int) -> bool:
        """Return whether every record after `after_seq` is still held."""

    def append(self, records: Sequence[tuple[int, bytes]]) -> None:
        """Make the records (seq, payload) durable before returning."""

    def delete_through(self, seq: int) -> int:
        """Delete what no recovery needs at or below `seq`; return how many units went."""

    def close(self) -> None:
        """Release the journal."""


class Journal:
    """The engine's write-ahead log of commands; `append` is durable when it returns."""

    def __init__(self, directory: Path, segment_bytes: int, fsync: bool) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self.segments: list[Segment] = []
        self.repair: TailRepair | None = None
        self.mark: DurableMark | None = None
        self._fd: int | None = None
        self._mark_fd: int | None = None
        self._lock_fd: int | None = None
        self._view = False
        self._remark = False
        # Appends run on the journal thread, deletions on the event loop.
        self._lock = threading.Lock()

    @classmethod
    def open(cls, directory: Path, segment_bytes: int = 64 << 20, fsync: bool = True) -> Journal:
        """Open (creating) the journal in `directory`, checking every record and cutting a torn
        tail off the newest segment; only one process at a time may hold it open."""
        directory.mkdir(parents=True, exist_ok=True)
        journal = cls(directory, segment_bytes, fsync)
        journal._lock_fd = _lock(directory)
        try:
            journal._load()
        except BaseException:
            journal.close()
            raise
        return journal

    @property
    def last_seq(self) -> int:
        """Return the seq of the newest record, 0 when the journal is empty."""
        return _last_seq(self.segments)

    @property
    def first_seq(self) -> int:
        """Return the first seq of the oldest segment, 1 when there is none."""
        return self.segments[0].first_seq if self.segments else 1

    @property
    def segment_count(self) -> int:
        """Return how many segment files the journal has."""
        return len(self.segments)

    @property
    def total_bytes(self) -> int:
        """Return the bytes held by every segment."""
        return sum(segment.size for segment in list(self.segments))

    def _load(self) -> None:
        found = survey(self.directory)
        mark = self.mark = found.mark
        damage = found.damage
        if damage is not None:
            if found.unread:
                raise JournalCorruptError(
                    f"{damage.path}: {damage.problem} at byte {damage.offset} of an older "
                    f"segment, after seq {damage.after_seq}; acknowledged commands would be "
                    f"lost, refusing to start; {RECOVER_HINT}"
                )
            if mark is not None and damage.after_seq < mark.seq:
                raise JournalCorruptError(
                    f"{damage.path}: {damage.problem} at byte {damage.offset}, after seq "
                    f"{damage.after_seq}, but the journal was fsync'd through seq {mark.seq} "
                    f"(byte {mark.offset} of segment {mark.segment}): the acknowledged commands "
                    f"of {seq_range(damage.after_seq + 1, mark.seq)} are damaged, not a torn "
                    f"write; refusing to start; {RECOVER_HINT}"
                )
            self._cut(damage, mark)
        self.segments = found.segments
        if mark is None and not self.segments:
            self._write_mark(synced=True)
        last = self.last_seq
        if mark is not None and last < mark.seq:
            raise JournalCorruptError(
                f"the journal ends at seq {last} but was fsync'd through seq {mark.seq}: the "
                f"acknowledged commands of {seq_range(last + 1, mark.seq)} are missing (a "
                f"segment was truncated or removed); refusing to start; {RECOVER_HINT}"
            )

    def _cut(self, damage: Damage, mark: DurableMark | None) -> None:
        _truncate_file(damage.path, damage.offset)
        dropped = damage.size - damage.offset
        if mark is None:
            verdict = "it could have been acknowledged: the journal holds no durable mark"
        elif mark.current:
            verdict = (
                f"never acknowledged: it lies past the durable mark at seq {mark.seq}, so its "
                "fsync had not returned"
            )
        else:
            verdict = (
                f"it lies past the durable mark at seq {mark.seq}, but the machine restarted "
                "since that mark was written and it may lag by one batch, so it could have "
                "been acknowledged"
            )
        self.repair = TailRepair(
            damage.path, damage.offset, dropped, damage.problem, mark is None or not mark.current
        )
        log.warning(
            "journal tail repaired: %s in %s at byte %d; dropped %d bytes after seq %d; %s",
            damage.problem,
            damage.path.name,
            damage.offset,
            dropped,
            damage.after_seq,
            verdict,
            extra={
                "fields": {
                    "segment": damage.path.name,
                    "offset": damage.offset,
                    "dropped": dropped,
                    "after_seq": damage.after_seq,
                    "durable_seq": None if mark is None else mark.seq,
                    "maybe_acknowledged": self.repair.maybe_acknowledged,
                }
            },
        )

    def read(self, after_seq: int = 0) -> Iterator[tuple[int, bytes]]:
        """Yield (seq, payload) of every record with a seq above `after_seq`, in order."""
        for segment in list(self.segments):
            if segment.last_seq <= after_seq:
                continue
            data = segment.path.read_bytes()[: segment.size]
            records, _, _, problem = scan(data, segment.first_seq - 1)
            if problem:
                raise JournalError(f"{segment.path}: {problem} while reading")
            for seq, payload in records:
                if seq > after_seq:
                    yield seq, payload

    def covers(self, after_seq: int) -> bool:
        """Return whether every record after `after_seq` is still on disk."""
        if not self.segments:
            return after_seq >= 0
        return self.segments[0].first_seq <= after_seq + 1

    def append(self, records: Sequence[tuple[int, bytes]]) -> None:
        """Write records (seq, payload) in one write and make them durable before returning."""
        if not records:
            return
        if self._view:
            raise JournalError("a journal view is read-only")
        with self._lock:
            self._append(records)

    def _append(self, records: Sequence[tuple[int, bytes]]) -> None:
        if any(len(payload) > MAX_PAYLOAD for _, payload in records):
            raise JournalError("a journal payload is larger than 1 MiB")
        first_seq = records[0][0]
        if first_seq <= self.last_seq:
            raise JournalError(f"seq {first_seq} does not follow {self.last_seq}")
        if self._fd is None or self.segments[-1].size >= self.segment_bytes:
            self._start_segment(first_seq)
        blob = b"".join([frame(seq, payload) for seq, payload in records])
        fd = self._fd
        assert fd is not None
        view = memoryview(blob)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if self.fsync:
            os.fdatasync(fd)
        segment = self.segments[-1]
        segment.size += len(blob)
        segment.last_seq = records[-1][0]
        # Before append returns, so before any result of the batch is released.
        self._write_mark(synced=False)

    def _write_mark(self, synced: bool) -> None:
        segment = next((s for s in reversed(self.segments) if s.last_seq >= s.first_seq), None)
        # An empty journal gets a mark at seq 0, so that only a journal older than marks has none.
        seq, first, size = 0, 0, 0
        if segment is not None:
            seq, first, size = segment.last_seq, segment.first_seq, segment.size
        if self._mark_fd is None:
            path = self.directory / MARK_FILE
            created = not path.exists()
            self._mark_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            if created and self.fsync:
                _fsync_dir(self.directory)
        synced = synced and self.fsync
        os.pwrite(self._mark_fd, encode_mark(seq, first, size, synced), 0)
        if synced:
            os.fsync(self._mark_fd)
        self.mark = DurableMark(seq, first, size, True)

    def _start_segment(self, first_seq: int) -> None:
        if self.segments and self._fd is None:
            # Reopen the newest segment after a restart unless it is already full.
            current = self.segments[-1]
            if current.size < self.segment_bytes:
                self._fd = os.open(current.path, os.O_WRONLY | os.O_APPEND)
                return
        self._new_segment(first_seq)

    def _new_segment(self, first_seq: int) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        path = _segment_path(self.directory, first_seq)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        if self.fsync:
            _fsync_dir(self.directory)
        self.segments.append(Segment(path, first_seq, first_seq - 1, 0))

    def continue_after(self, seq: int) -> None:
        """Start a new segment for the records after `seq`, which may lie beyond the newest
        record: a recovery spends the seqs of lost commands this way."""
        with self._lock:
            if seq < self.last_seq:
                raise JournalError(f"seq {seq} is below the newest record {self.last_seq}")
            self._new_segment(seq + 1)

    @staticmethod
    def check_unused(directory: Path) -> None:
        """Raise JournalError when a process holds the journal in `directory` open."""
        if directory.is_dir():
            os.close(_lock(directory))

    @classmethod
    def view(cls, directory: Path) -> Journal:
        """Return the journal in `directory` for reading only, up to its first bad record: no
        lock is taken and nothing is cut, so it can be read while an engine appends."""
        journal = cls(directory, 0, fsync=False)
        journal.segments = survey(directory).segments
        journal._view = True
        return journal

    @classmethod
    def salvage(
        cls,
        directory: Path,
        quarantine: Path,
        *,
        keep_records: bool = True,
        segment_bytes: int = 64 << 20,
        fsync: bool = True,
    ) -> Journal:
        """Open a journal that `open` refuses, keeping its valid records up to the first damage
        (or none, without `keep_records`); copy a cut segment and move every other dropped one
        into `quarantine`. The durable mark describes what is left once the journal closes."""
        lock = _lock(directory)
        found = survey(directory)
        quarantine.mkdir(parents=True, exist_ok=True)
        moved = list(found.unread)
        if not keep_records:
            moved += [segment.path for segment in found.segments]
        elif found.damage is not None:
            shutil.copy2(found.damage.path, quarantine / found.damage.path.name)
            _truncate_file(found.damage.path, found.damage.offset)
        for path in moved:
            path.replace(quarantine / path.name)
        journal = cls(directory, segment_bytes, fsync)
        journal._lock_fd = lock
        journal.segments = found.segments if keep_records else []
        # The old mark stays until `close` (or an append) replaces it: a salvage cut short
        # leaves it witnessing every seq that was acknowledged.
        journal._remark = True
        _fsync_dir(directory)
        _fsync_dir(quarantine)
        return journal

    def delete_through(self, seq: int) -> int:
        """Delete the segments whose records all have seqs at or below `seq`, except the
        newest; return how many were deleted."""
        deleted = 0
        with self._lock:
            deleted = self._delete_through(seq)
        if deleted and self.fsync:
            _fsync_dir(self.directory)
        return deleted

    def _delete_through(self, seq: int) -> int:
        deleted = 0
        while len(self.segments) > 1 and self.segments[1].first_seq - 1 <= seq:
            segment = self.segments.pop(0)
            segment.path.unlink(missing_ok=True)
            deleted += 1
        return deleted

    def close(self) -> None:
        """Close the open segment; fsync the durable mark, which then holds across a reboot."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._remark or (self._mark_fd is not None and self.fsync):
            self._write_mark(synced=True)
            self._remark = False
        if self._mark_fd is not None:
            os.close(self._mark_fd)
            self._mark_fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


class JournalTail:
    """Follow the segment files of a journal another process appends to (no lock is taken).

    `poll` returns the records appended since the last call, in order. A record at the end of
    the newest segment that is incomplete or fails its CRC is being written: it is "not yet",
    read again by the next call. A segment is left for the next one once a newer segment
    exists (the writer started it only after it finished the older one) and every record of
    it was read.
    """

    def __init__(self, directory: Path, after_seq: int) -> None:
        self.directory = directory
        # The newest seq returned (or the seq the caller's state is at).
        self.last_seq = after_seq
        self._path: Path | None = None
        self._offset = 0
        # The seq of the last record read from the current segment (scanning goes on from it).
        self._segment_last = 0

    def _segments(self) -> list[tuple[int, Path]]:
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.iterdir():
            stem = path.name[: -len(SUFFIX)]
            if path.name.endswith(SUFFIX) and stem.isdigit():
                found.append((int(stem), path))
        return sorted(found)

    def covers(self) -> bool:
        """Return whether every record after `last_seq` is still on disk."""
        segments = self._segments()
        return not segments or segments[0][0] <= self.last_seq + 1

    def poll(self) -> list[tuple[int, bytes]]:
        """Return the complete records after `last_seq` on disk now (blocking file reads)."""
        records: list[tuple[int, bytes]] = []
        while True:
            segments = self._segments()
            if self._path is None:
                start = [(first, path) for first, path in segments if first <= self.last_seq + 1]
                if not start:
                    if segments:
                        raise JournalError(
                            f"{self.directory}: the journal starts at seq {segments[0][0]}, "
                            f"records after seq {self.last_seq} are gone"
                        )
                    return records
                first, self._path = start[-1]
                self._offset, self._segment_last = 0, first - 1
            path = self._path
            newer = [candidate for first, candidate in segments if candidate.name > path.name]
            try:
                with path.open("rb") as handle:
                    handle.seek(self._offset)
                    data = handle.read()
            except FileNotFoundError:
                # Retention deletes a segment only once its records are recorded (and read).
                if not newer or int(newer[0].name[: -len(SUFFIX)]) > self.last_seq + 1:
                    raise JournalError(f"{path} was deleted before it was read") from None
                data = b""
            found, last, valid, problem = scan(data, self._segment_last)
            records.extend(record for record in found if record[0] > self.last_seq)
            self._offset += valid
            self._segment_last = last
            if records:
                self.last_seq = max(self.last_seq, records[-1][0])
            if not newer:
                return records
            if problem:
                raise JournalError(f"{path}: {problem} at byte {self._offset}, before {newer[0]}")
            self._path = newer[0]
            self._offset, self._segment_last = 0, int(newer[0].name[: -len(SUFFIX)]) - 1
            if len(records) >= TAIL_BATCH:
                return records
