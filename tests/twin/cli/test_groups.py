"""Named groups as a user runs them: ddb.create-group, send-message --group, the patterns, add/remove-member, doctor.

On the dev twin's own table (re-created empty for this module), with the twin's stream worker
running as local.up starts it: the group rows move because the worker feeds the stream to the
consumer, and send-message waits (at most 5 s) until they did. The doctor tests plant their
faults in a group whose messages the worker has already handled, so it has nothing left to race.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from ops import ddb as ddbops
from ops.db import User
from ops.messages.model import GRP_PREFIX, GroupRow, Membership, row_sort_key
from ops.table_spec import table_spec
from ops.target import Target
from tests.support.helpers import assert_one_line_error, run_invoke
from tests.support.streams import group_rows_by_owner, messages

pytestmark = pytest.mark.dynamodb


@pytest.fixture(scope="module")
def empty_stack_table(twin: Target, ddb: Any, database: Target) -> Iterator[str]:
    name = twin.stack.table_name
    if ddbops.describe(ddb, name):
        ddbops.drop(ddb, name, "dev")
    ddbops.schema_load(ddb, table_spec(twin.stack))
    yield name


def _ok(*args: str) -> str:
    proc = run_invoke(*args, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _created(out: str) -> str:
    found = re.match(r"group ([0-9a-f-]{36}) 'trio' created by ada with 3 members", out)
    assert found, out
    return found.group(1)


def _listed(handle: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _ok("ddb.patterns.list-conversations", handle, "--json").splitlines() if line]


def test_trio_made_fed_changed_and_healthy(empty_stack_table: str, ddb: Any, users: dict[str, User]) -> None:
    table = empty_stack_table
    ada, bram, chidi = (users[h] for h in ("ada", "bram", "chidi"))

    # GIVEN: ada makes the group "trio" with bram and chidi
    group = _created(_ok("ddb.create-group", "--name", "trio", "--members", "ada,bram,chidi"))

    # WHEN: chidi sends into it (the twin's worker moves the rows; the task waits up to 5 s for it)
    sent = _ok("ddb.send-message", "--from", "chidi", "--group", group, "good morning, trio")

    # THEN: ada's and bram's lists show "trio" with chidi's message, with the members in --json
    assert "moved by the twin's stream consumer" in sent
    for handle in ("ada", "bram"):
        [row] = _listed(handle)
        assert (row["group_name"], row["message"], row["message_group_uuid"]) == ("trio", "good morning, trio", group)
        assert sorted(m["handle"] for m in row["members"]) == ["ada", "bram", "chidi"]
    table_text = _ok("ddb.patterns.list-conversations", "bram")
    assert "trio" in table_text and "ada, chidi" in table_text, table_text  # the other members, not the reader
    # AND: pattern 2 by --group names the group, its members and each sender by display name
    shown = _ok("ddb.patterns.get-conversation", "--group", group).splitlines()
    assert shown[0].startswith("group trio: 3 members: ") and f"{chidi.display_name} (@chidi)" in shown[0]
    assert shown[-1].startswith(chidi.display_name) and shown[-1].endswith("good morning, trio")
    assert shown[1].startswith(ada.display_name)  # the first message, ada's

    # WHEN: bram is removed, then ada sends
    assert "bram removed from group 'trio': 1 row(s) deleted" in _ok(
        "ddb.remove-member", "--group", group, "--handle", "bram"
    )
    _ok("ddb.send-message", "--from", "ada", "--group", group, "bram has left")

    # THEN: bram's list no longer shows the group; ada's and chidi's rows moved; bram may not send
    assert _listed("bram") == []
    rows = group_rows_by_owner(ddb, table, group)
    assert sorted(rows) == sorted([ada.uuid, chidi.uuid])
    assert {r[0]["message"] for r in rows.values()} == {"bram has left"}
    assert_one_line_error(
        run_invoke("ddb.send-message", "--from", "bram", "--group", group, "hello?"), "bram is not a member"
    )
    assert _ok("ddb.doctor").splitlines()[-1] == "healthy: nothing breaks the access patterns"

    # AND: adding him back gives him a row at the newest message
    assert "bram added to group 'trio'" in _ok("ddb.add-member", "--group", group, "--handle", "bram")
    [back] = _listed("bram")
    assert back["message"] == "bram has left"


def test_bad_requests_are_one_line_and_write_nothing(empty_stack_table: str, ddb: Any) -> None:
    before = ddb.scan(TableName=empty_stack_table, Select="COUNT")["Count"]
    cases = [
        (("ddb.create-group", "--name", "solo", "--members", "ada"), "2 to 50 members"),
        (("ddb.create-group", "--name", "", "--members", "ada,bram"), "a group needs a name"),
        (("ddb.create-group", "--name", "x", "--members", "ada,nobody"), "no user with handle 'nobody'"),
        (("ddb.add-member", "--group", "not-a-uuid", "--handle", "ada"), "--group"),
        (("ddb.remove-member", "--group", "3f2a9c1e-0000-4000-8000-000000000000", "--handle", "ada"), "no named group"),
    ]
    for args, needle in cases:
        assert_one_line_error(run_invoke(*args), needle)
    assert ddb.scan(TableName=empty_stack_table, Select="COUNT")["Count"] == before


def test_doctor_finds_a_named_groups_missing_non_member_and_lagging_rows_and_fixes_them(
    empty_stack_table: str, ddb: Any, users: dict[str, User]
) -> None:
    # GIVEN: a group of four whose rows the worker has moved, then three faults planted by hand:
    table = empty_stack_table
    ada, bram, chidi, dana = (users[h] for h in ("ada", "bram", "chidi", "dana"))
    out = _ok("ddb.create-group", "--name", "quad", "--members", "dana,ada,bram,chidi")
    group = re.match(r"group ([0-9a-f-]{36})", out).group(1)  # type: ignore[union-attr]
    _ok("ddb.send-message", "--from", "bram", "--group", group, "all four here")
    rows = {owner: r[0] for owner, r in group_rows_by_owner(ddb, table, group).items()}
    newest = messages(ddb, table, group)[-1]
    # ...chidi's row is lost, dana's lags behind (a consumer that missed the record)...
    ddb.delete_item(TableName=table, Key={"pk": {"S": rows[chidi.uuid]["pk"]}, "sk": {"S": rows[chidi.uuid]["sk"]}})
    dana_row = GroupRow.from_item({k: {"S": v} for k, v in rows[dana.uuid].items()})
    ddb.delete_item(TableName=table, Key=dana_row.stored_key())
    old = GroupRow(**{**dana_row.__dict__, "last_reply_at": "2026-01-01T00:00:00.000000+00:00", "message": "old"})
    ddb.put_item(TableName=table, Item=old.to_item())
    # ...and bram left through a script that changed the membership item but left his row behind
    ddb.update_item(
        TableName=table,
        Key=Membership.key_of(group),
        UpdateExpression="REMOVE #m.#u",
        ExpressionAttributeNames={"#m": "members", "#u": bram.uuid},
    )

    # WHEN: the doctor examines the table
    proc = run_invoke("ddb.doctor", "--json", timeout=120)

    # THEN: it names each fault, by group and person, and exits 1
    assert proc.returncode == 1, proc.stderr
    found = {f["kind"]: f["examples"] for f in json.loads(proc.stdout)["first"]["findings"]}
    assert set(found) == {"missing-member-rows", "non-member-rows", "lagging-rows"}, found
    assert [(e["group"], e["member"]) for e in found["missing-member-rows"]] == [(group, chidi.uuid)]
    assert [(e["group"], e["owner"]) for e in found["non-member-rows"]] == [(group, bram.uuid)]
    assert [(e["group"], e["owner"]) for e in found["lagging-rows"]] == [(group, dana.uuid)]

    # WHEN: --fix; THEN: the members' rows are at the newest message, bram's is gone, and the table is healthy
    fixed = run_invoke("ddb.doctor", "--fix", timeout=120)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    after = group_rows_by_owner(ddb, table, group)
    assert sorted(after) == sorted([ada.uuid, chidi.uuid, dana.uuid])
    assert all(len(r) == 1 and r[0]["sk"] == row_sort_key(newest["sk"], group) for r in after.values())
    assert all(r[0]["message"] == "all four here" and r[0]["pk"].startswith(GRP_PREFIX) for r in after.values())
