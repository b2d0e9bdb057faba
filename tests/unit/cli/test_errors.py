"""The one error boundary and the parse-time number checks: one line on stderr and a non-zero exit, never a
traceback."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from invoke import Exit
from invoke.exceptions import ParseError

from cli.shell import NUMBERS, WholeNumber, comma_separated, one_line_errors
from ops.errors import NotFoundError
from tests.support.helpers import assert_one_line_error, run_invoke


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("ddb.scan", "--segments", "0"), "--segments must be a whole number from 1 to 64, not '0'"),
        (("ddb.scan", "--segments", "65"), "--segments must be a whole number from 1 to 64, not '65'"),
        (("ddb.scan", "--limit", "abc"), "--limit must be a whole number of at least 1, not 'abc'"),
        (("ddb.scan", "--limit", "-1"), "--limit must be a whole number of at least 1, not '-1'"),
        (("ddb.scan", "--limit=0"), "--limit must be a whole number of at least 1, not '0'"),
        (
            ("ddb.patterns.list-conversations", "--handle", "ada", "--page-size", "abc"),
            "--page-size must be a whole number from 1 to 1000, not 'abc'",
        ),
        (
            ("ddb.patterns.get-conversation", "--handle", "ada,bram", "--page-size", "0"),
            "--page-size must be a whole number from 1 to 1000, not '0'",
        ),
        (
            ("ddb.patterns.get-conversation", "-p", "2.5"),
            "--page-size must be a whole number from 1 to 1000, not '2.5'",
        ),
    ],
)
def test_a_bad_number_is_one_line_before_the_task_runs(args: tuple[str, ...], line: str) -> None:
    # no twin runs for these tests: the task never starts, so no "twin is not running" error can hide the parse error
    proc = run_invoke(*args, timeout=60)
    assert_one_line_error(proc, line)
    assert proc.stderr.strip() == line and proc.stdout == ""


def test_whole_number_accepts_its_range_and_nothing_else() -> None:
    segments = WholeNumber(1, 64)
    assert [segments.parse("--segments", text) for text in ("1", "64", " 8 ")] == [1, 64, 8]
    for text in ("0", "65", "-3", "", "four", "1e3"):
        with pytest.raises(ParseError, match="--segments must be a whole number from 1 to 64"):
            segments.parse("--segments", text)
    assert NUMBERS["limit"].parse("--limit", "1000000") == 1000000


def test_comma_separated_takes_repeated_and_comma_forms() -> None:
    assert (
        comma_separated(["ada", "bram"])
        == comma_separated(["ada,bram"])
        == comma_separated([" ada , bram,"])
        == ["ada", "bram"]
    )
    assert comma_separated([]) == []


def _raising(err: BaseException) -> Any:
    @one_line_errors
    def body() -> None:
        raise err

    return body


@pytest.mark.parametrize(
    ("err", "message", "code"),
    [
        (NotFoundError("table 't' does not exist"), "error: table 't' does not exist", 1),
        (BrokenPipeError(), None, 0),
        (KeyboardInterrupt(), "interrupted", 130),
        (
            EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
            'error: AWS: Could not connect to the endpoint URL: "http://127.0.0.1:1"',
            1,
        ),
        (
            OSError(28, "No space left on device", "/srv/twin/dev/x"),
            "error: /srv/twin/dev/x: No space left on device (free some space on that disk)",
            1,
        ),
        (
            OSError(30, "Read-only file system"),
            "error: Read-only file system (that file system is mounted read-only: use a writable directory)",
            1,
        ),
    ],
)
def test_every_clause_of_the_boundary_is_reached(
    err: BaseException, message: str | None, code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    if isinstance(err, BrokenPipeError):  # the boundary points stdout at /dev/null: keep pytest's own stdout intact
        monkeypatch.setattr(os, "dup2", lambda *_: None)
    with pytest.raises(Exit) as exc:
        _raising(err)()
    assert (exc.value.message, exc.value.code) == (message, code)


def test_a_bug_keeps_its_traceback() -> None:
    """Anything that is neither ours nor AWS's is a bug: the boundary lets it through for the report."""
    with pytest.raises(ZeroDivisionError):
        _raising(ZeroDivisionError("x"))()
