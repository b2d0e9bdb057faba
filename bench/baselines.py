"""The baselines' jobs: the same work as ``bench.ours``, done the way the seeds (or plain boto3) did it.

Kept faithful on purpose, slowness and limits included: they are what ours is measured against.
Contract: ``bench.jobs``.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

from bench.data import ddb_items, plain_items
from bench.jobs import (
    Job,
    JobFactory,
    count_all_requests,
    count_requests,
    dynamodb,
    fanout_message,
    seed_items,
    sync_prepare,
    target,
)


def seed_put_loop(table: str, conversation: str, workers: int, endpoint: str | None = None) -> Job:
    items = ddb_items([seed_items(conversation)])
    client = dynamodb(endpoint)
    calls = count_requests(client, "PutItem")

    def run() -> dict[str, Any]:
        for item in items:  # the seeds' way: one request per item
            client.put_item(TableName=table, Item=item)
        return {"items": len(items), "requests": calls[0]}

    return run


def seed_batch_writer(table: str, conversation: str, workers: int, endpoint: str | None = None) -> Job:
    import boto3
    from botocore.config import Config

    from ops.target import LOCAL_CREDENTIALS

    items = plain_items([seed_items(conversation)])  # the resource layer takes plain values
    t = target()
    resource = boto3.resource(
        "dynamodb",
        region_name=t.region,
        endpoint_url=endpoint or t.endpoint("dynamodb"),
        config=Config(retries={"max_attempts": 2, "mode": "standard"}),
        **LOCAL_CREDENTIALS,
    )
    handle = resource.Table(table)
    handle.load()  # warm: DescribeTable
    calls = count_requests(resource.meta.client, "BatchWriteItem")

    def run() -> dict[str, Any]:
        with handle.batch_writer() as writer:
            for item in items:
                writer.put_item(Item=item)
        return {"items": len(items), "requests": calls[0]}

    return run


def scan_paginator(table: str) -> Job:
    from boto3.dynamodb.types import TypeDeserializer

    client = dynamodb()
    calls = count_requests(client, "Scan")
    deserializer = TypeDeserializer()

    def run() -> dict[str, Any]:
        n = 0
        with open(os.devnull, "w") as sink:
            for page in client.get_paginator("scan").paginate(TableName=table):
                for item in page["Items"]:
                    sink.write(
                        json.dumps({k: deserializer.deserialize(v) for k, v in item.items()}, default=str) + "\n"
                    )
                    n += 1
        return {"items": n, "requests": calls[0]}

    return run


def page_seeds(table: str, group: str) -> Job:
    client = dynamodb()
    calls = count_requests(client, "Query")

    def run() -> dict[str, Any]:
        # the seeds' get-conversation: newest 20 of the current year, and no way to the next page
        resp = client.query(
            TableName=table,
            ScanIndexForward=False,
            Limit=20,
            ReturnConsumedCapacity="TOTAL",
            KeyConditionExpression="pk = :pk AND begins_with(sk,:year)",
            ExpressionAttributeValues={":year": {"S": str(datetime.now().year)}, ":pk": {"S": "MSG#" + group}},
        )
        return {"items": len(resp["Items"]), "requests": calls[0]}

    return run


def sync_per_row(pool_id: str) -> Job:
    conn, users, list_s = sync_prepare(pool_id)

    def run() -> dict[str, Any]:
        n = 0
        for u in users:  # the seeds' update_cognito_user_ids: one UPDATE and one commit per user
            if u.handle:
                conn.execute(
                    "UPDATE public.users SET cognito_user_id = %(sub)s WHERE users.handle = %(handle)s",
                    {"sub": u.sub, "handle": u.handle},
                )
                conn.commit()
                n += 1
        conn.close()
        return {
            "items": n,
            "statements": conn.statements,
            "transactions": conn.transactions,
            "list_ms": round(list_s * 1000),
        }

    return run


def fanout_seeds(table: str, group: str, sender: dict[str, str]) -> Job:
    """The seeds' consumer on the same record: query the group index, then delete and put each row, one at a time."""
    from ops.messages.model import GSI_NAME

    client = dynamodb()
    record, created_at = fanout_message(client, table, group, sender)
    text = record["dynamodb"]["NewImage"]["message"]["S"]
    calls = count_all_requests(client)

    def run() -> dict[str, Any]:
        rows = client.query(
            TableName=table,
            IndexName=GSI_NAME,
            KeyConditionExpression="message_group_uuid = :g",
            ExpressionAttributeValues={":g": {"S": group}},
        )["Items"]  # one page, as there (50 rows fit in it)
        for row in rows:  # not atomic: between the two requests the member has no row
            client.delete_item(TableName=table, Key={"pk": row["pk"], "sk": row["sk"]})
            client.put_item(TableName=table, Item=row | {"sk": {"S": created_at}, "message": {"S": text}})
        return {"items": len(rows), "requests": calls[0]}

    return run


JOBS: dict[str, JobFactory] = {
    "seed_put_loop": seed_put_loop,
    "seed_batch_writer": seed_batch_writer,
    "scan_baseline": scan_paginator,
    "page_seeds": page_seeds,
    "sync_per_row": sync_per_row,
    "fanout_seeds": fanout_seeds,
}
