"""The journal: durable appends, segment rotation, torn and corrupt tails told apart by the
durable mark, salvage, deletion."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from engine_svc.journal import (
    HEADER,
    MARK_FILE,
    SUFFIX,
    DurableMark,
    Journal,
    JournalCorruptError,
    JournalError,
    encode_mark,
    frame,
    read_mark,
    scan,
)


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
    assert reopened.total_bytes == sum(p.stat().st_size for p in tmp_path.glob(f"*{SUFFIX}"))


def test_only_one_holder_at_a_time_may_open_the_journal(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    with pytest.raises(JournalError, match="open in another process"):
        Journal.open(tmp_path)
    with pytest.raises(JournalError, match="open in another process"):
        Journal.salvage(tmp_path, tmp_path.parent / "quarantine")
    journal.close()
    Journal.open(tmp_path).close()


def test_a_view_reads_a_journal_in_use_without_changing_it(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    journal.append(_records(1, 3))
    segment = journal.segments[-1].path
    with segment.open("ab") as handle:
        handle.write(frame(4, b"being written")[:9])
    view = Journal.view(tmp_path)
    assert [seq for seq, _ in view.read()] == [1, 2, 3]
    assert view.last_seq == 3 and view.covers(0)
    with pytest.raises(JournalError, match="read-only"):
        view.append(_records(4, 1))
    assert segment.stat().st_size == journal.segments[-1].size + 9
    journal.close()


def test_a_seq_that_does_not_follow_is_refused(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    journal.append(_records(5, 1))
    with pytest.raises(JournalError):
        journal.append(_records(5, 1))
    assert [seq for seq, _ in journal.read()] == [5]


@pytest.mark.parametrize("cut", [1, HEADER.size - 1, HEADER.size + 3])
def test_a_torn_tail_past_the_durable_mark_is_cut_and_logged_as_never_acknowledged(
    tmp_path: Path, cut: int, caplog: pytest.LogCaptureFixture
) -> None:
    journal = Journal.open(tmp_path)
    journal.append(_records(1, 3))
    journal.close()
    segment = journal.segments[-1].path
    intact = segment.stat().st_size
    with segment.open("ab") as handle:
        handle.write(frame(4, b"never acknowledged")[:cut])
    with caplog.at_level(logging.WARNING, "engine.journal"):
        reopened = Journal.open(tmp_path)
    assert [seq for seq, _ in reopened.read()] == [1, 2, 3]
    assert reopened.repair is not None
    assert reopened.repair.dropped_bytes == cut
    assert not reopened.repair.maybe_acknowledged
    assert f"dropped {cut} bytes after seq 3; never acknowledged" in caplog.text
    assert segment.stat().st_size == intact
    reopened.append(_records(4, 1))
    assert [seq for seq, _ in reopened.read()] == [1, 2, 3, 4]


def test_a_torn_first_write_of_a_new_journal_was_never_acknowledged(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    assert read_mark(tmp_path) == DurableMark(0, 0, 0, True)
    journal.close()
    (tmp_path / f"{1:020d}{SUFFIX}").write_bytes(frame(1, b"first")[:10])
    reopened = Journal.open(tmp_path)
    assert reopened.repair is not None and not reopened.repair.maybe_acknowledged
    assert reopened.last_seq == 0


def test_a_bad_crc_past_the_durable_mark_is_a_torn_write(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    journal.append(_records(1, 3))
    journal.close()
    flipped = bytearray(frame(4, b"written, fsync never returned"))
    flipped[-2] ^= 0x10
    with journal.segments[-1].path.open("ab") as handle:
        handle.write(bytes(flipped))
    reopened = Journal.open(tmp_path)
    assert reopened.repair is not None and reopened.repair.problem == "CRC mismatch"
    assert not reopened.repair.maybe_acknowledged
    assert reopened.last_seq == 3


@pytest.mark.parametrize(("byte", "lost"), [(-2, "seq 3"), (HEADER.size + 40 + 2, "seqs 2..3")])
def test_a_bad_crc_at_or_below_the_durable_mark_is_corruption_and_refuses(
    tmp_path: Path, byte: int, lost: str
) -> None:
    journal = Journal.open(tmp_path)
    journal.append(_records(1, 2))
    journal.append(_records(3, 1))
    journal.close()
    segment = journal.segments[-1].path
    data = bytearray(segment.read_bytes())
    data[byte] ^= 0x10
    segment.write_bytes(bytes(data))
    with pytest.raises(JournalCorruptError, match="fsync'd through seq 3") as refused:
        Journal.open(tmp_path)
    assert f"acknowledged commands of {lost} are damaged" in str(refused.value)
    assert "cfd engine recover" in str(refused.value)
    # Nothing was cut: the damaged records stay for the recovery to look at.
    assert segment.read_bytes() == bytes(data)


def test_a_journal_that_ends_below_its_durable_mark_refuses(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    journal.append(_records(1, 2))
    journal.append(_records(3, 2))
    journal.close()
    segment = journal.segments[-1].path
    # Cut at a record boundary: every record left is valid, two acknowledged ones are gone.
    with segment.open("r+b") as handle:
        handle.truncate(2 * len(frame(1, _records(1, 1)[0][1])))
    with pytest.raises(JournalCorruptError, match=r"ends at seq 2 .* seqs 3\.\.4 are missing"):
        Journal.open(tmp_path)


def test_without_a_durable_mark_a_cut_tail_is_logged_as_possibly_acknowledged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = Journal.open(tmp_path)
    journal.append(_records(1, 3))
    journal.close()
    (tmp_path / MARK_FILE).unlink()
    with journal.segments[-1].path.open("ab") as handle:
        handle.write(frame(4, b"unknown")[:5])
    with caplog.at_level(logging.WARNING, "engine.journal"):
        reopened = Journal.open(tmp_path)
    assert reopened.repair is not None and reopened.repair.maybe_acknowledged
    assert "could have been acknowledged: the journal holds no durable mark" in caplog.text


def test_a_mark_from_an_earlier_boot_may_lag_unless_a_clean_close_fsynced_it(
    tmp_path: Path,
) -> None:
    journal = Journal.open(tmp_path)
    journal.append(_records(1, 3))
    journal.close()
    mark = read_mark(tmp_path)
    assert mark is not None and mark.current and mark.seq == 3
    segment = journal.segments[-1].path
    other_boot = bytes(range(16))
    (tmp_path / MARK_FILE).write_bytes(encode_mark(3, 1, mark.offset, True, other_boot))
    assert read_mark(tmp_path) == mark
    (tmp_path / MARK_FILE).write_bytes(encode_mark(3, 1, mark.offset, False, other_boot))
    lagging = read_mark(tmp_path)
    assert lagging is not None and not lagging.current
    with segment.open("ab") as handle:
        handle.write(frame(4, b"maybe acknowledged")[:7])
    reopened = Journal.open(tmp_path)
    assert reopened.repair is not None and reopened.repair.maybe_acknowledged


def test_a_damaged_mark_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = Journal.open(tmp_path)
    journal.append(_records(1, 3))
    journal.close()
    data = bytearray((tmp_path / MARK_FILE).read_bytes())
    data[9] ^= 0x01
    (tmp_path / MARK_FILE).write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, "engine.journal"):
        assert read_mark(tmp_path) is None
    assert "durable mark is damaged" in caplog.text


def test_salvage_keeps_the_valid_records_and_quarantines_the_rest(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    journal = Journal.open(directory, segment_bytes=64)
    for seq in range(1, 5):
        journal.append(_records(seq, 1, size=60))
    journal.close()
    second = journal.segments[1].path
    original = second.read_bytes()
    damaged = bytearray(original)
    damaged[HEADER.size + 1] ^= 0xFF
    second.write_bytes(bytes(damaged))
    with pytest.raises(JournalCorruptError):
        Journal.open(directory, segment_bytes=64)
    quarantine = tmp_path / "quarantine"
    salvaged = Journal.salvage(directory, quarantine, segment_bytes=64)
    assert salvaged.last_seq == 1
    assert sorted(p.name for p in quarantine.iterdir()) == sorted(
        s.path.name for s in journal.segments[1:]
    )
    assert (quarantine / second.name).read_bytes() == bytes(damaged)
    salvaged.continue_after(9)
    salvaged.append(_records(10, 1))
    salvaged.close()
    reopened = Journal.open(directory, segment_bytes=64)
    assert [seq for seq, _ in reopened.read()] == [1, 10]
    assert reopened.covers(0)
    with pytest.raises(JournalError, match="does not follow"):
        reopened.append(_records(10, 1))


def test_salvage_without_records_empties_the_journal(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    journal = Journal.open(directory)
    journal.append(_records(1, 3))
    journal.close()
    salvaged = Journal.salvage(directory, tmp_path / "quarantine", keep_records=False)
    assert salvaged.segments == [] and salvaged.last_seq == 0
    # Until the salvaged journal closes, the old mark still witnesses what was acknowledged.
    old_mark = read_mark(directory)
    assert old_mark is not None and old_mark.seq == 3
    salvaged.continue_after(40)
    salvaged.append(_records(41, 1))
    salvaged.close()
    reopened = Journal.open(directory)
    assert reopened.covers(40) and not reopened.covers(39)
    assert [seq for seq, _ in reopened.read()] == [41]
    reopened.close()
    Journal.salvage(directory, tmp_path / "quarantine", keep_records=False).close()
    assert read_mark(directory) == DurableMark(0, 0, 0, True)
    assert Journal.open(directory).last_seq == 0


def test_corruption_in_an_older_segment_refuses_to_open(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path, segment_bytes=64)
    for seq in range(1, 5):
        journal.append(_records(seq, 1, size=60))
    journal.close()
    oldest = journal.segments[0].path
    data = bytearray(oldest.read_bytes())
    data[HEADER.size + 1] ^= 0xFF
    oldest.write_bytes(bytes(data))
    with pytest.raises(JournalCorruptError, match="older segment"):
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
