"""The moto twin refuses what DynamoDB refuses, where applications make mistakes.

moto 5.2.5 accepts requests that DynamoDB answers with a ValidationException, so an app that
passes on the twin fails in AWS: a BatchWriteItem of 26 requests, two writes to one key in a
batch (moto compares whole items, so a put and a delete of one key, or two puts of one key with
other attributes, go through), an empty ``RequestItems``, a ``Limit`` of 0 or less, a
TransactWriteItems over 4 MB, numbers it stores as written (``00042``, ``-0``, ``1.50``) or
beyond DynamoDB's 38 digits and range, and an expression naming a ``#name`` or ``:value`` the
request does not define (moto answers some of those with a 500). A reused
``ClientRequestToken`` with another payload is applied again instead of refused.

Each check runs on the request as sent, before moto's own handler, and raises moto's
``MockValidationException`` (HTTP 400, ``ValidationException``) or, for the token,
``IdempotentParameterMismatchException``, with DynamoDB's wording. Numbers are rewritten in the
request to DynamoDB's canonical form before moto stores or compares them, so ``00042`` and
``42`` are one key, and what is read back is what DynamoDB gives. Requests are serialised
(``isolation``), so the token table needs no lock of its own.

``tests/twin/ops/local/moto_patches/test_validation.py`` sends the same generated requests
around each limit to the patched moto twin and to MiniStack and compares the outcomes.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import time
from decimal import Context, Decimal, InvalidOperation
from typing import Any

from ops.local.moto_patches import replace

BATCH_WRITE_MAX = 25
BATCH_GET_MAX = 100
TRANSACT_MAX_ITEMS = 100
TRANSACT_MAX_BYTES = 4 * 1024 * 1024
TOKEN_SECONDS = 600  # DynamoDB remembers a ClientRequestToken for 10 minutes
NUMBER_DIGITS = 38
NUMBER_MAX_EXPONENT = 125  # magnitudes up to 9.99…E+125
NUMBER_MIN_EXPONENT = -130  # and down to 1E-130
EXACT = Context(
    prec=200, Emax=999_999, Emin=-999_999
)  # wide enough that normalising never rounds (the default rounds at 28)
NUMBER_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
NAME_REF = re.compile(r"#[A-Za-z0-9_]+")
VALUE_REF = re.compile(r":[A-Za-z0-9_]+")
EXPRESSIONS = (
    "KeyConditionExpression",
    "FilterExpression",
    "ProjectionExpression",
    "ConditionExpression",
    "UpdateExpression",
)

_tokens: dict[str, tuple[str, float]] = {}  # ClientRequestToken -> (payload digest, when first seen)


def _plain(value: Any) -> str:
    """JSON for what a parsed request holds besides JSON types: binary values (bytes) as base64, as on the wire."""
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} in a DynamoDB request")


def _json(value: Any, sort_keys: bool = False) -> str:
    return json.dumps(value, sort_keys=sort_keys, default=_plain)


def _invalid(message: str) -> Exception:
    from moto.dynamodb.exceptions import MockValidationException

    return MockValidationException(message)


# ---------------------------------------------------------------- numbers


def canonical_number(text: Any) -> str:
    """DynamoDB's form of a number (``00042`` → ``42``, ``-0`` → ``0``, ``1.50`` → ``1.5``), or its refusal."""
    if not isinstance(text, str) or not NUMBER_TEXT.match(text.strip()):
        raise _invalid(f"The parameter cannot be converted to a numeric value: {text}")
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise _invalid(f"The parameter cannot be converted to a numeric value: {text}") from None
    if value.is_zero():
        return "0"
    if value.adjusted() > NUMBER_MAX_EXPONENT:
        raise _invalid("Number overflow. Attempting to store a number with magnitude larger than supported range")
    if value.adjusted() < NUMBER_MIN_EXPONENT:
        raise _invalid("Number underflow. Attempting to store a number with magnitude smaller than supported range")
    reduced = EXACT.normalize(value)
    if len(reduced.as_tuple().digits) > NUMBER_DIGITS:
        raise _invalid("Attempting to store more than 38 significant digits in a Number")
    return format(reduced, "f")  # plain digits, never an exponent, as DynamoDB writes numbers back


