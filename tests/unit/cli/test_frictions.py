"""Small frictions a new user met, each fixed: what the task says instead."""

from __future__ import annotations

from pathlib import Path

from tests.support.helpers import run_invoke


def test_a_flag_missing_its_value_is_named_as_typed_not_as_invokes_internal_object() -> None:
    proc = run_invoke("ddb.send-message", "--text", "--stack", "dev")
    assert proc.returncode != 0
    assert proc.stderr.strip() == "Flag --text needed value and was not given one!"
    assert "<Argument" not in proc.stderr + proc.stdout


def test_local_down_with_nothing_running_says_so(tmp_path: Path) -> None:
    proc = run_invoke("local.down", env={"CRUDDUR_STATE_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert (
        proc.stdout.strip() == f"nothing was running: no twin is recorded under {tmp_path} (CRUDDUR_STATE_DIR moves it)"
    )
    named = run_invoke("local.down", "--stack", "dev", env={"CRUDDUR_STATE_DIR": str(tmp_path)})
    assert named.stdout.strip() == "stack dev: nothing running"


def test_a_100_kb_value_is_not_echoed_whole_in_an_error() -> None:
    typed = "x" * 100_000
    proc = run_invoke("ddb.patterns.get-conversation", "--group", typed)
    assert proc.returncode != 0
    [line] = proc.stderr.strip().splitlines()
    assert "--group must be a message group uuid" in line and "[100,002 characters]" in line  # the quotes count
    assert len(line) < 400


def test_an_error_line_cuts_an_overlong_word_and_keeps_its_advice() -> None:
    from cli.shell import safe_line

    line = safe_line(f"error: no user with handle {'h' * 100_000!r} in the database: run `invoke db.seed`")
    assert line.endswith("in the database: run `invoke db.seed`") and "[100,002 characters]" in line
    assert len(line) < 400
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/cruddur-messages-dev/stream/2026-01-01T00:00:00.000"
    assert safe_line(f"error: stream {arn} is gone") == f"error: stream {arn} is gone"  # a real name stays whole
