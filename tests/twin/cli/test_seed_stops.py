"""ddb.seed as a user runs it, stopped midway (kill -9, Ctrl-C), and one fixture seeded for two pairs.

On the dev twin's own table, re-created empty for this module, with the twin's stream worker stopped
while it runs: a 20,000-line seed would give it minutes of records to drain, and the doctor's answers
must not depend on how far it got. Each stop lands while the seed is held at a tenth of the way (its later
batches wait at a gate), never after a sleep or a race with its progress; the test then checks it landed midway.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops import ddb as ddbops
from ops.db import User
from ops.messages.model import MSG_PREFIX, TIME_CEILING
from ops.messages.pairs import find_group
from ops.messages.read import group_rows
from ops.table_spec import table_spec
from ops.target import Target
from tests.support.held_writes import HELD
from tests.support.helpers import REPO, assert_one_line_error, run_invoke, stream_worker_stopped
from tests.support.original_backend import OriginalBackend

LINES = 20_000
HELD_WRITES = REPO / "tests" / "support" / "held_writes.py"


@pytest.fixture(scope="module")
def empty_stack_table(twin: Target, ddb: Any, database: Target) -> Iterator[str]:
    """The stack's table, empty, with the twin's stream worker stopped; dropped again afterwards."""
    name = twin.stack.table_name
    existed = bool(ddbops.describe(ddb, name))
    with stream_worker_stopped(twin.stack.name):
        if existed:
            ddbops.drop(ddb, name, "dev")
        ddbops.schema_load(ddb, table_spec(twin.stack))
        try:
            yield name
        finally:
            # a new table has a new stream: the worker, started again, has no backlog of these seeds
            ddbops.drop(ddb, name, "dev")
            if existed:
                ddbops.schema_load(ddb, table_spec(twin.stack))


@pytest.fixture(scope="module")
def long_conversation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("seeds") / "long.txt"
    path.write_text(
        "# start: 2026-06-01T00:00:00Z\n# spacing_seconds: 1\n"
        + "".join(f"Person {1 + i % 2}: line {i}\n" for i in range(LINES))
    )
    return path


def _seed_until_a_tenth(path: Path, me: str, other: str) -> subprocess.Popen[str]:
    """``invoke ddb.seed`` of ``path``, returned once a tenth of it is written and the rest is held back.

    The seed's later batches wait (``tests/support/held_writes.py``) until the test stops it: a stop
    that lands after the seed ended would test nothing, and on a busy machine it could.
    """
    proc = subprocess.Popen(
        [sys.executable, str(HELD_WRITES), str(LINES // 25 // 10), "ddb.seed", "--conversation", str(path)]
        + ["--my-handle", me, "--other-handle", other],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith(HELD):
            return proc
    proc.wait()
    raise AssertionError(f"the seed ended before a tenth of it was written (exit {proc.returncode})")


def _messages(ddb: Any, table: str, group: str) -> int:
    return ddbops.count_items(ddb, table, MSG_PREFIX + group, below=TIME_CEILING)


def _listed_handles(handle: str) -> str:
    proc = run_invoke("ddb.patterns.list-conversations", "--handle", handle, "--json")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_one_fixture_seeded_for_two_pairs_is_listed_twice_by_both_readers(
    empty_stack_table: str, ddb: Any, users: dict[str, User]
) -> None:
    for other in ("bram", "chidi"):
        proc = run_invoke("ddb.seed", "--my-handle", "ada", "--other-handle", other)
        assert proc.returncode == 0, proc.stderr
    listed = [json.loads(line) for line in _listed_handles("ada").splitlines()]
    assert sorted(r["user_handle"] for r in listed) == ["bram", "chidi"]
    assert len({r["last_reply_at"] for r in listed}) == 1  # one instant, both listed
    original = OriginalBackend(ddb, empty_stack_table).list_message_groups(users["ada"].person(), year="2026")
    assert sorted(r["user_handle"] for r in original) == ["bram", "chidi"]


def test_a_seed_killed_midway_is_listed_named_by_the_doctor_and_fixed_without_duplicates(
    empty_stack_table: str, ddb: Any, users: dict[str, User], long_conversation: Path
) -> None:
    ada, dana = users["ada"].person(), users["dana"].person()
    # GIVEN a 20,000-line seed killed (-9) once a tenth of it is written
    proc = _seed_until_a_tenth(long_conversation, "ada", "dana")
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    group = find_group(ddb, empty_stack_table, ada, dana).group_uuid
    assert group is not None  # the pair entry was written before the messages
    written = _messages(ddb, empty_stack_table, group)
    assert 0 < written < LINES, f"the kill did not land midway: {written} messages"

    # THEN the conversation is listed for both, and the doctor exits 1 naming it
    assert '"user_handle":"dana"' in _listed_handles("ada") and '"user_handle":"ada"' in _listed_handles("dana")
    doctor = run_invoke("ddb.doctor", "--json", timeout=300)
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    findings = {f["kind"]: f for f in json.loads(doctor.stdout)["first"]["findings"]}
    assert (
        findings["rows-ahead"]["examples"][0]["group"] == group
        and "rerun the same seed" in (findings["rows-ahead"]["title"])
    )

    # WHEN ddb.doctor --fix runs THEN the table is healthy: one row each, at the newest message written
    fixed = run_invoke("ddb.doctor", "--fix", timeout=300)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    rows = group_rows(ddb, empty_stack_table, group)
    assert sorted(r.owner_uuid for r in rows) == sorted((ada.uuid, dana.uuid))
    assert _messages(ddb, empty_stack_table, group) == written  # nothing written twice, nothing lost


def test_a_seed_stopped_with_ctrl_c_says_to_rerun_it_and_stays_findable(
    empty_stack_table: str, ddb: Any, users: dict[str, User], long_conversation: Path
) -> None:
    # GIVEN a 20,000-line seed interrupted (SIGINT, as Ctrl-C) once a tenth of it is written
    proc = _seed_until_a_tenth(long_conversation, "bram", "chidi")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)

    # THEN it exits 130 with one line that says how to finish, and no traceback
    assert proc.returncode == 130, out + err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "rerun the same seed" in errors[0] and "Traceback" not in err
    # and the conversation is found: by pattern 1, and by pattern 2 with --handles
    assert '"user_handle":"chidi"' in _listed_handles("bram")
    page = run_invoke("ddb.patterns.get-conversation", "--handles", "bram,chidi", "--page-size", "3")
    assert page.returncode == 0 and "line " in page.stdout, page.stdout + page.stderr
    group = find_group(ddb, empty_stack_table, users["bram"].person(), users["chidi"].person()).group_uuid
    assert group is not None and 0 < _messages(ddb, empty_stack_table, group) < LINES


def test_migrate_row_keys_moves_the_original_backends_rows_and_a_second_run_changes_nothing(
    empty_stack_table: str, ddb: Any, users: dict[str, User]
) -> None:
    ada, dana = users["ada"].person(), users["dana"].person()
    OriginalBackend(ddb, empty_stack_table, offset_hours=0).create_message_group(
        dana, ada, "from the old app", at="2026-07-01T10:00:00.000000+00:00"
    )
    dry = run_invoke("ddb.migrate", "--name", "row-keys", "--dry-run")
    assert dry.returncode == 0 and "would move a group row to its new key: 2" in dry.stdout, dry.stdout + dry.stderr
    first = run_invoke("ddb.migrate", "--name", "row-keys")
    assert first.returncode == 0 and "moved a group row to its new key: 2" in first.stdout, first.stdout + first.stderr
    second = run_invoke("ddb.migrate", "--name", "row-keys")
    assert second.returncode == 0 and "moved" not in second.stdout, second.stdout
    assert '"message":"from the old app"' in _listed_handles("dana")
    assert_one_line_error(
        run_invoke("ddb.migrate", "--name", "row-keys", "--stack", "prod", "--cloud"), "--confirm-protected"
    )
