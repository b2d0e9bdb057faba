"""Our jobs: each does one workload's work with the suite's own ``ops`` functions, as the tasks call them.

Their counterparts, doing the same work the way users otherwise would, are in ``bench.baselines``;
``bench.workloads`` runs the two on the same items and the same server. Contract: ``bench.jobs``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from bench.data import ddb_items
from bench.jobs import (
    Job,
    JobFactory,
    count_all_requests,
    count_requests,
    dynamodb,
    fanout_message,
    kms_client,
    seed_items,
    sync_prepare,
)
from bench.model import BenchError


def seed(table: str, conversation: str, workers: int, endpoint: str | None = None) -> Job:
    from ops import ddb

    items = ddb_items([seed_items(conversation)])
    client = dynamodb(endpoint, max_pool_connections=16)  # as the ddb.seed task

    def run() -> dict[str, Any]:
        stats = ddb.batch_write(client, table, iter(items), workers=workers)
        return {"items": stats.written, "requests": stats.requests}

    return run


def scan(table: str, segments: int) -> Job:
    from ops import ddb
    from ops.render import json_lines

    client = dynamodb(max_pool_connections=max(10, segments))  # as the ddb.scan task
    calls = count_requests(client, "Scan")

    def run() -> dict[str, Any]:
        n = 0
        with open(os.devnull, "w") as sink:  # a real file write per line, discarded by the kernel
            for line in json_lines(ddb.scan(client, table, segments)):
                sink.write(line + "\n")
                n += 1
        return {"items": n, "requests": calls[0]}

    return run


def page_to_first(table: str, group: str, page_size: int) -> Job:
    from ops.messages.read import get_conversation

    client = dynamodb()
    calls = count_requests(client, "Query")

    def run() -> dict[str, Any]:
        started = time.perf_counter()
        first_page_s = 0.0
        n, cursor, oldest = 0, None, ""
        while True:
            page = get_conversation(client, table, group, page_size, cursor)
            first_page_s = first_page_s or time.perf_counter() - started
            n += len(page.items)
            oldest = page.items[0].created_at if page.items else oldest  # pages are oldest → newest
            cursor = page.next_cursor
            if not cursor:
                return {
                    "items": n,
                    "requests": calls[0],
                    "first_page_ms": round(first_page_s * 1000, 3),
                    "oldest": oldest,
                }

    return run


def page_sealed(table: str, group: str, page_size: int, key_alias: str) -> Job:
    """``page_to_first`` on a group whose bodies are sealed: every page opened, the data key fetched from KMS once."""
    from ops.crypto import MessageCipher, aead
    from ops.messages.read import get_conversation

    # cryptography imported before the clock (a reader pays it once per process: about what `python -X importtime` says)
    aead()
    client = dynamodb()
    kms = kms_client()
    cipher = MessageCipher(kms, key_alias)  # an empty data-key cache: the one Decrypt this read needs is timed
    calls = count_requests(client, "Query")
    decrypts = count_requests(kms, "Decrypt", service="kms")

    def run() -> dict[str, Any]:
        started = time.perf_counter()
        first_page_s = 0.0
        n, cursor, oldest = 0, None, ""
        while True:
            page = get_conversation(client, table, group, page_size, cursor, cipher=cipher)
            first_page_s = first_page_s or time.perf_counter() - started
            n += len(page.items)
            oldest = page.items[0].created_at if page.items else oldest
            cursor = page.next_cursor
            if not cursor:
                return {
                    "items": n,
                    "requests": calls[0],
                    "kms_decrypts": decrypts[0],
                    "first_page_ms": round(first_page_s * 1000, 3),
                    "oldest": oldest,
                }

    return run


def page_newest(table: str, group: str, page_size: int) -> Job:
    from ops.messages.read import get_conversation

    client = dynamodb()
    calls = count_requests(client, "Query")

    def run() -> dict[str, Any]:
        page = get_conversation(client, table, group, page_size)
        return {"items": len(page.items), "requests": calls[0], "has_older": page.next_cursor is not None}

    return run


def query_newest(table: str, groups: int, queries: int) -> Job:
    """``get_conversation``'s newest page (one Query) of ``queries`` groups in turn: each request's latency."""
    from bench.data import person
    from ops.messages.model import group_uuid_for
    from ops.messages.read import get_conversation

    client = dynamodb()
    calls = count_requests(client, "Query")
    uuids = [
        group_uuid_for(person(2 * g).uuid, person(2 * g + 1).uuid) for g in range(groups)
    ]  # bench.data.plans' groups

    def run() -> dict[str, Any]:
        latencies, items = [], 0
        for i in range(queries):
            started = time.perf_counter()
            page = get_conversation(
                client, table, uuids[(i * 7919) % len(uuids)], 20
            )  # a stride: every group, no two in a row
            latencies.append(time.perf_counter() - started)
            items += len(page.items)
        latencies.sort()
        return {
            "items": items,
            "requests": calls[0],
            "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p90_ms": latencies[len(latencies) * 9 // 10] * 1000,
        }

    return run


def sync(pool_id: str) -> Job:
    from ops.cognito import sync_ids

    conn, users, list_s = sync_prepare(pool_id)

    def run() -> dict[str, Any]:
        report = sync_ids(conn, users)
        conn.close()
        return {
            "items": len(report.updated),
            "statements": conn.statements,
            "transactions": conn.transactions,
            "list_ms": round(list_s * 1000),
        }

    return run


# the names the workloads ask the worker for (unchanged since the jobs lived in one module)
def fanout(table: str, group: str, sender: dict[str, str]) -> Job:
    """The stream consumer's batch of one new message of a named group: every member's row moved (``process_batch``)."""
    from ops.messages.consumer import process_batch
    from ops.messages.model import GSI_NAME

    client = dynamodb()  # the Lambda's client: botocore's default pool of 10 connections
    record, _ = fanout_message(client, table, group, sender)
    calls = count_all_requests(client)

    def run() -> dict[str, Any]:
        [outcome] = process_batch(client, table, GSI_NAME, [record])
        if outcome.failed or outcome.result is None:
            raise BenchError(f"the consumer failed on the fan-out record: {outcome.error}")
        return {"items": outcome.result.moved, "requests": calls[0], "retries": outcome.result.retries}

    return run


def doctor_scanning(table: str, segments: int) -> Job:
    """The doctor as ddb.doctor runs it: a parallel scan of the live table through a metered client."""
    from ops.budget import Budget, Meter
    from ops.doctor import examine

    client = dynamodb(max_pool_connections=max(10, segments))
    meter = Meter(Budget(None, None, "unlimited: measured, not held"))
    meter.attach(client)

    def run() -> dict[str, Any]:
        found = examine(client, table, segments=segments)
        used = meter.finish()
        return {"items": found.items, "requests": used.requests, "read_units": round(used.rcu)}

    return run


def doctor_from_export(table: str) -> Job:
    """The export path: DynamoDB exports the table (no read capacity), the doctor reads the export's files."""
    from bench.jobs import target
    from ops import export
    from ops.doctor import examine

    client = dynamodb()
    s3 = target().client("s3", s3={"addressing_style": "path"})
    ddb_calls = count_requests(client, "*")
    s3_calls = count_requests(s3, "*", service="s3")
    bucket = export.bucket_name(table, "bench")

    def run() -> dict[str, Any]:
        made = export.start_export(client, s3, table, bucket, create_bucket=True)
        found = examine(None, table, items=export.read_items(s3, made))
        return {"items": found.items, "requests": ddb_calls[0] + s3_calls[0], "read_units": 0}

    return run


JOBS: dict[str, JobFactory] = {
    "seed_ours": seed,
    "scan_ours": scan,
    "page_ours": page_to_first,
    "page_first": page_newest,
    "page_sealed": page_sealed,
    "query_newest": query_newest,
    "sync_ours": sync,
    "fanout_ours": fanout,
    "doctor_scanning": doctor_scanning,
    "doctor_export": doctor_from_export,
}
