"""The stream consumer: moves both group rows of a conversation to each new message.

It runs as the Lambda behind the table's stream (``infra/stream_consumer.py`` ships this
file with ``ops/__init__.py``, ``ops/errors.py``, ``ops/backoff.py`` and ``ops/patterns.py`` only, so it imports
nothing but the standard library, boto3/botocore and those modules) and, unchanged, on a
twin through ``ops/local/streams.py``.

What it guarantees, where the seeds' consumer did not:
- every record of a batch is handled, not only the first; REMOVE events and items other
  than ``MSG#`` are ignored;
- a row is moved in one transaction (delete the old row + put the new one), so a
  participant never has zero or two rows, and extra rows left by older writers are removed;
- a duplicate or late record never moves a group back in time;
- only the records that failed are reported back (partial batch response), so Lambda
  retries those alone instead of the whole batch;
- table and index come from the environment (``TABLE_NAME``, ``GSI_NAME``); region and
  endpoint come from the runtime (``AWS_REGION``, optional ``AWS_ENDPOINT_URL_DYNAMODB``).

Each record leaves one JSON log line: event id, sequence number, group, action. Never the
event itself or the message text (people's conversations do not belong in logs).
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ops.errors import ConfigError
from ops.patterns import MSG_PREFIX, MoveResult, move_group_rows

TABLE_ENV = "TABLE_NAME"
INDEX_ENV = "GSI_NAME"
ENDPOINT_ENV = "AWS_ENDPOINT_URL_DYNAMODB"

log = logging.getLogger("cruddur.stream_consumer")
log.setLevel(logging.INFO)  # Lambda's root logger drops INFO; these lines are the consumer's audit trail


@dataclass(frozen=True)
class ConsumerConfig:
    table: str
    index: str


def config_from_env(environ: Mapping[str, str] | None = None) -> ConsumerConfig:
    env = os.environ if environ is None else environ
    missing = [name for name in (TABLE_ENV, INDEX_ENV) if not env.get(name)]
    if missing:
        raise ConfigError(
            f"the stream consumer needs the environment variable{'s' if len(missing) > 1 else ''} {' and '.join(missing)} "
            f"(the messages table and its group index {INDEX_ENV}); set them on the function"
        )
    return ConsumerConfig(env[TABLE_ENV], env[INDEX_ENV])


@dataclass
class RecordOutcome:
    sequence_number: str
    event_id: str
    event_name: str
    group: str | None
    action: str  # moved | skipped | no-group-rows | ignored | message-gone | failed
    result: MoveResult | None = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.action == "failed"

    def log_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"event_id": self.event_id, "seq": self.sequence_number, "event": self.event_name, "group": self.group, "action": self.action}
        if self.result is not None:
            fields |= {"moved": self.result.moved, "skipped": self.result.skipped, "deduplicated": self.result.deduplicated, "retries": self.result.retries}
        if self.error:
            fields["error"] = self.error
        return fields


def _error_name(err: Exception) -> str:
    code = getattr(err, "response", {}).get("Error", {}).get("Code")
    return str(code) if code else type(err).__name__


def handle_record(client: Any, table: str, index: str, record: Mapping[str, Any]) -> RecordOutcome:
    """One stream record, in the Lambda event's shape; never raises."""
    ddb = record.get("dynamodb") or {}
    keys = ddb.get("Keys") or {}
    pk = (keys.get("pk") or {}).get("S", "")
    outcome = RecordOutcome(str(ddb.get("SequenceNumber", "")), str(record.get("eventID", "")), str(record.get("eventName", "")), None, "ignored")
    # a removed message or group row needs nothing; our own group-row writes are not messages
    if outcome.event_name not in ("INSERT", "MODIFY") or not pk.startswith(MSG_PREFIX):
        return outcome
    outcome.group = pk[len(MSG_PREFIX) :]
    try:
        created_at = keys["sk"]["S"]
        text = ((ddb.get("NewImage") or {}).get("message") or {}).get("S")
        if text is None:
            # the stream is declared NEW_IMAGE; anything else is a misconfiguration that must reach
            # the dead-letter queue, not a reason to grant the function GetItem
            raise ValueError("record has no NewImage.message: the table's stream must be NEW_IMAGE")
        outcome.result = move_group_rows(client, table, outcome.group, created_at, text, index)
        outcome.action = outcome.result.action
    except Exception as err:  # one bad record must not sink the batch: it is reported and retried alone
        outcome.action = "failed"
        outcome.error = _error_name(err)
    return outcome


def handle_records(client: Any, table: str, index: str, records: Iterable[Mapping[str, Any]]) -> list[RecordOutcome]:
    """Every record of a batch, in order, each with its log line."""
    outcomes = []
    for record in records:
        outcome = handle_record(client, table, index, record)
        (log.warning if outcome.failed else log.info)(json.dumps(outcome.log_fields(), separators=(",", ":")))
        outcomes.append(outcome)
    return outcomes


def process_records(client: Any, table: str, index: str, records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Handle a batch; returns the sequence numbers of the records that failed."""
    return [o.sequence_number for o in handle_records(client, table, index, records) if o.failed]


@functools.lru_cache(maxsize=4)
def _client(region: str | None, endpoint: str | None) -> Any:
    # created on first use and kept for the warm container; never at import time
    import boto3

    return boto3.client("dynamodb", region_name=region, endpoint_url=endpoint)


def handler(event: Mapping[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    """Lambda entry point: a DynamoDB stream batch in, a partial batch response out."""
    cfg = config_from_env()
    client = _client(os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"), os.environ.get(ENDPOINT_ENV) or None)
    records = event.get("Records") or []
    failed = process_records(client, cfg.table, cfg.index, records)
    log.info(json.dumps({"batch": len(records), "failed": len(failed)}, separators=(",", ":")))
    return {"batchItemFailures": [{"itemIdentifier": seq} for seq in failed]}


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    # inside Lambda: a missing variable fails the cold start with one clear line, before any record is taken
    config_from_env()
