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

A checkpoint belongs to the stream it was taken on: it keeps the stream ARN (a re-created
table has a new one) and, per shard, the checkpointed record's eventID. Before resuming, the
record is read back at its sequence number; when it is missing (the checkpoint is past the
shard's end: the twin's state is older than the checkpoint) or is another record (the
sequence numbers were reused by a different history), the shard is read again from
TRIM_HORIZON with a warning, never skipped silently.
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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
from ops.stream_records import lambda_record
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
    dead_letter: Callable[[str, str, list[dict[str, Any]], str, int], None] | None = (
        None  # (stream, shard, records, condition, attempts)
    )
    record_filter: Callable[[dict[str, Any]], bool] | None = (
        None  # the mapping's filter: records it drops never reach the consumer
    )
    read_limit: int = (
        0  # records per GetRecords when more than a batch (the twin's worker reads 1000: far fewer requests)
    )


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
    warnings: list[str] = field(default_factory=list)  # checkpoints found not to belong to the stream

    def add(self, other: StreamCounts) -> None:
        self.shards = other.shards  # the stream's current shard count, not a sum
        self.records += other.records
        self.processed += other.processed
        self.failed += other.failed
        self.rows_moved += other.rows_moved
        self.dead_lettered += other.dead_lettered
        self.rounds += other.rounds
        self.warnings.extend(other.warnings)


# ---------------------------------------------------------------- checkpoints


def load_checkpoints(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"tables": {}}
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("tables"), dict):
            raise ValueError("no 'tables' mapping")
    except ValueError as err:
        raise InputError(
            f"{path}: unreadable stream checkpoints ({err}); delete the file to re-read the stream from its start "
            "(safe: the consumer is idempotent)"
        ) from None
    return data


def save_checkpoints(path: Path, data: dict[str, Any]) -> None:
    write_atomic(
        path, json.dumps(data, indent=2, sort_keys=True)
    )  # a crash mid-write never loses the previous checkpoints


def _table_checkpoints(data: dict[str, Any], table: str, stream_arn: str) -> dict[str, Any]:
    """A table's entry for its current stream (shard checkpoints, retry counts); a new stream starts empty.

    A shard's checkpoint is ``{"seq": ..., "event_id": ...}`` (a bare sequence number in files
    written before event ids were kept: still honoured, checked by sequence number alone).
    """
    entry = data["tables"].get(table)
    if not entry or entry.get("stream_arn") != stream_arn:
        entry = {"stream_arn": stream_arn, "shards": {}}
        data["tables"][table] = entry
    entry.setdefault("attempts", {})
    return entry  # type: ignore[no-any-return]


def _checkpoint(value: Any) -> tuple[str | None, str | None]:
    if isinstance(value, dict):
        return value.get("seq"), value.get("event_id")
    return (value if isinstance(value, str) else None), None


def _mark(record: dict[str, Any]) -> dict[str, Any]:
    return {"seq": record["dynamodb"]["SequenceNumber"], "event_id": record.get("eventID")}


# ---------------------------------------------------------------- reading the stream


def latest_stream_arn(ddb_client: Any, table: str) -> str:
    desc = call(ddb_client.describe_table, f"DescribeTable {table}", not_found=missing_table(table), TableName=table)[
        "Table"
    ]
    arn = desc.get("LatestStreamArn")
    if not arn or not (desc.get("StreamSpecification") or {}).get("StreamEnabled", True):
        raise NotFoundError(
            f"table {table!r} has no stream: re-create it with `invoke ddb.schema-load` (the spec enables one)"
        )
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
        ready = [
            s
            for s in pending
            if not s.get("ParentShardId") or s["ParentShardId"] not in ids or s["ParentShardId"] in done
        ]
        if not ready:  # a cycle cannot happen in DynamoDB; keep whatever is left rather than loop
            ordered.extend(pending)
            break
        for s in ready:
            ordered.append(s)
            done.add(s["ShardId"])
            pending.remove(s)
    return ordered


def _iterator(
    streams_client: Any, table: str, stream_arn: str, shard_id: str, checkpoint: Any, warnings: list[str]
) -> str | None:
    """Where to resume a shard: after its checkpoint when the checkpointed record is still the one there."""
    seq, event_id = _checkpoint(checkpoint)
    if seq:
        problem = None
        try:
            at = streams_client.get_shard_iterator(
                StreamArn=stream_arn, ShardId=shard_id, ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=seq
            ).get("ShardIterator")
            resp = streams_client.get_records(ShardIterator=at, Limit=1) if at else {}
            first = (resp.get("Records") or [None])[0]
            if first is None:
                problem = "is past the shard's last record"
            elif first["dynamodb"]["SequenceNumber"] != seq or (event_id and first.get("eventID") != event_id):
                problem = "names another record than the one processed"
            elif resp.get("NextShardIterator"):
                return str(resp["NextShardIterator"])  # the record after the checkpoint
        except ClientError as err:
            code = error_code(err)
            if code == "TrimmedDataAccessException":
                pass  # older than the stream's 24 h retention: read what is left, as Lambda does
            elif code in ("ValidationException", "InvalidArgumentException", "ResourceNotFoundException"):
                problem = f"is not in the stream ({code})"
            else:
                raise
        if problem:
            warnings.append(
                f"stream checkpoint of table {table!r}, shard {shard_id}, at sequence number {seq} {problem}: "
                "the twin's state is not the one it was taken on (restored or rewritten); reading the shard again "
                "from TRIM_HORIZON"
            )
    return streams_client.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    ).get("ShardIterator")


