"""Tasks as a shell user runs them against the session twin: piped into `head`, and the list flag's spellings."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ops import ddb as ddbops
from ops.table_spec import table_spec
from ops.target import Target
from tests.support.helpers import REPO, run_invoke

FILLER = 3000  # ~600 kB of JSON lines: far more than a pipe (64 kB) and head's first read hold


@pytest.fixture
def filled_stack_table(twin: Target, ddb: Any) -> Iterator[str]:
    """The stack's own table (ddb.scan takes no table name) holding FILLER items of our own, removed afterwards."""
    result = ddbops.schema_load(ddb, table_spec(twin.stack))
    prefix = f"CLITEST#{uuid.uuid4().hex[:8]}#"
    keys = [{"pk": {"S": f"{prefix}{i:05d}"}, "sk": {"S": "2026-01-01T00:00:00.000000+00:00"}} for i in range(FILLER)]
    ddbops.batch_write(ddb, result.table, ({**key, "message": {"S": "x" * 160}} for key in keys))
    yield result.table
    if result.created:
        ddb.delete_table(TableName=result.table)
    else:
        ddbops.delete_keys(ddb, result.table, keys)


def test_scan_piped_into_head_ends_quietly(filled_stack_table: str) -> None:
    """The reader leaves after one line: the scan stops with exit 0 and says nothing (it used to end in a traceback)."""
    command = f"set -o pipefail; {shlex.quote(sys.executable)} -m invoke ddb.scan --json | head -1"
    proc = subprocess.run(
        ["bash", "-c", command], cwd=REPO, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert len(proc.stdout.splitlines()) == 1 and "pk" in json.loads(proc.stdout)


def test_a_data_task_imports_no_pulumi_sdk(filled_stack_table: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "invoke", "ddb.scan", "--limit", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "ops.ddb" in imported and not [m for m in imported if m.split(".")[0] in ("pulumi", "pulumi_aws")]


@pytest.fixture(scope="module")
def seeded_pair(database: Target, ddb: Any) -> Iterator[None]:
    """ada and bram's default conversation in the stack's table (the tests only read it: seeded once per engine)."""
    result = ddbops.schema_load(ddb, table_spec(database.stack))
    assert run_invoke("ddb.seed").returncode == 0
    yield
    if result.created:
        ddb.delete_table(TableName=result.table)


@pytest.mark.parametrize(
    "spelling",
    [
        ("--handle", "ada", "--handle", "bram"),
        ("--handle", "ada,bram"),
        ("--handles", "ada,bram"),
        ("-h", "ada", "-h", "bram"),
    ],
)
def test_get_conversation_takes_the_pair_in_every_spelling(seeded_pair: None, spelling: tuple[str, ...]) -> None:
    proc = run_invoke("ddb.patterns.get-conversation", *spelling, "--json", "--page-size", "3")
    assert proc.returncode == 0, proc.stderr
    messages = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(messages) == 3 and {m["user_handle"] for m in messages} <= {"ada", "bram"}


def test_get_conversation_wants_exactly_two_handles(seeded_pair: None) -> None:
    from tests.support.helpers import assert_one_line_error

    assert_one_line_error(run_invoke("ddb.patterns.get-conversation", "--handle", "ada"), "--handle ada --handle bram")
