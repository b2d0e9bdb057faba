"""schema-load, drop, scan and the batch writer."""

from __future__ import annotations

import dataclasses
import json
import threading
from typing import Any

import pytest
from botocore.stub import Stubber

from ops import ddb as ddbops
from ops.errors import CloudError, ConflictError, NotFoundError
from ops.stacks import load_stack
from ops.table_spec import KeyAttr, create_table_kwargs, table_spec
from tests.support.helpers import assert_one_line_error, run_invoke, s_item


def test_schema_load_of_an_identical_table_is_fine(twin: Any, ddb: Any, table: str) -> None:
    spec = dataclasses.replace(table_spec(twin.stack), name=table)
    assert ddbops.schema_load(ddb, spec).created is False
    desc = ddbops.describe(ddb, table)
    assert desc and desc["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    assert desc["GlobalSecondaryIndexes"][0]["IndexName"] == "message-group-sk-index"


def test_schema_load_names_each_difference_of_an_existing_table(twin: Any, ddb: Any) -> None:
    spec = dataclasses.replace(table_spec(twin.stack), name="test-differs")
    kwargs = create_table_kwargs(dataclasses.replace(spec, keys=(KeyAttr("pk", "HASH"),), indexes=()))
    kwargs["AttributeDefinitions"] = [{"AttributeName": "pk", "AttributeType": "S"}]
    kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}
    ddb.create_table(**kwargs)
    try:
        with pytest.raises(ConflictError) as err:
            ddbops.schema_load(ddb, spec)
        text = str(err.value)
        assert "key schema" in text and "indexes" in text and "stream view type" in text and "KEYS_ONLY" in text
        assert ddbops.describe(ddb, "test-differs")["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}], (
            "left as it was"
        )
    finally:
        ddb.delete_table(TableName="test-differs")


def test_schema_load_drop_and_list_tasks(database: Any, ddb: Any) -> None:
    name = database.stack.table_name  # the dev stack's own (cruddur-messages-dev), not prod's
    proc = run_invoke("ddb.schema-load")
    assert proc.returncode == 0, proc.stderr
    assert name in run_invoke("ddb.list-tables").stdout.split()
    again = run_invoke("ddb.schema-load")
    assert again.returncode == 0 and "already exists" in again.stdout
    drop = run_invoke("ddb.drop")
    assert drop.returncode == 0 and f"deleting table {name}" in drop.stderr
    assert name not in ddbops.list_tables(ddb)
    assert_one_line_error(run_invoke("ddb.drop"), f"table '{name}' does not exist")


