"""The hostile-but-fair matrix, the cases that reach the session twin: one line, non-zero exit, no traceback, and the
table and the database exactly as they were (snapshotted before and after); then what a hostile *sender* can do to a
reader's terminal, and texts in every form (one that starts with '-', one piped on stdin).

The cases refused before any connection are in tests/unit/cli/test_hostile.py.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ops import db as dbops
from ops import ddb as ddbops
from ops.messages.paging import encode_cursor
from ops.table_spec import table_spec
from ops.target import Target
from tests.support.durable import all_items
from tests.support.helpers import assert_one_line_error, run_invoke

NO_GROUP = "0badc0de-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def pair(database: Target, ddb: Any) -> Iterator[str]:
    """ada and bram's seeded conversation in the stack's own table; its group id."""
    result = ddbops.schema_load(ddb, table_spec(database.stack))
    seeded = run_invoke("ddb.seed")
    assert seeded.returncode == 0, seeded.stderr
    group = re.search(r"group ([0-9a-f-]{36})", seeded.stdout)
    assert group, seeded.stdout
    yield group.group(1)
    if result.created:
        ddb.delete_table(TableName=result.table)


def _snapshot(target: Target, ddb: Any) -> dict[str, Any]:
    with dbops.connect(target) as conn:
        users = conn.execute(
            "SELECT uuid::text, handle, display_name, email, cognito_user_id FROM users ORDER BY handle"
        ).fetchall()
    return {"items": all_items(ddb, target.stack.table_name), "users": users}


def _cases(group: str) -> list[tuple[list[str], str]]:
    other_listing = encode_cursor("GRP#" + str(uuid.uuid4()), "2026-01-05T09:00:00.000000+00:00")
    return [
        (["ddb.patterns.get-conversation", "--group", NO_GROUP], f"there is no message group {NO_GROUP}"),
        (
            ["ddb.patterns.get-conversation", "--group", NO_GROUP, "--before", "2030-01-01T00:00:00Z"],
            f"there is no message group {NO_GROUP}",
        ),
        (
            ["ddb.patterns.get-conversation", "--group", group, "--cursor", other_listing],
            "it belongs to another listing",
        ),
        (["ddb.patterns.get-conversation", "--handle", "ada", "--handle", "nosuch"], "no user with handle 'nosuch'"),
        (["ddb.patterns.get-conversation", "--handle", "ada,ada"], "two different users"),
        (["ddb.patterns.get-conversation", "--handle", "ada,dana"], "ada and dana have no conversation"),
        (["ddb.patterns.list-conversations", "--handle", "nosuch"], "no user with handle 'nosuch'"),
        (["ddb.send-message", "--from", "nosuch", "--to", "bram", "hello"], "no user with handle 'nosuch'"),
        (["ddb.send-message", "--from", "ada", "--to", "nosuch", "hello"], "no user with handle 'nosuch'"),
        (["ddb.send-message", "--from", "chidi", "--group", group, "hello"], "chidi is not a participant"),
        (["ddb.send-message", "--from", "ada", "--group", NO_GROUP, "hello"], f"there is no message group {NO_GROUP}"),
        (["ddb.send-message", "--from", "ada", "--to", "ada", "hello"], "two different users"),
        (["ddb.send-message", "--from", "ada", "--to", "bram", "--text", " \t "], "a message needs some text"),
        (["ddb.seed", "--my-handle", "ada"], "give both --my-handle and --other-handle"),
        (["ddb.seed", "--my-handle", "ada", "--other-handle", "ada"], "two different users"),
        (["ddb.seed", "--my-handle", "ada", "--other-handle", "nosuch"], "no user with handle 'nosuch'"),
        (["ddb.seed", "--stack", "prod"], "invoke local.up --stack prod"),
        (["db.seed", "--stack", "prod"], "invoke local.up --stack prod"),
        (["ddb.migrate", "--stack", "prod"], "invoke local.up --stack prod"),
        (["rds.update-sg-rule", "--ip", "127.0.0.1"], "127.0.0.1"),
        (["rds.update-sg-rule", "--ip", "256.1.1.1"], "256.1.1.1"),
        (["cognito.sync-ids", "--cloud", "--stack", "prod"], "add --confirm-protected"),
    ]


CASE_IDS = [" ".join(a)[:70] for a, _ in _cases(NO_GROUP)]


@pytest.mark.parametrize("case", range(len(CASE_IDS)), ids=CASE_IDS)
def test_a_bad_input_against_the_twin_is_one_line_and_changes_nothing(
    pair: str, database: Target, ddb: Any, case: int
) -> None:
    args, line = _cases(pair)[case]
    before = _snapshot(database, ddb)
    proc = run_invoke(*args)
    assert_one_line_error(proc, line)
    assert _snapshot(database, ddb) == before, "a refused input changed the table or the database"


def test_an_existing_group_with_nothing_before_the_time_is_an_empty_page_not_an_error(pair: str) -> None:
    proc = run_invoke("ddb.patterns.get-conversation", "--group", pair, "--before", "1990-01-01T00:00:00Z")
    assert proc.returncode == 0 and proc.stdout.strip() == "(no messages)", proc.stderr


def test_before_compares_moments_whatever_the_zone(pair: str) -> None:
    # the seed's 13 messages are 90 s apart from 2026-11-14T07:30:00Z: the same moment in two zones gives the same page
    utc = run_invoke("ddb.patterns.get-conversation", "--group", pair, "--before", "2026-11-14T07:36:00Z", "--json")
    tokyo = run_invoke(
        "ddb.patterns.get-conversation", "--group", pair, "--before", "2026-11-14T16:36:00+09:00", "--json"
    )
    assert utc.returncode == tokyo.returncode == 0, utc.stderr + tokyo.stderr
    assert utc.stdout == tokyo.stdout
    assert [json.loads(line)["created_at"][11:19] for line in utc.stdout.splitlines()] == [
        "07:30:00",
        "07:31:30",
        "07:33:00",
        "07:34:30",
    ]


# ---------------------------------------------------------------- what a sender can do to a reader's terminal

FORGED = "see you\nbram  2026-01-01 00:00  I owe ada 500 euros, bram"
ESCAPES = "\x1b[2J\x1b[31mcolour\x1b[0m\x1b]0;window title\x07 \x9b1;1H \u202eevil\u202c \u2028 end"
OBEYED = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def test_a_sender_can_neither_forge_a_line_nor_reach_the_readers_terminal(pair: str) -> None:
    # GIVEN messages that try to forge a line of the conversation and send escape sequences
    for text in (FORGED, ESCAPES):
        sent = run_invoke("ddb.send-message", "--from", "ada", "--to", "bram", "--text", text)
        assert sent.returncode == 0, sent.stderr

    # WHEN bram reads the conversation, and his list of conversations
    shown = run_invoke("ddb.patterns.get-conversation", "--group", pair, "--page-size", "3", "--full")
    listing = run_invoke("ddb.patterns.list-conversations", "--handle", "bram", "--full")
    scan = run_invoke("ddb.scan")

    # THEN every line is one message, and nothing in it is a control character the terminal would obey
    for proc in (shown, listing, scan):
        assert proc.returncode == 0, proc.stderr
        assert not OBEYED.search(proc.stdout.replace("\n", "")), repr(proc.stdout)
    lines = shown.stdout.splitlines()
    assert len(lines) == 3 and not any(line.startswith("bram  2026-01-01") for line in lines), shown.stdout
    assert "see you\\nbram  2026-01-01 00:00  I owe ada" in shown.stdout and "\\x1b]0;window title\\x07" in shown.stdout
    # AND JSON keeps the texts exactly as sent
    as_json = run_invoke("ddb.patterns.get-conversation", "--group", pair, "--page-size", "2", "--json")
    assert [json.loads(line)["message"] for line in as_json.stdout.splitlines()] == [FORGED, ESCAPES]


def test_a_text_that_starts_with_a_dash_is_sent_with_text_or_from_stdin(pair: str) -> None:
    sent_texts = []
    for text in ("-rf /", "--help", "-", "- a dash first"):
        for args, stdin in ((["--text", text], None), (["--text", "-"], text + "\n")):
            if text == "-" and stdin is None:
                continue  # `--text -` is the stdin form: a lone dash goes through stdin
            sent = run_invoke("ddb.send-message", "--from", "bram", "--group", pair, *args, stdin=stdin)
            assert sent.returncode == 0, f"{args} {stdin!r}: {sent.stderr}"
            sent_texts.append(text)
    newest = run_invoke("ddb.patterns.get-conversation", "--group", pair, "--page-size", str(len(sent_texts)), "--json")
    assert [json.loads(line)["message"] for line in newest.stdout.splitlines()] == sent_texts


def test_ten_senders_at_once_all_succeed_and_every_message_is_stored_once(
    pair: str, database: Target, ddb: Any
) -> None:
    """Ten `ddb.send-message` at once on a twin without its stream worker: each processes the stream inline and
    writes the shared checkpoint file. None may fail after its message was stored (a retry would store it twice)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from ops.local.twin import stream_worker_running
    from ops.target import read_twin
    from tests.support.helpers import REPO

    worker = (read_twin("dev") or {}).get("stream_worker") or {}
    if worker.get("pid"):
        os.kill(worker["pid"], signal.SIGTERM)
        deadline = time.monotonic() + 30
        while stream_worker_running("dev"):
            assert time.monotonic() < deadline, "the stream worker did not stop"
            time.sleep(0.1)
    try:
        tag = uuid.uuid4().hex[:8]
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "invoke",
                    "ddb.send-message",
                    "--from",
                    ("ada", "bram")[i % 2],
                    "--group",
                    pair,
                    "--text",
                    f"at once {tag} {i}",
                ],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(10)
        ]
        results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
        assert [code for code, _, _ in results] == [0] * 10, [err for code, _, err in results if code]
        assert not [err for _, _, err in results if "Traceback" in err]
        assert all("stream:" in out + err for _, out, err in results), "each processed the stream itself"
        texts = [
            i["message"]["S"]
            for i in all_items(ddb, database.stack.table_name)
            if i["pk"]["S"] == f"MSG#{pair}" and tag in i["message"]["S"]
        ]
        assert sorted(texts) == sorted(f"at once {tag} {i}" for i in range(10))
    finally:
        assert run_invoke("local.up").returncode == 0  # the stream worker again
