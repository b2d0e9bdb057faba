"""A table another writer fills (the original backend: random group ids, non-atomic batches, host offsets).

GIVEN groups written the way the course's backend writes them, WHEN our send, read, migrate and
doctor run over them, THEN a pair keeps its one group and every problem is named.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ops import doctor, migrate
from ops.messages.consumer import process_batch  # noqa: I001  (kept beside the records it processes)
from ops.messages.model import GroupRow, Message, PairEntry, group_rows_for, instant, row_sort_key
from ops.messages.pairs import find_group
from ops.messages.read import get_conversation, list_conversations
from ops.messages.send import send_message
from tests.support.original_backend import OriginalBackend
from tests.support.streams import (
    assert_one_row_each_at_newest,
    group_rows_by_owner,
    markers,
    message_records,
    person,
    stream_records,
)


def _consume(ddb: Any, streams: Any, table: str, group: str) -> None:
    """What the stream consumer does in the cloud: every record of the group's messages, in order."""
    process_batch(ddb, table, "message-group-sk-index", message_records(stream_records(streams, ddb, table), group))


def test_send_appends_to_the_group_the_original_backend_made_in_either_direction(
    ddb: Any, streams: Any, table: str
) -> None:
    ada, dana = person("ada"), person("dana")
    backend = OriginalBackend(ddb, table, offset_hours=1)
    group = backend.create_message_group(dana, ada, "hi from the old app")  # random id, no pair entry, +01:00 keys

    first = send_message(ddb, table, dana, "and from the ops suite", receiver=ada)
    back = send_message(ddb, table, ada, "reply from ada", receiver=dana)
    _consume(ddb, streams, table, group)

    assert (first.group_uuid, back.group_uuid) == (group, group) and not first.created and not back.created
    assert (first.found_by, first.entry_added, back.found_by) == ("rows", True, "entry")  # the fallback is paid once
    assert [e["group_uuid"] for e in markers(ddb, table)] == [group]
    assert_one_row_each_at_newest(ddb, table, group, (ada, dana))
    assert list_conversations(ddb, table, ada.uuid).items[0].message == "reply from ada"


def test_a_group_whose_sender_has_no_row_is_still_found_through_the_other(ddb: Any, table: str) -> None:
    ada, dana = person("ada"), person("dana")
    group = OriginalBackend(ddb, table).create_message_group(ada, dana, "half written")
    [adas_row] = group_rows_by_owner(ddb, table, group)[ada.uuid]
    ddb.delete_item(
        TableName=table, Key={"pk": {"S": adas_row["pk"]}, "sk": {"S": adas_row["sk"]}}
    )  # the batch lost one put
    assert (
        find_group(ddb, table, ada, dana).group_uuid == group
    )  # a batch that lost one put does not make a second group
    assert send_message(ddb, table, ada, "still one group", receiver=dana).group_uuid == group


def test_reading_by_the_pair_finds_the_old_group_without_writing(ddb: Any, table: str) -> None:
    ada, dana = person("ada"), person("dana")
    group = OriginalBackend(ddb, table).create_message_group(ada, dana, "hello")
    lookup = find_group(ddb, table, ada, dana)
    assert (lookup.group_uuid, lookup.found_by, lookup.entry_added) == (group, "rows", False)
    assert markers(ddb, table) == []  # a read never writes
    assert [m.message for m in get_conversation(ddb, table, group).items] == ["hello"]


