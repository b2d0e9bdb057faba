"""DynamoDB table operations: schema-load, list, drop, streaming scan and a batch writer.

All functions take an injected low-level ``dynamodb`` client.
"""

from __future__ import annotations

import base64
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ops.aws import call, delay, error_code, items, pages, translate
from ops.errors import CloudError, ConfigError, ConflictError, NotFoundError
from ops.table_spec import Protections, TableSpec, create_table_kwargs, differences, shape, shape_of_description

BATCH_LIMIT = 25  # AWS's BatchWriteItem maximum; moto accepts more, so we enforce it here
RETRYABLE = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
}


def missing_table(table: str, stack: str | None = None) -> str:
    """What to say when the messages table is not there (a twin's is schema-loaded, a cloud one is Pulumi's)."""
    where = f" on stack {stack!r}" if stack else ""
    flag = f" --stack {stack}" if stack else ""
    return (
        f"table {table!r} does not exist{where}: run `invoke ddb.schema-load{flag}` on a twin, `invoke infra.up{flag}` "
        "in the cloud"
    )


def describe(client: Any, table: str) -> dict[str, Any] | None:
    """DescribeTable's ``Table``, or None when there is no such table."""
    try:
        return call(client.describe_table, f"DescribeTable {table}", TableName=table)["Table"]  # type: ignore[no-any-return]
    except NotFoundError:
        return None


def require_table(client: Any, table: str, stack: str) -> dict[str, Any]:
    desc = describe(client, table)
    if desc is None:
        raise NotFoundError(missing_table(table, stack))
    return desc


@dataclass
class SchemaResult:
    table: str
    created: bool


def schema_load(client: Any, spec: TableSpec, wait_seconds: float = 120) -> SchemaResult:
    """Create the table from the spec and wait until ACTIVE; an identical table is fine, a different one is an error."""
    existing = describe(client, spec.name)
    if existing is not None:
        diffs = differences(shape(spec), shape_of_description(existing))
        if diffs:
            raise ConflictError(
                f"table {spec.name!r} exists but differs from the spec: "
                + "; ".join(diffs)
                + " (drop it with `invoke ddb.drop` to re-create)"
            )
        return SchemaResult(spec.name, created=False)
    call(client.create_table, f"CreateTable {spec.name}", **create_table_kwargs(spec))
    _wait(
        lambda: (describe(client, spec.name) or {}).get("TableStatus") == "ACTIVE",
        wait_seconds,
        f"table {spec.name} to become ACTIVE",
    )
    return SchemaResult(spec.name, created=True)


# The parts `check_table` compares, in the order it reports them.
SHAPE_PARTS = ("key schema", "attribute definitions", "indexes", "stream view type", "billing mode")
PROTECTION_PARTS = ("point-in-time recovery", "deletion protection", "encryption")


@dataclass
class TableCheck:
    """A live table compared with the spec and the program's protections; nothing was changed."""

    table: str
    differences: list[str]
    unseen: list[str]  # parts these credentials may not read (AccessDenied): neither matching nor differing

    @property
    def compared(self) -> list[str]:
        return [p for p in (*SHAPE_PARTS, *PROTECTION_PARTS) if p not in self.unseen]


def _live_protections(client: Any, table: str, desc: dict[str, Any]) -> dict[str, Any]:
    """Point-in-time recovery, deletion protection and encryption as the table has them; None where not visible."""
    sse = desc.get("SSEDescription") or {}
    found: dict[str, Any] = {
        "deletion protection": desc.get("DeletionProtectionEnabled"),
        # no SSEDescription: DynamoDB's default, a key AWS owns (no KMS key to audit or revoke)
        "encryption": sse.get("SSEType", "KMS")
        if sse.get("Status") in ("ENABLED", "ENABLING", "UPDATING")
        else "DEFAULT",
    }
    try:
        backups = call(client.describe_continuous_backups, f"DescribeContinuousBackups {table}", TableName=table)[
            "ContinuousBackupsDescription"
        ]
        found["point-in-time recovery"] = (backups.get("PointInTimeRecoveryDescription") or {}).get(
            "PointInTimeRecoveryStatus"
        ) == "ENABLED"
    except CloudError as err:
        # not allowed to look; or an engine without backups (a user's own endpoint: UnknownOperationException, never
        # AWS)
        if error_code(err) not in ("AccessDeniedException", "UnknownOperationException"):
            raise
        found["point-in-time recovery"] = None
    return found


