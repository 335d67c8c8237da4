"""The journal: durable appends, segment rotation, torn and corrupt tails, deletion."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine_svc.journal import HEADER, Journal, JournalError, frame, scan


def _records(first: int, count: int, size: int = 20) -> list[tuple[int, bytes]]:
    return [
        (seq, f"command {seq}".encode().ljust(size, b".")) for seq in range(first, first + count)
    ]


def test_appended_records_read_back_in_order_after_reopening(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    journal.append(_records(1, 3))
    journal.append(_records(4, 2))
    journal.close()
    reopened = Journal.open(tmp_path)
    assert [seq for seq, _ in reopened.read()] == [1, 2, 3, 4, 5]
    assert list(reopened.read(3)) == _records(4, 2)
    assert reopened.last_seq == 5
    assert reopened.repair is None
    reopened.append(_records(6, 1))
    assert [seq for seq, _ in reopened.read(5)] == [6]


def test_segments_rotate_at_the_size_limit_and_keep_every_record(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path, segment_bytes=100)
    for seq in range(1, 11):
        journal.append(_records(seq, 1, size=40))
    assert len(journal.segments) > 3
    assert [segment.first_seq for segment in journal.segments] == sorted(
        segment.first_seq for segment in journal.segments
    )
    journal.close()
    reopened = Journal.open(tmp_path, segment_bytes=100)
    assert [seq for seq, _ in reopened.read()] == list(range(1, 11))
    assert reopened.total_bytes == sum(p.stat().st_size for p in tmp_path.iterdir())


def test_a_seq_that_does_not_follow_is_refused(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    journal.append(_records(5, 1))
    with pytest.raises(JournalError):
        journal.append(_records(5, 1))
    assert [seq for seq, _ in journal.read()] == [5]


@pytest.mark.parametrize("cut", [1, HEADER.size - 1, HEADER.size + 3])
def test_a_torn_tail_is_cut_off_and_reported(tmp_path: Path, cut: int) -> None:
    journal = Journal.open(tmp_path)
    journal.append(_records(1, 3))
    journal.close()
    segment = journal.segments[-1].path
    intact = segment.stat().st_size
    with segment.open("ab") as handle:
        handle.write(frame(4, b"never acknowledged")[:cut])
    reopened = Journal.open(tmp_path)
    assert [seq for seq, _ in reopened.read()] == [1, 2, 3]
    assert reopened.repair is not None
    assert reopened.repair.dropped_bytes == cut
    assert segment.stat().st_size == intact
    reopened.append(_records(4, 1))
    assert [seq for seq, _ in reopened.read()] == [1, 2, 3, 4]


def test_a_flipped_byte_in_the_last_record_is_detected_by_the_crc(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    journal.append(_records(1, 3))
    journal.close()
    segment = journal.segments[-1].path
    data = bytearray(segment.read_bytes())
    data[-2] ^= 0x10
    segment.write_bytes(bytes(data))
    reopened = Journal.open(tmp_path)
    assert [seq for seq, _ in reopened.read()] == [1, 2]
    assert reopened.repair is not None
    assert reopened.repair.problem == "CRC mismatch"


def test_corruption_in_an_older_segment_refuses_to_open(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path, segment_bytes=64)
    for seq in range(1, 5):
        journal.append(_records(seq, 1, size=60))
    journal.close()
    oldest = journal.segments[0].path
    data = bytearray(oldest.read_bytes())
    data[HEADER.size + 1] ^= 0xFF
    oldest.write_bytes(bytes(data))
    with pytest.raises(JournalError, match="older segment"):
        Journal.open(tmp_path, segment_bytes=64)


def test_delete_through_removes_only_segments_wholly_at_or_before_the_seq(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path, segment_bytes=64)
    for seq in range(1, 7):
        journal.append(_records(seq, 1, size=60))
    firsts = [segment.first_seq for segment in journal.segments]
    assert firsts == [1, 2, 3, 4, 5, 6]
    assert journal.delete_through(3) == 3
    assert [segment.first_seq for segment in journal.segments] == [4, 5, 6]
    assert journal.covers(3) and not journal.covers(2)
    assert [seq for seq, _ in journal.read()] == [4, 5, 6]
    # The newest segment always stays, whatever the seq.
    journal.delete_through(100)
    assert [segment.first_seq for segment in journal.segments] == [6]


def test_scan_stops_at_a_record_whose_seq_goes_backwards() -> None:
    data = frame(1, b"a") + frame(2, b"b") + frame(2, b"c")
    records, last, valid, problem = scan(data, 0)
    assert [seq for seq, _ in records] == [1, 2]
    assert last == 2
    assert valid == len(frame(1, b"a") + frame(2, b"b"))
    assert "does not follow" in problem
