"""Named groups of 2 to 50 members: creating, changing, sending into them, and the consumer moving every row.

Each test works on a fresh table of its own, which the twin's stream worker never reads: the
stream records are read here and handed to the consumer explicitly, in the order the test
chooses (a late record is delivered late on purpose, not by racing a worker).
"""

from __future__ import annotations

from typing import Any

import pytest

from ops import doctor, migrate
from ops.crypto import MessageCipher
from ops.errors import NotFoundError, RefusedError
from ops.messages.consumer import failed_sequence_numbers, process_batch
from ops.messages.fanout import _move_one
from ops.messages.membership import add_member, create_group, remove_member
from ops.messages.model import GSI_NAME, KEY_SK, MAX_MEMBERS, MEMBERS_SK, Person, row_sort_key
from ops.messages.read import get_conversation, get_membership, list_conversations
from ops.messages.send import send_message
from tests.support.kms import new_key
from tests.support.original_backend import OriginalBackend
from tests.support.streams import (
    FaultyClient,
    group_rows_by_owner,
    markers,
    message_records,
    messages,
    person,
    stream_records,
)


def _records(ddb: Any, streams: Any, table: str, group: str) -> list[dict[str, Any]]:
    """The records of the group's messages, oldest first (not its membership or key item's)."""
    found = message_records(stream_records(streams, ddb, table), group)
    return [r for r in found if r["dynamodb"]["Keys"]["sk"]["S"] not in (MEMBERS_SK, KEY_SK)]


def _deliver(ddb: Any, streams: Any, table: str, group: str, after: int = 0) -> list[Any]:
    """The consumer over the group's message records from the ``after``-th on (as one Lambda batch)."""
    return process_batch(ddb, table, GSI_NAME, _records(ddb, streams, table, group)[after:])


def _assert_rows_at_newest(ddb: Any, table: str, group: str, members: list[Person]) -> None:
    """One row per member and none for anyone else, each carrying the group's newest message and naming the group."""
    newest = messages(ddb, table, group)[-1]
    rows = group_rows_by_owner(ddb, table, group)
    assert sorted(rows) == sorted(p.uuid for p in members), "rows for exactly the members"
    for owner, owned in rows.items():
        assert len(owned) == 1, f"{len(owned)} rows for member {owner}"
        at = (row_sort_key(newest["sk"], group), newest["message"])
        assert (owned[0]["sk"], owned[0]["message"]) == at, f"row of {owner} lags"
        assert owned[0]["group_name"] and owned[0]["user_uuid"] == group, "a named group's row names the group"


def test_in_a_group_of_three_each_members_message_moves_every_row(ddb: Any, streams: Any, table: str) -> None:
    # GIVEN: a group of three made by ada (one transaction: membership, three rows, the first message)
    ada, bram, chidi = person("ada"), person("bram"), person("chidi")
    created = create_group(ddb, table, ada, "trio", [bram, chidi])
    group = created.group_uuid
    _assert_rows_at_newest(ddb, table, group, [ada, bram, chidi])
    assert get_membership(ddb, table, group).members.keys() == {ada.uuid, bram.uuid, chidi.uuid}  # type: ignore[union-attr]

    for n, sender in enumerate((chidi, ada, bram), start=1):
        # WHEN: each member sends in turn and the consumer gets the record
        send_message(ddb, table, sender, f"hello from {sender.display_name}", group_uuid=group)
        outcomes = _deliver(ddb, streams, table, group, after=n)

        # THEN: all three rows move to it
        assert [(o.action, o.result.moved) for o in outcomes] == [("moved", 3)]  # type: ignore[union-attr]
        _assert_rows_at_newest(ddb, table, group, [ada, bram, chidi])

    # AND: pattern 1 names the group and brings its members along
    page = list_conversations(ddb, table, bram.uuid)
    assert [(r.group_name, r.message) for r in page.items] == [("trio", "hello from Bram")]
    assert {p.handle for p in page.extra["members"][group].people()} == {ada.handle, bram.handle, chidi.handle}