def check_table(client: Any, spec: TableSpec, expected: Protections, stack: str) -> TableCheck:
    """Compare the live table with the spec (keys, GSI, stream, billing) and the protections; create nothing.

    A missing table is a NotFoundError: in the cloud the table is the Pulumi program's.
    """
    desc = describe(client, spec.name)
    if desc is None:
        raise NotFoundError(
            f"table {spec.name!r} of stack {stack!r} does not exist in the cloud: it belongs to the Pulumi program, "
            f"create it with `invoke infra.up --stack {stack}` (schema-load --cloud only compares)"
        )
    diffs = differences(shape(spec), shape_of_description(desc))
    want = {
        "point-in-time recovery": expected.point_in_time_recovery,
        "deletion protection": expected.deletion_protection,
        "encryption": expected.encryption,
    }
    have = _live_protections(client, spec.name, desc)
    unseen = []
    for part in PROTECTION_PARTS:
        if have[part] is None:
            unseen.append(part)
        elif have[part] != want[part]:
            diffs.append(f"{part}: expected {_shown(want[part])}, found {_shown(have[part])}")
    return TableCheck(spec.name, diffs, unseen)


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return {"KMS": "KMS key", "DEFAULT": "AWS owned key (DynamoDB's default)"}.get(str(value), str(value))


def _wait(done: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    delay = 0.05
    while not done():
        if time.monotonic() > deadline:
            raise CloudError(f"timed out after {seconds:.0f}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


def list_tables(client: Any) -> list[str]:
    return list(items(client, "list_tables", "ListTables", "TableNames"))


def drop(client: Any, table: str, stack: str, wait_seconds: float = 120) -> None:
    require_table(client, table, stack)
    call(client.delete_table, f"DeleteTable {table}", not_found=missing_table(table, stack), TableName=table)
    _wait(lambda: describe(client, table) is None, wait_seconds, f"table {table} to be deleted")


def count_items(client: Any, table: str, pk: str, below: str | None = None) -> int:
    """How many items a partition holds (COUNT query, every page); ``below``: only those whose sort key is less."""
    request = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk" + (" AND sk < :below" if below else ""),
        "ExpressionAttributeValues": {":pk": {"S": pk}} | ({":below": {"S": below}} if below else {}),
        "Select": "COUNT",
    }
    return sum(
        page["Count"]
        for page in pages(client, "query", f"Query COUNT {pk} on {table}", not_found=missing_table(table), **request)
    )


# ------------------------------------------------------------------------------------ scan
def plain(value: dict[str, Any]) -> Any:
    """One DynamoDB attribute value as JSON-ready Python (strings take the fast path)."""
    ((kind, v),) = value.items()
    if kind == "S":
        return v
    if kind == "N":
        d = Decimal(v)
        return int(d) if d == d.to_integral_value() else float(d)
    if kind == "BOOL":
        return v
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: plain(x) for k, x in v.items()}
    if kind == "L":
        return [plain(x) for x in v]
    if kind in ("SS",):
        return sorted(v)
    if kind == "NS":
        return sorted(plain({"N": x}) for x in v)
    if kind == "B":
        return base64.b64encode(v).decode()  # botocore hands binary over decoded; JSON wants text
    if kind == "BS":
        return sorted(base64.b64encode(x).decode() for x in v)
    return v


def plain_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: plain(v) for k, v in item.items()}


_DONE = object()


def scan(
    client: Any,
    table: str,
    segments: int = 1,
    page_size: int | None = None,
    limit: int | None = None,
    raw: bool = False,
) -> Iterator[dict[str, Any]]:
    """Every item of the table, page by page, as plain dicts (``raw``: as DynamoDB returns them); memory stays flat.

    With ``segments > 1`` the segments are read in parallel threads that hand pages through a
    small bounded queue, so a slow consumer (a pipe) slows the readers instead of filling memory.
    """
    convert = _as_is if raw else plain_item
    if segments < 1:
        raise ConfigError(f"segments must be at least 1, not {segments}")
    if limit is not None and limit <= 0:
        return
    base: dict[str, Any] = {"TableName": table}
    if page_size:
        base["Limit"] = page_size
    if segments == 1:
        yield from _scan_serial(client, base, limit, convert)
        return
    queued: queue.Queue[Any] = queue.Queue(maxsize=segments * 2)
    stop = threading.Event()

    def reader(segment: int) -> None:
        try:
            for page in _scan_pages(client, dict(base, Segment=segment, TotalSegments=segments)):
                if stop.is_set():
                    break
                _put(queued, page.get("Items", []), stop)
        except BaseException as err:  # handed to the consumer, which re-raises it
            _put(queued, err, stop)
        finally:
            _put(queued, _DONE, stop)

    threads = [threading.Thread(target=reader, args=(s,), daemon=True) for s in range(segments)]
    for t in threads:
        t.start()
    done = 0
    produced = 0
    try:
        while done < segments:
            page = queued.get()
            if page is _DONE:
                done += 1
                continue
            if isinstance(page, BaseException):
                raise page
            for item in page:
                yield convert(item)
                produced += 1
                if limit is not None and produced >= limit:
                    return
    finally:
        stop.set()
        while any(t.is_alive() for t in threads):  # unblock readers waiting on a full queue
            try:
                queued.get_nowait()
            except queue.Empty:
                time.sleep(0.01)