def _canonical_numbers(node: Any) -> None:
    """Rewrite every N and NS attribute value in a request, in place (an attribute *named* N holds a dict, not text)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "N" and isinstance(value, str) and len(node) == 1:
                node[key] = canonical_number(value)
            elif key == "NS" and isinstance(value, list) and len(node) == 1 and all(isinstance(v, str) for v in value):
                node[key] = [canonical_number(v) for v in value]
            else:
                _canonical_numbers(value)
    elif isinstance(node, list):
        for value in node:
            _canonical_numbers(value)


# ---------------------------------------------------------------- expressions


def _check_expressions(op: dict[str, Any]) -> None:
    """Every ``#name`` and ``:value`` an expression uses is defined by the request (else DynamoDB's
    ValidationException)."""
    names = op.get("ExpressionAttributeNames") or {}
    values = op.get("ExpressionAttributeValues") or {}
    for field in EXPRESSIONS:
        expression = op.get(field)
        if not isinstance(expression, str):
            continue
        for ref in VALUE_REF.findall(expression):
            if ref not in values:
                raise _invalid(
                    f"Invalid {field}: An expression attribute value used in expression is not defined; "
                    f"attribute value: {ref}"
                )
        for ref in NAME_REF.findall(expression):
            if ref not in names:
                raise _invalid(
                    f"Invalid {field}: An expression attribute name used in the document path is not defined; "
                    f"attribute name: {ref}"
                )


# ---------------------------------------------------------------- batches


def _table_key(backend: Any, table_name: str, attributes: dict[str, Any]) -> tuple[Any, ...] | None:
    """The key of an item or key map, as DynamoDB compares keys (numbers already canonical); None for an unknown
    table."""
    try:
        table = backend.get_table(table_name)
    except Exception:  # noqa: BLE001 - moto's own handler reports the missing table
        return None
    names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    return (table_name, *(_json(attributes.get(n), sort_keys=True) for n in names))


def _check_batch_write(handler: Any) -> None:
    items = handler.body.get("RequestItems")
    if not items:
        raise _invalid(
            "1 validation error detected: Value at 'RequestItems' failed to satisfy constraint: "
            "Member must have length greater than or equal to 1"
        )
    total = 0
    for table_name, requests in items.items():
        if not requests:
            raise _invalid(
                f"1 validation error detected: Value at 'requestItems.{table_name}.member' failed to satisfy "
                "constraint: Member must have length greater than or equal to 1"
            )
        total += len(requests)
    if total > BATCH_WRITE_MAX:
        raise _invalid(
            "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Map value must satisfy "
            f"constraint: [Member must have length less than or equal to {BATCH_WRITE_MAX}, "
            "Member must have length greater than or equal to 1]"
        )
    _canonical_numbers(items)
    seen: set[tuple[Any, ...]] = set()
    for table_name, requests in items.items():
        for request in requests:
            body = request.get("PutRequest", {}).get("Item") or request.get("DeleteRequest", {}).get("Key") or {}
            key = _table_key(handler.dynamodb_backend, table_name, body)
            if key is not None and key in seen:
                raise _invalid("Provided list of item keys contains duplicates")
            if key is not None:
                seen.add(key)


def _check_batch_get(handler: Any) -> None:
    items = handler.body.get("RequestItems")
    if not items:
        raise _invalid(
            "1 validation error detected: Value at 'RequestItems' failed to satisfy constraint: "
            "Member must have length greater than or equal to 1"
        )
    for table_name, wanted in items.items():
        if not wanted.get("Keys"):
            raise _invalid(
                f"1 validation error detected: Value at 'requestItems.{table_name}.member.keys' failed to satisfy "
                "constraint: Member must have length greater than or equal to 1"
            )
        _check_expressions(wanted)
    _canonical_numbers(items)
    seen: set[tuple[Any, ...]] = set()
    for table_name, wanted in items.items():
        if len(wanted["Keys"]) > BATCH_GET_MAX:
            break  # moto's own answer (Member must have length less than or equal to 100)
        for key_map in wanted["Keys"]:
            key = _table_key(handler.dynamodb_backend, table_name, key_map)
            if key is not None and key in seen:
                raise _invalid("Provided list of item keys contains duplicates")
            if key is not None:
                seen.add(key)


# ---------------------------------------------------------------- reads and single writes


def _check_limit(handler: Any) -> None:
    limit = handler.body.get("Limit")
    if limit is not None and int(limit) < 1:
        raise _invalid(
            f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: "
            "Member must have value greater than or equal to 1"
        )


def _check_read(handler: Any) -> None:
    _check_limit(handler)
    _check_expressions(handler.body)
    _canonical_numbers(handler.body.get("ExpressionAttributeValues"))
    _canonical_numbers(handler.body.get("ExclusiveStartKey"))


def _check_single_write(handler: Any) -> None:
    _check_expressions(handler.body)
    for field in ("Item", "Key", "ExpressionAttributeValues"):
        _canonical_numbers(handler.body.get(field))


# ---------------------------------------------------------------- transactions


def _check_transaction(handler: Any) -> Any:
    """Size, count, expressions and numbers of a TransactWriteItems; a reused token answers as DynamoDB does.

    Returns the answer to give without applying anything (a retry of a transaction already applied), or None.
    """
    body = handler.body
    operations = body.get("TransactItems") or []
    if len(operations) > TRANSACT_MAX_ITEMS:
        raise _invalid(
            "1 validation error detected at 'transactItems' failed to satisfy constraint: "
            f"Member must have length less than or equal to {TRANSACT_MAX_ITEMS}"
        )
    if len(_json(body).encode()) > TRANSACT_MAX_BYTES:
        raise _invalid("Transaction request exceeds the 4MB transaction size limit")
    for operation in operations:
        for op in operation.values():
            if isinstance(op, dict):
                _check_expressions(op)
    _canonical_numbers(operations)
    token = body.get("ClientRequestToken")
    if not token:
        return None
    from moto.dynamodb.exceptions import DynamodbException

    payload = {k: v for k, v in body.items() if k != "ClientRequestToken"}
    digest = hashlib.sha256(_json(payload, sort_keys=True).encode()).hexdigest()
    now = time.monotonic()
    for old in [t for t, (_, at) in _tokens.items() if now - at > TOKEN_SECONDS]:
        del _tokens[old]
    seen = _tokens.get(token)
    if seen is None:
        _tokens[token] = (digest, now)
        return None
    if seen[0] != digest:
        raise DynamodbException(
            "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
            "Request token already in use for another request with a different payload",
        )
    from moto.core.responses import ActionResult

    return ActionResult({})  # the same transaction again within 10 minutes: applied once, answered as a success


# ---------------------------------------------------------------- install

CHECKS = {
    "batch_write_item": _check_batch_write,
    "batch_get_item": _check_batch_get,
    "query": _check_read,
    "scan": _check_read,
    "get_item": _check_read,
    "put_item": _check_single_write,
    "update_item": _check_single_write,
    "delete_item": _check_single_write,
    "transact_write_items": _check_transaction,
}


def _checked(method: Any, check: Any) -> Any:
    @functools.wraps(method)
    def patched(self: Any) -> Any:
        early = check(self)
        if early is not None:
            return early
        return method(self)

    return patched


def install() -> None:
    from moto.dynamodb.responses import DynamoHandler

    for name, check in CHECKS.items():
        replace(DynamoHandler, name, _checked(getattr(DynamoHandler, name), check))
