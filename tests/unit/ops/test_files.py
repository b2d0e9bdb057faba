"""ops.files.write_atomic: whole files only, private from the start, safe with many writers."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from ops.files import write_atomic


def test_a_private_file_is_never_readable_by_others(tmp_path: Path) -> None:
    target = tmp_path / "secret.json"
    write_atomic(target, "{}", mode=0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text() == "{}"


def test_concurrent_writers_each_leave_a_whole_file_and_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "checkpoints.json"
    payloads = [str(i) * 10_000 for i in range(10)]
    errors: list[BaseException] = []

    def write(data: str) -> None:
        try:
            for _ in range(20):
                write_atomic(target, data)
        except BaseException as err:  # collected: a thread's exception would otherwise vanish
            errors.append(err)

    threads = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert target.read_text() in payloads
    assert os.listdir(tmp_path) == ["checkpoints.json"]


def test_a_failed_write_keeps_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "twin.json"
    write_atomic(target, "old")
    try:
        write_atomic(target, object())  # type: ignore[arg-type]
    except TypeError:
        pass
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["twin.json"]


def test_a_conversation_file_with_a_utf8_byte_order_mark_reads_from_its_first_line(tmp_path: Path) -> None:
    from ops.seed import parse_conversation

    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeff# start: 2026-01-05T09:00:00Z\nPerson 1: héllo\nPerson 2: hi\n".encode())
    conversation = parse_conversation(path)
    assert [text for _, text in conversation.lines] == ["héllo", "hi"]


def test_a_named_input_that_is_no_regular_file_says_what_it_is(tmp_path: Path) -> None:
    import pytest

    from ops.errors import InputError, NotFoundError
    from ops.files import read_text_file

    with pytest.raises(NotFoundError, match="conversation file .*none.txt does not exist"):
        read_text_file(tmp_path / "none.txt", "conversation file")
    with pytest.raises(InputError, match="is a directory, not a file"):
        read_text_file(tmp_path, "conversation file")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(InputError, match=r"is a FIFO \(named pipe\), not a file"):
        read_text_file(tmp_path / "fifo", "conversation file")
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9")
    with pytest.raises(InputError, match="not UTF-8 text"):
        read_text_file(tmp_path / "latin1.txt", "conversation file")
