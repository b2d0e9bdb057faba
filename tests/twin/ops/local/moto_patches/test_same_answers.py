"""The patched twin server answers every read exactly as plain moto 5.2.5 does.

GIVEN two real moto servers over HTTP, plain ``python -m moto.server`` and the twin's
``python -m ops.local.motoserver`` (which installs ops.local.moto_patches), fed the same random
tables, items and writes, WHEN the same reads go to both, THEN every Query, Scan and GetItem
answer is the same bytes, page by page along LastEvaluatedKey, every write's answer is the same,
and the patched server never found an index out of step with its table (``pair`` fixture).

``CRUDDUR_MOTO_PATCH_ROUNDS`` raises the number of random rounds (default 2 per table kind).
"""

from __future__ import annotations

import os
import random
from typing import Any

import pytest

from tests.twin.ops.local.moto_patches.conftest import Servers
from tests.twin.ops.local.moto_patches.pair import Pair
from tests.twin.ops.local.moto_patches.scenario import Scenario, binary_table, layout_of, messages_table, numbers_table

ROUNDS = int(os.environ.get("CRUDDUR_MOTO_PATCH_ROUNDS", "2"))


@pytest.mark.parametrize("seed", range(ROUNDS))
def test_random_requests_on_the_projects_table(pair: Pair, seed: int) -> None:
    scenario = Scenario(random.Random(1000 + seed), pair, layout_of(messages_table()))
    scenario.run(300)


@pytest.mark.parametrize("seed", range(ROUNDS))
def test_random_requests_on_number_keys_and_other_projections(pair: Pair, seed: int) -> None:
    scenario = Scenario(random.Random(2000 + seed), pair, layout_of(numbers_table()))
    scenario.run(300)


def test_random_requests_on_binary_keys_which_moto_answers_itself(pair: Pair) -> None:
    Scenario(random.Random(3000), pair, layout_of(binary_table())).run(200)


def _page_sizes(pages: list[Any]) -> list[int]:
    return [len(p["Items"]) for p in pages]


def test_a_partition_over_1_mb_pages_at_1_mb_both_ways_and_through_the_gsi(pair: Pair) -> None:
    # GIVEN one partition of 30 items of ~100 KB (3 MB), all in one GSI partition too
    scenario = Scenario(random.Random(4000), pair, layout_of(messages_table()))
    name = scenario.t.name
    for i in range(30):
        pair.call(
            "put_item",
            TableName=name,
            Item={
                "pk": {"S": "BIG"},
                "sk": {"S": f"{i:03d}"},
                "message_group_uuid": {"S": "g"},
                "body": {"S": "x" * 100_000},
            },
        )
    # WHEN it is read without a Limit, forwards and backwards, by table and by index, and scanned
    for forward in (True, False):
        base = pair.pages(
            "query",
            TableName=name,
            KeyConditionExpression="pk = :h",
            ExpressionAttributeValues={":h": {"S": "BIG"}},
            ScanIndexForward=forward,
        )
        gsi = pair.pages(
            "query",
            TableName=name,
            IndexName="message-group-sk-index",
            KeyConditionExpression="message_group_uuid = :h",
            ExpressionAttributeValues={":h": {"S": "g"}},
            ScanIndexForward=forward,
        )
        # THEN (besides being byte-identical) the pages are cut at 1 MB
        assert _page_sizes(base) == _page_sizes(gsi) == [9, 9, 9, 3]
        ends = [p["Items"][-1]["sk"]["S"] for p in base]
        assert ends == (["008", "017", "026", "029"] if forward else ["021", "012", "003", "000"])
    assert _page_sizes(pair.pages("scan", TableName=name)) == [9, 9, 9, 3]
    # a key condition that ends the run early: the page is full when an item outside it follows
    last = pair.pages(
        "query",
        TableName=name,
        KeyConditionExpression="pk = :h AND sk < :s",
        ExpressionAttributeValues={":h": {"S": "BIG"}, ":s": {"S": "009"}},
        Limit=9,
    )
    assert _page_sizes(last) == [9, 0]


def test_paging_a_conversation_with_the_read_patterns_gives_the_same_pages(pair: Pair) -> None:
    # GIVEN a conversation of 250 messages and the group rows, written as the project writes them
    from ops.messages.read import get_conversation, list_conversations

    scenario = Scenario(random.Random(5000), pair, layout_of(messages_table()))
    name = scenario.t.name
    from ops.messages.model import GroupRow, Message

    def at(i: int) -> str:
        return f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}.000000+00:00"

    for i in range(250):
        pair.call(
            "put_item", TableName=name, Item=Message("g1", at(i), f"m{i}", f"message {i}", "u1", "U", "u").to_item()
        )
    for owner, other in (("u1", "u2"), ("u2", "u1")):
        pair.call(
            "put_item",
            TableName=name,
            Item=GroupRow(owner, at(249), "g1", "message 249", other, other.upper(), other).to_item(),
        )
    # WHEN both servers are paged through with the project's own functions
    answers = []
    for client in (pair.plain, pair.patched):
        pages, cursor = [], None
        while True:
            page = get_conversation(client, name, "g1", 40, cursor)
            pages.append([m.created_at for m in page.items])
            cursor = page.next_cursor
            if not cursor:
                break
        answers.append((pages, list_conversations(client, name, "u1").items))
    # THEN the pages are the same, oldest-to-newest within a page, reaching the first message
    assert answers[0] == answers[1]
    pages = answers[1][0]
    assert [len(p) for p in pages] == [40] * 6 + [10]
    assert pages[-1][0].startswith("2026-01-01T00:00:00")