def _get_records(streams_client: Any, iterator: str, limit: int) -> dict[str, Any]:
    """GetRecords; a shard whose every record is past the stream's 24 h retention reads as empty.

    DynamoDB answers a TRIM_HORIZON iterator over such a shard with
    TrimmedDataAccessException from GetRecords itself, not only from GetShardIterator: there is
    nothing left to process, as Lambda's mapping sees it, and the next record written is read
    by the next pass.
    """
    try:
        return streams_client.get_records(ShardIterator=iterator, Limit=limit)  # type: ignore[no-any-return]
    except ClientError as err:
        if error_code(err) == "TrimmedDataAccessException":
            return {"Records": []}
        raise


def _too_old(record: dict[str, Any], policy: RetryPolicy) -> bool:
    when = (record.get("dynamodb") or {}).get("ApproximateCreationDateTime")
    if policy.max_record_age_seconds is None or when is None:
        return False
    at = when if isinstance(when, datetime) else datetime.fromtimestamp(float(when), UTC)
    return (datetime.now(UTC) - at).total_seconds() > policy.max_record_age_seconds


def _read_shard(
    streams_client: Any,
    ddb_client: Any,
    table: str,
    index: str,
    stream_arn: str,
    shard_id: str,
    entry: dict[str, Any],
    save: Callable[[], None],
    counts: StreamCounts,
    batch_limit: int,
    policy: RetryPolicy,
    should_stop: Callable[[], bool] | None = None,
) -> bool:
    """Process a shard from its checkpoint to its end; False when a record failed (the shard waits for it).

    ``should_stop`` is asked after every batch, once its checkpoint is saved: when it says yes the
    pass ends there (``counts.interrupted``), so a stop never waits for a whole backlog.

    Records are read up to ``policy.read_limit`` at a time and handed to the consumer in batches
    of ``batch_limit`` (the mapping's batch size); records the mapping's filter drops are passed
    over without a call, as Lambda never invokes the function for them.
    """
    checkpoints, attempts = entry["shards"], entry["attempts"]
    it = _iterator(streams_client, table, stream_arn, shard_id, checkpoints.get(shard_id), counts.warnings)
    while it:
        resp = _get_records(streams_client, it, max(batch_limit, policy.read_limit))
        records = resp.get("Records", [])
        if not records:
            return True  # caught up (open shard) or read to its end (closed shard)
        for start in range(0, len(records), batch_limit):
            chunk = records[start : start + batch_limit]
            outcome = _handle_chunk(
                ddb_client, table, index, stream_arn, shard_id, chunk, checkpoints, attempts, counts, policy
            )
            save()
            if outcome == "blocked":
                return False  # the next pass reads again from the failed record onward
            if should_stop is not None and should_stop():
                counts.interrupted = True  # the rest of the backlog waits for the next pass, after its checkpoint
                return True
            if outcome == "parked":  # the rest of what was read comes again after the parked record
                break
        else:
            it = resp.get("NextShardIterator")
            continue
        it = _iterator(streams_client, table, stream_arn, shard_id, checkpoints.get(shard_id), counts.warnings)
    return True


