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
