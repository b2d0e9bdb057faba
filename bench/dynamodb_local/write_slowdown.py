"""Reproduce DynamoDB Local's write slowdown for tables created after N stream records, and its fix.

    python -m bench.dynamodb_local.write_slowdown [--levels 0,10000,30000,60000] [--probe 1000]
                                                 [--variants as-is,index] [--dir DIR] [--port 13130]

For each level N: one instance (-sharedDb, file in DIR) gets a table written before anything else
("early"), then a filler table with N items (so N stream records), which is deleted. The stopped file
is copied once per variant; each copy is started, warmed up on "early", and a new table "messages"
(our shape: pk/sk, GSI message-group-sk-index, NEW_IMAGE stream) gets PROBE items in batches of 25.
Its stream is then read back whole. Prints writes/s per variant; DIR on tmpfs leaves out fsync.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from ops.local import dynamodb_local
from ops.local.dynamodb_local import add_stream_indexes, install_dir

DDB_LOCAL = install_dir()
DB_FILE = dynamodb_local.DB_FILE  # the one file of -sharedDb
SCHEMA_VERSION = dynamodb_local.SCHEMA_VERSION


def trim_deleted_streams(db: Path) -> None:
    """Delete the stream records of deleted tables, then give the space back."""
    con = sqlite3.connect(db, timeout=10)
    try:
        con.execute("DELETE FROM us WHERE StreamID IN (SELECT StreamID FROM sm WHERE DeletionDateTime IS NOT NULL)")
        con.commit()
        con.execute("VACUUM")
    finally:
        con.close()


def _index(db: Path) -> None:
    warning = add_stream_indexes(db)  # the one local.up runs (ops.local.dynamodb_local)
    if warning:
        raise SystemExit(f"write_slowdown: {warning}")


VARIANTS: dict[str, tuple[Callable[[Path], None] | None, bool]] = {
    # name: (what is done to the stopped file, does "messages" have a stream)
    "as-is": (None, True),
    "index": (_index, True),
    "trim-deleted": (trim_deleted_streams, True),
    "no-stream": (None, False),
}


class Instance:
    """One DynamoDB Local process on a file-backed dbPath."""

    def __init__(self, db_dir: Path, port: int) -> None:
        if not (DDB_LOCAL / "DynamoDBLocal.jar").exists():
            raise SystemExit(f"write_slowdown: {DDB_LOCAL} is empty; run bin/install-dynamodb-local first")
        db_dir.mkdir(parents=True, exist_ok=True)
        self.port = port
        args = [
            "java",
            f"-Djava.library.path={DDB_LOCAL / 'DynamoDBLocal_lib'}",
            "-jar",
            str(DDB_LOCAL / "DynamoDBLocal.jar"),
        ]
        args += ["-sharedDb", "-disableTelemetry", "-dbPath", str(db_dir), "-port", str(port)]
        self.proc = subprocess.Popen(args, cwd=DDB_LOCAL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(
                    f"write_slowdown: DynamoDB Local exited with {self.proc.returncode} (port {port} taken?)"
                )
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise SystemExit(f"write_slowdown: DynamoDB Local did not answer on port {port}") from None
                time.sleep(0.3)

    def client(self, service: str = "dynamodb") -> Any:
        return boto3.client(
            service,
            endpoint_url=f"http://127.0.0.1:{self.port}",
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=Config(retries={"max_attempts": 10, "mode": "standard"}),
        )

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Instance:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def create_table(ddb: Any, name: str, stream: bool = True) -> None:
    extra: dict[str, Any] = (
        {"StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}} if stream else {}
    )
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "message_group_uuid")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "message-group-sk-index",
                "KeySchema": [
                    {"AttributeName": "message_group_uuid", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        **extra,
    )


def messages(n: int, start: int) -> Iterator[dict[str, Any]]:
    group = str(uuid.uuid4())
    for i in range(start, start + n):
        yield {
            "pk": {"S": f"MSG#{group}"},
            "sk": {"S": f"2026-01-01T00:00:00.{i:012d}+00:00"},
            "message_group_uuid": {"S": group},
            "message_uuid": {"S": str(uuid.uuid4())},
            "message": {"S": "hello there " * 3},
            "user_uuid": {"S": "u1"},
            "user_display_name": {"S": "Andrew"},
            "user_handle": {"S": "andrew"},
        }


def write(ddb: Any, table: str, n: int, start: int = 0) -> float:
    """Write n items in batches of 25 (retrying UnprocessedItems); items per second."""
    t0 = time.perf_counter()
    batch: list[dict[str, Any]] = []
    for item in messages(n, start):
        batch.append({"PutRequest": {"Item": item}})
        if len(batch) == 25:
            _flush(ddb, table, batch)
            batch = []
    if batch:
        _flush(ddb, table, batch)
    return n / (time.perf_counter() - t0)


def _flush(ddb: Any, table: str, batch: list[dict[str, Any]]) -> None:
    request: dict[str, Any] = {table: batch}
    while request:
        request = ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}


def read_stream(streams: Any, ddb: Any, table: str) -> list[str]:
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    seqs: list[str] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")[
            "ShardIterator"
        ]
        while it:
            resp = streams.get_records(ShardIterator=it)
            if not resp["Records"]:
                break
            seqs += [r["dynamodb"]["SequenceNumber"] for r in resp["Records"]]
            it = resp.get("NextShardIterator")
    return seqs


def build(base: Path, n: int, port: int) -> None:
    with Instance(base, port) as inst:
        ddb = inst.client()
        create_table(ddb, "early")
        write(ddb, "early", 200)
        if n:
            create_table(ddb, "filler")
            write(ddb, "filler", n)
            ddb.delete_table(TableName="filler")


def probe(base: Path, run: Path, variant: str, count: int, port: int) -> tuple[float, float]:
    prepare, stream = VARIANTS[variant]
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(base, run)
    if prepare:
        prepare(run / DB_FILE)
    try:
        with Instance(run, port) as inst:
            ddb = inst.client()
            write(ddb, "early", 300, 10**6)  # JIT warm-up on a table that is never slow
            create_table(ddb, "messages", stream=stream)
            new = write(ddb, "messages", count)
            early = write(ddb, "early", 300, 2 * 10**6)
            if stream:
                seqs = read_stream(inst.client("dynamodbstreams"), ddb, "messages")
                if len(seqs) != count or seqs != sorted(seqs):
                    raise SystemExit(
                        f"write_slowdown: {variant}: the stream read back {len(seqs)} records, expected {count} in order"
                    )
            return new, early
    finally:
        shutil.rmtree(run, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--levels", default="0,10000,30000,60000", help="stream records before the new table, comma-separated"
    )
    ap.add_argument("--probe", type=int, default=1000, help="items written into the new table")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"some of {', '.join(VARIANTS)}")
    ap.add_argument("--dir", type=Path, help="where the db files go (default: a temporary folder)")
    ap.add_argument("--port", type=int, default=13130)
    a = ap.parse_args()
    try:
        levels = [int(x) for x in a.levels.split(",")]
    except ValueError:
        raise SystemExit(f"write_slowdown: --levels takes numbers separated by commas, not {a.levels!r}") from None
    variants = a.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"write_slowdown: unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    work = Path(tempfile.mkdtemp(prefix="ddblocal-slowdown-", dir=a.dir))
    try:
        print(
            f"{'records':>8}  "
            + "  ".join(f"{v:>14}" for v in variants)
            + "   (new table, writes/s; early table in brackets)",
            flush=True,
        )
        for n in levels:
            build(work / "base", n, a.port)
            cells = []
            for v in variants:
                new, early = probe(work / "base", work / "run", v, a.probe, a.port)
                cells.append(f"{new:6.0f} ({early:5.0f})")
            print(f"{n:>8}  " + "  ".join(f"{c:>14}" for c in cells), flush=True)
            shutil.rmtree(work / "base")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