def _handle_chunk(
    ddb_client: Any,
    table: str,
    index: str,
    stream_arn: str,
    shard_id: str,
    chunk: list[dict[str, Any]],
    checkpoints: dict[str, Any],
    attempts: dict[str, Any],
    counts: StreamCounts,
    policy: RetryPolicy,
) -> str:
    """One batch of a shard through the consumer: "done", "blocked" (a failure waits for a retry) or "parked"
    (dead-lettered)."""
    if policy.dead_letter is not None:
        # records past the mapping's maximum age go to the on-failure destination unprocessed; a
        # shard is in time order, so they are the batch's first records
        expired = 0
        while expired < len(chunk) and _too_old(chunk[expired], policy):
            expired += 1
        if expired:
            policy.dead_letter(stream_arn, shard_id, chunk[:expired], "RecordAgeExceeded", 0)
            counts.dead_lettered += expired
            checkpoints[shard_id] = _mark(chunk[expired - 1])
            chunk = chunk[expired:]
    wanted = [r for r in chunk if policy.record_filter is None or policy.record_filter(r)]
    outcomes = process_batch(ddb_client, table, index, [lambda_record(r, stream_arn) for r in wanted]) if wanted else []
    counts.records += len(chunk)
    counts.failed += sum(o.failed for o in outcomes)
    counts.processed += len(chunk) - sum(o.failed for o in outcomes)
    counts.rows_moved += sum(o.result.moved for o in outcomes if o.result)
    failed = {id(r) for r, o in zip(wanted, outcomes, strict=True) if o.failed}
    # the checkpoint moves only up to the record before the first failure, as Lambda's does
    bad = next((r for r in chunk if id(r) in failed), None)
    done = chunk if bad is None else chunk[: chunk.index(bad)]
    if done:
        checkpoints[shard_id] = _mark(done[-1])
    if bad is None:
        attempts.pop(shard_id, None)
        return "done"
    seq = bad["dynamodb"]["SequenceNumber"]
    tried = attempts.get(shard_id, {}).get("count", 0) + 1 if attempts.get(shard_id, {}).get("seq") == seq else 1
    if policy.dead_letter is None or policy.max_retry_attempts is None or tried <= policy.max_retry_attempts:
        attempts[shard_id] = {"seq": seq, "count": tried}
        return "blocked"
    # retries used up: park a pointer to the record and move past it, as the mapping does
    policy.dead_letter(stream_arn, shard_id, [bad], "RetryAttemptsExhausted", tried)
    counts.dead_lettered += 1
    checkpoints[shard_id] = _mark(bad)
    attempts.pop(shard_id, None)
    return "parked"


def process_once(
    streams_client: Any,
    ddb_client: Any,
    table: str,
    index: str,
    checkpoint_path: Path,
    batch_limit: int = BATCH_LIMIT,
    policy: RetryPolicy = RetryPolicy(),
    should_stop: Callable[[], bool] | None = None,
) -> StreamCounts:
    """One pass over every shard of the table's latest stream (under the checkpoint file's lock).

    ``should_stop`` (the worker's SIGTERM) ends the pass after the batch in hand, checkpointed.
    """
    counts = StreamCounts(rounds=1)
    with (
        exclusive(checkpoint_path),
        aws_errors(f"reading the stream of table {table!r}", not_found=missing_table(table)),
    ):
        stream_arn = latest_stream_arn(ddb_client, table)
        shards = list_shards(streams_client, stream_arn)
        data = load_checkpoints(checkpoint_path)
        entry = _table_checkpoints(data, table, stream_arn)
        counts.shards = len(shards)
        blocked: set[str] = set()
        for shard in shards:
            if counts.interrupted:
                break
            sid = shard["ShardId"]
            if shard.get("ParentShardId") in blocked:
                blocked.add(sid)  # its parent still has a failed record: keep the order of changes
                continue
            if not _read_shard(
                streams_client,
                ddb_client,
                table,
                index,
                stream_arn,
                sid,
                entry,
                lambda: save_checkpoints(checkpoint_path, data),
                counts,
                batch_limit,
                policy,
                should_stop,
            ):
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


def process_target_stream(
    target: Any, follow: bool = False, on_round: Callable[[StreamCounts], None] | None = None
) -> StreamCounts:
    """ddb.stream-process on a twin: every shard of the stack's table stream, from the stack's checkpoints."""
    return process_stream(
        target.client("dynamodbstreams"),
        target.client("dynamodb"),
        target.stack.table_name,
        GSI_NAME,
        checkpoint_file(target.stack.name),
        follow=follow,
        on_round=on_round,
    )


def backlog(streams_client: Any, ddb_client: Any, table: str, checkpoint_path: Path, cap: int = 1000) -> int:
    """How many records of the table's stream no pass has taken yet (counted up to ``cap``); reads only."""
    with aws_errors(f"reading the stream of table {table!r}", not_found=missing_table(table)):
        stream_arn = latest_stream_arn(ddb_client, table)
        entry = _table_checkpoints(load_checkpoints(checkpoint_path), table, stream_arn)
        waiting = 0
        for shard in list_shards(streams_client, stream_arn):
            seq, _ = _checkpoint(entry["shards"].get(shard["ShardId"]))
            kind = (
                {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": seq}
                if seq
                else {"ShardIteratorType": "TRIM_HORIZON"}
            )
            it = streams_client.get_shard_iterator(StreamArn=stream_arn, ShardId=shard["ShardId"], **kind).get(
                "ShardIterator"
            )
            while it and waiting < cap:
                got = _get_records(streams_client, it, 1000)
                if not got.get("Records"):
                    break
                waiting += len(got["Records"])
                it = got.get("NextShardIterator")
    return min(waiting, cap)
