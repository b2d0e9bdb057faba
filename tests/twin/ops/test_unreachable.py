"""Conversations a participant cannot reach: the doctor names every one, --fix (or the rerun seed) lists it again.

GIVEN a group with messages whose participant has no row (rows lost to a stopped writer, to the old
key's collisions, to a lost stream record), or whose rows point past its newest message (a seed
stopped midway), WHEN ddb.doctor examines the table, THEN it names the group and the participant,
and its repairs leave every group listed for each participant at its newest message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ops import doctor, migrate, seed
from ops.messages.model import GroupRow, Person
from ops.messages.pairs import find_group
from ops.messages.read import get_conversation, group_rows, list_conversations
from ops.messages.send import send_message
from tests.support.original_backend import OriginalBackend
from tests.support.streams import assert_one_row_each_at_newest, group_rows_by_owner, person


def _kinds(ex: doctor.Examination) -> dict[str, doctor.Finding]:
    return {f.kind: f for f in ex.findings}


def _fix(ddb: Any, table: str, *people: Person) -> doctor.Examination:
    """``ddb.doctor --fix``; ``people``: who the users table knows (check_target looks them up in PostgreSQL)."""
    ex = doctor.examine(ddb, table)
    known = {p.uuid: p for p in people if p.uuid in doctor.unnamed_partners(ex)}
    doctor.apply(ddb, table, doctor.repairs(ex, known))
    return doctor.examine(ddb, table)


def _drop_rows(ddb: Any, table: str, group: str) -> None:
    for row in group_rows(ddb, table, group):
        ddb.delete_item(TableName=table, Key=row.stored_key())


def test_a_group_whose_rows_are_all_gone_is_named_through_its_pair_entry_and_fix_rebuilds_both(
    ddb: Any, table: str
) -> None:
    # GIVEN a conversation only ada ever wrote to, whose two rows are lost
    ada, bram = person("ada"), person("bram")
    sent = send_message(ddb, table, ada, "anyone there?", receiver=bram, now="2026-02-01T08:00:00.000000+00:00")
    _drop_rows(ddb, table, sent.group_uuid)
    assert list_conversations(ddb, table, ada.uuid).items == [] == list_conversations(ddb, table, bram.uuid).items

    # THEN the doctor names both participants (bram through the pair entry: he never wrote)
    ex = doctor.examine(ddb, table)
    assert not ex.clean
    missing = _kinds(ex)["missing-rows"]
    assert {(e["group"], e["participant"]) for e in missing.examples} == {
        (sent.group_uuid, ada.uuid),
        (sent.group_uuid, bram.uuid),
    }
    # and --fix lists the conversation for both again, each row naming the other, at the newest message
    assert doctor.unnamed_partners(ex) == [bram.uuid]  # no item names bram: his name comes from the users table
    assert _fix(ddb, table, ada, bram).clean
    assert [r.user_handle for r in list_conversations(ddb, table, bram.uuid).items] == [ada.handle]
    assert_one_row_each_at_newest(ddb, table, sent.group_uuid, (ada, bram))


def test_a_group_without_pair_entry_or_rows_is_named_through_its_senders(ddb: Any, table: str) -> None:
    # GIVEN a group of the original backend (no pair entry) with a reply, and both rows lost
    ada, dana = person("ada"), person("dana")
    backend = OriginalBackend(ddb, table, offset_hours=0)
    group = backend.create_message_group(ada, dana, "hi", at="2026-02-01T08:00:00.000000+00:00")
    backend.create_message(group, dana, "hi back", at="2026-02-01T08:01:00.000000+00:00")
    _drop_rows(ddb, table, group)

    ex = doctor.examine(ddb, table)
    assert {e["participant"] for e in _kinds(ex)["missing-rows"].examples} == {ada.uuid, dana.uuid}
    after = _fix(ddb, table)
    assert after.clean, after.findings
    assert list_conversations(ddb, table, ada.uuid).items[0].message == "hi back"
    assert find_group(ddb, table, ada, dana).group_uuid == group  # and the pair is indexed now


def test_two_groups_that_collided_under_the_old_key_are_both_listed_after_fix(ddb: Any, table: str) -> None:
    # GIVEN the original backend making two of ada's groups in one instant: its keys collide, one row is lost
    ada, bram, chidi = person("ada"), person("bram"), person("chidi")
    backend = OriginalBackend(ddb, table, offset_hours=0)
    at = "2026-02-01T08:00:00+00:00"
    groups = {backend.create_message_group(ada, other, f"hi {other.handle}", at=at) for other in (bram, chidi)}
    assert len(list_conversations(ddb, table, ada.uuid).items) == 1  # the collision: one conversation gone

    # THEN the doctor names ada's missing row and the old-shape keys; --fix gives each group its own key
    kinds = _kinds(doctor.examine(ddb, table))
    [missing] = kinds["missing-rows"].examples
    assert missing["participant"] == ada.uuid and missing["collided_with"] in groups - {missing["group"]}
    assert kinds["old-shape-rows"].count == 3
    after = _fix(ddb, table, bram)
    assert {f.kind for f in after.findings} == {"non-utc-keys"}, after.findings  # its keys have no microseconds
    listed = list_conversations(ddb, table, ada.uuid).items
    assert {r.message_group_uuid for r in listed} == groups and not any(r.old_shape for r in listed)


def test_the_row_keys_migration_moves_old_rows_resumes_and_changes_nothing_the_second_time(
    ddb: Any, table: str, tmp_path: Path
) -> None:
    backend = OriginalBackend(ddb, table)
    ada = person("ada")
    others = [person(f"f{i}") for i in range(10)]
    for i, other in enumerate(others):
        backend.create_message_group(ada, other, f"hello {i}", at=f"2026-02-01T08:00:{i:02d}+01:00")
    before = [(r.message_group_uuid, r.last_reply_at) for r in list_conversations(ddb, table, ada.uuid).items]

    dry = migrate.run(ddb, table, "row-keys", tmp_path, "twin", dry_run=True, segments=2)
    assert dry.changed == {"would move a group row to its new key": 20}
    assert all(r.old_shape for r in list_conversations(ddb, table, ada.uuid).items)  # a dry run writes nothing

    def interrupt(_: int) -> None:  # Ctrl-C once the first page is done
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        migrate.run(ddb, table, "row-keys", tmp_path, "twin", segments=1, page_size=5, on_progress=interrupt)
    resumed = migrate.run(ddb, table, "row-keys", tmp_path, "twin", segments=1, page_size=5)
    assert resumed.resumed and 0 < resumed.changed["moved a group row to its new key"] < 20
    again = migrate.run(ddb, table, "row-keys", tmp_path, "twin", segments=2)
    assert not again.resumed and sum(again.changed.values()) == 0

    after = list_conversations(ddb, table, ada.uuid).items
    assert [(r.message_group_uuid, r.last_reply_at) for r in after] == before  # same order, same times
    assert not any(r.old_shape for r in after)
    for row in after:  # one row per participant: nothing was copied twice
        assert [len(rows) for rows in group_rows_by_owner(ddb, table, row.message_group_uuid).values()] == [1, 1]


class _StopAfter:
    """A DynamoDB client that raises KeyboardInterrupt (Ctrl-C) at its Nth BatchWriteItem: a seed stopped there."""

    def __init__(self, client: Any, batches: int) -> None:
        self._client, self._left = client, batches

    def batch_write_item(self, **kwargs: Any) -> Any:
        self._left -= 1
        if self._left < 0:
            raise KeyboardInterrupt
        return self._client.batch_write_item(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_seed_stopped_midway_is_listed_named_by_the_doctor_and_finished_by_the_rerun(
    ddb: Any, table: str, tmp_path: Path
) -> None:
    # GIVEN a 600-line conversation whose seed is stopped (Ctrl-C) after its 5th batch of messages
    ada, bram = person("ada"), person("bram")
    path = tmp_path / "long.txt"
    path.write_text("# start: 2026-05-01T00:00:00Z\n" + "".join(f"Person {1 + i % 2}: line {i}\n" for i in range(600)))
    built = seed.build(seed.parse_conversation(path), ada, bram)
    with pytest.raises(seed.SeedInterrupted, match="rerun the same seed"):
        seed.seed(_StopAfter(ddb, 5), table, built, workers=1)

    # THEN both participants find it, by pattern 1 and through the pair entry, with what was written
    for me, other in ((ada, bram), (bram, ada)):
        assert [r.user_handle for r in list_conversations(ddb, table, me.uuid).items] == [other.handle]
    assert find_group(ddb, table, ada, bram).found_by == "entry"
    written = get_conversation(ddb, table, built.group_uuid, page_size=1000).items
    assert 0 < len(written) < 600
    # and the doctor names the group: its rows point past the newest message written
    [ahead] = [f for f in doctor.examine(ddb, table).findings]
    assert ahead.kind == "rows-ahead" and {e["group"] for e in ahead.examples} == {built.group_uuid}

    # WHEN the same seed runs again THEN it is whole: every message once, one row each at the last one
    result = seed.seed(ddb, table, built)
    assert result.verified and result.messages_in_table == 600
    assert_one_row_each_at_newest(ddb, table, built.group_uuid, (ada, bram))
    assert doctor.examine(ddb, table).clean


def test_doctor_fix_moves_the_rows_of_a_stopped_seed_back_to_its_newest_message(
    ddb: Any, table: str, tmp_path: Path
) -> None:
    ada, bram = person("ada"), person("bram")
    path = tmp_path / "long.txt"
    path.write_text("".join(f"Person {1 + i % 2}: line {i}\n" for i in range(300)))
    built = seed.build(seed.parse_conversation(path), ada, bram)
    with pytest.raises(seed.SeedInterrupted):
        seed.seed(_StopAfter(ddb, 3), table, built, workers=1)

    assert _fix(ddb, table).clean
    newest = get_conversation(ddb, table, built.group_uuid, page_size=1).items[-1]
    rows: list[GroupRow] = group_rows(ddb, table, built.group_uuid)
    assert sorted(r.owner_uuid for r in rows) == sorted((ada.uuid, bram.uuid))
    assert {(r.last_reply_at, r.message) for r in rows} == {(newest.created_at, newest.message)}
