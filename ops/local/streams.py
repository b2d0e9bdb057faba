"""The stream consumer on a twin: read the table's stream and feed it to the code the Lambda runs.

The embedded moto server cannot invoke a Lambda without Docker, so the twin plays the event
source mapping itself: ``ops.local.stream_worker`` (a process ``local.up`` starts) polls every
shard of the table's latest stream, shapes the records like the Lambda's event and hands them
to ``ops.messages.consumer.process_batch``; ``ddb.stream-process`` does one pass on demand.

Checkpoints (the last processed sequence number of each shard) live in
``<state>/<stack>/stream-checkpoints.json`` and only move past records that were processed.
As with Lambda's ``ReportBatchItemFailures``, a failed record blocks its shard and the next
pass reads again from it onward; with a ``RetryPolicy`` (the worker's, from the mapping's
settings) a record that still fails after its retries, or is older than the maximum record age,
is sent to the dead-letter queue as a pointer (``ops.dead_letters``) and the shard moves on.
Re-reading is harmless because the consumer never moves a group back. Every pass holds a lock,
so the worker, ``ddb.stream-process`` and ``ddb.send-message`` never interleave on a shard.
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from ops.aws import aws_errors, call, error_code, pages
from ops.ddb import missing_table
from ops.errors import InputError, NotFoundError
from ops.files import write_atomic
from ops.messages.consumer import process_batch
from ops.messages.model import GSI_NAME
from ops.target import stack_state_dir

CHECKPOINT_FILE = "stream-checkpoints.json"
BATCH_LIMIT = 100  # records per GetRecords: the size of one Lambda batch, roughly
POLL_SECONDS = 1.0


def checkpoint_file(stack: str) -> Path:
    return stack_state_dir(stack) / CHECKPOINT_FILE


@contextmanager
def exclusive(checkpoint_path: Path) -> Iterator[None]:
    """One stream pass at a time per checkpoint file, across processes (released if the holder dies)."""
    checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
    with open(checkpoint_path.with_suffix(".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class RetryPolicy:
    """What the event source mapping does with a record that keeps failing (None: retry forever)."""

    max_retry_attempts: int | None = None  # retries after the first attempt, as Lambda counts them
    max_record_age_seconds: int | None = None
    dead_letter: Callable[[str, str, list[dict[str, Any]], str, int], None] | None = None  # (stream, shard, records, condition, attempts)


@dataclass
class StreamCounts:
    shards: int = 0
    records: int = 0  # records read (a record retried after a failure counts again)
    processed: int = 0
    failed: int = 0
    rows_moved: int = 0
    dead_lettered: int = 0
    rounds: int = 0
    interrupted: bool = False

    def add(self, other: StreamCounts) -> None:
        self.shards = other.shards  # the stream's current shard count, not a sum
        self.records += other.records
        self.processed += other.processed
        self.failed += other.failed
        self.rows_moved += other.rows_moved
        self.dead_lettered += other.dead_lettered
        self.rounds += other.rounds


# ---------------------------------------------------------------- checkpoints


def load_checkpoints(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"tables": {}}
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("tables"), dict):
            raise ValueError("no 'tables' mapping")
    except ValueError as err:
        raise InputError(f"{path}: unreadable stream checkpoints ({err}); delete the file to re-read the stream from its start (safe: the consumer is idempotent)") from None
    return data


def save_checkpoints(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True))  # a crash mid-write never loses the previous checkpoints


def _table_checkpoints(data: dict[str, Any], table: str, stream_arn: str) -> dict[str, Any]:
    """A table's entry for its current stream (shard checkpoints, retry counts); a new stream starts empty."""
    entry = data["tables"].get(table)
    if not entry or entry.get("stream_arn") != stream_arn:
        entry = {"stream_arn": stream_arn, "shards": {}}
        data["tables"][table] = entry
    entry.setdefault("attempts", {})
    return entry  # type: ignore[no-any-return]


# ---------------------------------------------------------------- reading the stream


