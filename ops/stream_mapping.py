"""How the table's stream feeds the consumer, declared once.

The Pulumi program's event source mapping and dead-letter queue (``infra/stream_consumer.py``)
and the twin's stream worker (``ops.local.stream_worker``, which plays the mapping locally)
both read these, so a retry count or a name is never written twice.
"""

from __future__ import annotations

from typing import Any

from ops.stacks import StackSettings

# The module the twin runs as the mapping's consumer: local.up starts it, and a pid is recognised as ours by it.
WORKER_MODULE = "ops.local.stream_worker"
# A poisoned record is retried this often before a pointer to it goes to the queue.
MAX_RETRY_ATTEMPTS = 5
# Group rows that trail by more than an hour are better repaired (ddb.doctor --fix) than replayed late.
MAX_RECORD_AGE_SECONDS = 3600
# The longest the dead-letter queue keeps a failed batch's pointer (SQS maximum, 14 days).
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
# Only new messages need work; the consumer's own group-row writes must not invoke it again.
STREAM_FILTER = {"eventName": ["INSERT"], "dynamodb": {"Keys": {"pk": {"S": [{"prefix": "MSG#"}]}}}}


def function_name(stack: StackSettings) -> str:
    return stack.physical_name("stream-consumer")


def dead_letter_queue_name(stack: StackSettings) -> str:
    return f"{function_name(stack)}-dlq"


def matches_filter(record: dict[str, Any], pattern: dict[str, Any] | None = None) -> bool:
    """Whether a stream record passes the mapping's filter (EventBridge-style: lists of values or ``{"prefix": …}``).

    Only the pattern forms ``STREAM_FILTER`` uses are understood; Lambda drops records that do
    not match before invoking the function, and so does the twin's stream worker.
    """
    pattern = STREAM_FILTER if pattern is None else pattern
    for key, want in pattern.items():
        have = record.get(key)
        if isinstance(want, dict):
            if not isinstance(have, dict) or not matches_filter(have, want):
                return False
            continue
        if not any(
            have == w or (isinstance(w, dict) and isinstance(have, str) and have.startswith(w.get("prefix", "\0")))
            for w in want
        ):
            return False
    return True
