"""Helpers of the write-path tests: people, real stream records, the table's state, injected faults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from ops.local.streams import lambda_record, latest_stream_arn, list_shards
from ops.messages.model import GRP_PREFIX, KEY_SK, MEMBERS_SK, MSG_PREFIX, PAIR_PREFIX, Person, instant, row_sort_key

REPO = Path(__file__).resolve().parents[2]
# Not imported from tests/conftest.py: importing it as ``tests.conftest`` runs it a second time
# (a new state directory and port offset in os.environ, in the middle of the session).
INVOKE = [sys.executable, "-m", "invoke"]


def person(name: str) -> Person:
    """A participant of its own (DynamoDB needs no PostgreSQL row), so tests never share groups."""
    return Person(str(uuid.uuid4()), name.title(), f"{name}-{uuid.uuid4().hex[:6]}")


def stream_records(streams: Any, ddb: Any, table: str) -> list[dict[str, Any]]:
    """Every record of the table's stream so far, shaped like the Lambda's event records."""
    arn = latest_stream_arn(ddb, table)
    records: list[dict[str, Any]] = []
    for shard in list_shards(streams, arn):
        it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")[
            "ShardIterator"
        ]
        while it:
            resp = streams.get_records(ShardIterator=it, Limit=1000)
            if not resp["Records"]:
                break
            records.extend(lambda_record(r, arn) for r in resp["Records"])
            it = resp.get("NextShardIterator")
    return records


def message_records(records: list[dict[str, Any]], group: str) -> list[dict[str, Any]]:
    return [r for r in records if r["eventName"] == "INSERT" and r["dynamodb"]["Keys"]["pk"]["S"] == MSG_PREFIX + group]


def all_items(ddb: Any, table: str) -> list[dict[str, str]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        resp = ddb.scan(**kwargs)
        items.extend(resp["Items"])
        if not resp.get("LastEvaluatedKey"):
            break
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
    return [{k: v.get("S", v.get("SS")) for k, v in i.items()} for i in items]  # type: ignore[misc]


def group_rows_by_owner(ddb: Any, table: str, group: str) -> dict[str, list[dict[str, str]]]:
    """The group's rows read from the base table (not the GSI), grouped by their owner."""
    out: dict[str, list[dict[str, str]]] = {}
    for item in all_items(ddb, table):
        if item["pk"].startswith(GRP_PREFIX) and item.get("message_group_uuid") == group:
            out.setdefault(item["pk"][len(GRP_PREFIX) :], []).append(item)
    return out


def messages(ddb: Any, table: str, group: str) -> list[dict[str, str]]:
    # by moment, not string: other writers stamp keys with their host's offset; a group's KEY and MEMBERS items are no
    # messages
    found = (i for i in all_items(ddb, table) if i["pk"] == MSG_PREFIX + group and i["sk"] not in (KEY_SK, MEMBERS_SK))
    return sorted(found, key=lambda i: instant(i["sk"]))


def markers(ddb: Any, table: str) -> list[dict[str, str]]:
    return [i for i in all_items(ddb, table) if i["pk"].startswith(PAIR_PREFIX)]


def assert_one_row_each_at_newest(ddb: Any, table: str, group: str, participants: tuple[Person, Person]) -> None:
    """The invariant of the write path: one row per participant, carrying the group's newest message."""
    newest = messages(ddb, table, group)[-1]
    rows = group_rows_by_owner(ddb, table, group)
    assert sorted(rows) == sorted(p.uuid for p in participants), f"group {group}: rows for {sorted(rows)}"
    for owner, owned in rows.items():
        assert len(owned) == 1, f"group {group}: {len(owned)} rows for participant {owner}"
        assert (owned[0]["sk"], owned[0]["message"]) == (row_sort_key(newest["sk"], group), newest["message"]), (
            f"group {group}: row of {owner} is not at the newest message"
        )
    for p in participants:
        other = next(q for q in participants if q != p)
        assert rows[p.uuid][0]["user_uuid"] == other.uuid, "a group row names the other participant"


class FaultyClient:
    """A DynamoDB client whose TransactWriteItems fails for one group (every other call goes through)."""

    def __init__(self, client: Any, group: str) -> None:
        self._client = client
        self._group = group
        self.injected = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        if self._group in json.dumps(kwargs["TransactItems"]):
            self.injected += 1
            raise ClientError(
                {"Error": {"Code": "InternalServerError", "Message": "injected fault"}}, "TransactWriteItems"
            )
        return self._client.transact_write_items(**kwargs)


def run_task(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """A task run the way a user runs it, against the session's twin (the environment carries it)."""
    return subprocess.run(
        [*INVOKE, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ),
        stdin=subprocess.DEVNULL,
    )


def error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed task prints (after its target line), asserting there is only one and no traceback."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("target: ")]
    assert len(lines) == 1, proc.stderr
    return lines[0]