def test_two_first_messages_at_once_still_give_one_group(ddb: Any, table: str) -> None:
    ada, dana = person("ada"), person("dana")
    results: list[Any] = []
    barrier = threading.Barrier(4)

    def send(sender: Any, receiver: Any, text: str) -> None:
        barrier.wait()
        results.append(send_message(ddb, table, sender, text, receiver=receiver))

    threads = [
        threading.Thread(target=send, args=(a, b, f"first {i}"))
        for i, (a, b) in enumerate([(ada, dana), (dana, ada)] * 2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len({r.group_uuid for r in results}) == 1 and sum(r.created for r in results) == 1
    assert len(markers(ddb, table)) == 1


def test_the_consumer_orders_rows_by_moment_not_by_string(ddb: Any, streams: Any, table: str) -> None:
    ada, dana = person("ada"), person("dana")
    group = OriginalBackend(ddb, table, offset_hours=1).create_message_group(
        ada, dana, "earlier", at="2026-05-01T10:00:00.000000+01:00"
    )
    # ten minutes later, from a server in UTC: as strings, "…T09:10…+00:00" sorts BEFORE "…T10:00…+01:00"
    later = OriginalBackend(ddb, table, offset_hours=0).create_message(
        group, dana, "later", at="2026-05-01T09:10:00.000000+00:00"
    )
    _consume(ddb, streams, table, group)
    rows = group_rows_by_owner(ddb, table, group)
    assert {(r[0]["sk"], r[0]["message"]) for r in rows.values()} == {(row_sort_key(later, group), "later")}


def _plant_problems(ddb: Any, table: str) -> dict[str, Any]:
    """A healthy group, a lagging row, an extra row, a +02:00 key and an item of no shape."""
    ada, bram, chidi = person("ada"), person("bram"), person("chidi")
    healthy = send_message(ddb, table, ada, "fine", receiver=bram, now="2026-03-01T10:00:00.000000+00:00")
    old = OriginalBackend(ddb, table, offset_hours=2)
    lagging = old.create_message_group(chidi, ada, "first", at="2026-03-02T12:00:00.000000+02:00")
    newest = old.create_message(lagging, ada, "newest, never fanned out", at="2026-03-02T12:05:00+02:00")
    rows = group_rows_for(healthy.group_uuid, ada, bram, healthy.message)
    extra = GroupRow(
        rows[0].owner_uuid,
        "2026-02-01T00:00:00.000000+00:00",
        healthy.group_uuid,
        "stale",
        bram.uuid,
        bram.display_name,
        bram.handle,
    )
    ddb.put_item(TableName=table, Item=extra.to_item())
    ddb.put_item(TableName=table, Item={"pk": {"S": "SOMETHING#else"}, "sk": {"S": "x"}})
    return {"healthy": healthy.group_uuid, "lagging": lagging, "newest": newest, "people": (ada, bram, chidi)}


def test_doctor_names_each_planted_problem_and_fix_leaves_only_what_needs_a_person(ddb: Any, table: str) -> None:
    planted = _plant_problems(ddb, table)
    ex = doctor.examine(ddb, table, segments=3)
    kinds = {f.kind: f for f in ex.findings}
    assert set(kinds) == {
        "extra-rows",
        "lagging-rows",
        "non-utc-keys",
        "unknown-items",
        "missing-pair-entries",
        "old-shape-rows",
    }
    assert {e["group"] for e in kinds["old-shape-rows"].examples} == {planted["lagging"]}  # the original writer's rows
    assert kinds["extra-rows"].examples[0]["group"] == planted["healthy"]
    assert {e["group"] for e in kinds["lagging-rows"].examples} == {planted["lagging"]}
    assert kinds["non-utc-keys"].count == 4  # 2 rows and 2 messages of the +02:00 writer
    assert kinds["missing-pair-entries"].examples[0]["group"] == planted["lagging"]

    done = doctor.apply(ddb, table, doctor.repairs(ex))
    assert done == {"move-rows": 2, "put-entry": 1}
    after = doctor.examine(ddb, table)
    assert {f.kind for f in after.findings} == {
        "non-utc-keys",
        "unknown-items",
    }  # keys and odd items are a person's call
    ada, bram, chidi = planted["people"]
    assert_one_row_each_at_newest(ddb, table, planted["healthy"], (ada, bram))
    assert {r[0]["message"] for r in group_rows_by_owner(ddb, table, planted["lagging"]).values()} == {
        "newest, never fanned out"
    }


def test_doctor_reports_duplicate_groups_with_what_a_merge_takes_and_never_merges(ddb: Any, table: str) -> None:
    ada, dana = person("ada"), person("dana")
    old = OriginalBackend(ddb, table)
    first = old.create_message_group(ada, dana, "one", at="2026-01-01T00:00:00.000000+00:00")
    second = old.create_message_group(dana, ada, "two", at="2026-01-02T00:00:00.000000+00:00")  # the seeds' bug
    ex = doctor.examine(ddb, table)
    [dup] = next(f for f in ex.findings if f.kind == "duplicate-groups").examples
    assert dup["keep"] == second and set(dup["groups"]) == {first, second}
    assert f"move 1 message(s) of 1 group(s) into {second}" in dup["merge"]
    doctor.apply(ddb, table, doctor.repairs(ex))
    assert {m for m in (first, second) if group_rows_by_owner(ddb, table, m)} == {first, second}  # nothing merged


def test_doctor_on_a_healthy_table_is_clean(ddb: Any, table: str) -> None:
    ada, bram = person("ada"), person("bram")
    group = send_message(ddb, table, ada, "hi", receiver=bram).group_uuid
    send_message(ddb, table, bram, "hi back", group_uuid=group)
    from ops.messages.fanout import move_group_rows

    newest = get_conversation(ddb, table, group).items[-1]
    move_group_rows(ddb, table, group, newest.created_at, newest.message)
    assert doctor.examine(ddb, table).clean


def test_migration_indexes_every_pair_once_resumes_and_changes_nothing_the_second_time(
    ddb: Any, table: str, tmp_path: Path
) -> None:
    old = OriginalBackend(ddb, table)
    pairs = [(person(f"a{i}"), person(f"b{i}")) for i in range(12)]
    groups = [old.create_message_group(a, b, f"hello {i}") for i, (a, b) in enumerate(pairs)]
    legacy = {
        "pk": {"S": f"PAIR#{groups[0]}"},
        "sk": {"S": "PAIR"},
        "created_at": {"S": "2026-01-01T00:00:00.000000+00:00"},
        "participant_uuids": {"SS": sorted([pairs[0][0].uuid, pairs[0][1].uuid])},
    }
    ddb.put_item(TableName=table, Item=legacy)  # an earlier version's marker

    dry = migrate.run(ddb, table, "pair-index", tmp_path, "twin", dry_run=True, segments=2)
    assert dry.changed["would add a pair entry"] == 12 and markers(ddb, table) == [legacy_plain(legacy)]

    def interrupt(_: int) -> None:  # Ctrl-C once the first page is done
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        migrate.run(ddb, table, "pair-index", tmp_path, "twin", segments=1, page_size=5, on_progress=interrupt)
    assert migrate.state_file(tmp_path, "pair-index", "twin").exists()

    done = migrate.run(ddb, table, "pair-index", tmp_path, "twin", segments=1, page_size=5)
    # the first page is not read again: a whole scan reads every item there is now, plus the marker it removed
    assert done.resumed and done.scanned <= len(_raw_items(ddb, table)) + 1 - 5
    assert not migrate.state_file(tmp_path, "pair-index", "twin").exists()
    entries = [PairEntry.from_item(i) for i in _raw_items(ddb, table) if PairEntry.matches(i)]
    assert sorted(e.group_uuid for e in entries) == sorted(groups)
    again = migrate.run(ddb, table, "pair-index", tmp_path, "twin", segments=2)
    assert "added a pair entry" not in again.changed and again.changed["pair already indexed"] == 12


def legacy_plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v.get("S", v.get("SS")) for k, v in item.items()}


def _raw_items(ddb: Any, table: str) -> list[dict[str, Any]]:
    return [i for page in ddb.get_paginator("scan").paginate(TableName=table) for i in page["Items"]]


def test_every_time_shows_in_the_readers_zone_whatever_offset_its_key_carries() -> None:
    from ops.render import local_time

    plus_one = "2026-03-02T12:05:00+01:00"
    utc = "2026-03-02T11:05:00.000000+00:00"
    assert local_time(plus_one) == local_time(utc)
    assert Message.from_item(Message("g", plus_one, "m", "t", "u", "U", "h").to_item()).created_at == plus_one
    assert instant(plus_one) - instant(utc) == timedelta(0)
