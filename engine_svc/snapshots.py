"""Snapshot files of the core's state, written atomically and checked on load.

A file is ``<magic 8> <seq u64> <written ns u64> <digest 64 ascii> <length u64> <crc32 u32>``
followed by the core's snapshot bytes. It is written to a temporary name, fsync'd, renamed
into place and the directory fsync'd, so a file under its final name is always complete.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine_svc.core import Core

log = logging.getLogger("engine.snapshots")

MAGIC = b"CFDSNAP1"
HEADER = struct.Struct("<8sQQ64sQI")
SUFFIX = ".snapshot"


class SnapshotError(ValueError):
    """A snapshot file is damaged or not a snapshot."""


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """Where a snapshot is and what it holds."""

    path: Path
    seq: int
    written_ns: int
    digest: str
    size: int


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SnapshotStore:
    """The directory of snapshots, newest by seq first."""

    def __init__(self, directory: Path, fsync: bool = True) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.fsync = fsync
        for stale in directory.glob("*.tmp"):
            stale.unlink(missing_ok=True)

    def write(
        self, seq: int, written_ns: int, digest: str, payload: bytes | Sequence[bytes]
    ) -> SnapshotInfo:
        """Write the snapshot of the state after `seq` atomically and return its info.

        `payload` is the core's snapshot, as bytes or as pieces that joined are those bytes
        (written one after the other, never copied into one buffer).
        """
        encoded = digest.encode("ascii")
        if len(encoded) != 64:
            raise ValueError("digest must be 64 hex characters")
        pieces = [payload] if isinstance(payload, bytes) else list(payload)
        length = 0
        crc = 0
        for piece in pieces:
            length += len(piece)
            crc = zlib.crc32(piece, crc)
        header = HEADER.pack(MAGIC, seq, written_ns, encoded, length, crc)
        final = self.directory / f"{seq:020d}{SUFFIX}"
        temp = self.directory / f"{seq:020d}{SUFFIX}.tmp"
        with temp.open("wb") as handle:
            handle.write(header)
            for piece in pieces:
                handle.write(piece)
            handle.flush()
            if self.fsync:
                os.fsync(handle.fileno())
        temp.replace(final)
        if self.fsync:
            _fsync_dir(self.directory)
        return SnapshotInfo(final, seq, written_ns, digest, HEADER.size + length)

    def paths(self) -> list[Path]:
        """Return the snapshot files, newest seq first."""
        return sorted(self.directory.glob(f"*{SUFFIX}"), reverse=True)

    @staticmethod
    def read(path: Path) -> tuple[SnapshotInfo, bytes]:
        """Read and check one snapshot file; raise SnapshotError when it is damaged."""
        data = path.read_bytes()
        if len(data) < HEADER.size:
            raise SnapshotError(f"{path.name}: shorter than its header")
        magic, seq, written_ns, digest, length, crc = HEADER.unpack_from(data)
        if magic != MAGIC:
            raise SnapshotError(f"{path.name}: not a snapshot file")
        payload = data[HEADER.size :]
        if len(payload) != length:
            raise SnapshotError(f"{path.name}: holds {len(payload)} bytes, header says {length}")
        if zlib.crc32(payload) != crc:
            raise SnapshotError(f"{path.name}: CRC mismatch")
        info = SnapshotInfo(path, seq, written_ns, digest.decode("ascii"), len(data))
        return info, payload

    def newest(self, at_most: int | None = None) -> tuple[SnapshotInfo, bytes] | None:
        """Return the newest valid snapshot (with seq <= `at_most` when given)."""
        for path in self.paths():
            try:
                info, payload = self.read(path)
            except (OSError, SnapshotError) as exc:
                log.warning("skipping snapshot %s: %s", path.name, exc)
                continue
            if at_most is not None and info.seq > at_most:
                continue
            return info, payload
        return None

    def newest_info(self) -> SnapshotInfo | None:
        """Return the header of the newest snapshot file without checking its payload."""
        for path in self.paths():
            try:
                with path.open("rb") as handle:
                    head = handle.read(HEADER.size)
                magic, seq, written_ns, digest, _, _ = HEADER.unpack(head)
                if magic == MAGIC:
                    size = path.stat().st_size
                    return SnapshotInfo(path, seq, written_ns, digest.decode("ascii"), size)
            except (OSError, struct.error, UnicodeDecodeError):
                continue
        return None

    def prune(self, keep: Iterable[int]) -> int:
        """Delete every snapshot whose seq is not in `keep`; return how many were deleted."""
        wanted = set(keep)
        deleted = 0
        for path in self.paths():
            stem = path.name[: -len(SUFFIX)]
            if stem.isdigit() and int(stem) not in wanted:
                path.unlink(missing_ok=True)
                deleted += 1
        return deleted


def restore_core(store: SnapshotStore, path: Path, seq: int) -> tuple[SnapshotInfo, Core] | None:
    """Return the snapshot file `path` (named after `seq`) and the core it holds; log and
    return None when it is damaged or holds another seq."""
    try:
        info, payload = store.read(path)
        core = Core.restore(payload)
    except (OSError, ValueError) as exc:
        log.warning("skipping snapshot %s: %s", path.name, exc)
        return None
    if core.last_seq != seq or info.seq != seq:
        log.warning("skipping snapshot %s: it holds seq %d", path.name, core.last_seq)
        return None
    return info, core
