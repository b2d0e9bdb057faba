"""The dynamodb-local engine's own behaviour: its file (WAL, stream indexes), trimmed streams, a kill -9, and its data across restarts.

GIVEN the session twin on DynamoDB Local (or a prod-stack twin of the test's own) WHEN we look
into its SQLite file, age its stream records past 24 h or kill the Java process THEN the file
is the one local.up prepared, our stream reading carries on, and no acknowledged write is lost.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ops import ddb as ddbops
from ops.local import dynamodb_local
from ops.local import twin as twinops
from ops.local.streams import latest_stream_arn, list_shards, process_stream
from ops.messages.model import GSI_NAME
from ops.messages.read import list_conversations
from ops.messages.send import send_message
from ops.stacks import StackSettings
from ops.table_spec import table_spec
from ops.target import Target, read_twin, resolve_target
from tests.support.helpers import s_item
from tests.support.streams import assert_one_row_each_at_newest, person

pytestmark = pytest.mark.engines(dynamodb_local.ENGINE)

DAY_AND_AN_HOUR_MS = 25 * 3600 * 1000


def _db(twin: Target) -> Path:
    data = (read_twin(twin.stack.name) or {})["dynamodb"]["data"]
    return Path(data) / dynamodb_local.DB_FILE


def test_the_twins_file_is_in_wal_mode_and_its_stream_lookup_uses_our_index(twin: Target, ddb: Any) -> None:
    db = _db(twin)
    assert dynamodb_local.stream_indexes(db) == set(dynamodb_local.STREAM_INDEXES)
    con = sqlite3.connect(db, timeout=30)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        # the statement DynamoDB Local runs for every item written to a table with a stream
        plan = " ".join(
            str(row[-1])
            for row in con.execute("EXPLAIN QUERY PLAN SELECT MIN(SequenceNumber) FROM us WHERE StreamID = ?", ("x",))
        )
        shard_plan = " ".join(
            str(row[-1])
            for row in con.execute(
                "EXPLAIN QUERY PLAN SELECT * FROM us WHERE ShardID = ? ORDER BY SequenceNumber", ("x",)
            )
        )
    finally:
        con.close()
    assert "cruddur_us_stream" in plan and "cruddur_us_shard" in shard_plan


def test_a_file_of_another_schema_version_is_left_alone_with_a_warning(twin: Target, ddb: Any, tmp_path: Path) -> None:
    copy = tmp_path / dynamodb_local.DB_FILE
    src = sqlite3.connect(_db(twin), timeout=30)
    try:
        with sqlite3.connect(copy) as dst:
            src.backup(dst)  # a consistent copy of a live WAL file
    finally:
        src.close()
    con = sqlite3.connect(copy)
    con.execute("UPDATE cf SET version = 'v9.0.0'")
    for name in dynamodb_local.STREAM_INDEXES:
        con.execute(f'DROP INDEX IF EXISTS "{name}"')
    con.commit()
    con.close()

    warning = dynamodb_local.add_stream_indexes(copy)

    assert warning and "schema version v9.0.0, not v2.4.0" in warning and "\n" not in warning
    assert dynamodb_local.stream_indexes(copy) == set()


def test_a_shard_whose_records_are_all_past_24_hours_reads_as_empty_and_the_next_message_goes_through(
    twin: Target, ddb: Any, streams: Any, table: str, tmp_path: Path
) -> None:
    ada, bram = person("ada"), person("bram")
    group = send_message(ddb, table, ada, "hello", receiver=bram).group_uuid
    arn = latest_stream_arn(ddb, table)
    con = sqlite3.connect(_db(twin), timeout=30)
    try:  # what a day and an hour of waiting does: DynamoDB Local dates each record by this column
        con.execute(
            "UPDATE us SET CreationDateTime = CreationDateTime - ? WHERE StreamID = ?", (DAY_AND_AN_HOUR_MS, arn)
        )
        con.commit()
    finally:
        con.close()
    shard = list_shards(streams, arn)[0]["ShardId"]
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    with pytest.raises(ClientError, match="TrimmedDataAccessException"):
        streams.get_records(ShardIterator=it)  # the engine really says so from GetRecords, not from GetShardIterator

    checkpoints = tmp_path / "checkpoints.json"
    quiet = process_stream(streams, ddb, table, GSI_NAME, checkpoints)
    assert (quiet.records, quiet.failed) == (0, 0)

    send_message(ddb, table, bram, "a day later", receiver=ada)
    later = process_stream(streams, ddb, table, GSI_NAME, checkpoints)
    # the new message only (the old records stay hidden), then, read in the same pass, the move's 2 deletes + 2 puts
    assert (later.records, later.failed, later.rows_moved) == (5, 0, 2)
    assert_one_row_each_at_newest(ddb, table, group, (ada, bram))


def test_a_kill_9_of_dynamodb_local_loses_no_acknowledged_write_and_local_up_brings_it_back(
    twin: Target, prod_stack: StackSettings
) -> None:
    prod = prod_stack
    up = twinops.up(prod, engine=dynamodb_local.ENGINE, stream_worker=False)
    try:
        assert not up.already_running and any(n.startswith("dynamodb-local: data new in") for n in up.notes)
        client = resolve_target("prod").client("dynamodb")
        ddbops.schema_load(client, table_spec(prod))
        items = [
            s_item({"pk": f"MSG#kill{i % 5}", "sk": f"2026-01-01T00:00:{i:02d}.000000+00:00", "message": f"m{i}"})
            for i in range(60)
        ]
        ddbops.batch_write(client, prod.table_name, items)
        ada, bram = person("ada"), person("bram")
        sent = send_message(
            client, prod.table_name, ada, "acknowledged just before the crash", receiver=bram
        )  # a transaction
        # DynamoDB Local answers TransactWriteItems before its SQLite commit ends: a kill -9 right after the
        # answer lost the whole transaction in 6 of 16 trials (never a part of it). Any later request waits
        # for that commit (one SQLite thread), and local.down's SIGTERM lets it finish (0 lost in 12 of each).
        message_key = {"pk": {"S": f"MSG#{sent.group_uuid}"}, "sk": {"S": sent.message.created_at}}
        assert client.get_item(TableName=prod.table_name, Key=message_key).get("Item")

        pid = int((read_twin("prod") or {})["dynamodb"]["pid"])
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while dynamodb_local.alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not twinops.status(prod).running

        again = twinops.up(
            prod, stream_worker=False
        )  # auto: the stack's engine of last time; the half-dead twin is restarted
        assert not again.already_running and any(
            n.startswith("dynamodb-local: data kept from the last run") for n in again.notes
        )
        client = resolve_target("prod").client("dynamodb")
        assert (
            sum(1 for _ in ddbops.scan(client, prod.table_name)) == 60 + 4
        )  # the items, the message, two group rows, the pair entry
        assert list_conversations(client, prod.table_name, bram.uuid).items[0].message_group_uuid == sent.group_uuid
    finally:
        twinops.down(prod)
    assert not twinops.status(prod).components
