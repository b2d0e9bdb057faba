"""Access pattern 3 against the twin's moto server: the table's state after each send."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from ops.errors import ConfigError, NotFoundError, RefusedError
from ops.local.streams import process_stream
from ops.messages.model import GSI_NAME, Message, group_rows_for, group_uuid_for
from ops.messages.read import list_conversations
from ops.messages.send import MAX_MESSAGE_CHARS, SendResult, send_message
from tests.support.streams import (
    all_items,
    assert_one_row_each_at_newest,
    group_rows_by_owner,
    markers,
    messages,
    person,
)


def test_a_first_message_creates_the_pair_group_with_both_rows_and_its_pair_entry(ddb: Any, table: str) -> None:
    ada, bram = person("ada"), person("bram")
    result = send_message(ddb, table, ada, "hello Bram", receiver=bram)

    assert result.created and result.group_uuid == group_uuid_for(ada.uuid, bram.uuid)
    assert [m["message"] for m in messages(ddb, table, result.group_uuid)] == ["hello Bram"]
    assert_one_row_each_at_newest(ddb, table, result.group_uuid, (ada, bram))
    [entry] = markers(ddb, table)
    assert (
        sorted(entry["participant_uuids"]) == sorted([ada.uuid, bram.uuid]) and entry["group_uuid"] == result.group_uuid
    )
    # the entry stays out of the read patterns: each user's list shows just the group
    assert [g.message_group_uuid for g in list_conversations(ddb, table, ada.uuid).items] == [result.group_uuid]


def test_a_reply_appends_only_the_message_and_the_consumer_moves_both_rows(
    ddb: Any, streams: Any, table: str, tmp_path: Any
) -> None:
    ada, bram = person("ada"), person("bram")
    first = send_message(ddb, table, ada, "hello", receiver=bram)
    reply = send_message(ddb, table, bram, "hi Ada", receiver=ada)

    assert not reply.created and reply.group_uuid == first.group_uuid
    assert len(all_items(ddb, table)) == 5  # pair entry, two rows, two messages: no second group
    rows = group_rows_by_owner(ddb, table, first.group_uuid)
    assert {r[0]["message"] for r in rows.values()} == {"hello"}  # rows move with the stream, not with the send

    process_stream(streams, ddb, table, GSI_NAME, tmp_path / "checkpoints.json")
    assert_one_row_each_at_newest(ddb, table, first.group_uuid, (ada, bram))
    assert list_conversations(ddb, table, ada.uuid).items[0].message == "hi Ada"


def test_two_first_messages_at_the_same_moment_make_one_group(
    isolated_moto: Any, isolated_table: str, tmp_path: Any
) -> None:
    table, ddb = isolated_table, isolated_moto.client("dynamodb")
    pairs = [(person("ada"), person("bram")) for _ in range(8)]
    results: dict[tuple[int, int], SendResult] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2 * len(pairs))

    def send(i: int, side: int) -> None:
        a, b = pairs[i] if side == 0 else pairs[i][::-1]
        client = isolated_moto.client("dynamodb")  # one client per thread, like two app servers
        try:
            barrier.wait(timeout=30)
            results[(i, side)] = send_message(client, table, a, f"first from {a.handle}", receiver=b)
        except BaseException as err:  # surfaced below: a thread's failure must fail the test
            errors.append(err)

    threads = [threading.Thread(target=send, args=(i, side)) for i in range(len(pairs)) for side in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors

    process_stream(isolated_moto.client("dynamodbstreams"), ddb, table, GSI_NAME, tmp_path / "checkpoints.json")
    assert len(markers(ddb, table)) == len(pairs)
    for i, (a, b) in enumerate(pairs):
        group = group_uuid_for(a.uuid, b.uuid)
        assert [results[(i, s)].created for s in (0, 1)].count(True) == 1, (
            "exactly one of the two senders created the group"
        )
        assert len(messages(ddb, table, group)) == 2, "both first messages are kept"
        assert_one_row_each_at_newest(ddb, table, group, (a, b))


class _HoldTransactions:
    """Lets a sender check that the group is missing, then holds its transaction until ``release``."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.checked = threading.Event()
        self.release = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        self.checked.set()
        assert self.release.wait(30)
        return self._client.transact_write_items(**kwargs)