def test_a_non_member_is_refused_and_a_group_has_two_to_fifty_members(ddb: Any, table: str) -> None:
    ada, bram, dana = person("ada"), person("bram"), person("dana")
    group = create_group(ddb, table, ada, "duo", [bram]).group_uuid
    with pytest.raises(RefusedError, match=f"{dana.handle} is not a member of group 'duo'"):
        send_message(ddb, table, dana, "let me in", group_uuid=group)
    with pytest.raises(RefusedError, match="fewest"):
        remove_member(ddb, table, group, bram)
    with pytest.raises(Exception, match="2 to 50 members"):
        create_group(ddb, table, ada, "alone", [ada])
    with pytest.raises(Exception, match="2 to 50 members"):
        create_group(ddb, table, ada, "crowd", [person(f"p{i}") for i in range(MAX_MEMBERS)])
    with pytest.raises(NotFoundError, match="no named group"):
        add_member(ddb, table, send_message(ddb, table, ada, "a pair", receiver=bram).group_uuid, dana)
    assert len(messages(ddb, table, group)) == 1, "nothing refused was written"


def test_a_removed_members_row_never_comes_back_through_a_late_record(ddb: Any, streams: Any, table: str) -> None:
    # GIVEN: a group of three; ada sends, and the record is still in flight (not delivered yet)
    ada, bram, chidi, dana = person("ada"), person("bram"), person("chidi"), person("dana")
    group = create_group(ddb, table, ada, "trio", [bram, chidi]).group_uuid
    send_message(ddb, table, ada, "before bram left", group_uuid=group)
    brams_row = group_rows_by_owner(ddb, table, group)[bram.uuid][0]

    # WHEN: bram is removed, then the late record arrives
    change = remove_member(ddb, table, group, bram)
    outcomes = _deliver(ddb, streams, table, group, after=1)

    # THEN: his row is gone in the same change, and the late record moves ada's and chidi's only
    assert (change.action, change.rows_deleted, change.members) == ("removed", 1, 2)
    assert [(o.action, o.result.moved) for o in outcomes] == [("moved", 2)]  # type: ignore[union-attr]
    _assert_rows_at_newest(ddb, table, group, [ada, chidi])

    # AND: a move that read his row before the removal (a lagging index) is cancelled by its membership check
    stale = {k: {"S": v} for k, v in brams_row.items()}
    newest = messages(ddb, table, group)[-1]
    assert _move_one(ddb, table, stale, newest["sk"], {"message": {"S": newest["message"]}}) == ("not-member", None)
    assert bram.uuid not in group_rows_by_owner(ddb, table, group)

    # AND: his history stays, he cannot send, and a member added meanwhile gets a row at the newest message
    assert [m["message"] for m in messages(ddb, table, group)][-1] == "before bram left"
    with pytest.raises(RefusedError):
        send_message(ddb, table, bram, "still here?", group_uuid=group)
    added = add_member(ddb, table, group, dana)
    assert (added.action, added.row_at) == ("added", newest["sk"])
    _assert_rows_at_newest(ddb, table, group, [ada, chidi, dana])

    # AND: the next message fans out to the new set, and a second delivery of every record changes nothing
    send_message(ddb, table, chidi, "welcome dana", group_uuid=group)
    assert [o.result.moved for o in _deliver(ddb, streams, table, group, after=2)] == [3]  # type: ignore[union-attr]
    assert all(o.result.moved == 0 for o in _deliver(ddb, streams, table, group))  # type: ignore[union-attr]
    _assert_rows_at_newest(ddb, table, group, [ada, chidi, dana])
    assert add_member(ddb, table, group, dana).action == "already-member"
    assert remove_member(ddb, table, group, bram).action == "not-member"


def test_fifty_members_move_within_one_record(ddb: Any, streams: Any, table: str) -> None:
    # GIVEN: a group of the most members a group holds
    people = [person(f"m{i}") for i in range(MAX_MEMBERS)]
    group = create_group(ddb, table, people[0], "fifty", people[1:]).group_uuid

    # WHEN: one member sends and the consumer handles its record once
    send_message(ddb, table, people[17], "to all fifty", group_uuid=group)
    [outcome] = _deliver(ddb, streams, table, group, after=1)

    # THEN: the one record moved all fifty rows, no retry needed
    assert (outcome.action, outcome.result.moved, outcome.result.retries) == ("moved", 50, 0)  # type: ignore[union-attr]
    _assert_rows_at_newest(ddb, table, group, people)
    assert len(get_membership(ddb, table, group).members) == MAX_MEMBERS  # type: ignore[union-attr]
    with pytest.raises(RefusedError, match="50 members already"):
        add_member(ddb, table, group, person("one-too-many"))