def latest_stream_arn(ddb_client: Any, table: str) -> str:
    desc = call(ddb_client.describe_table, f"DescribeTable {table}", not_found=missing_table(table), TableName=table)["Table"]
    arn = desc.get("LatestStreamArn")
    if not arn or not (desc.get("StreamSpecification") or {}).get("StreamEnabled", True):
        raise NotFoundError(f"table {table!r} has no stream: re-create it with `invoke ddb.schema-load` (the spec enables one)")
    return arn


def list_shards(streams_client: Any, stream_arn: str) -> list[dict[str, Any]]:
    """Every shard of the stream (DescribeStream pages its shards), parents before children."""
    listing = pages(streams_client, "describe_stream", f"DescribeStream {stream_arn}", StreamArn=stream_arn)
    return _parents_first([shard for page in listing for shard in page["StreamDescription"].get("Shards", [])])


def _parents_first(shards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # a child shard holds later changes of the same keys: it is read only after its parent
    ids = {s["ShardId"] for s in shards}
    done: set[str] = set()
    ordered: list[dict[str, Any]] = []
    pending = list(shards)
    while pending:
        ready = [s for s in pending if not s.get("ParentShardId") or s["ParentShardId"] not in ids or s["ParentShardId"] in done]
        if not ready:  # a cycle cannot happen in DynamoDB; keep whatever is left rather than loop
            ordered.extend(pending)
            break
        for s in ready:
            ordered.append(s)
            done.add(s["ShardId"])
            pending.remove(s)
    return ordered


def lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record in the shape Lambda hands the function (epoch seconds, the source ARN)."""
    ddb = dict(record.get("dynamodb") or {})
    when = ddb.get("ApproximateCreationDateTime")
    if isinstance(when, datetime):
        ddb["ApproximateCreationDateTime"] = when.timestamp()
    return dict(record) | {"dynamodb": ddb, "eventSourceARN": stream_arn}


def _iterator(streams_client: Any, stream_arn: str, shard_id: str, after: str | None) -> str | None:
    if after:
        try:
            return streams_client.get_shard_iterator(StreamArn=stream_arn, ShardId=shard_id, ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=after).get("ShardIterator")
        except ClientError as err:
            if error_code(err) != "TrimmedDataAccessException":
                raise
            # the checkpoint is older than the stream's 24 h retention: read what is left
    return streams_client.get_shard_iterator(StreamArn=stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON").get("ShardIterator")


def _too_old(record: dict[str, Any], policy: RetryPolicy) -> bool:
    when = (record.get("dynamodb") or {}).get("ApproximateCreationDateTime")
    if policy.max_record_age_seconds is None or when is None:
        return False
    at = when if isinstance(when, datetime) else datetime.fromtimestamp(float(when), UTC)
    return (datetime.now(UTC) - at).total_seconds() > policy.max_record_age_seconds


def _read_shard(streams_client: Any, ddb_client: Any, table: str, index: str, stream_arn: str, shard_id: str, entry: dict[str, Any],
                save: Callable[[], None], counts: StreamCounts, batch_limit: int, policy: RetryPolicy) -> bool:
    """Process a shard from its checkpoint to its end; False when a record failed (the shard waits for it)."""
    checkpoints, attempts = entry["shards"], entry["attempts"]
    it = _iterator(streams_client, stream_arn, shard_id, checkpoints.get(shard_id))
    while it:
        resp = streams_client.get_records(ShardIterator=it, Limit=batch_limit)
        records = resp.get("Records", [])
        if not records:
            return True  # caught up (open shard) or read to its end (closed shard)
        if policy.dead_letter is not None:
            # records past the mapping's maximum age go to the on-failure destination unprocessed; a
            # shard is in time order, so they are the batch's first records
            expired = 0
            while expired < len(records) and _too_old(records[expired], policy):
                expired += 1
            if expired:
                policy.dead_letter(stream_arn, shard_id, records[:expired], "RecordAgeExceeded", 0)
                counts.dead_lettered += expired
                checkpoints[shard_id] = records[expired - 1]["dynamodb"]["SequenceNumber"]
                records = records[expired:]
                save()
                if not records:
                    it = resp.get("NextShardIterator")
                    continue
        outcomes = process_batch(ddb_client, table, index, [lambda_record(r, stream_arn) for r in records])
        counts.records += len(records)
        counts.failed += sum(o.failed for o in outcomes)
        counts.processed += sum(not o.failed for o in outcomes)
        counts.rows_moved += sum(o.result.moved for o in outcomes if o.result)
        # the checkpoint moves only up to the record before the first failure, as Lambda's does
        failed_at = next((i for i, o in enumerate(outcomes) if o.failed), None)
        done = records if failed_at is None else records[:failed_at]
        if done:
            checkpoints[shard_id] = done[-1]["dynamodb"]["SequenceNumber"]
        if failed_at is None:
            attempts.pop(shard_id, None)
            save()
            it = resp.get("NextShardIterator")
            continue
        bad = records[failed_at]
        seq = bad["dynamodb"]["SequenceNumber"]
        tried = attempts.get(shard_id, {}).get("count", 0) + 1 if attempts.get(shard_id, {}).get("seq") == seq else 1
        if policy.dead_letter is None or policy.max_retry_attempts is None or tried <= policy.max_retry_attempts:
            attempts[shard_id] = {"seq": seq, "count": tried}
            save()
            return False  # the next pass reads again from this record onward
        # retries used up: park a pointer to the record and move past it, as the mapping does
        policy.dead_letter(stream_arn, shard_id, [bad], "RetryAttemptsExhausted", tried)
        counts.dead_lettered += 1
        checkpoints[shard_id] = seq
        attempts.pop(shard_id, None)
        save()
        it = _iterator(streams_client, stream_arn, shard_id, seq)
    return True


def process_once(streams_client: Any, ddb_client: Any, table: str, index: str, checkpoint_path: Path, batch_limit: int = BATCH_LIMIT,
                 policy: RetryPolicy = RetryPolicy()) -> StreamCounts:
    """One pass over every shard of the table's latest stream (under the checkpoint file's lock)."""
    counts = StreamCounts(rounds=1)
    with exclusive(checkpoint_path), aws_errors(f"reading the stream of table {table!r}", not_found=missing_table(table)):
        stream_arn = latest_stream_arn(ddb_client, table)
        shards = list_shards(streams_client, stream_arn)
        data = load_checkpoints(checkpoint_path)
        entry = _table_checkpoints(data, table, stream_arn)
        counts.shards = len(shards)
        blocked: set[str] = set()
        for shard in shards:
            sid = shard["ShardId"]
            if shard.get("ParentShardId") in blocked:
                blocked.add(sid)  # its parent still has a failed record: keep the order of changes
                continue
            if not _read_shard(streams_client, ddb_client, table, index, stream_arn, sid, entry, lambda: save_checkpoints(checkpoint_path, data), counts, batch_limit, policy):
                blocked.add(sid)
    return counts


def process_stream(
    streams_client: Any,
    ddb_client: Any,
    table: str,
    index: str,
    checkpoint_path: Path,
    follow: bool = False,
    *,
    poll_seconds: float = POLL_SECONDS,
    batch_limit: int = BATCH_LIMIT,
    max_rounds: int | None = None,
    on_round: Callable[[StreamCounts], None] | None = None,
) -> StreamCounts:
    """Process the stream's new records once, or with ``follow`` keep polling until Ctrl-C (or ``max_rounds``).

    ``on_round`` receives each round's counts (for a caller that shows progress); the return
    value is the total. Interrupting is safe at any point: checkpoints are written atomically
    after each batch and processing a record twice changes nothing.
    """
    total = StreamCounts()
    try:
        while True:
            counts = process_once(streams_client, ddb_client, table, index, checkpoint_path, batch_limit)
            total.add(counts)
            if on_round is not None:
                on_round(counts)
            if not follow or (max_rounds is not None and total.rounds >= max_rounds):
                return total
            time.sleep(poll_seconds)
    except KeyboardInterrupt:
        if not follow:
            raise
        total.interrupted = True  # Ctrl-C is how --follow ends
        return total


def process_target_stream(target: Any, follow: bool = False, on_round: Callable[[StreamCounts], None] | None = None) -> StreamCounts:
    """ddb.stream-process on a twin: every shard of the stack's table stream, from the stack's checkpoints."""
    return process_stream(target.client("dynamodbstreams"), target.client("dynamodb"), target.stack.table_name, GSI_NAME, checkpoint_file(target.stack.name),
                          follow=follow, on_round=on_round)
