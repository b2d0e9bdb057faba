"""ddb.doctor and ddb.migrate as a user runs them, on the dev twin's own table (re-created empty for this module)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from ops.db import User
from ops.messages.model import GroupRow, PairEntry
from ops.messages.read import list_conversations
from ops.target import Target
from tests.support.helpers import assert_one_line_error, plant_extra_row, run_invoke, seed_stack_table
from tests.support.original_backend import OriginalBackend


@pytest.fixture(scope="module")
def fresh_stack_table(twin: Target, ddb: Any, database: Target) -> Iterator[str]:
    """The stack's table, empty, then seeded by ddb.seed: what a developer has after the quickstart."""
    yield seed_stack_table(twin, ddb)


def _doctor(*flags: str) -> Any:
    return run_invoke("ddb.doctor", *flags, timeout=120)


def test_doctor_on_a_freshly_seeded_twin_exits_0(fresh_stack_table: str) -> None:
    proc = _doctor()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "healthy" in proc.stdout


def test_doctor_names_a_planted_extra_row_a_lagging_row_and_a_plus_two_key_and_fix_leaves_only_the_key(
    fresh_stack_table: str, ddb: Any, users: dict[str, User], stream_worker_paused: None
) -> None:
    # the worker is stopped: it would move and deduplicate the planted rows while it drains the seed's records
    table = fresh_stack_table
    ada, bram, chidi, dana = (users[h].person() for h in ("ada", "bram", "chidi", "dana"))
    [adas] = list_conversations(ddb, table, ada.uuid).items
    # an extra, older row of bram's for the seeded group
    plant_extra_row(ddb, table, bram, ada, adas.message_group_uuid)
    # a row whose consumer missed its last record: ada's row moved back to an older time
    ddb.delete_item(TableName=table, Key=adas.key())
    ddb.put_item(
        TableName=table,
        Item=GroupRow(
            **{**adas.__dict__, "last_reply_at": "2025-12-31T00:00:00.000000+00:00", "message": "old"}
        ).to_item(),
    )
    # a group the original backend made from a host at +02:00
    OriginalBackend(ddb, table, offset_hours=2).create_message_group(
        chidi, dana, "hallo", at="2026-02-02T10:00:00.000000+02:00"
    )

    proc = _doctor("--json")
    assert proc.returncode == 1
    found = {f["kind"]: f for f in json.loads(proc.stdout)["first"]["findings"]}
    assert set(found) == {"extra-rows", "lagging-rows", "non-utc-keys", "missing-pair-entries", "old-shape-rows"}
    assert found["extra-rows"]["examples"][0]["owner"] == bram.uuid
    assert found["lagging-rows"]["examples"][0]["owner"] == ada.uuid
    assert found["non-utc-keys"]["count"] == 3  # the +02:00 group's two rows and its message

    fixed = _doctor("--fix")
    assert fixed.returncode == 1, fixed.stdout + fixed.stderr  # the +02:00 keys are not ours to rewrite
    assert (
        "will change" in fixed.stderr and "move its rows to the newest message" in fixed.stderr
    )  # shown before it is done
    after = fixed.stdout.split("after the repairs:")[1]
    assert (
        "not UTC with microseconds" in after
        and "more than one row" not in after
        and "behind" not in after
        and "pair entry" not in after
        and "time alone" not in after
    )
    assert list_conversations(ddb, table, ada.uuid).items[0].message == adas.message


def test_migrate_on_the_stack_reports_counts_and_a_second_run_changes_nothing(
    fresh_stack_table: str, ddb: Any, users: dict[str, User]
) -> None:
    ada, chidi = users["ada"].person(), users["chidi"].person()
    OriginalBackend(ddb, fresh_stack_table).create_message_group(ada, chidi, "from the old app")
    dry = run_invoke("ddb.migrate", "--dry-run")
    assert (
        dry.returncode == 0 and "would add a pair entry: 1" in dry.stdout and "target:" not in dry.stderr
    )  # a dry run writes nothing
    first = run_invoke("ddb.migrate")
    assert (
        first.returncode == 0
        and "added a pair entry: 1" in first.stdout
        and first.stderr.startswith("target: stack dev")
    )
    second = run_invoke("ddb.migrate")
    assert second.returncode == 0 and "added a pair entry" not in second.stdout
    entries = [
        PairEntry.from_item(i)
        for p in ddb.get_paginator("scan").paginate(TableName=fresh_stack_table)
        for i in p["Items"]
        if PairEntry.matches(i)
    ]
    assert {tuple(e.participant_uuids) for e in entries} >= {tuple(sorted((ada.uuid, chidi.uuid)))}


def test_repairs_and_migrations_on_a_protected_stack_need_the_confirmation() -> None:
    for task in (("ddb.doctor", "--fix"), ("ddb.migrate",), ("ddb.redrive",)):
        assert_one_line_error(run_invoke(*task, "--stack", "prod", "--cloud"), "--confirm-protected")
