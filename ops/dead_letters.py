"""The stream consumer's dead-letter queue: what is in it, and sending its records through again.

When the event source mapping gives up on a record (retries used up, or the record is older
than the mapping's maximum age) it sends the on-failure destination a *pointer*: the shard and
the range of sequence numbers of the failed batch, not the records themselves. The records stay
in the stream for its 24-hour retention, so a redrive must happen within that time. The twin's
stream worker sends the same message shape to the twin's queue, so ``ddb.dead-letters`` and
``ddb.redrive`` work the same on a twin and in the cloud.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from ops.aws import aws_errors, call, error_code
from ops.messages.consumer import StreamRecord, process_batch
from ops.stream_records import lambda_record

PEEK_SECONDS = 30  # how long a listed message stays hidden before it is made visible again


@dataclass(frozen=True)
class DeadLetter:
    """One message of the queue: a pointer to records the consumer gave up on."""

    message_id: str
    receipt: str
    condition: str  # RetryAttemptsExhausted | RecordAgeExceeded
    stream_arn: str
    shard_id: str
    start: str  # first and last sequence number of the failed batch
    end: str
    batch_size: int
    attempts: int
    timestamp: str
    records: list[dict[str, Any]] = field(
        default_factory=list
    )  # filled by ``with_records`` when the stream still has them


def _iso(when: Any) -> str | None:
    if when is None:
        return None
    at = when if isinstance(when, datetime) else datetime.fromtimestamp(float(when), UTC)
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def pointer_message(
    stream_arn: str, shard_id: str, records: list[dict[str, Any]], condition: str, attempts: int, function: str
) -> dict[str, Any]:
    """The on-failure message Lambda sends for a stream batch (the shape AWS documents)."""
    first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
    return {
        "requestContext": {
            "requestId": first["SequenceNumber"],
            "functionArn": function,
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled" if attempts else None,
        },
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": first["SequenceNumber"],
            "endSequenceNumber": last["SequenceNumber"],
            "approximateArrivalOfFirstRecord": _iso(first.get("ApproximateCreationDateTime")),
            "approximateArrivalOfLastRecord": _iso(last.get("ApproximateCreationDateTime")),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }


def send(sqs: Any, queue_url: str, message: dict[str, Any]) -> None:
    call(
        sqs.send_message,
        f"SQS SendMessage to {queue_url}",
        QueueUrl=queue_url,
        MessageBody=json.dumps(message, separators=(",", ":")),
    )


def _parse(raw: dict[str, Any]) -> DeadLetter | None:
    try:
        body = json.loads(raw["Body"])
        info = body["DDBStreamBatchInfo"]
        ctx = body.get("requestContext") or {}
        return DeadLetter(
            raw["MessageId"],
            raw["ReceiptHandle"],
            str(ctx.get("condition", "?")),
            info["streamArn"],
            info["shardId"],
            str(info["startSequenceNumber"]),
            str(info["endSequenceNumber"]),
            int(info.get("batchSize") or 0),
            int(ctx.get("approximateInvokeCount") or 0),
            str(body.get("timestamp", "")),
        )
    except (KeyError, TypeError, ValueError):
        return None  # not a stream pointer: left in the queue, counted as foreign


def _receive_all(sqs: Any, queue_url: str, hide_seconds: int) -> Iterator[dict[str, Any]]:
    while True:
        got = call(
            sqs.receive_message,
            f"SQS ReceiveMessage from {queue_url}",
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=hide_seconds,
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not got:
            return
        yield from got


def _show_again(sqs: Any, queue_url: str, receipts: list[str]) -> None:
    for i in range(0, len(receipts), 10):
        entries = [
            {"Id": str(n), "ReceiptHandle": r, "VisibilityTimeout": 0} for n, r in enumerate(receipts[i : i + 10])
        ]
        call(
            sqs.change_message_visibility_batch,
            f"SQS ChangeMessageVisibilityBatch on {queue_url}",
            QueueUrl=queue_url,
            Entries=entries,
        )


def peek(sqs: Any, queue_url: str) -> tuple[list[DeadLetter], int]:
    """Every pointer in the queue, leaving them there; and how many other messages it holds."""
    raw = list(_receive_all(sqs, queue_url, PEEK_SECONDS))
    _show_again(sqs, queue_url, [m["ReceiptHandle"] for m in raw])
    letters = [p for p in (_parse(m) for m in raw) if p is not None]
    return letters, len(raw) - len(letters)


def records_of(streams: Any, letter: DeadLetter) -> list[dict[str, Any]]:
    """The records a pointer names, read back from the stream; empty once the stream has trimmed them."""
    try:
        it = streams.get_shard_iterator(
            StreamArn=letter.stream_arn,
            ShardId=letter.shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=letter.start,
        ).get("ShardIterator")
    except ClientError as err:
        if error_code(err) in ("TrimmedDataAccessException", "ResourceNotFoundException"):
            return []
        raise
    out: list[dict[str, Any]] = []
    end = int(letter.end)
    while it:
        try:
            resp = streams.get_records(ShardIterator=it, Limit=100)
        except ClientError as err:
            if (
                error_code(err) == "TrimmedDataAccessException"
            ):  # GetRecords says so too, once the records are past 24 h
                return out
            raise
        batch = resp.get("Records", [])
        for record in batch:
            if int(record["dynamodb"]["SequenceNumber"]) > end:
                return out
            out.append(record)
        if not batch:
            return out
        it = resp.get("NextShardIterator")
    return out


def describe(streams: Any, letters: list[DeadLetter]) -> list[DeadLetter]:
    """Each pointer with the records it names (for listing: which group, which message)."""
    with aws_errors("reading the stream for the dead letters"):
        return [DeadLetter(**{**letter.__dict__, "records": records_of(streams, letter)}) for letter in letters]


@dataclass
class RedriveResult:
    redriven: int = 0  # pointers whose records all went through: deleted from the queue
    still_failing: int = 0  # left in the queue
    expired: int = 0  # the stream no longer has the records: left in the queue, to be handled by hand
    records: int = 0
    foreign: int = 0  # messages that are not stream pointers: left alone


def redrive(sqs: Any, queue_url: str, streams: Any, ddb: Any, table: str, index: str) -> RedriveResult:
    """Send every pointed-to record through the consumer again; delete the pointers that succeed."""
    result = RedriveResult()
    with aws_errors(f"redriving {queue_url}"):
        raw = list(_receive_all(sqs, queue_url, 300))
        keep: list[str] = []
        for message in raw:
            letter = _parse(message)
            if letter is None:
                result.foreign += 1
                keep.append(message["ReceiptHandle"])
                continue
            records = records_of(streams, letter)
            if not records:
                result.expired += 1
                keep.append(letter.receipt)
                continue
            outcomes = process_batch(ddb, table, index, [lambda_record(r, letter.stream_arn) for r in records])
            result.records += len(records)
            if any(o.failed for o in outcomes):
                result.still_failing += 1
                keep.append(letter.receipt)
                continue
            call(
                sqs.delete_message,
                f"SQS DeleteMessage on {queue_url}",
                QueueUrl=queue_url,
                ReceiptHandle=letter.receipt,
            )
            result.redriven += 1
        _show_again(sqs, queue_url, keep)
    return result


def record_summary(record: dict[str, Any]) -> dict[str, str]:
    """What a listing shows of a record: event, group and message key, never the text."""
    parsed = StreamRecord.parse(record)
    return {"event": parsed.event_name, "seq": parsed.sequence_number, "pk": parsed.pk, "sk": parsed.sk}


def _queue(target: Any) -> str:
    from ops.outputs import STREAM_DLQ_URL, output

    return str(output(target, STREAM_DLQ_URL))


def list_target(target: Any) -> tuple[list[DeadLetter], int]:
    """ddb.dead-letters: the stack's pointers with the records they name; and how many foreign messages."""
    letters, foreign = peek(target.client("sqs"), _queue(target))
    return describe(target.client("dynamodbstreams"), letters), foreign


def redrive_target(target: Any) -> RedriveResult:
    """ddb.redrive: every pointed-to record through the consumer again."""
    from ops.messages.model import GSI_NAME

    return redrive(
        target.client("sqs"),
        _queue(target),
        target.client("dynamodbstreams"),
        target.client("dynamodb"),
        target.stack.table_name,
        GSI_NAME,
    )
