"""Give the embedded moto server DynamoDB's isolation: one DynamoDB (and Streams) request at a time.

moto's ``TransactWriteItems`` checks each item's condition and applies it, item by item,
with no lock, and undoes a cancelled transaction by putting back a copy of the whole table
taken when the transaction began. Under the threaded server two transactions can therefore
both pass a condition that DynamoDB would let only one pass (two senders could both create
a pair's group), and a cancelled one can erase writes that other requests made meanwhile.
DynamoDB serialises a transaction with every other write to its items; running one request
at a time gives the twin the same outcome, at a cost nothing on a laptop notices.

``serialise_dynamodb()`` is idempotent and must run in the process that serves moto
(``ops.local.motoserver``, or a test's in-process ``ThreadedMotoServer``).
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_LOCK: threading.RLock = threading.RLock()


def _serialised(method: Any) -> Any:
    if getattr(method, "_cruddur_serialised", False):
        return method

    @functools.wraps(method)
    def call_action(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(self, *args, **kwargs)

    call_action._cruddur_serialised = True  # type: ignore[attr-defined]
    return call_action


def serialise_dynamodb() -> None:
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    # Streams too: GetRecords must not read a shard half-way through a transaction or its rollback
    for handler in (DynamoHandler, DynamoDBStreamsHandler):
        handler.call_action = _serialised(handler.call_action)  # type: ignore[method-assign]


def dynamodb_lock() -> threading.RLock:
    """The lock DynamoDB requests hold: a snapshot taken under it sees no request half-way."""
    return _LOCK
