"""Seeding and the read patterns against the twin's moto server and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ops import ddb as ddbops
from ops import seed
from ops.errors import ConfigError, InputError, NotFoundError
from ops.messages import model, paging, read
from ops.messages.model import Person

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")
MESSAGE_KEYS = {"pk", "sk", "message_uuid", "message", "user_uuid", "user_display_name", "user_handle"}
GROUP_KEYS = {"pk", "sk", "message_group_uuid", "message", "user_uuid", "user_display_name", "user_handle"}
ADA = Person("11111111-1111-4111-8111-111111111111", "Ada Okafor", "ada")
BRAM = Person("22222222-2222-4222-8222-222222222222", "Bram Lindqvist", "bram")


def _all(ddb: Any, table: str) -> list[dict[str, Any]]:
    return list(ddbops.scan(ddb, table))


def test_seeded_items_follow_the_data_model(ddb: Any, table: str) -> None:
    conv = seed.parse_conversation(seed.DEFAULT_CONVERSATION)
    built = seed.build(conv, ADA, BRAM)
    seed.seed(ddb, table, built)
    items = _all(ddb, table)
    msgs = [i for i in items if i["pk"].startswith("MSG#")]
    groups = [i for i in items if i["pk"].startswith("GRP#")]
    [entry] = [
        i for i in items if i["pk"].startswith("PAIR#")
    ]  # the pair's one group, found by the next send in one read
    assert len(msgs) == len(conv.lines) and len(groups) == 2 and len(items) == len(msgs) + 3
    assert entry["pk"] == f"PAIR#{ADA.uuid}#{BRAM.uuid}" and entry["group_uuid"] == built.group_uuid
    assert all(set(m) == MESSAGE_KEYS and m["pk"] == f"MSG#{built.group_uuid}" and TS.match(m["sk"]) for m in msgs)
    # a row's key is its last reply's time, then its group id: two groups of one owner never share one
    assert all(set(g) == GROUP_KEYS and g["sk"] == f"{g['sk'][:32]}#{built.group_uuid}" for g in groups)
    assert all(TS.match(g["sk"][:32]) for g in groups)
    by_owner = {g["pk"]: g for g in groups}
    last = max(msgs, key=lambda m: m["sk"])
    # each row names the *other* participant and carries the real last message, not a filler
    assert by_owner[f"GRP#{ADA.uuid}"]["user_handle"] == "bram" and by_owner[f"GRP#{BRAM.uuid}"]["user_handle"] == "ada"
    assert {g["message"] for g in groups} == {last["message"]} and {g["sk"][:32] for g in groups} == {last["sk"]}
    senders = [m["user_handle"] for m in sorted(msgs, key=lambda m: m["sk"])]
    assert senders[:2] == ["ada", "bram"]  # Person 1 is my handle, Person 2 the other


def test_seed_twice_rewrites_the_same_items(ddb: Any, table: str) -> None:
    built = seed.build(seed.parse_conversation(seed.DEFAULT_CONVERSATION), ADA, BRAM)
    seed.seed(ddb, table, built)
    first = sorted((i["pk"], i["sk"], i.get("message_uuid")) for i in _all(ddb, table))
    result = seed.seed(ddb, table, built)
    assert sorted((i["pk"], i["sk"], i.get("message_uuid")) for i in _all(ddb, table)) == first
    assert result.verified and result.stale_rows_removed == 0


def test_reseed_keeps_one_row_per_participant_when_the_group_moved_on(ddb: Any, table: str) -> None:
    built = seed.build(seed.parse_conversation(seed.DEFAULT_CONVERSATION), ADA, BRAM)
    seed.seed(ddb, table, built)
    # a later message moved Ada's row; re-seeding must neither move it back nor add a second row
    old = built.rows[0]
    newer = model.GroupRow(
        old.owner_uuid,
        "2030-01-01T00:00:00.000000+00:00",
        old.message_group_uuid,
        "later",
        old.user_uuid,
        old.user_display_name,
        old.user_handle,
    )
    ddb.delete_item(TableName=table, Key=old.key())
    ddb.put_item(TableName=table, Item=newer.to_item())
    seed.seed(ddb, table, built)
    rows = read.group_rows(ddb, table, built.group_uuid)
    assert sorted(r.owner_uuid for r in rows) == sorted([ADA.uuid, BRAM.uuid])
    assert next(r for r in rows if r.owner_uuid == ADA.uuid).message == "later"


def test_long_conversation_across_a_new_year_reads_back_to_the_first_message(ddb: Any, table: str) -> None:
    conv = seed.parse_conversation(seed.FIXTURES / "new-year-release.txt")
    assert len(conv.lines) >= 150
    built = seed.build(conv, ADA, BRAM)
    seed.seed(ddb, table, built)
    assert {m.created_at[:4] for m in built.messages} == {"2025", "2026"}
    seen: list[model.Message] = []
    cursor = None
    pages = 0
    while True:
        page = read.get_conversation(ddb, table, built.group_uuid, page_size=20, cursor=cursor)
        assert [m.created_at for m in page.items] == sorted(m.created_at for m in page.items), (
            "each page reads oldest to newest"
        )
        seen = page.items + seen
        pages += 1
        cursor = page.next_cursor
        if not cursor:
            break
    assert [m.message for m in seen] == [text for _, text in conv.lines]
    assert pages == -(-len(conv.lines) // 20)  # no empty trailing page


def test_user_with_thirty_groups_gets_all_of_them_newest_first(ddb: Any, table: str) -> None:
    base = datetime(2024, 6, 1, tzinfo=UTC)
    conv = seed.parse_conversation(seed.DEFAULT_CONVERSATION)
    for i in range(30):
        other = Person(f"00000000-0000-4000-8000-{i:012d}", f"Friend {i}", f"friend{i}")
        # spread over three years: a current-year filter would lose most of them
        seed.seed(ddb, table, seed.build(conv, ADA, other, start=base + timedelta(days=37 * i)))
    got: list[model.GroupRow] = []
    cursor = None
    while True:
        page = read.list_conversations(ddb, table, ADA.uuid, page_size=7, cursor=cursor)
        got.extend(page.items)
        cursor = page.next_cursor
        if not cursor:
            break
    assert len(got) == 30 and len({g.message_group_uuid for g in got}) == 30
    assert [g.last_reply_at for g in got] == sorted((g.last_reply_at for g in got), reverse=True)
    assert got[0].user_handle == "friend29"


def test_before_filters_by_time_not_by_year(ddb: Any, table: str) -> None:
    built = seed.build(seed.parse_conversation(seed.FIXTURES / "new-year-release.txt"), ADA, BRAM)
    seed.seed(ddb, table, built)
    page = read.get_conversation(ddb, table, built.group_uuid, page_size=5, before="2026-01-01T00:00:00.000000+00:00")
    assert (
        all(m.created_at < "2026" for m in page.items) and page.items[-1].message == "Very poetic."
    )  # the last line of 2025


def test_malformed_line_stops_before_anything_is_written(ddb: Any, table: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("Person 1: hello\nPerson 2: hi\nPerson 3: who am I?\nPerson 1: bye\n")
    with pytest.raises(InputError, match=rf"{re.escape(str(bad))}:3: expected 'Person 1: …' or 'Person 2: …'"):
        seed.parse_conversation(bad)
    assert _all(ddb, table) == []


def test_seed_task_reports_malformed_fixture_in_one_line(database: Any, tmp_path: Path) -> None:
    from tests.support.helpers import assert_one_line_error, run_invoke

    bad = tmp_path / "bad.txt"
    bad.write_text("Person 1: fine\nPerson 2:\n")
    assert_one_line_error(run_invoke("ddb.seed", "--conversation", str(bad)), f"{bad}:2", "empty")


def test_missing_handle_and_missing_table_are_clear_errors(database: Any, ddb: Any) -> None:
    from tests.support.helpers import assert_one_line_error, run_invoke

    assert_one_line_error(
        run_invoke("ddb.seed", "--my-handle", "ada", "--other-handle", "nobody"), "no user with handle 'nobody'"
    )
    name = database.stack.table_name
    if name in ddbops.list_tables(ddb):
        ddb.delete_table(TableName=name)
    assert_one_line_error(run_invoke("ddb.seed"), f"table '{name}' does not exist", "invoke ddb.schema-load")
    assert_one_line_error(run_invoke("ddb.patterns.list-conversations", "--handle", "zed"), "no user with handle 'zed'")


def test_invalid_cursor_is_refused(ddb: Any, table: str) -> None:
    with pytest.raises(ConfigError, match="invalid --cursor"):
        read.list_conversations(ddb, table, ADA.uuid, cursor="not-a-token")
    other_listing = paging.encode_cursor("GRP#someone-else", "x")
    with pytest.raises(ConfigError, match="invalid --cursor"):
        read.list_conversations(ddb, table, ADA.uuid, cursor=other_listing)


def test_missing_conversation_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        seed.parse_conversation(tmp_path / "nope.txt")


@pytest.mark.parametrize("count", [20, 40, 41])
def test_a_partition_of_whole_pages_ends_without_an_empty_page_or_a_false_cursor(
    ddb: Any, table: str, count: int
) -> None:
    """AWS (and MiniStack) return a LastEvaluatedKey when Limit=N items match exactly; moto does not. Neither may
    show."""
    group, owner = "g-whole-pages", "o-whole-pages"
    msgs = [
        model.Message(
            group,
            f"2026-03-01T10:{i // 60:02d}:{i % 60:02d}.000000+00:00",
            f"m-{i}",
            f"text {i}",
            ADA.uuid,
            ADA.display_name,
            ADA.handle,
        )
        for i in range(count)
    ]
    rows = [
        model.GroupRow(owner, m.created_at, f"{group}-{i}", m.message, BRAM.uuid, BRAM.display_name, BRAM.handle)
        for i, m in enumerate(msgs)
    ]
    ddbops.batch_write(ddb, table, [x.to_item() for x in (*msgs, *rows)])

    for fetch, key in ((read.get_conversation, group), (read.list_conversations, owner)):
        sizes, cursor = [], None
        while True:
            page = fetch(ddb, table, key, 20, cursor)
            sizes.append(len(page.items))
            cursor = page.next_cursor
            if not cursor:
                break
        assert sizes == [20] * (count // 20) + ([count % 20] if count % 20 else []), f"{fetch.__name__}: {sizes}"
