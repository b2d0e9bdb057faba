"""Helpers of the durability tests: crash the twin's AWS server, start it again, read what it says."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops import db as dbops
from ops import ddb as ddbops
from ops.local import journal
from ops.local import twin as twinops
from ops.stacks import StackSettings
from ops.table_spec import table_spec
from ops.target import Target, read_twin, resolve_target, stack_state_dir


@dataclass
class DurableTwin:
    stack: StackSettings

    @property
    def state(self) -> Path:
        return stack_state_dir(self.stack.name)

    @property
    def snapshot(self) -> Path:
        return self.state / "aws-state.pickle"

    @property
    def journal(self) -> Path:
        return journal.journal_dir(self.snapshot)

    def target(self) -> Target:
        return resolve_target(self.stack.name)

    def up(self, stream_worker: bool = False) -> twinops.UpResult:
        # these tests process the stream themselves and count what they read: no worker takes records from them
        return twinops.up(self.stack, engine="moto", stream_worker=stream_worker)

    def down(self) -> list[str]:
        return twinops.down(self.stack)

    def report(self) -> dict[str, Any]:
        found = journal.read_report(journal.report_path(self.snapshot))
        assert found is not None, "the AWS server wrote no restore report"
        return found

    def aws_pid(self) -> int:
        twin = read_twin(self.stack.name)
        assert twin and twin.get("aws"), "the twin is not running"
        return int(twin["aws"]["pid"])

    def kill9(self) -> None:
        """What a crash does: no signal handler runs, nothing is saved on the way out."""
        pid = self.aws_pid()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our child (twin.up started it): reap it
                    return
            except ChildProcessError:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
            time.sleep(0.05)
        raise AssertionError(f"the AWS server (pid {pid}) survived kill -9")

    def wait_compacted(self, seconds: float = 60) -> None:
        """The start's own compaction (it folds replayed writes into a snapshot) has finished."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if len(journal.segments(self.journal)) <= 1 and self.snapshot.exists():
                return
            time.sleep(0.1)
        raise AssertionError(f"no compaction within {seconds}s: {journal.segments(self.journal)}")

    def setup_database(self) -> None:
        target = self.target()
        dbops.drop_database(target)
        dbops.create_database(target)
        with dbops.connect(target) as conn:
            dbops.load_schema(conn)
            dbops.seed_users(conn)

    def fresh_table(self, ddb: Any) -> str:
        spec = dataclasses.replace(table_spec(self.stack), name=f"durable-{uuid.uuid4().hex[:8]}")
        ddbops.schema_load(ddb, spec)
        return spec.name


def all_items(ddb: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        resp = ddb.scan(**kwargs)
        items.extend(resp["Items"])
        if not resp.get("LastEvaluatedKey"):
            break
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"] if "sk" in i else ""))


def stream_records(streams: Any, stream_arn: str) -> list[dict[str, Any]]:
    """Every record of every shard, as GetRecords returns them."""
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]:
        it = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while it:
            resp = streams.get_records(ShardIterator=it, Limit=1000)
            if not resp["Records"]:
                break
            records.extend(resp["Records"])
            it = resp.get("NextShardIterator")
    return records


def table_state(ddb: Any, streams: Any, table: str) -> dict[str, Any]:
    """A table as a client can see it: description (ARNs, times), items, stream records with their ids."""
    desc = ddb.describe_table(TableName=table)["Table"]
    return {
        "arn": desc["TableArn"],
        "created": desc["CreationDateTime"],
        "stream": desc["LatestStreamArn"],
        "label": desc["LatestStreamLabel"],
        "items": all_items(ddb, table),
        "records": [
            (
                r["dynamodb"]["SequenceNumber"],
                r["eventID"],
                r["eventName"],
                r["dynamodb"]["Keys"],
                r["dynamodb"].get("NewImage"),
                r["dynamodb"]["ApproximateCreationDateTime"],
            )
            for r in stream_records(streams, desc["LatestStreamArn"])
        ],
    }