def test_one_members_failing_row_is_a_partial_batch_failure_and_the_retry_moves_only_it(
    ddb: Any, streams: Any, table: str
) -> None:
    # GIVEN: a group of four and a message, and a table where bram's row cannot be written for now
    ada, bram, chidi, dana = person("ada"), person("bram"), person("chidi"), person("dana")
    group = create_group(ddb, table, ada, "four", [bram, chidi, dana]).group_uuid
    send_message(ddb, table, dana, "hello four", group_uuid=group)
    faulty = FaultyClient(ddb, f"GRP#{bram.uuid}")

    # WHEN: the consumer handles the record
    first = process_batch(faulty, table, GSI_NAME, _records(ddb, streams, table, group)[1:])

    # THEN: the record is reported failed (partial batch response) while the other three rows moved
    assert failed_sequence_numbers(first) == [first[0].sequence_number] and faulty.injected == 1
    rows = group_rows_by_owner(ddb, table, group)
    assert {o for o, r in rows.items() if r[0]["message"] == "hello four"} == {ada.uuid, chidi.uuid, dana.uuid}

    # WHEN: Lambda retries the record and bram's row can be written again
    [retry] = _deliver(ddb, streams, table, group, after=1)

    # THEN: only bram's row moves; nobody has two rows
    assert (retry.action, retry.result.moved, retry.result.skipped) == ("moved", 1, 3)  # type: ignore[union-attr]
    _assert_rows_at_newest(ddb, table, group, [ada, bram, chidi, dana])


def test_the_original_backends_readers_read_a_group_of_three(ddb: Any, streams: Any, table: str) -> None:
    # GIVEN: a group of three with a message from each, fanned out, and the original backend replying in it
    ada, bram, chidi = person("ada"), person("bram"), person("chidi")
    group = create_group(ddb, table, ada, "trio", [bram, chidi]).group_uuid
    for sender in (bram, chidi):
        send_message(ddb, table, sender, f"hi from {sender.display_name}", group_uuid=group)
    backend = OriginalBackend(ddb, table, offset_hours=0)
    backend.create_message(group, ada, "hi from the old backend")
    _deliver(ddb, streams, table, group, after=1)

    # WHEN: the original backend lists each member's conversations and the group's messages
    listed = {p.display_name: backend.served_message_groups(p.uuid) for p in (ada, bram, chidi)}
    shown = backend.list_messages(group)

    # THEN: each member sees the group under its name with the last message; the messages read as before
    for rows in listed.values():
        assert [(r["uuid"], r["display_name"], r["message"]) for r in rows] == [
            (group, "trio", "hi from the old backend")
        ]
    assert [(m["display_name"], m["message"]) for m in shown] == [
        ("Ada", "Ada created the group trio"),
        ("Bram", "hi from Bram"),
        ("Chidi", "hi from Chidi"),
        ("Ada", "hi from the old backend"),
    ]


def test_an_encrypted_group_is_sealed_once_per_group_and_every_member_reads_it(
    twin: Any, ddb: Any, streams: Any, table: str
) -> None:
    # GIVEN: a stack that encrypts messages (a KMS key of the twin), and a group of three made on it
    alias = new_key(twin.client("kms"))
    writer = MessageCipher(twin.client("kms"), alias)
    ada, bram, chidi = person("ada"), person("bram"), person("chidi")
    group = create_group(ddb, table, ada, "sealed trio", [bram, chidi], text="secret opening", cipher=writer).group_uuid

    # WHEN: bram and chidi send, and the consumer (which holds no key) fans the sealed bodies out
    for sender in (bram, chidi):
        send_message(ddb, table, sender, f"secret from {sender.display_name}", group_uuid=group, cipher=writer)
    outcomes = _deliver(ddb, streams, table, group, after=1)

    # THEN: nothing readable is stored, the group has one key item, and each member reads every body back
    assert [o.result.moved for o in outcomes] == [3, 3]  # type: ignore[union-attr]
    raw = ddb.scan(TableName=table, ConsistentRead=True)["Items"]
    assert not any("message" in i for i in raw), "no plain text in the table"
    assert sum(i["sk"]["S"] == "KEY" and i["pk"]["S"] == f"MSG#{group}" for i in raw) == 1
    reader = MessageCipher(twin.client("kms"), alias)  # another process: its own empty key cache
    for member in (ada, bram, chidi):
        [row] = list_conversations(ddb, table, member.uuid, cipher=reader).items
        assert (row.group_name, row.message) == ("sealed trio", "secret from Chidi")
    shown = get_conversation(ddb, table, group, cipher=reader).items
    assert [m.message for m in shown] == ["secret opening", "secret from Bram", "secret from Chidi"]


