"""The stream consumer on a twin: read the table's stream and feed it to the code the Lambda runs.

The embedded moto server cannot invoke a Lambda without Docker, so on a twin nothing reacts
to a new message by itself; ``ddb.stream-process`` (and ``ddb.send-message`` right after
sending) reads every shard of the table's latest stream, shapes the records like the
Lambda's event and calls ``ops.stream_consumer.handle_records``.

Checkpoints (the last processed sequence number of each shard) live in
``<state>/<stack>/stream-checkpoints.json`` and only move past records that were processed:
a failed record is read again on the next run, which is what Lambda does with a record it
reports as failed. Re-reading is harmless because the consumer never moves a group back.

A checkpoint belongs to the stream it was taken on: it keeps the stream ARN (a re-created
table has a new one) and, per shard, the checkpointed record's eventID. Before resuming, the
record is read back at its sequence number; when it is missing (the checkpoint is past the
shard's end: the twin's state is older than the checkpoint) or is another record (the
sequence numbers were reused by a different history), the shard is read again from
TRIM_HORIZON with a warning, never skipped silently.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from ops.errors import CloudError, InputError, NotFoundError
from ops.stream_consumer import handle_records
from ops.target import stack_state_dir

CHECKPOINT_FILE = "stream-checkpoints.json"
BATCH_LIMIT = 100  # records per GetRecords: the size of one Lambda batch, roughly
POLL_SECONDS = 1.0


def checkpoint_file(stack: str) -> Path:
    return stack_state_dir(stack) / CHECKPOINT_FILE


@dataclass
class StreamCounts:
    shards: int = 0
    records: int = 0  # records read (a record retried after a failure counts again)
    processed: int = 0
    failed: int = 0
    rows_moved: int = 0
    rounds: int = 0
    interrupted: bool = False
    warnings: list[str] = field(default_factory=list)  # checkpoints found not to belong to the stream

    def add(self, other: StreamCounts) -> None:
        self.shards = other.shards  # the stream's current shard count, not a sum
        self.records += other.records
        self.processed += other.processed
        self.failed += other.failed
        self.rows_moved += other.rows_moved
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
        raise InputError(f"{path}: unreadable stream checkpoints ({err}); delete the file to re-read the stream from its start (safe: the consumer is idempotent)") from None
    return data


def save_checkpoints(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)  # atomic: a crash mid-write never loses the previous checkpoints


def _table_checkpoints(data: dict[str, Any], table: str, stream_arn: str) -> dict[str, Any]:
    """The shard checkpoints of a table's current stream; a new stream (table re-created) starts empty.

    A shard's checkpoint is ``{"seq": ..., "event_id": ...}`` (a bare sequence number in files
    written before event ids were kept: still honoured, checked by sequence number alone).
    """
    entry = data["tables"].get(table)
    if not entry or entry.get("stream_arn") != stream_arn:
        entry = {"stream_arn": stream_arn, "shards": {}}
        data["tables"][table] = entry
    return entry["shards"]


def _checkpoint(value: Any) -> tuple[str | None, str | None]:
    if isinstance(value, dict):
        return value.get("seq"), value.get("event_id")
    return (value if isinstance(value, str) else None), None


# ---------------------------------------------------------------- reading the stream


def latest_stream_arn(ddb_client: Any, table: str) -> str:
    try:
        desc = ddb_client.describe_table(TableName=table)["Table"]
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise NotFoundError(f"table {table!r} does not exist: create it with `invoke ddb.schema-load`") from None
        raise CloudError(f"DynamoDB refused to describe table {table!r}: {err}") from None
    arn = desc.get("LatestStreamArn")
    if not arn or not (desc.get("StreamSpecification") or {}).get("StreamEnabled", True):
        raise NotFoundError(f"table {table!r} has no stream: re-create it with `invoke ddb.schema-load` (the spec enables one)")
    return arn


def list_shards(streams_client: Any, stream_arn: str) -> list[dict[str, Any]]:
    """Every shard of the stream (DescribeStream pages its shards), parents before children."""
    shards: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"StreamArn": stream_arn}
    while True:
        desc = streams_client.describe_stream(**kwargs)["StreamDescription"]
        shards.extend(desc.get("Shards", []))
        last = desc.get("LastEvaluatedShardId")
        if not last:
            break
        kwargs["ExclusiveStartShardId"] = last
    return _parents_first(shards)


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


def _iterator(streams_client: Any, table: str, stream_arn: str, shard_id: str, checkpoint: Any, warnings: list[str]) -> str | None:
    """Where to resume a shard: after its checkpoint when the checkpointed record is still the one there."""
    seq, event_id = _checkpoint(checkpoint)
    if seq:
        problem = None
        try:
            at = streams_client.get_shard_iterator(StreamArn=stream_arn, ShardId=shard_id, ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=seq).get("ShardIterator")
            resp = streams_client.get_records(ShardIterator=at, Limit=1) if at else {}
            first = (resp.get("Records") or [None])[0]
            if first is None:
                problem = "is past the shard's last record"
            elif first["dynamodb"]["SequenceNumber"] != seq or (event_id and first.get("eventID") != event_id):
                problem = "names another record than the one processed"
            elif resp.get("NextShardIterator"):
                return str(resp["NextShardIterator"])  # the record after the checkpoint
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code")
            if code == "TrimmedDataAccessException":
                pass  # older than the stream's 24 h retention: read what is left, as Lambda does
            elif code in ("ValidationException", "InvalidArgumentException", "ResourceNotFoundException"):
                problem = f"is not in the stream ({code})"
            else:
                raise
        if problem:
            warnings.append(f"stream checkpoint of table {table!r}, shard {shard_id}, at sequence number {seq} {problem}: "
                            "the twin's state is not the one it was taken on (restored or rewritten); reading the shard again from TRIM_HORIZON")
    return streams_client.get_shard_iterator(StreamArn=stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON").get("ShardIterator")


def _read_shard(streams_client: Any, ddb_client: Any, table: str, index: str, stream_arn: str, shard_id: str, checkpoints: dict[str, Any], save: Callable[[], None], counts: StreamCounts, batch_limit: int) -> bool:
    """Process a shard from its checkpoint to its end; False when a record failed (the shard waits for it)."""
    it = _iterator(streams_client, table, stream_arn, shard_id, checkpoints.get(shard_id), counts.warnings)
    while it:
        resp = streams_client.get_records(ShardIterator=it, Limit=batch_limit)
        records = resp.get("Records", [])
        if not records:
            return True  # caught up (open shard) or read to its end (closed shard)
        outcomes = handle_records(ddb_client, table, index, [lambda_record(r, stream_arn) for r in records])
        counts.records += len(records)
        counts.failed += sum(o.failed for o in outcomes)
        counts.processed += sum(not o.failed for o in outcomes)
        counts.rows_moved += sum(o.result.moved for o in outcomes if o.result)
        # the checkpoint moves only up to the record before the first failure, as Lambda's does
        upto = None
        for record, outcome in zip(records, outcomes, strict=True):
            if outcome.failed:
                break
            upto = record
        if upto is not None:
            checkpoints[shard_id] = {"seq": upto["dynamodb"]["SequenceNumber"], "event_id": upto.get("eventID")}
            save()
        if any(o.failed for o in outcomes):
            return False
        it = resp.get("NextShardIterator")
    return True


def process_once(streams_client: Any, ddb_client: Any, table: str, index: str, checkpoint_path: Path, batch_limit: int = BATCH_LIMIT) -> StreamCounts:
    """One pass over every shard of the table's latest stream."""
    counts = StreamCounts(rounds=1)
    try:
        stream_arn = latest_stream_arn(ddb_client, table)
        shards = list_shards(streams_client, stream_arn)
        data = load_checkpoints(checkpoint_path)
        checkpoints = _table_checkpoints(data, table, stream_arn)
        counts.shards = len(shards)
        blocked: set[str] = set()
        for shard in shards:
            sid = shard["ShardId"]
            if shard.get("ParentShardId") in blocked:
                blocked.add(sid)  # its parent still has a failed record: keep the order of changes
                continue
            if not _read_shard(streams_client, ddb_client, table, index, stream_arn, sid, checkpoints, lambda: save_checkpoints(checkpoint_path, data), counts, batch_limit):
                blocked.add(sid)
    except ClientError as err:
        raise CloudError(f"reading the stream of table {table!r} failed: {err}") from None
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
