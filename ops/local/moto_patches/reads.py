"""Query and Scan that read only the page they return, with moto's answers.

moto 5.2.5's ``Table.query`` sorts every item of the table to find one partition's, then walks
it from the start to the ``ExclusiveStartKey``; ``Table.scan`` sorts the table again for every
page. These replacements take the same arguments and return the same
``(items, scanned_count, last_evaluated_key)``, reading from ``index.SortedIndex``:

- the partition is one dict lookup, the key condition a bisection of its sorted entries
  (=, <, <=, >, >=, BETWEEN, begins_with are each one contiguous run), the start key another;
- then moto's own page loop runs over that run only: the same Limit and 1 MB checks, the same
  quirk that a page ends with a LastEvaluatedKey when an item *outside* the key condition
  follows a full page, the same GSI projection, FilterExpression and ProjectionExpression
  applied afterwards;
- Scan walks the table's items in moto's order (hash, then range), kept sorted until the
  next write, from a bisection to the start key.

Requests this does not reproduce exactly are handed to moto's own method: legacy
QueryFilter/ScanFilter, Scan of an index, LSIs, tables or indexes ``index.shape_of`` declines,
odd key values (wrong types, missing start-key attributes), ``Limit`` below 1. So are requests
on an index found out of step with its table (logged as a warning, then rebuilt).

Deliberate differences, none visible in an answer: moto deep-copies the items of a page before
returning them; here the items go to the response as they are, since nothing downstream changes
them (the projections build new items, the serializer new dicts). And moto checks the 1 MB
limit also for the items it walks past while nothing has matched yet, which can only fail (an
IndexError, a 500) on a single item over 1 MB: moto refuses items over 405,000 bytes, except
that nested updates can grow one past it.
"""

from __future__ import annotations

import functools
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from typing import Any

from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import RESULT_SIZE_LIMIT, Table

from ops.local.moto_patches import index as ix

KEY_CONDITIONS = ("=", "<", "<=", ">", ">=", "BETWEEN", "BEGINS_WITH")  # what validate_schema passes on, upper-cased
Answer = tuple[list[Item], int, dict[str, Any] | None]


class _Stale(Exception):
    """An index entry points at an item that is gone or has moved: the index missed a write."""


def item_size(item: Item) -> int:
    """``Item.size()``, with strings and numbers measured inline (it is computed for every item read)."""
    total = 0
    for name, value in item.attrs.items():
        total += len(name.encode("utf-8"))
        kind, v = value.type, value.value
        if kind == "S" and type(v) is str:
            total += len(v.encode("utf-8"))  # DynamoType.size: bytesize(value)
        elif kind == "N":
            total += len(str(v))  # DynamoType.size: len(str(value))
        else:
            total += value.size()
    return total


def _plain_limit(limit: Any) -> bool:
    return limit is None or (type(limit) is int and limit >= 1)


def _first(entry: ix.Sort) -> Any:
    return entry[0]


def _block(order: list[ix.Sort], op: str | None, values: list[Any]) -> tuple[int, int]:
    """The run [lo, hi) of ``order`` whose index range value meets the key condition."""
    n = len(order)
    if op is None:
        return 0, n
    v = values[0]
    if op == "=":
        return bisect_left(order, v, key=_first), bisect_right(order, v, key=_first)
    if op == "<":
        return 0, bisect_left(order, v, key=_first)
    if op == "<=":
        return 0, bisect_right(order, v, key=_first)
    if op == ">":
        return bisect_right(order, v, key=_first), n
    if op == ">=":
        return bisect_left(order, v, key=_first), n
    if op == "BETWEEN":
        lo = bisect_left(order, v, key=_first)
        return lo, max(lo, bisect_right(order, values[1], key=_first))
    # BEGINS_WITH: cutting sorted strings to the prefix's length keeps them sorted, so the
    # values that start with it are one run
    width = len(v)

    def cut(e: ix.Sort) -> Any:
        return e[0][:width]

    return bisect_left(order, v, key=cut), bisect_right(order, v, key=cut)


def _start_key(esk: dict[str, Any], shape: ix.Shape) -> list[tuple[DynamoType, Any]] | None:
    """The start key's (value, raw) for hash, range, table hash, table range; None if moto should judge it."""
    out = []
    for attr, kind in (
        (shape.hash_attr, shape.hash_kind),
        (shape.range_attr, shape.range_kind),
        (shape.table_hash, shape.table_hash_kind),
        (shape.table_range, shape.table_range_kind),
    ):
        value = esk.get(attr)
        if not isinstance(value, dict) or len(value) != 1:
            return None
        try:
            typed = DynamoType(value)
        except Exception:
            return None
        raw = ix.raw(typed, kind)
        if raw is None:
            return None
        out.append((typed, raw))
    return out


