"""The twin's stream worker: any writer's message moves both group rows, as the event source mapping does in the cloud.

GIVEN the session twin (``local.up`` started its stream worker) WHEN a message reaches the stack's
table from any client THEN both group rows carry it within seconds, with no task run; a record
that always fails ends as a pointer in the dead-letter queue while the others go through.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from ops import dead_letters
from ops.local.streams import RetryPolicy, backlog, checkpoint_file, process_once
from ops.messages.model import GSI_NAME
from ops.messages.read import list_conversations
from ops.messages.send import send_message
from ops.outputs import STREAM_DLQ_URL, output
from ops.target import Target
from tests.support.helpers import run_invoke
from tests.support.original_backend import OriginalBackend
from tests.support.streams import FaultyClient, assert_one_row_each_at_newest, group_rows_by_owner, person


def _wait(check: Any, seconds: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if check():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"not within {seconds}s")


def _caught_up(twin: Target, ddb: Any, table: str) -> None:
    """Wait until the worker has taken every record earlier tests wrote (thousands, some of them)."""
    streams = twin.client("dynamodbstreams")
    _wait(lambda: backlog(streams, ddb, table, checkpoint_file("dev")) == 0, 120.0)


def test_a_message_put_by_a_plain_boto3_script_reaches_both_lists_within_3_seconds(
    twin: Target, ddb: Any, stack_table: str
) -> None:
    ada, dana = person("ada"), person("dana")
    group = send_message(ddb, stack_table, ada, "hello", receiver=dana).group_uuid
    _caught_up(twin, ddb, stack_table)
    text = f"from a script {uuid.uuid4().hex[:6]}"
    OriginalBackend(ddb, stack_table, offset_hours=0).create_message(group, dana, text)  # a put_item, nothing else

    took = _wait(
        lambda: all(list_conversations(ddb, stack_table, p.uuid).items[0].message == text for p in (ada, dana)), 3.0
    )
    assert took < 3.0
    assert_one_row_each_at_newest(ddb, stack_table, group, (ada, dana))


def test_a_record_that_always_fails_is_dead_lettered_and_the_others_go_through(
    twin: Target, ddb: Any, stack_table: str
) -> None:
    sqs = twin.client("sqs")
    queue = str(output(twin, STREAM_DLQ_URL))
    before = len(dead_letters.peek(sqs, queue)[0])
    ada, dana = person("ada"), person("dana")
    group = send_message(ddb, stack_table, ada, "hello", receiver=dana).group_uuid
    poison = "2026-12-31T23:59:59.000000+00:00"
    # a message item without its text: the consumer cannot move rows to it, however often it tries
    ddb.put_item(
        TableName=stack_table, Item={"pk": {"S": f"MSG#{group}"}, "sk": {"S": poison}, "message_uuid": {"S": "poison"}}
    )
    OriginalBackend(ddb, stack_table, offset_hours=0).create_message(
        group, dana, "after the poison", at="2027-01-01T00:00:00.000000+00:00"
    )

    _wait(lambda: len(dead_letters.peek(sqs, queue)[0]) > before, 10.0)
    _wait(
        lambda: (
            {r[0]["message"] for r in group_rows_by_owner(ddb, stack_table, group).values()} == {"after the poison"}
        ),
        5.0,
    )

    listed = run_invoke("ddb.dead-letters")
    assert listed.returncode == 0, listed.stderr
    assert f"MSG#{group} {poison}" in listed.stdout and "RetryAttemptsExhausted" in listed.stdout

    again = run_invoke("ddb.redrive")
    assert again.returncode == 1 and "still failing" in again.stdout  # the record is as broken as before
    assert len(dead_letters.peek(sqs, queue)[0]) == before + 1  # and its pointer is kept


def test_a_redrive_sends_the_pointed_records_through_again_and_removes_the_pointer(
    twin: Target, ddb: Any, streams: Any, table: str, tmp_path: Any
) -> None:
    sqs = twin.client("sqs")
    queue = sqs.create_queue(QueueName=f"test-dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    ada, bram = person("ada"), person("bram")
    group = send_message(ddb, table, ada, "hello", receiver=bram).group_uuid
    send_message(ddb, table, bram, "needs a retry", group_uuid=group)
    broken = FaultyClient(ddb, group)  # the table is briefly unwritable for this group

    def park(stream: str, shard: str, records: list[dict[str, Any]], condition: str, attempts: int) -> None:
        dead_letters.send(
            sqs,
            queue,
            dead_letters.pointer_message(stream, shard, records, condition, attempts, "cruddur-dev-stream-consumer"),
        )

    policy = RetryPolicy(max_retry_attempts=2, max_record_age_seconds=3600, dead_letter=park)
    for _ in range(3):  # the first attempt and two retries
        process_once(streams, broken, table, GSI_NAME, tmp_path / "checkpoints.json", policy=policy)
    [letter], foreign = dead_letters.peek(sqs, queue)
    assert foreign == 0 and letter.condition == "RetryAttemptsExhausted" and letter.attempts == 3
    body = json.loads(sqs.receive_message(QueueUrl=queue, VisibilityTimeout=0)["Messages"][0]["Body"])
    assert set(body["DDBStreamBatchInfo"]) >= {
        "shardId",
        "startSequenceNumber",
        "endSequenceNumber",
        "streamArn",
        "batchSize",
    }  # AWS's shape

    result = dead_letters.redrive(sqs, queue, streams, ddb, table, GSI_NAME)
    assert (result.redriven, result.still_failing, result.expired) == (1, 0, 0)
    assert dead_letters.peek(sqs, queue) == ([], 0)
    assert_one_row_each_at_newest(ddb, table, group, (ada, bram))


def test_local_status_shows_the_consumer_among_the_twins_processes(twin: Target) -> None:
    proc = run_invoke("local.status", "--json")
    dev = next(s for s in json.loads(proc.stdout) if s["stack"] == "dev")
    worker = next(c for c in dev["components"] if c["name"] == "stream consumer")
    assert worker["running"] and worker["pid"] and worker["engine"] == "twin process"
