"""The stream consumer: for each new message, move every member's group row of its group to it.

Shaped like aws-powertools' batch utility: ``StreamRecord`` is a typed record parsed from the
Lambda event, ``handle_record`` is the per-record handler, ``process_batch`` routes each
record to success or failure, and ``handler`` is the Lambda entry returning
``batchItemFailures``. The same code runs in the cloud (the Lambda, whose package is this
package plus what it imports: ``infra/stream_consumer.py``) and on a twin (``ops.local.streams``).

What it guarantees, where the seeds' consumer did not:
- every record of a batch is handled, not only the first; REMOVE events and items other
  than ``MSG#`` messages are ignored;
- rows move atomically and never back in time (``ops.messages.fanout``);
- only the records that failed are reported back (partial batch response);
- table and index come from the environment (``TABLE_NAME``, ``GSI_NAME``); region and
  endpoint from the runtime (``AWS_REGION``, optional ``AWS_ENDPOINT_URL_DYNAMODB``).

Each record leaves one JSON log line: event id, sequence number, group, action. Never the
event itself or the message text (people's conversations do not belong in logs).

On a stack that encrypts messages the consumer sees only sealed bodies and copies them to the
group rows as they are (``ops.messages.bodies``): it has no KMS permission and never needs one.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ops.aws import error_code
from ops.errors import ConfigError
from ops.messages.bodies import body_of
from ops.messages.fanout import MoveResult, move_group_rows
from ops.messages.model import MSG_PREFIX, instant

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
            f"the stream consumer needs the environment variable{'s' if len(missing) > 1 else ''} "
            f"{' and '.join(missing)} (the messages table and its group index {INDEX_ENV}); set them on the function"
        )
    return ConsumerConfig(env[TABLE_ENV], env[INDEX_ENV])


@dataclass(frozen=True)
class StreamRecord:
    """One DynamoDB stream record as Lambda hands it over, reduced to what the consumer reads."""

    event_id: str
    event_name: str  # INSERT | MODIFY | REMOVE
    sequence_number: str
    pk: str
    sk: str
    new_image: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> StreamRecord:
        ddb = raw.get("dynamodb") or {}
        keys = ddb.get("Keys") or {}
        return cls(
            event_id=str(raw.get("eventID", "")),
            event_name=str(raw.get("eventName", "")),
            sequence_number=str(ddb.get("SequenceNumber", "")),
            pk=str((keys.get("pk") or {}).get("S", "")),
            sk=str((keys.get("sk") or {}).get("S", "")),
            new_image=ddb.get("NewImage") or {},
        )

    @property
    def is_new_message(self) -> bool:
        # a removed message or group row needs nothing; our own group-row writes are not messages,
        # and neither is an item of a message partition whose sort key is no time (not our model's)
        if self.event_name not in ("INSERT", "MODIFY") or not self.pk.startswith(MSG_PREFIX):
            return False
        try:
            instant(self.sk)
        except ValueError:
            return False
        return True

    @property
    def group(self) -> str:
        return self.pk[len(MSG_PREFIX) :]


@dataclass
class RecordOutcome:
    sequence_number: str
    event_id: str
    event_name: str
    group: str | None
    action: str  # moved | skipped | no-group-rows | ignored | failed
    result: MoveResult | None = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.action == "failed"

    def log_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "event_id": self.event_id,
            "seq": self.sequence_number,
            "event": self.event_name,
            "group": self.group,
            "action": self.action,
        }
        if self.result is not None:
            fields |= {
                "moved": self.result.moved,
                "skipped": self.result.skipped,
                "deduplicated": self.result.deduplicated,
                "retries": self.result.retries,
            }
            if self.result.not_members:
                fields["not_members"] = self.result.not_members
        if self.error:
            fields["error"] = self.error
        return fields


def handle_record(client: Any, table: str, index: str, record: StreamRecord) -> MoveResult | None:
    """The per-record handler: move the group's rows to this message; ``None`` when there is nothing to do.

    Raises on failure; ``process_batch`` turns that into a failed record.
    """
    if not record.is_new_message:
        return None
    body = body_of(record.new_image)
    if not body:
        # the stream is declared NEW_IMAGE; anything else is a misconfiguration that must reach
        # the dead-letter queue, not a reason to grant the function GetItem
        raise ValueError("record has no message body in its NewImage: the table's stream must be NEW_IMAGE")
    return move_group_rows(client, table, record.group, record.sk, body, index)


def process_record(client: Any, table: str, index: str, raw: Mapping[str, Any]) -> RecordOutcome:
    """One record routed to success or failure; never raises."""
    record = StreamRecord.parse(raw)
    outcome = RecordOutcome(
        record.sequence_number,
        record.event_id,
        record.event_name,
        record.group if record.is_new_message else None,
        "ignored",
    )
    try:
        outcome.result = handle_record(client, table, index, record)
    except Exception as err:  # one bad record must not sink the batch: it is reported and retried alone
        outcome.action, outcome.error = "failed", error_code(err)
        return outcome
    if outcome.result is not None:
        outcome.action = outcome.result.action
    return outcome


def process_batch(client: Any, table: str, index: str, records: Iterable[Mapping[str, Any]]) -> list[RecordOutcome]:
    """Every record of a batch, in order, each with its log line."""
    outcomes = []
    for raw in records:
        outcome = process_record(client, table, index, raw)
        (log.warning if outcome.failed else log.info)(json.dumps(outcome.log_fields(), separators=(",", ":")))
        outcomes.append(outcome)
    return outcomes


def failed_sequence_numbers(outcomes: Iterable[RecordOutcome]) -> list[str]:
    return [o.sequence_number for o in outcomes if o.failed]


@functools.lru_cache(maxsize=4)
def _client(region: str | None, endpoint: str | None) -> Any:
    # created on first use and kept for the warm container; never at import time
    import boto3

    return boto3.client("dynamodb", region_name=region, endpoint_url=endpoint)


def handler(event: Mapping[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    """Lambda entry point: a DynamoDB stream batch in, a partial batch response out."""
    cfg = config_from_env()
    client = _client(
        os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"), os.environ.get(ENDPOINT_ENV) or None
    )
    records = event.get("Records") or []
    failed = failed_sequence_numbers(process_batch(client, cfg.table, cfg.index, records))
    log.info(json.dumps({"batch": len(records), "failed": len(failed)}, separators=(",", ":")))
    return {"batchItemFailures": [{"itemIdentifier": seq} for seq in failed]}


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    # inside Lambda: a missing variable fails the cold start with one clear line, before any record is taken
    config_from_env()