def test_transactions_rolled_back_and_tables_recreated_leave_no_trace_in_the_indexes(pair: Pair) -> None:
    scenario = Scenario(random.Random(6000), pair, layout_of(messages_table()))
    name = scenario.t.name
    item = {"pk": {"S": "MSG#a"}, "sk": {"S": "a"}, "message_group_uuid": {"S": "g1"}}
    pair.call("put_item", TableName=name, Item=item)
    # GIVEN a transaction that moves the item to another group, then fails on its second condition
    failed = pair.call(
        "transact_write_items",
        TransactItems=[
            {
                "Update": {
                    "TableName": name,
                    "Key": {"pk": item["pk"], "sk": item["sk"]},
                    "UpdateExpression": "SET message_group_uuid = :g",
                    "ExpressionAttributeValues": {":g": {"S": "g2"}},
                }
            },
            {"Put": {"TableName": name, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}},
        ],
    )
    assert not isinstance(failed, dict)  # cancelled: moto put the table back as it was
    gsi = {
        "TableName": name,
        "IndexName": "message-group-sk-index",
        "KeyConditionExpression": "message_group_uuid = :g",
    }
    assert pair.call("query", **gsi, ExpressionAttributeValues={":g": {"S": "g1"}})["Count"] == 1  # type: ignore[index]
    assert pair.call("query", **gsi, ExpressionAttributeValues={":g": {"S": "g2"}})["Count"] == 0  # type: ignore[index]
    # WHEN the table is deleted and created again under its name
    scenario.recreate()
    # THEN none of the old items shows, by key, by index or by scan
    assert (
        pair.call(
            "query", TableName=name, KeyConditionExpression="pk = :h", ExpressionAttributeValues={":h": {"S": "MSG#a"}}
        )["Count"]
        == 0
    )  # type: ignore[index]
    assert pair.call("query", **gsi, ExpressionAttributeValues={":g": {"S": "g1"}})["Count"] == 0  # type: ignore[index]
    assert pair.call("scan", TableName=name)["Count"] == 0  # type: ignore[index]


def test_a_gsi_added_by_update_table_is_queried_with_every_item(pair: Pair) -> None:
    scenario = Scenario(random.Random(7000), pair, layout_of(messages_table()))
    name = scenario.t.name
    for i in range(40):
        pair.call(
            "put_item",
            TableName=name,
            Item={"pk": {"S": f"MSG#{i % 3}"}, "sk": {"S": f"{i:02d}"}, "user_handle": {"S": f"h{i % 4}"}},
        )
    pair.call(
        "query",
        TableName=name,
        IndexName="message-group-sk-index",
        KeyConditionExpression="message_group_uuid = :g",
        ExpressionAttributeValues={":g": {"S": "g1"}},
    )
    # WHEN a second GSI is added and queried
    pair.both(
        "update_table",
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": "user_handle", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexUpdates=[
            {
                "Create": {
                    "IndexName": "by-handle",
                    "KeySchema": [
                        {"AttributeName": "user_handle", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                    "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
                }
            }
        ],
    )
    scenario.t.gsis["by-handle"] = ("user_handle", "sk")
    answer = pair.pages(
        "query",
        TableName=name,
        IndexName="by-handle",
        KeyConditionExpression="user_handle = :u",
        ExpressionAttributeValues={":u": {"S": "h1"}},
        Limit=4,
    )
    # THEN it holds the items written before it existed
    assert sum(len(p["Items"]) for p in answer) == 10  # type: ignore[index]
    scenario.run(150)  # and stays right under random writes


def test_a_restarted_patched_server_answers_from_its_snapshot_the_same(servers: Servers) -> None:
    pair = servers.pair()
    scenario = Scenario(random.Random(8000), pair, layout_of(messages_table()), big=0)
    for _ in range(150):
        scenario.write()
    # WHEN the patched server stops (writing its snapshot) and starts again from it
    servers.restart_patched()
    pair = servers.pair()
    pair.tables.add(scenario.t.name)
    scenario.pair = pair
    # THEN reads (which rebuild the indexes from the restored items) and writes still agree
    try:
        scenario.run(200)
    finally:
        pair.drop_tables()
    assert servers.patched_warnings() == []
