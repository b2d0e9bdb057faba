"""A DynamoDB Streams record turned into the shape Lambda hands the stream consumer.

Both readers of a stream outside Lambda need it: the twin's stream worker (``ops.local.streams``)
and the redrive of dead letters (``ops.dead_letters``, which also runs against the cloud). It lives
below both so that neither imports the other.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any


def _json_value(value: Any) -> Any:
    """An attribute value as Lambda's JSON event carries it: binary as base64 text (botocore hands bytes)."""
    if not isinstance(value, dict) or len(value) != 1:
        return value
    ((kind, raw),) = value.items()
    if kind == "B" and isinstance(raw, (bytes, bytearray)):
        return {"B": base64.b64encode(raw).decode()}
    if kind == "BS":
        return {"BS": [base64.b64encode(v).decode() if isinstance(v, (bytes, bytearray)) else v for v in raw]}
    if kind == "M":
        return {"M": {k: _json_value(v) for k, v in raw.items()}}
    if kind == "L":
        return {"L": [_json_value(v) for v in raw]}
    return value


def lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record in the shape Lambda hands the function (epoch seconds, binary as base64, the source ARN)."""
    ddb = dict(record.get("dynamodb") or {})
    when = ddb.get("ApproximateCreationDateTime")
    if isinstance(when, datetime):
        ddb["ApproximateCreationDateTime"] = when.timestamp()
    for image in ("Keys", "NewImage", "OldImage"):
        if image in ddb:
            ddb[image] = {name: _json_value(v) for name, v in ddb[image].items()}
    return dict(record) | {"dynamodb": ddb, "eventSourceARN": stream_arn}