def test_a_sender_who_saw_no_group_appends_when_the_other_created_it_meanwhile(twin: Any, ddb: Any, table: str) -> None:
    ada, bram = person("ada"), person("bram")
    slow = _HoldTransactions(twin.client("dynamodb"))
    out: dict[str, SendResult] = {}
    t = threading.Thread(
        target=lambda: out.setdefault("ada", send_message(slow, table, ada, "from ada", receiver=bram))
    )
    t.start()
    assert slow.checked.wait(30)  # ada found no group and is about to create it...
    out["bram"] = send_message(ddb, table, bram, "from bram", receiver=ada)  # ...when bram creates it
    slow.release.set()
    t.join(30)

    assert out["bram"].created and not out["ada"].created
    assert out["ada"].attempts == 2  # the pair entry's condition cancelled ada's creation; she appended
    assert len(markers(ddb, table)) == 1
    assert {k: len(v) for k, v in group_rows_by_owner(ddb, table, out["bram"].group_uuid).items()} == {
        ada.uuid: 1,
        bram.uuid: 1,
    }
    assert [m["message"] for m in messages(ddb, table, out["bram"].group_uuid)] == ["from bram", "from ada"]


def test_a_group_written_without_a_pair_entry_gets_appended_to_and_indexed(ddb: Any, table: str) -> None:
    # groups from ddb.seed or the course's code have rows and messages but no pair entry
    ada, bram = person("ada"), person("bram")
    group = group_uuid_for(ada.uuid, bram.uuid)
    old = Message(group, "2024-01-01T00:00:00.000000+00:00", "m-1", "seeded", ada.uuid, ada.display_name, ada.handle)
    for kind in (old, *group_rows_for(group, ada, bram, old)):
        ddb.put_item(TableName=table, Item=kind.to_item())

    result = send_message(ddb, table, bram, "after the seed", receiver=ada)
    assert not result.created and result.found_by == "rows" and result.entry_added
    assert [e["group_uuid"] for e in markers(ddb, table)] == [group]  # the next lookup is one read
    assert send_message(ddb, table, ada, "again", receiver=bram).found_by == "entry"
    assert {k: len(v) for k, v in group_rows_by_owner(ddb, table, group).items()} == {ada.uuid: 1, bram.uuid: 1}


def test_sending_into_a_group_needs_the_sender_to_be_a_participant(ddb: Any, table: str) -> None:
    ada, bram, eve = person("ada"), person("bram"), person("eve")
    group = send_message(ddb, table, ada, "hello", receiver=bram).group_uuid
    before = all_items(ddb, table)

    with pytest.raises(RefusedError, match="not a participant"):
        send_message(ddb, table, eve, "let me in", group_uuid=group)
    with pytest.raises(NotFoundError, match="no message group"):
        send_message(ddb, table, ada, "anyone?", group_uuid="00000000-0000-0000-0000-000000000000")
    assert all_items(ddb, table) == before

    reply = send_message(ddb, table, bram, "by group id", group_uuid=group)
    assert not reply.created and [m["message"] for m in messages(ddb, table, group)] == ["hello", "by group id"]


def test_a_message_in_the_same_microsecond_does_not_overwrite_the_other(ddb: Any, table: str) -> None:
    ada, bram = person("ada"), person("bram")
    at = "2026-03-01T10:00:00.000000+00:00"
    first = send_message(ddb, table, ada, "one", receiver=bram, now=at)
    second = send_message(ddb, table, bram, "two", receiver=ada, now=at)

    assert second.attempts == 2 and second.message.created_at == "2026-03-01T10:00:00.000001+00:00"
    assert [(m["sk"], m["message"]) for m in messages(ddb, table, first.group_uuid)] == [
        (at, "one"),
        (second.message.created_at, "two"),
    ]


@pytest.mark.parametrize("text", ["", "   \n", "x" * (MAX_MESSAGE_CHARS + 1)])
def test_an_empty_or_oversized_text_is_refused_before_any_write(ddb: Any, table: str, text: str) -> None:
    with pytest.raises(ConfigError, match="message"):
        send_message(ddb, table, person("ada"), text, receiver=person("bram"))
    assert all_items(ddb, table) == []


def test_a_receiver_and_a_group_that_do_not_match_are_refused(ddb: Any, table: str) -> None:
    ada, bram = person("ada"), person("bram")
    with pytest.raises(ConfigError, match="is not the group of"):
        send_message(ddb, table, ada, "hi", receiver=bram, group_uuid=group_uuid_for(ada.uuid, person("eve").uuid))
    with pytest.raises(ConfigError, match="two different users"):
        send_message(ddb, table, ada, "hi", receiver=ada)
    with pytest.raises(ConfigError, match="receiver or a group"):
        send_message(ddb, table, ada, "hi")
