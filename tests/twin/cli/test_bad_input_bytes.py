"""Text that is not UTF-8, a closed stdin, a state directory that cannot be used: one line each, before any request.

The prod stack has no twin in these tests: a check that came after the first request would say
"not answering" instead of naming the problem.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.disks import small_tmpfs
from tests.support.helpers import REPO, assert_one_line_error

SEND = ["ddb.send-message", "--stack", "prod", "--from", "ada", "--to", "bram"]


def _invoke(
    *args: str | bytes, stdin: bytes | None = None, close_stdin: bool = False, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=REPO,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        preexec_fn=(lambda: os.close(0)) if close_stdin else None,  # as `<&-` in a shell
    )
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    )


def test_text_in_argv_that_is_not_utf8_is_one_line_before_any_request() -> None:
    assert_one_line_error(_invoke(*SEND, "--text", b"caf\xe9"), "--text is not valid UTF-8", "0xe9")


def test_text_on_stdin_that_is_not_utf8_is_one_line_before_any_request() -> None:
    assert_one_line_error(_invoke(*SEND, "--text", "-", stdin=b"caf\xe9 au lait\n"), "stdin is not UTF-8", "0xe9")


def test_text_dash_with_stdin_closed_is_one_line() -> None:
    assert_one_line_error(_invoke(*SEND, "--text", "-", close_stdin=True), "stdin is closed")


def test_a_state_dir_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "state"
    a_file.write_text("not a directory")
    proc = _invoke("local.up", "--stack", "prod", env={"CRUDDUR_STATE_DIR": str(a_file)})
    assert_one_line_error(proc, str(a_file), "is a file")


def test_a_read_only_state_dir_is_one_line_naming_it() -> None:
    with small_tmpfs("1m", read_only=True) as disk:
        proc = _invoke("local.up", "--stack", "prod", env={"CRUDDUR_STATE_DIR": str(disk)})
    assert_one_line_error(proc, str(disk), "read-only")
