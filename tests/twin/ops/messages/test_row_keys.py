"""Group rows that never collide: two groups of one owner at one instant keep a row each.

GIVEN groups of one owner whose last replies share an instant (one fixture seeded for two pairs,
replies stamped in the same microsecond, rows of the original backend), WHEN they are written by
the seed, send and the stream consumer, THEN pattern 1 lists every one of them, newest first, by
page and by ``--before``, and so does the original backend's reader.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from ops import seed
from ops.messages.consumer import failed_sequence_numbers, process_batch
from ops.messages.model import GSI_NAME, MSG_PREFIX, GroupRow, iso, key_time, row_sort_key
from ops.messages.read import iter_conversations, list_conversations
from ops.messages.send import send_message
from tests.support.original_backend import OriginalBackend
from tests.support.streams import group_rows_by_owner, person, stream_records


def _consume_all(ddb: Any, streams: Any, table: str) -> None:
    """Every message record of the table so far, in order, through the consumer: none may fail."""
    records = [
        r
        for r in stream_records(streams, ddb, table)
        if r["eventName"] == "INSERT" and r["dynamodb"]["Keys"]["pk"]["S"].startswith(MSG_PREFIX)
    ]
    assert failed_sequence_numbers(process_batch(ddb, table, GSI_NAME, records)) == []


def _listed(ddb: Any, table: str, owner: str, page_size: int) -> list[GroupRow]:
    return list(iter_conversations(ddb, table, owner, page_size=page_size))


def test_one_fixture_seeded_for_two_pairs_lists_both_groups_for_the_shared_user(ddb: Any, table: str) -> None:
    # GIVEN the same fixture (same start, same spacing) seeded for ada-bram and ada-chidi
    ada, bram, chidi = person("ada"), person("bram"), person("chidi")
    conv = seed.parse_conversation(seed.DEFAULT_CONVERSATION)
    seeded = [seed.seed(ddb, table, seed.build(conv, ada, other)) for other in (bram, chidi)]

    # THEN both groups are ada's, by pattern 1 and by the original backend's reader (its year filter included)
    groups = {s.group_uuid for s in seeded}
    listed = list_conversations(ddb, table, ada.uuid).items
    assert {r.message_group_uuid for r in listed} == groups and len(listed) == 2
    assert len({r.last_reply_at for r in listed}) == 1  # one instant, two keys
    year = iso(seed.DEFAULT_START)[:4]
    original = OriginalBackend(ddb, table).list_message_groups(ada, year=year)
    assert {r["message_group_uuid"] for r in original} == groups
    for other in (bram, chidi):
        assert [r.user_handle for r in list_conversations(ddb, table, other.uuid).items] == [ada.handle]


def test_any_groups_of_an_owner_replied_to_in_one_microsecond_are_all_listed_in_order(
    ddb: Any, streams: Any, table: str
) -> None:
    """Property-style: random groups, random shared instants; the consumer moves every row, none is lost."""
    rnd = random.Random(1919)
    ada = person("ada")
    base = datetime(2026, 3, 1, 12, tzinfo=UTC)
    others = [person(f"friend{i}") for i in range(7)]
    # GIVEN seven groups of ada, created at distinct times
    groups = {
        o.uuid: send_message(ddb, table, ada, "hello", receiver=o, now=iso(base + timedelta(seconds=i))).group_uuid
        for i, o in enumerate(others)
    }
    # WHEN each gets a reply stamped with one of two instants (so several groups share each one)
    shared = [iso(base + timedelta(hours=1)), iso(base + timedelta(hours=1, microseconds=1))]
    replied_at = {}
    for o in others:
        at = rnd.choice(shared)
        sent = send_message(ddb, table, o, f"reply at {at}", group_uuid=groups[o.uuid], now=at)
        replied_at[groups[o.uuid]] = sent.message.created_at
    _consume_all(ddb, streams, table)

    # THEN every group is listed once for ada, at its reply, newest first, whatever the page size
    for page_size in (1, 2, 3, 20):
        listed = _listed(ddb, table, ada.uuid, page_size)
        assert sorted(r.message_group_uuid for r in listed) == sorted(groups.values()), page_size
        assert [r.last_reply_at for r in listed] == sorted(replied_at.values(), reverse=True)
        assert all(r.last_reply_at == replied_at[r.message_group_uuid] for r in listed)
    # and --before splits at the instant, not inside it
    later, earlier = shared[1], shared[0]
    before_later = list_conversations(ddb, table, ada.uuid, page_size=20, before=later).items
    assert {r.message_group_uuid for r in before_later} == {g for g, at in replied_at.items() if at == earlier}
    # each other participant has exactly one row, keyed by the reply's time and the group
    for o in others:
        rows = group_rows_by_owner(ddb, table, groups[o.uuid])
        assert {owner: [r["sk"] for r in rs] for owner, rs in rows.items()} == {
            owner: [row_sort_key(replied_at[groups[o.uuid]], groups[o.uuid])] for owner in (ada.uuid, o.uuid)
        }


def test_the_original_backends_groups_replied_to_at_one_instant_are_moved_to_keys_of_their_own(
    ddb: Any, streams: Any, table: str
) -> None:
    # GIVEN two groups of ada made by the original backend (old-shape keys: the bare time) at different times
    ada, bram, chidi = person("ada"), person("bram"), person("chidi")
    backend = OriginalBackend(ddb, table, offset_hours=0)
    g1 = backend.create_message_group(ada, bram, "one", at="2026-04-01T10:00:00+00:00")
    g2 = backend.create_message_group(ada, chidi, "two", at="2026-04-01T10:00:01+00:00")
    assert {key_time(r.stored_sk or "") for r in list_conversations(ddb, table, ada.uuid).items} == {
        "2026-04-01T10:00:00+00:00",
        "2026-04-01T10:00:01+00:00",
    }
    # WHEN both get a reply in the same second, as that backend stamps it (no fraction)
    backend.create_message(g1, bram, "reply one", at="2026-04-01T11:00:00+00:00")
    backend.create_message(g2, chidi, "reply two", at="2026-04-01T11:00:00+00:00")
    _consume_all(ddb, streams, table)

    # THEN ada keeps both, in our reader and in the original one, each row in the new shape
    listed = list_conversations(ddb, table, ada.uuid).items
    assert {(r.message_group_uuid, r.message) for r in listed} == {(g1, "reply one"), (g2, "reply two")}
    assert not any(r.old_shape for r in listed)
    original = backend.list_message_groups(ada, year="2026")
    assert sorted(r["message"] for r in original) == ["reply one", "reply two"]
