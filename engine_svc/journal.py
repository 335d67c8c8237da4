"""The command journal: append-only segment files of length-prefixed, CRC-checked records.

A record is a 16-byte header ``<payload length u32> <crc32 u32> <seq u64>`` (little endian)
followed by the payload. The CRC covers the length, the seq and the payload, so a torn write
or a flipped bit anywhere in a record is detected. Segments are named after the seq of their
first record, so they sort by name and a segment's range is known without reading it.

Only the newest segment may end in a bad record (a write torn by a crash): opening the journal
truncates it there and logs how much was dropped. Such a record was never acknowledged,
because results are released only after the whole batch is on disk. A bad record in an older
segment means lost acknowledged data, and opening refuses to go on.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("engine.journal")

HEADER = struct.Struct("<IIQ")
_PREFIX = struct.Struct("<IQ")
MAX_PAYLOAD = 1 << 20
SUFFIX = ".journal"


class JournalError(RuntimeError):
    """The journal cannot be opened or written safely."""


@dataclass(slots=True)
class Segment:
    """One segment file: the seqs it holds and its size in bytes."""

    path: Path
    first_seq: int
    last_seq: int
    size: int


@dataclass(frozen=True, slots=True)
class TailRepair:
    """What opening the journal cut from the newest segment's end."""

    path: Path
    offset: int
    dropped_bytes: int
    problem: str


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


class Journal:
    """The engine's write-ahead log of commands; `append` is durable when it returns."""

    def __init__(self, directory: Path, segment_bytes: int, fsync: bool) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self.segments: list[Segment] = []
        self.repair: TailRepair | None = None
        self._fd: int | None = None
        # Appends run on the journal thread, deletions on the event loop.
        self._lock = threading.Lock()

    @classmethod
    def open(cls, directory: Path, segment_bytes: int = 64 << 20, fsync: bool = True) -> Journal:
        """Open (creating) the journal in `directory`, checking every record and cutting a torn
        tail off the newest segment."""
        directory.mkdir(parents=True, exist_ok=True)
        journal = cls(directory, segment_bytes, fsync)
        journal._load()
        return journal

    @property
    def last_seq(self) -> int:
        """Return the seq of the newest record, 0 when the journal is empty."""
        for segment in reversed(self.segments):
            if segment.last_seq >= segment.first_seq:
                return segment.last_seq
        return 0

    @property
    def total_bytes(self) -> int:
        """Return the bytes held by every segment."""
        return sum(segment.size for segment in list(self.segments))

    def _load(self) -> None:
        paths = sorted(p for p in self.directory.iterdir() if p.name.endswith(SUFFIX))
        previous = 0
        for index, path in enumerate(paths):
            stem = path.name[: -len(SUFFIX)]
            if not stem.isdigit():
                raise JournalError(f"{path}: not a journal segment name")
            first = int(stem)
            data = path.read_bytes()
            _, last, valid, problem = scan(data, max(previous, first - 1))
            newest = index == len(paths) - 1
            if problem and not newest:
                raise JournalError(
                    f"{path}: {problem} at byte {valid} of an older segment; acknowledged "
                    "commands would be lost, refusing to start"
                )
            if problem:
                self._truncate(path, valid, len(data), problem)
            self.segments.append(Segment(path, first, last, valid))
            previous = last

    def _truncate(self, path: Path, offset: int, size: int, problem: str) -> None:
        with path.open("r+b") as handle:
            handle.truncate(offset)
            handle.flush()
            os.fsync(handle.fileno())
        self.repair = TailRepair(path, offset, size - offset, problem)
        log.warning(
            "journal tail repaired: %s in %s at byte %d; dropped %d bytes of an unacknowledged "
            "write",
            problem,
            path.name,
            offset,
            size - offset,
            extra={"fields": {"segment": path.name, "offset": offset, "dropped": size - offset}},
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

    def _start_segment(self, first_seq: int) -> None:
        if self.segments and self._fd is None:
            # Reopen the newest segment after a restart unless it is already full.
            current = self.segments[-1]
            if current.size < self.segment_bytes:
                self._fd = os.open(current.path, os.O_WRONLY | os.O_APPEND)
                return
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        path = _segment_path(self.directory, first_seq)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        if self.fsync:
            _fsync_dir(self.directory)
        self.segments.append(Segment(path, first_seq, first_seq - 1, 0))

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
        """Close the open segment."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
