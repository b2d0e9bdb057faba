"""The journal's file format, without a server: records read back, a torn tail stops reading, reads are not
journaled."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.local import journal


def _segment(tmp_path: Path, n: int) -> Path:
    writer = journal.JournalWriter(tmp_path, 1, fsync=False)
    for i in range(1, n + 1):
        writer.append({"seq": i, "act": "PutItem"}, f"body {i}".encode())
    writer.close()
    return writer.path


def test_records_read_back_in_order(tmp_path: Path) -> None:
    reader = journal.SegmentReader(_segment(tmp_path, 3))
    assert [(r.meta["seq"], r.body) for r in reader] == [(1, b"body 1"), (2, b"body 2"), (3, b"body 3")]
    assert reader.torn is None


@pytest.mark.parametrize("cut", [5, journal.HEADER.size + 3, -1])
def test_a_record_cut_short_ends_the_segment_with_a_note(tmp_path: Path, cut: int) -> None:
    path = _segment(tmp_path, 2)
    good = path.stat().st_size
    record = journal.encode_record({"seq": 3}, b"x" * 100)
    path.write_bytes(path.read_bytes() + record[:cut])

    reader = journal.SegmentReader(path)

    assert [r.meta["seq"] for r in reader] == [1, 2]
    assert reader.torn is not None and reader.torn.offset == good == reader.good_end
    assert reader.torn.bytes == len(record[:cut])


def test_a_flipped_byte_fails_the_checksum(tmp_path: Path) -> None:
    path = _segment(tmp_path, 2)
    data = bytearray(path.read_bytes())
    data[-2] ^= 0xFF  # inside the last record's body
    path.write_bytes(bytes(data))

    reader = journal.SegmentReader(path)

    assert [r.meta["seq"] for r in reader] == [1]
    assert reader.torn is not None and reader.torn.reason == "checksum mismatch"


def test_rotation_starts_a_segment_named_after_its_first_write(tmp_path: Path) -> None:
    writer = journal.JournalWriter(tmp_path, 1, fsync=True)
    writer.append({"seq": 1}, b"")
    older = writer.rotate(2)
    writer.append({"seq": 2}, b"")
    writer.close()
    assert [p.name for p in older] == ["seg-000000000001.log"]
    assert [p.name for p in journal.segments(tmp_path)] == ["seg-000000000001.log", "seg-000000000002.log"]


@pytest.mark.parametrize(
    ("service", "action", "body", "read"),
    [
        ("dynamodb", "PutItem", b"", False),
        ("dynamodb", "Query", b"", True),
        ("dynamodb", "TransactGetItems", b"", True),
        ("dynamodbstreams", "GetRecords", b"", True),
        ("cognitoidp", "AdminGetUser", b"", True),
        ("cognitoidp", "AdminInitiateAuth", b"", False),  # stores the tokens it hands out
        ("cognitoidp", "GetTokensFromRefreshToken", b"", False),
        ("ec2", "DescribeSecurityGroupRules", b"", True),
        ("sqs", "ReceiveMessage", b"", False),  # changes visibility and receive counts
        ("kms", "Encrypt", b'{"KeyId": "1234"}', True),
        ("kms", "Encrypt", b'{"KeyId": "alias/aws/sqs"}', False),  # moto creates the managed key on first use
    ],
)
def test_which_requests_are_journaled(service: str, action: str, body: bytes, read: bool) -> None:
    assert journal.is_read(service, action, "POST", body) is read


def test_the_restore_line(tmp_path: Path) -> None:
    assert journal.restore_summary({"snapshot": None, "replayed": 0}) == "nothing to restore"
    line = journal.restore_summary(
        {
            "snapshot": {"taken_at": "2026-01-05T09:00:00+00:00", "journal_seq": 4},
            "replayed": 12,
            "failed": [{"seq": 9}],
            "torn": [{"bytes": 30}],
        }
    )
    assert line == (
        "restored: snapshot of 2026-01-05 09:00:00 UTC + 12 journaled writes; 1 could not be replayed; "
        "a torn last record (30 bytes, cut by a crash mid-write) was ignored"
    )