def _before_first_transaction(client: Any, act: Any) -> None:
    """Run ``act`` once, just before ``client``'s next TransactWriteItems is sent (botocore's before-call event)."""
    done: list[bool] = []

    def hook(**_: Any) -> None:
        if not done:
            done.append(True)
            act()

    client.meta.events.register("before-call.dynamodb.TransactWriteItems", hook)


def test_a_removal_that_races_the_consumers_move_of_that_row_still_removes_it(
    twin: Any, ddb: Any, streams: Any, table: str
) -> None:
    # GIVEN: a group of three and a message whose record is not delivered yet
    ada, bram, chidi = person("ada"), person("bram"), person("chidi")
    group = create_group(ddb, table, ada, "trio", [bram, chidi]).group_uuid
    send_message(ddb, table, chidi, "in flight", group_uuid=group)

    # WHEN: the consumer moves the rows (bram's too) after the removal read bram's row, before it commits
    remover = twin.client("dynamodb")
    _before_first_transaction(remover, lambda: _deliver(ddb, streams, table, group, after=1))
    change = remove_member(remover, table, group, bram)

    # THEN: the removal's first transaction is cancelled (his row moved), its retry deletes the moved row
    assert (change.action, change.rows_deleted) == ("removed", 1)
    _assert_rows_at_newest(ddb, table, group, [ada, chidi])


def test_an_addition_that_races_a_new_message_catches_the_new_members_row_up(
    twin: Any, ddb: Any, streams: Any, table: str
) -> None:
    # GIVEN: a group of three
    ada, bram, chidi, dana = person("ada"), person("bram"), person("chidi"), person("dana")
    group = create_group(ddb, table, ada, "trio", [bram, chidi]).group_uuid

    # WHEN: a message arrives and is fanned out after the addition read the newest message, before it commits
    def message_meanwhile() -> None:
        send_message(ddb, table, bram, "while dana joins", group_uuid=group)
        _deliver(ddb, streams, table, group, after=1)

    adder = twin.client("dynamodb")
    _before_first_transaction(adder, message_meanwhile)
    change = add_member(adder, table, group, dana)

    # THEN: dana's row, made at the older message, is moved to the newer one by the addition itself
    assert (change.action, change.caught_up) == ("added", True)
    _assert_rows_at_newest(ddb, table, group, [ada, bram, chidi, dana])


def test_the_pair_index_migration_and_the_doctor_leave_a_named_group_alone(
    ddb: Any, streams: Any, table: str, tmp_path: Any
) -> None:
    # GIVEN: a named group of two (the same people as a pair could be) with a message fanned out
    ada, bram = person("ada"), person("bram")
    group = create_group(ddb, table, ada, "duo", [bram]).group_uuid
    send_message(ddb, table, bram, "not a pair", group_uuid=group)
    _deliver(ddb, streams, table, group, after=1)

    # WHEN: the pair-index migration and the doctor run over the table
    migrated = migrate.run(ddb, table, "pair-index", tmp_path, "twin", segments=1)
    examined = doctor.examine(ddb, table, segments=1)

    # THEN: no pair entry is made for it, and the table is healthy
    assert not markers(ddb, table), migrated
    assert examined.clean and examined.named_groups == 1, examined.findings


def test_a_member_removed_while_sending_stores_nothing(twin: Any, ddb: Any, table: str) -> None:
    # GIVEN: a group of three, and bram sending into it
    ada, bram, chidi = person("ada"), person("bram"), person("chidi")
    group = create_group(ddb, table, ada, "trio", [bram, chidi]).group_uuid
    sender = twin.client("dynamodb")

    # WHEN: he is removed after his membership was read, before his message is stored
    _before_first_transaction(sender, lambda: remove_member(ddb, table, group, bram))

    # THEN: the send is refused in one line and the group holds only its first message
    with pytest.raises(RefusedError, match=f"{bram.handle} is not a member of group 'trio'"):
        send_message(sender, table, bram, "one last word", group_uuid=group)
    assert [m["message"] for m in messages(ddb, table, group)] == ["Ada created the group trio"]