@pytest.mark.engines(
    "moto"
)  # stands in for AWS's point-in-time recovery, which an engine may lack (UnknownOperationException)
def test_schema_load_cloud_compares_and_never_creates(twin: Any, ddb: Any) -> None:
    # The twin's server stands in for AWS: --cloud sends its requests wherever AWS_ENDPOINT_URL says.
    as_cloud = {
        "AWS_ENDPOINT_URL": str(twin.endpoint("dynamodb")),
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    prod = load_stack("prod")

    def schema_load_cloud() -> Any:
        return run_invoke(
            "ddb.schema-load", "--stack", "prod", "--cloud", env=as_cloud
        )  # reads only: no --confirm-protected

    # GIVEN no cloud table: it is Pulumi's to create, and schema-load says so and creates nothing
    assert prod.table_name not in ddbops.list_tables(ddb)
    assert_one_line_error(
        schema_load_cloud(),
        f"table '{prod.table_name}' of stack 'prod' does not exist in the cloud",
        "invoke infra.up --stack prod",
    )
    assert prod.table_name not in ddbops.list_tables(ddb)

    # GIVEN the table the old --cloud created (the spec's shape, none of the program's protections)
    ddb.create_table(**create_table_kwargs(table_spec(prod)))
    try:
        proc = schema_load_cloud()
        assert proc.returncode == 1, proc.stderr
        assert f"table {prod.table_name} (cloud, stack prod) differs from what the program declares:" in proc.stdout
        for line in (
            "point-in-time recovery: expected on, found off",
            "deletion protection: expected on, found off",
            "encryption: expected KMS key, found AWS owned key (DynamoDB's default)",
        ):
            assert f"  - {line}" in proc.stdout.splitlines()
        assert "key schema" not in proc.stdout.split("declares:")[1], "the shape itself matches"

        # GIVEN the table as the program declares it for prod
        ddb.delete_table(TableName=prod.table_name)
        ddb.create_table(
            **create_table_kwargs(table_spec(prod)),
            SSESpecification={"Enabled": True, "SSEType": "KMS"},
            DeletionProtectionEnabled=True,
        )
        ddb.update_continuous_backups(
            TableName=prod.table_name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
        proc = schema_load_cloud()
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.strip() == (
            f"table {prod.table_name} (cloud, stack prod) matches the spec: key schema, attribute definitions, "
            "indexes, "
            "stream view type, billing mode, point-in-time recovery, deletion protection, encryption"
        )
    finally:
        ddb.update_table(TableName=prod.table_name, DeletionProtectionEnabled=False)
        ddb.delete_table(TableName=prod.table_name)


def _items(n: int, prefix: str = "MSG#bulk") -> list[dict[str, Any]]:
    return [
        s_item(
            {
                "pk": f"{prefix}{i % 7}",
                "sk": f"2026-02-01T00:00:{i:09d}",
                "message": f"message {i}",
                "user_handle": "ada",
            }
        )
        for i in range(n)
    ]


def test_scan_reads_every_page_serial_and_parallel(ddb: Any, table: str) -> None:
    ddbops.batch_write(ddb, table, _items(260))
    serial = list(ddbops.scan(ddb, table, page_size=25))
    parallel = list(ddbops.scan(ddb, table, segments=4, page_size=25))
    assert len(serial) == 260
    assert sorted((i["pk"], i["sk"]) for i in parallel) == sorted((i["pk"], i["sk"]) for i in serial)
    assert len(list(ddbops.scan(ddb, table, segments=3, page_size=10, limit=33))) == 33


def test_scan_stops_its_readers_when_the_consumer_stops(ddb: Any, table: str) -> None:
    ddbops.batch_write(ddb, table, _items(200))
    before = threading.active_count()
    it = ddbops.scan(ddb, table, segments=4, page_size=5)
    next(it)
    it.close()
    assert threading.active_count() <= before


def test_scan_task_prints_json_lines(database: Any, ddb: Any) -> None:
    assert run_invoke("ddb.schema-load").returncode == 0
    ddbops.batch_write(ddb, database.stack.table_name, _items(30, "MSG#scan"))
    proc = run_invoke("ddb.scan", "--json", "--limit", "12")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == 12 and all(
        {"pk", "sk"} <= set(r) for r in rows
    )  # the table's first 12 in the engine's hash order
    every = [json.loads(line) for line in run_invoke("ddb.scan", "--json").stdout.splitlines()]
    ours = {(r["pk"], r["sk"]): r["message"] for r in every if r["pk"].startswith("MSG#scan")}
    assert ours == {(i["pk"]["S"], i["sk"]["S"]): i["message"]["S"] for i in _items(30, "MSG#scan")}


def test_batches_never_exceed_25_and_several_fly_at_once(ddb: Any, table: str) -> None:
    sizes: list[int] = []
    active, peak = [0], [0]
    lock = threading.Lock()

    def before(params: dict[str, Any], **_: Any) -> None:
        with lock:
            sizes.append(len(params["RequestItems"][table]))
            active[0] += 1
            peak[0] = max(peak[0], active[0])

    def after(**_: Any) -> None:
        with lock:
            active[0] -= 1

    ddb.meta.events.register("provide-client-params.dynamodb.BatchWriteItem", before)
    ddb.meta.events.register("after-call.dynamodb.BatchWriteItem", after)
    try:
        stats = ddbops.batch_write(ddb, table, _items(1000), workers=4)
    finally:
        ddb.meta.events.unregister("provide-client-params.dynamodb.BatchWriteItem", before)
        ddb.meta.events.unregister("after-call.dynamodb.BatchWriteItem", after)
    assert stats.written == 1000 and max(sizes) == 25 and len(sizes) == 40
    assert peak[0] > 1, "batches should overlap"
    assert sum(1 for _ in ddbops.scan(ddb, table)) == 1000


def test_a_batch_of_26_is_our_error_before_any_request(ddb: Any, table: str) -> None:
    """AWS refuses 26 requests in one BatchWriteItem (so do MiniStack and the patched moto twin). We never send one."""
    sent: list[int] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        sent.append(len(params["RequestItems"][table]))

    ddb.meta.events.register("provide-client-params.dynamodb.BatchWriteItem", count)
    try:
        with pytest.raises(ValueError, match="at most 25 requests, not 26"):
            ddbops.write_batch(
                ddb, table, [{"PutRequest": {"Item": i}} for i in _items(26)], ddbops.WriteStats(), threading.Lock()
            )
        assert sent == []
        assert ddbops.batch_write(ddb, table, _items(26), workers=1).written == 26
    finally:
        ddb.meta.events.unregister("provide-client-params.dynamodb.BatchWriteItem", count)
    assert sorted(sent) == [1, 25]


def test_unprocessed_items_are_retried_with_backoff() -> None:
    import boto3

    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    items = _items(3)
    reqs = [{"PutRequest": {"Item": i}} for i in items]
    with Stubber(client) as stub:
        stub.add_response("batch_write_item", {"UnprocessedItems": {"t": reqs[1:]}}, {"RequestItems": {"t": reqs}})
        stub.add_client_error(
            "batch_write_item",
            "ProvisionedThroughputExceededException",
            http_status_code=400,
            expected_params={"RequestItems": {"t": reqs[1:]}},
        )
        stub.add_response("batch_write_item", {"UnprocessedItems": {"t": reqs[2:]}}, {"RequestItems": {"t": reqs[1:]}})
        stub.add_response("batch_write_item", {"UnprocessedItems": {}}, {"RequestItems": {"t": reqs[2:]}})
        sleeps: list[float] = []
        stats = ddbops.batch_write(client, "t", items, workers=1, sleep=sleeps.append)
        stub.assert_no_pending_responses()
    assert stats.written == 3 and stats.requests == 4 and len(sleeps) == 3


def test_unprocessed_items_that_never_clear_are_an_error() -> None:
    import boto3

    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    reqs = [{"PutRequest": {"Item": i}} for i in _items(2)]
    with Stubber(client) as stub:
        for _ in range(10):
            stub.add_response("batch_write_item", {"UnprocessedItems": {"t": reqs}})
        with pytest.raises(CloudError, match="2 items still unprocessed after 10 attempts"):
            ddbops.batch_write(client, "t", _items(2), workers=1, sleep=lambda _: None)


def test_write_to_a_missing_table_is_not_found(ddb: Any) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        ddbops.batch_write(ddb, "no-such-table", _items(3))