def _page(
    table: Table,
    fetch: Callable[[int], Item],
    block: Iterable[int],
    trailing: Iterable[int],
    limit: int | None,
    index_name: str | None,
) -> tuple[list[Item], dict[str, Any] | None]:
    """moto's page loop over the matching run, then over what follows it (see the module docstring)."""
    results: list[Item] = []
    size = 0
    for i in block:
        item = fetch(i)
        size_of = item_size(item)
        if len(results) == limit or size + size_of > RESULT_SIZE_LIMIT:
            return results, table._get_last_evaluated_key(results[-1], index_name)
        results.append(item)
        size += size_of
    if results:
        # moto keeps walking the partition after the last match: the next item it meets ends
        # the page with a LastEvaluatedKey if the page is full, or if that item would not fit
        for i in trailing:
            if len(results) == limit or size + item_size(fetch(i)) > RESULT_SIZE_LIMIT:
                return results, table._get_last_evaluated_key(results[-1], index_name)
    return results, None


def fast_query(
    table: Table,
    hash_key: DynamoType | None,
    range_comparison: str | None,
    limit: Any,
    exclusive_start_key: Any,
    scan_index_forward: Any,
    projection_expressions: Any,
    index_name: str | None,
    consistent_read: bool,
    filter_expression: Any,
    hash_key_conditions: Any,
    range_key_conditions: Any,
) -> Answer | None:
    """Table.query's answer from the index, or None to let moto answer."""
    if (
        not _plain_limit(limit)
        or not isinstance(scan_index_forward, bool)
        or (index_name is not None and consistent_read)
    ):
        return None
    if not hash_key_conditions or len(hash_key_conditions) != 1 or len(range_key_conditions or ()) > 1:
        return None
    tables = ix.for_table(table)
    index = tables.index(table, index_name) if tables is not None else None
    if index is None:
        return None
    shape = index.shape
    hash_attr, hash_value = hash_key_conditions[0]
    if (
        hash_attr != shape.hash_attr
        or not isinstance(hash_value, DynamoType)
        or ix.raw(hash_value, shape.hash_kind) is None
    ):
        return None
    if index_name is None and (hash_key is None or hash_key != hash_value):
        return None
    op, bounds = None, []
    if range_key_conditions:
        range_attr, op, values = range_key_conditions[0]
        if (
            range_attr != shape.range_attr
            or op not in KEY_CONDITIONS
            or op != range_comparison
            or len(values) != (2 if op == "BETWEEN" else 1)
        ):
            return None
        bounds = [ix.raw(v, shape.range_kind) for v in values]
        if any(b is None for b in bounds) or (op == "BEGINS_WITH" and shape.range_kind != "S"):
            return None
    elif range_comparison:
        return None

    forward = scan_index_forward
    part = index.partitions.get(hash_value)
    if part is not None and part.odd:
        return None
    order = part.order if part is not None else []
    keys = part.keys if part is not None else []
    if index_name is None:
        stored = table.items.get(hash_value)
        if stored is not None and not isinstance(stored, dict):
            return None
        if len(order) != len(stored or ()):
            ix.forget(table, f"partition {hash_value} holds {len(stored or ())} items, the index {len(order)}")
            return None

    # the start key: moto skips every item that sorts at or before it in the reading direction
    n = len(order)
    allowed_lo, allowed_hi = 0, n
    if exclusive_start_key is not None:
        if not isinstance(exclusive_start_key, dict):
            return None
        start = _start_key(exclusive_start_key, shape)
        if start is None:
            return None
        if start[0][0] != hash_value:
            # moto decides on the first attribute that differs: the whole partition is before or after the key
            if (ix.raw(hash_value, shape.hash_kind) < start[0][1]) == forward:
                return [], 0, None
        elif forward:
            allowed_lo = bisect_right(order, (start[1][1], start[2][1], start[3][1]))
        else:
            allowed_hi = bisect_left(order, (start[1][1], start[2][1], start[3][1]))

    lo, hi = _block(order, op, bounds)
    if forward:
        block: Iterable[int] = range(max(lo, allowed_lo), hi)
        trailing: Iterable[int] = range(max(hi, allowed_lo), n)
    else:
        block = range(min(hi, allowed_hi) - 1, lo - 1, -1)
        trailing = range(min(lo, allowed_hi) - 1, -1, -1)

    def fetch(i: int) -> Item:
        item = ix.lookup(table, keys[i])
        if item is None:
            raise _Stale(f"{keys[i]} is gone")
        if index_name is not None:
            now = item.attrs.get(shape.hash_attr)
            if (
                now is None
                or now != hash_value
                or ix.raw(item.attrs.get(shape.range_attr), shape.range_kind) != order[i][0]
            ):
                raise _Stale(f"{keys[i]} has moved")
        return item

    try:
        results, last_evaluated_key = _page(table, fetch, block, trailing, limit, index_name)
    except _Stale as err:
        ix.forget(table, str(err))
        return None
    scanned_count = len(results)
    # from here on exactly moto's tail of Table.query
    if index_name:
        gsi = table.get_index(index_name)
        results = [gsi.project(r) for r in results]
    if filter_expression is not None:
        results = [item for item in results if filter_expression.expr(item)]
    if projection_expressions:
        results = [r.project(projection_expressions) for r in results]
    return results, scanned_count, last_evaluated_key