def _put(queued: queue.Queue[Any], value: Any, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            queued.put(value, timeout=0.1)
            return
        except queue.Full:
            continue


def _scan_pages(client: Any, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    table = request["TableName"]
    return pages(client, "scan", f"Scan {table}", not_found=missing_table(table), **request)


def _as_is(item: dict[str, Any]) -> dict[str, Any]:
    return item


def _scan_serial(
    client: Any, request: dict[str, Any], limit: int | None, convert: Callable[[dict[str, Any]], dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    produced = 0
    for page in _scan_pages(client, request):
        for item in page.get("Items", []):
            yield convert(item)
            produced += 1
            if limit is not None and produced >= limit:
                return


# ------------------------------------------------------------------------------ batch write
def _chunks(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass
class WriteStats:
    written: int = 0
    requests: int = 0
    retried_items: int = 0


def write_batch(
    client: Any,
    table: str,
    requests: list[dict[str, Any]],
    stats: WriteStats,
    lock: threading.Lock,
    max_attempts: int = 10,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """One BatchWriteItem of at most 25 requests, retrying UnprocessedItems and throttling with backoff."""
    if len(requests) > BATCH_LIMIT:
        raise ValueError(f"a batch holds at most {BATCH_LIMIT} requests, not {len(requests)}")
    pending = requests
    for attempt in range(1, max_attempts + 1):
        try:
            resp = client.batch_write_item(RequestItems={table: pending})
        except (ClientError, BotoCoreError) as err:
            if error_code(err) not in RETRYABLE:
                raise translate(err, f"BatchWriteItem {table}", not_found=missing_table(table)) from None
            unprocessed = pending  # throttled as a whole: the same requests again
        else:
            unprocessed = resp.get("UnprocessedItems", {}).get(table, [])
        with lock:
            stats.requests += 1
            stats.written += len(pending) - len(unprocessed)
            stats.retried_items += len(unprocessed)
        if not unprocessed:
            return
        pending = unprocessed
        sleep(delay(attempt, base=0.05))
    raise CloudError(
        f"BatchWriteItem {table}: {len(pending)} items still unprocessed after {max_attempts} attempts (throttled): "
        "retry later"
    )


def batch_write(
    client: Any,
    table: str,
    items: Iterable[dict[str, Any]],
    workers: int = 4,
    on_progress: Callable[[int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> WriteStats:
    """Put DynamoDB-JSON items in batches of 25 with ``workers`` batches in flight.

    In-flight batches are bounded, so a generator of a million items never sits in memory.
    """
    stats = WriteStats()
    lock = threading.Lock()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        inflight: set[Future[None]] = set()
        for chunk in _chunks(items, BATCH_LIMIT):
            reqs = [{"PutRequest": {"Item": item}} for item in chunk]
            fut = pool.submit(write_batch, client, table, reqs, stats, lock, sleep=sleep)
            fut.add_done_callback(lambda f, n=len(reqs): on_progress(n) if on_progress and not f.exception() else None)
            inflight.add(fut)
            if len(inflight) >= workers * 2:
                finished, inflight = wait(inflight, return_when=FIRST_COMPLETED)
                for f in finished:
                    f.result()
        for f in inflight:
            f.result()
    return stats


def delete_keys(
    client: Any, table: str, keys: list[dict[str, Any]], sleep: Callable[[float], None] = time.sleep
) -> None:
    stats, lock = WriteStats(), threading.Lock()
    for chunk in _chunks(keys, BATCH_LIMIT):
        write_batch(client, table, [{"DeleteRequest": {"Key": k}} for k in chunk], stats, lock, sleep=sleep)
