"""The sorted indexes stay in step with every kind of write, and the project's reads use them.

In-process (moto.mock_aws) with the patches installed for the test and removed after it
(``patched`` fixture): these look inside the server, which the HTTP comparison cannot.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from ops import ddb as ddbops
from ops.local.moto_patches import index as ix
from ops.local.moto_patches import reads
from ops.messages import model, read
from ops.stacks import load_stack
from ops.table_spec import create_table_kwargs, table_spec
from tests.twin.ops.local.moto_patches.pair import Pair
from tests.twin.ops.local.moto_patches.scenario import Scenario, layout_of, numbers_table

GSI = model.GSI_NAME


@pytest.fixture
def client(patched: None) -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")


@pytest.fixture
def table(client: Any) -> str:
    spec = dataclasses.replace(table_spec(load_stack("dev")), name="messages")
    client.create_table(**create_table_kwargs(spec))
    return spec.name


def moto_table(name: str) -> Any:
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends["123456789012"]["us-east-1"].get_table(name)


def assert_in_step(name: str) -> None:
    """Every index kept for the table equals one built from scratch from its items now."""
    table = moto_table(name)
    kept = ix.for_table(table)
    assert kept is not None
    for gsi in [None, *(g.name for g in table.global_indexes)]:
        kept.index(table, gsi)  # built now if this table object is new (a rolled-back transaction replaced it)
    for index_name, index in kept.indexes.items():
        fresh = ix.SortedIndex.build(index.shape, table)
        assert index.filed == fresh.filed, f"index {index_name}: filed keys differ"
        for h in set(index.partitions) | set(fresh.partitions):
            mine, theirs = index.partitions.get(h), fresh.partitions.get(h)
            assert mine == theirs, f"index {index_name}, partition {h}: kept {mine} != built {theirs}"


class Spy:
    """Counts the answers of reads.fast_query / fast_scan: taken (an answer) or left to moto (None)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.taken: list[str] = []
        self.left: list[str] = []
        for name in ("fast_query", "fast_scan"):
            monkeypatch.setattr(reads, name, self._spy(name, getattr(reads, name)))

    def _spy(self, name: str, fn: Any) -> Any:
        def spy(*args: Any, **kwargs: Any) -> Any:
            answer = fn(*args, **kwargs)
            (self.taken if answer is not None else self.left).append(name)
            return answer

        return spy