def fast_scan(
    table: Table,
    filters: Any,
    limit: Any,
    exclusive_start_key: Any,
    filter_expression: Any,
    index_name: str | None,
    projection_expression: Any,
    segments: Any,
) -> Answer | None:
    """Table.scan's answer (no index, no ScanFilter) from the sorted key list, or None to let moto answer."""
    if index_name or filters or not _plain_limit(limit):
        return None
    if segments != (None, None) and not (
        isinstance(segments, tuple) and len(segments) == 2 and all(type(s) is int for s in segments)
    ):
        return None
    tables = ix.for_table(table)
    shape = ix.shape_of(table, None)
    order_keys = tables.scan_order(table) if tables is not None else None
    if shape is None or order_keys is None:
        return None
    order, keys, items = order_keys
    stored = sum(len(part) for part in table.items.values())
    if stored != len(order):
        ix.forget(table, f"the table holds {stored} items, the scan order {len(order)}")
        return None
    start = 0
    if exclusive_start_key is not None:
        if not isinstance(exclusive_start_key, dict):
            return None
        key = _start_key(exclusive_start_key, shape)
        if key is None:
            return None
        start = bisect_right(
            order, (key[0][1], key[1][1])
        )  # moto skips items at or before the key in (hash, range) order

    results: list[Item] = []
    size = 0
    last_evaluated_key = None
    in_segment, last_hash = True, None
    for i in range(start, len(order)):
        item = items[i]
        if keys[i][0] is not last_hash:  # segment membership hangs on the hash key only
            last_hash, in_segment = keys[i][0], item.is_within_segment(segments)
        if not in_segment:
            continue
        size_of = item_size(item)
        if len(results) == limit or size + size_of > RESULT_SIZE_LIMIT:
            last_evaluated_key = table._get_last_evaluated_key(results[-1], None)
            break
        results.append(item)
        size += size_of
    scanned_count = len(results)
    # from here on exactly moto's tail of Table.scan
    if filter_expression is not None:
        results = [item for item in results if filter_expression.expr(item)]
    if projection_expression:
        results = [r.project(projection_expression) for r in results]
    return results, scanned_count, last_evaluated_key


def _query(original: Any) -> Any:
    @functools.wraps(original)
    def query(
        self: Table,
        hash_key: Any,
        range_comparison: Any,
        range_objs: Any,
        limit: Any,
        exclusive_start_key: Any,
        scan_index_forward: Any,
        projection_expressions: Any,
        index_name: Any = None,
        consistent_read: Any = False,
        filter_expression: Any = None,
        hash_key_conditions: Any = None,
        range_key_conditions: Any = None,
        **filter_kwargs: Any,
    ) -> Answer:
        answer = None
        if not filter_kwargs:
            answer = fast_query(
                self,
                hash_key,
                range_comparison,
                limit,
                exclusive_start_key,
                scan_index_forward,
                projection_expressions,
                index_name,
                consistent_read,
                filter_expression,
                hash_key_conditions,
                range_key_conditions,
            )
        if answer is not None:
            return answer
        return original(
            self,
            hash_key,
            range_comparison,
            range_objs,
            limit,
            exclusive_start_key,
            scan_index_forward,
            projection_expressions,
            index_name,
            consistent_read,
            filter_expression,
            hash_key_conditions=hash_key_conditions,
            range_key_conditions=range_key_conditions,
            **filter_kwargs,
        )

    return query


def _scan(original: Any) -> Any:
    @functools.wraps(original)
    def scan(
        self: Table,
        filters: Any,
        limit: Any,
        exclusive_start_key: Any,
        filter_expression: Any = None,
        index_name: Any = None,
        consistent_read: Any = False,
        projection_expression: Any = None,
        segments: Any = (None, None),
    ) -> Answer:
        answer = fast_scan(
            self, filters, limit, exclusive_start_key, filter_expression, index_name, projection_expression, segments
        )
        if answer is not None:
            return answer
        return original(
            self,
            filters,
            limit,
            exclusive_start_key,
            filter_expression,
            index_name,
            consistent_read,
            projection_expression,
            segments=segments,
        )

    return scan


def install() -> None:
    from ops.local.moto_patches import replace

    replace(Table, "query", _query(Table.query))
    replace(Table, "scan", _scan(Table.scan))
