"""A Query with a Limit on a base table costs its page, not its partition.

MiniStack 1.5.33 answers every Query by taking the whole partition, sorting it, evaluating the
key condition on each item, and only then cutting the page: 0.5–3 s for a page of 20 at a
20,000-item partition (a conversation of the twin's size). Our reads always send a ``Limit``.

Here, when the request is the plain shape (base table, string hash and range keys, a
``KeyConditionExpression`` of ``pk = :v`` with at most one range condition among ``=``, ``<``,
``<=``, ``>``, ``>=``, ``BETWEEN``, ``begins_with``, a ``Limit``), the partition's sort keys are
sorted (strings: code point order is DynamoDB's UTF-8 byte order), the range found by bisection,
moved past the ``ExclusiveStartKey``, cut to ``Limit`` items in the requested direction, and
MiniStack's own ``_query`` answers over just that slice (the partition is swapped for it during
the call; requests run one at a time on MiniStack's event loop). So every answer, error, filter,
projection, ``LastEvaluatedKey`` and 1 MB page rule is still MiniStack's. Any other shape goes to
MiniStack untouched.
"""

from __future__ import annotations

import bisect
import re
from typing import Any

_NAME = r"(#?[A-Za-z0-9_.\-]+)"
_VALUE = r"(:[A-Za-z0-9_]+)"
HASH_ONLY = re.compile(rf"^\s*{_NAME}\s*=\s*{_VALUE}\s*$")
WITH_RANGE = re.compile(rf"^\s*{_NAME}\s*=\s*{_VALUE}\s+(?i:AND)\s+(.+?)\s*$")
COMPARE = re.compile(rf"^{_NAME}\s*(<=|>=|=|<|>)\s*{_VALUE}$")
BETWEEN = re.compile(rf"^{_NAME}\s+(?i:BETWEEN)\s+{_VALUE}\s+(?i:AND)\s+{_VALUE}$")
BEGINS = re.compile(rf"^(?i:begins_with)\s*\(\s*{_NAME}\s*,\s*{_VALUE}\s*\)$")

_ORIGINAL: list[Any] = []


def _text(data: dict[str, Any], ref: str) -> str | None:
    value = (data.get("ExpressionAttributeValues") or {}).get(ref)
    return value.get("S") if isinstance(value, dict) and set(value) == {"S"} else None


def _name(data: dict[str, Any], ref: str) -> str:
    return str((data.get("ExpressionAttributeNames") or {}).get(ref, "")) if ref.startswith("#") else ref


def _bounds(keys: list[str], condition: str | None, data: dict[str, Any], sk_name: str) -> tuple[int, int] | None:
    """The index range of ``keys`` the range condition selects; None when it is not a shape we know."""
    if condition is None:
        return 0, len(keys)
    if m := COMPARE.match(condition):
        name, op, ref = m.groups()
        value = _text(data, ref)
        if _name(data, name) != sk_name or value is None:
            return None
        lo, hi = bisect.bisect_left(keys, value), bisect.bisect_right(keys, value)
        return {"=": (lo, hi), "<": (0, lo), "<=": (0, hi), ">": (hi, len(keys)), ">=": (lo, len(keys))}[op]
    if m := BETWEEN.match(condition):
        name, low_ref, high_ref = m.groups()
        low, high = _text(data, low_ref), _text(data, high_ref)
        if _name(data, name) != sk_name or low is None or high is None or low > high:
            return None  # MiniStack answers a reversed BETWEEN with its ValidationException
        return bisect.bisect_left(keys, low), bisect.bisect_right(keys, high)
    if m := BEGINS.match(condition):
        name, ref = m.groups()
        prefix = _text(data, ref)
        if _name(data, name) != sk_name or not prefix or ord(prefix[-1]) >= 0x10FFFF:
            return None
        after = prefix[:-1] + chr(ord(prefix[-1]) + 1)  # every string with the prefix sorts before this one
        return bisect.bisect_left(keys, prefix), bisect.bisect_left(keys, after)
    return None


def _slice(data: dict[str, Any]) -> tuple[dict[str, Any], str, dict[str, Any]] | None:
    """(the table's items, the partition key, the page's slice of the partition), or None to leave the request alone."""
    from ministack.services import dynamodb as ms

    limit = data.get("Limit")
    expression = data.get("KeyConditionExpression")
    if (
        not isinstance(limit, int)
        or limit < 1
        or not isinstance(expression, str)
        or data.get("IndexName")
        or data.get("KeyConditions")
    ):
        return None
    table = ms._tables.get(ms._normalize_table_name(data.get("TableName")))
    if not table or not table.get("sk_name"):
        return None
    pk_name, sk_name = table["pk_name"], table["sk_name"]
    if ms._get_attr_type(table, pk_name) != "S" or ms._get_attr_type(table, sk_name) != "S":
        return None
    m = HASH_ONLY.match(expression) or WITH_RANGE.match(expression)
    if not m:
        return None
    hash_ref, value_ref = m.group(1), m.group(2)
    pk_value = _text(data, value_ref)
    if _name(data, hash_ref) != pk_name or pk_value is None:
        return None
    partition = table["items"].get(pk_value)
    if not partition or len(partition) <= limit:
        return None  # nothing to gain
    keys = sorted(partition)
    bounds = _bounds(keys, m.group(3) if m.re is WITH_RANGE else None, data, sk_name)
    if bounds is None:
        return None
    lo, hi = bounds
    forward = data.get("ScanIndexForward", True) is not False
    start = data.get("ExclusiveStartKey")
    if start:
        start_pk, start_sk = (start.get(pk_name) or {}).get("S"), (start.get(sk_name) or {}).get("S")
        if start_pk != pk_value or start_sk is None or set(start) != {pk_name, sk_name}:
            return None  # MiniStack's own checks answer a start key of another shape
        if forward:
            lo = max(lo, bisect.bisect_right(keys, start_sk))
        else:
            hi = min(hi, bisect.bisect_left(keys, start_sk))
    chosen = keys[lo : min(hi, lo + limit)] if forward else keys[max(lo, hi - limit) : hi]
    return table["items"], pk_value, {k: partition[k] for k in chosen}


def query(data: dict[str, Any]) -> Any:
    try:
        found = _slice(data)
    except Exception:  # noqa: BLE001 - anything unexpected: MiniStack answers it as it would have
        found = None
    if found is None:
        return _ORIGINAL[0](data)
    items, pk_value, page = found
    whole = items[pk_value]
    items[pk_value] = page
    try:
        return _ORIGINAL[0](data)
    finally:
        items[pk_value] = whole


def install() -> None:
    from ministack.services import dynamodb as ms

    if not _ORIGINAL:
        _ORIGINAL.append(ms._query)
    ms._query = query