def test_every_kind_of_write_keeps_the_table_and_gsi_indexes_in_step(
    client: Any, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN indexes built by a first read of the table and of its GSI
    client.query(TableName=table, KeyConditionExpression="pk = :h", ExpressionAttributeValues={":h": {"S": "MSG#a"}})
    client.query(
        TableName=table,
        IndexName=GSI,
        KeyConditionExpression="message_group_uuid = :g",
        ExpressionAttributeValues={":g": {"S": "g1"}},
    )
    key = {"pk": {"S": "GRP#u1"}, "sk": {"S": "2026-01-01"}}
    writes: list[tuple[str, dict[str, Any]]] = [
        ("put_item", {"Item": key | {"message_group_uuid": {"S": "g1"}}}),
        ("put_item", {"Item": key | {"message_group_uuid": {"S": "g2"}}}),  # overwrite: moves partition
        (
            "update_item",
            {
                "Key": key,
                "UpdateExpression": "SET message_group_uuid = :g",
                "ExpressionAttributeValues": {":g": {"S": "g3"}},
            },
        ),  # in place
        ("update_item", {"Key": key, "UpdateExpression": "REMOVE message_group_uuid"}),  # leaves the GSI
        (
            "update_item",
            {
                "Key": {"pk": {"S": "GRP#u2"}, "sk": {"S": "x"}},
                "UpdateExpression": "SET message_group_uuid = :g",
                "ExpressionAttributeValues": {":g": {"S": "g1"}},
            },
        ),  # creates
        (
            "update_item",
            {
                "Key": key,
                "UpdateExpression": "SET message_group_uuid = :g",
                "ConditionExpression": "attribute_not_exists(pk)",
                "ExpressionAttributeValues": {":g": {"S": "g9"}},
            },
        ),  # fails
        ("delete_item", {"Key": key}),
        ("delete_item", {"Key": {"pk": {"S": "nope"}, "sk": {"S": "nope"}}}),
        ("batch_write_item", {}),
        ("transact_write_items", {}),
        ("transact_write_items", {"fail": True}),
        (
            "execute_statement",
            {"Statement": "INSERT INTO \"messages\" VALUE {'pk': 'MSG#p', 'sk': 's', 'message_group_uuid': 'g1'}"},
        ),
        (
            "execute_statement",
            {"Statement": "UPDATE \"messages\" SET message_group_uuid='g2' WHERE pk='MSG#p' AND sk='s'"},
        ),
        ("execute_statement", {"Statement": "DELETE FROM \"messages\" WHERE pk='MSG#p' AND sk='s'"}),
    ]
    for operation, kwargs in writes:
        # WHEN each kind of write runs
        if operation == "batch_write_item":
            puts = [
                {
                    "PutRequest": {
                        "Item": {
                            "pk": {"S": f"MSG#{i % 3}"},
                            "sk": {"S": f"{i:03d}"},
                            "message_group_uuid": {"S": f"g{i % 2}"},
                        }
                    }
                }
                for i in range(20)
            ]
            client.batch_write_item(
                RequestItems={table: puts + [{"DeleteRequest": {"Key": {"pk": {"S": "GRP#u2"}, "sk": {"S": "x"}}}}]}
            )
        elif operation == "transact_write_items":
            items = [
                {
                    "Put": {
                        "TableName": table,
                        "Item": {"pk": {"S": "T"}, "sk": {"S": str(i)}, "message_group_uuid": {"S": "g1"}},
                    }
                }
                for i in range(2)
            ]
            items.append(
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": "MSG#0"}, "sk": {"S": "000"}},
                        "UpdateExpression": "SET message_group_uuid = :g",
                        "ExpressionAttributeValues": {":g": {"S": "g7"}},
                    }
                }
            )
            if kwargs.get("fail"):
                items.append(
                    {
                        "ConditionCheck": {
                            "TableName": table,
                            "Key": {"pk": {"S": "MSG#1"}, "sk": {"S": "001"}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    }
                )
            try:
                client.transact_write_items(TransactItems=items)
            except client.exceptions.TransactionCanceledException:
                assert kwargs.get("fail")
        else:
            try:
                getattr(client, operation)(
                    TableName=table, **kwargs
                ) if operation != "execute_statement" else client.execute_statement(**kwargs)
            except client.exceptions.ConditionalCheckFailedException:
                pass
        # THEN the kept indexes are what a fresh build gives (a rolled-back table is a new object: rebuilt on its first
        # read)
        client.query(
            TableName=table,
            IndexName=GSI,
            KeyConditionExpression="message_group_uuid = :g",
            ExpressionAttributeValues={":g": {"S": "g1"}},
        )
        client.query(TableName=table, KeyConditionExpression="pk = :h", ExpressionAttributeValues={":h": {"S": "T"}})
        assert_in_step(table)
    assert "index of table" not in caplog.text  # never found out of step, never rebuilt in a hurry


class One(Pair):
    """The scenario's requests sent to one server: here only the indexes are checked."""

    def __init__(self, client: Any) -> None:
        self.plain = self.patched = client
        self.tables: set[str] = set()

    def call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.plain, operation)(**kwargs)
        except ClientError as err:
            return err

    def both(self, operation: str, **kwargs: Any) -> None:
        getattr(self.plain, operation)(**kwargs)


def test_random_writes_on_number_keys_keep_every_index_in_step(client: Any) -> None:
    scenario = Scenario(random.Random(9), One(client), layout_of(numbers_table()))
    for step in range(300):
        scenario.write()
        if step % 10 == 0:
            scenario.query()
            assert_in_step(scenario.t.name)


def test_the_projects_reads_take_the_fast_path(client: Any, table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = Spy(monkeypatch)

    def at(i: int) -> str:
        return f"2026-01-01T00:00:{i:02d}.000000+00:00"

    items = [model.Message("g1", at(i), f"m{i}", "hi", "u1", "U", "u").to_item() for i in range(50)]
    items.append(model.GroupRow("u1", at(49), "g1", "hi", "u2", "V", "v").to_item())
    ddbops.batch_write(client, table, iter(items))
    page = read.get_conversation(client, table, "g1", 20)
    older = read.get_conversation(client, table, "g1", 20, page.next_cursor)
    before = read.get_conversation(client, table, "g1", 20, before="2026-01-01T00:00:10+00:00")
    assert [m.created_at[17:19] for m in older.items] == [f"{i:02d}" for i in range(10, 30)]
    assert len(before.items) == 10
    assert read.list_conversations(client, table, "u1").items[0].message_group_uuid == "g1"
    assert len(read.group_row_items(client, table, "g1")) == 1
    assert ddbops.count_items(client, table, "MSG#g1") == 50
    assert sum(1 for _ in ddbops.scan(client, table, page_size=7)) == 51
    assert sum(1 for _ in ddbops.scan(client, table, segments=3, page_size=7)) == 51
    # --before reads 14 hours past its moment (other writers' offsets) and filters: 3 pages of 21 for it
    assert spy.left == [] and spy.taken.count("fast_query") == 8 and spy.taken.count("fast_scan") >= 11


def test_requests_outside_the_patches_reach_moto_unchanged(
    client: Any, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = Spy(monkeypatch)
    client.put_item(TableName=table, Item={"pk": {"S": "a"}, "sk": {"S": "b"}})
    # legacy QueryFilter never reaches fast_query; Limit 0 does and is left to moto
    client.query(
        TableName=table,
        KeyConditions={"pk": {"AttributeValueList": [{"S": "a"}], "ComparisonOperator": "EQ"}},
        QueryFilter={"sk": {"AttributeValueList": [{"S": "b"}], "ComparisonOperator": "EQ"}},
    )
    assert spy.taken == spy.left == []
    # a scan of an index is moto's
    client.scan(TableName=table, IndexName=GSI)
    assert spy.left == ["fast_scan"]


def test_moto_keeps_no_item_or_table_it_made(client: Any, table: str) -> None:
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import Table

    before = len(Item.instances_tracked), len(Table.instances_tracked)
    for i in range(20):
        client.transact_write_items(
            TransactItems=[{"Put": {"TableName": table, "Item": {"pk": {"S": "a"}, "sk": {"S": str(i)}}}}]
        )
        client.query(
            TableName=table,
            KeyConditionExpression="pk = :h",
            ExpressionAttributeValues={":h": {"S": "a"}},
            ProjectionExpression="sk",
        )
    assert (len(Item.instances_tracked), len(Table.instances_tracked)) == before


def test_uninstall_gives_moto_back_its_own_methods(patched: None) -> None:
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import Table

    from ops.local.moto_patches import install, uninstall

    assert getattr(Table.query, "__wrapped__", None) is not None
    uninstall()
    assert not hasattr(Table.query, "__wrapped__") and "__new__" not in Item.__dict__ and "query" in Table.__dict__
    install()  # the fixture uninstalls again


def test_query_and_scan_items_are_written_without_motos_shape_walker(
    client: Any, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ops.local.moto_patches import wire

    written: list[str] = []
    original = wire.attribute_map
    monkeypatch.setattr(
        wire,
        "attribute_map",
        lambda attrs: (
            (written.append("item") if type(attrs).__name__ == "LimitedSizeDict" else None) or original(attrs)
        ),
    )
    item = {
        "pk": {"S": "a"},
        "sk": {"S": "b"},
        "bin": {"B": b"\x00\xff"},
        "m": {"M": {"l": {"L": [{"N": "1"}, {"NULL": True}]}}},
        "ss": {"SS": ["x", "y"]},
    }
    client.put_item(TableName=table, Item=item)
    got = client.query(TableName=table, KeyConditionExpression="pk = :h", ExpressionAttributeValues={":h": {"S": "a"}})[
        "Items"
    ]
    assert got == [item] and written == ["item"]
    assert client.scan(TableName=table)["Items"] == [item] and written == ["item", "item"]
    assert (
        client.get_item(TableName=table, Key={"pk": {"S": "a"}, "sk": {"S": "b"}})["Item"] == item and len(written) == 2
    )  # other answers: moto's way
