"""Snapshot files: atomic writes, checks on load, choosing and pruning."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine_svc.snapshots import SnapshotError, SnapshotStore

DIGEST = "ab" * 32


def test_a_written_snapshot_reads_back_with_its_header(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    info = store.write(42, 1_700_000_000_000_000_000, DIGEST, b"state bytes")
    read, payload = store.read(info.path)
    assert payload == b"state bytes"
    assert (read.seq, read.written_ns, read.digest, read.size) == (
        42,
        1_700_000_000_000_000_000,
        DIGEST,
        info.size,
    )
    assert not list(tmp_path.glob("*.tmp"))
    newest = store.newest_info()
    assert newest is not None and newest.seq == 42


def test_newest_skips_damaged_files_and_respects_the_bound(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.write(10, 1, DIGEST, b"ten")
    store.write(20, 2, DIGEST, b"twenty")
    damaged = store.write(30, 3, DIGEST, b"thirty")
    data = bytearray(damaged.path.read_bytes())
    data[-1] ^= 0x01
    damaged.path.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match="CRC"):
        store.read(damaged.path)
    found = store.newest()
    assert found is not None and found[0].seq == 20 and found[1] == b"twenty"
    bounded = store.newest(at_most=15)
    assert bounded is not None and bounded[0].seq == 10
    assert store.newest(at_most=5) is None


def test_truncated_and_foreign_files_are_rejected(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    info = store.write(7, 1, DIGEST, b"payload")
    info.path.write_bytes(info.path.read_bytes()[:-3])
    with pytest.raises(SnapshotError, match="header says"):
        store.read(info.path)
    info.path.write_bytes(b"not a snapshot at all, but long enough to hold a header" * 3)
    with pytest.raises(SnapshotError, match="not a snapshot"):
        store.read(info.path)


def test_prune_keeps_only_the_named_snapshots_and_leftover_temps_vanish(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    for seq in (1, 2, 3, 4):
        store.write(seq, seq, DIGEST, b"x")
    (tmp_path / "00000000000000000005.snapshot.tmp").write_bytes(b"half written")
    assert store.prune({2, 4}) == 2
    assert [path.name[:20] for path in store.paths()] == [f"{4:020d}", f"{2:020d}"]
    SnapshotStore(tmp_path)
    assert not list(tmp_path.glob("*.tmp"))


def test_a_digest_must_be_sha256_hex(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        SnapshotStore(tmp_path).write(1, 1, "short", b"x")


def test_a_snapshot_written_in_pieces_equals_one_written_whole(tmp_path: Path) -> None:
    whole = SnapshotStore(tmp_path / "whole").write(7, 1, DIGEST, b"header\nstate bytes")
    pieces = SnapshotStore(tmp_path / "pieces").write(
        7, 1, DIGEST, [b"header\n", b"state", b"", b" bytes"]
    )
    assert pieces.size == whole.size
    assert pieces.path.read_bytes() == whole.path.read_bytes()
    _, payload = SnapshotStore.read(pieces.path)
    assert payload == b"header\nstate bytes"
