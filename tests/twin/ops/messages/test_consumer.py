"""The stream consumer fed real stream records read from the twin (moto cannot invoke a Lambda without Docker)."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from ops.errors import ConfigError
from ops.messages import consumer as stream_consumer
from ops.messages.consumer import failed_sequence_numbers, handler, process_batch
from ops.messages.model import GRP_PREFIX, GSI_NAME, MSG_PREFIX
from ops.messages.send import send_message
from tests.support.helpers import s_item
from tests.support.lambda_package import lambda_package as _lambda_package
from tests.support.lambda_package import run_in_package as _run_in_package
from tests.support.streams import (
    FaultyClient,
    assert_one_row_each_at_newest,
    group_rows_by_owner,
    message_records,
    messages,
    person,
    stream_records,
)

REPO = Path(__file__).resolve().parents[4]


def _conversation(ddb: Any, table: str, a_name: str, b_name: str, *texts: str) -> tuple[str, tuple[Any, Any]]:
    """A group whose first message and replies are written, alternating senders; the rows are not moved yet."""
    a, b = person(a_name), person(b_name)
    group = send_message(ddb, table, a, texts[0], receiver=b).group_uuid
    for i, text in enumerate(texts[1:]):
        sender, receiver = (b, a) if i % 2 == 0 else (a, b)
        send_message(ddb, table, sender, text, receiver=receiver)
    return group, (a, b)


def test_the_handler_handles_every_record_of_a_mixed_batch(
    ddb: Any, streams: Any, lambda_env: str, caplog: pytest.LogCaptureFixture
) -> None:
    table = lambda_env
    g1, people1 = _conversation(ddb, table, "ada", "bram", "secret one", "secret two")
    g2, people2 = _conversation(ddb, table, "chidi", "dana", "secret three", "secret four")
    first = messages(ddb, table, g1)[0]
    ddb.delete_item(TableName=table, Key=s_item({"pk": first["pk"], "sk": first["sk"]}))  # a REMOVE in the batch
    records = stream_records(streams, ddb, table)
    kinds = {(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"][:4]) for r in records}
    assert {("INSERT", GRP_PREFIX), ("REMOVE", MSG_PREFIX)} <= kinds and len(message_records(records, g1)) == len(
        message_records(records, g2)
    ) == 2

    with caplog.at_level(logging.INFO, logger="cruddur.stream_consumer"):
        response = handler({"Records": records}, None)

    assert response == {"batchItemFailures": []}
    assert_one_row_each_at_newest(ddb, table, g1, people1)
    assert_one_row_each_at_newest(ddb, table, g2, people2)
    lines = [json.loads(r.getMessage()) for r in caplog.records]
    assert len(lines) == len(records) + 1  # one per record, one for the batch
    assert {line["action"] for line in lines[:-1]} == {"moved", "skipped", "ignored"}
    assert "secret" not in caplog.text, "the log never carries message text"


def test_a_duplicate_or_late_record_never_moves_a_group_back(ddb: Any, streams: Any, table: str) -> None:
    group, people = _conversation(ddb, table, "ada", "bram", "older", "newer")
    older, newer = message_records(stream_records(streams, ddb, table), group)

    outcomes = process_batch(ddb, table, GSI_NAME, [newer, older, newer, older])

    assert [o.action for o in outcomes] == ["moved", "skipped", "skipped", "skipped"]
    assert_one_row_each_at_newest(ddb, table, group, people)
    assert {rows[0]["message"] for rows in group_rows_by_owner(ddb, table, group).values()} == {"newer"}


def test_a_failing_record_is_reported_alone_and_succeeds_when_retried(
    ddb: Any, streams: Any, lambda_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = lambda_env
    bad, bad_people = _conversation(ddb, table, "ada", "bram", "hello", "reply")
    good, good_people = _conversation(ddb, table, "chidi", "dana", "hello", "reply")
    records = stream_records(streams, ddb, table)
    faulty = FaultyClient(ddb, bad)
    monkeypatch.setattr(stream_consumer, "_client", lambda *_: faulty)

    response = handler({"Records": records}, None)

    failed_reply = message_records(records, bad)[1]
    assert response == {"batchItemFailures": [{"itemIdentifier": failed_reply["dynamodb"]["SequenceNumber"]}]}
    assert faulty.injected >= 1
    assert_one_row_each_at_newest(ddb, table, good, good_people)
    assert {rows[0]["message"] for rows in group_rows_by_owner(ddb, table, bad).values()} == {
        "hello"
    }  # untouched, not half-moved

    monkeypatch.setattr(stream_consumer, "_client", lambda *_: ddb)  # Lambda retries the reported record
    assert handler({"Records": [failed_reply]}, None) == {"batchItemFailures": []}
    assert_one_row_each_at_newest(ddb, table, bad, bad_people)


def test_extra_rows_of_a_participant_are_removed_keeping_the_newest(ddb: Any, streams: Any, table: str) -> None:
    group, (ada, bram) = _conversation(ddb, table, "ada", "bram", "hello", "reply")
    [row] = group_rows_by_owner(ddb, table, group)[ada.uuid]
    # what the seeds' non-atomic consumer could leave after a crash: a second, older row
    ddb.put_item(TableName=table, Item=s_item(row | {"sk": "2020-01-01T00:00:00.000000+00:00", "message": "stale"}))
    assert len(group_rows_by_owner(ddb, table, group)[ada.uuid]) == 2

    outcomes = process_batch(ddb, table, GSI_NAME, message_records(stream_records(streams, ddb, table), group))

    assert sum(o.result.deduplicated for o in outcomes if o.result) == 1
    assert_one_row_each_at_newest(ddb, table, group, (ada, bram))


def test_two_consumers_on_the_same_records_leave_one_row_per_participant(
    isolated_moto: Any, isolated_table: str
) -> None:
    table, ddb = isolated_table, isolated_moto.client("dynamodb")
    groups = [_conversation(ddb, table, "ada", "bram", *(f"m{i}" for i in range(6))) for _ in range(3)]
    records = stream_records(isolated_moto.client("dynamodbstreams"), ddb, table)
    failures: list[list[str]] = []
    barrier = threading.Barrier(3)

    def consume() -> None:
        client = isolated_moto.client("dynamodb")
        barrier.wait(30)
        failures.append(failed_sequence_numbers(process_batch(client, table, GSI_NAME, records)))

    threads = [threading.Thread(target=consume) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert failures == [[], [], []]
    for group, people in groups:
        assert_one_row_each_at_newest(ddb, table, group, people)


def test_the_handler_without_its_table_and_index_says_which_variables_are_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TABLE_NAME", raising=False)
    monkeypatch.delenv("GSI_NAME", raising=False)
    with pytest.raises(ConfigError, match="TABLE_NAME and GSI_NAME"):
        handler({"Records": []}, None)
    monkeypatch.setenv("TABLE_NAME", "cruddur-messages")
    with pytest.raises(ConfigError, match="variable GSI_NAME"):
        handler({"Records": []}, None)


def test_the_lambda_package_imports_nothing_beyond_its_own_files(tmp_path: Path) -> None:
    code = (
        "import ops.messages.consumer, json; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('ops', 'yaml', 'psycopg', 'pulumi', "
        "'infra'))))"
    )
    proc = _run_in_package(
        _lambda_package(tmp_path),
        code,
        {"AWS_LAMBDA_FUNCTION_NAME": "cruddur-dev-stream", "TABLE_NAME": "t", "GSI_NAME": GSI_NAME},
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [
        "ops",
        "ops.aws",
        "ops.errors",
        "ops.messages",
        "ops.messages.bodies",
        "ops.messages.consumer",
        "ops.messages.fanout",
        "ops.messages.model",
        "ops.messages.paging",
        "ops.messages.read",
    ]


def test_a_cold_start_without_the_table_variable_fails_with_one_clear_line(tmp_path: Path) -> None:
    proc = _run_in_package(
        _lambda_package(tmp_path),
        "import ops.messages.consumer",
        {"AWS_LAMBDA_FUNCTION_NAME": "cruddur-dev-stream", "GSI_NAME": GSI_NAME},
    )
    assert proc.returncode != 0
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "the stream consumer needs the environment variable TABLE_NAME (the messages table and its group index "
            "GSI_NAME); set them on the function"
        )
    )


def test_a_record_without_the_new_image_fails_alone_and_reads_nothing() -> None:
    """A KEYS_ONLY record is a misconfigured stream: reported as failed, no extra read (the role has no GetItem)."""
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    record = {
        "eventID": "e1",
        "eventName": "INSERT",
        "dynamodb": {
            "SequenceNumber": "101",
            "Keys": {"pk": {"S": "MSG#g1"}, "sk": {"S": "2026-01-01T00:00:00.000000+00:00"}},
        },
    }
    with Stubber(client) as stub:  # no responses queued: any request would raise
        outcomes = process_batch(client, "t", "message-group-sk-index", [record])
        stub.assert_no_pending_responses()
    assert [o.action for o in outcomes] == ["failed"] and outcomes[0].sequence_number == "101"
