"""Send the same DynamoDB and Streams requests to moto and to DynamoDB Local; print what each answers.

    python -m bench.dynamodb_local.engine_diff [--moto-port 13120] [--ddblocal-port 13121] [--json FILE]

Both servers are started here (moto server from this interpreter, DynamoDB Local in memory from
.tools/dynamodb-local, see bin/install-dynamodb-local) and stopped at the end. Every probe
returns a short, comparable summary; the table printed is what docs/dynamodb-local-notes.md cites.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from ops.local.dynamodb_local import install_dir

DDB_LOCAL = install_dir()
GSI = "message-group-sk-index"


def start_moto(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def start_ddblocal(port: int) -> subprocess.Popen[bytes]:
    if not (DDB_LOCAL / "DynamoDBLocal.jar").exists():
        raise SystemExit(f"engine_diff: {DDB_LOCAL} is empty; run bin/install-dynamodb-local first")
    args = [
        "java",
        f"-Djava.library.path={DDB_LOCAL / 'DynamoDBLocal_lib'}",
        "-jar",
        str(DDB_LOCAL / "DynamoDBLocal.jar"),
        "-inMemory",
        "-sharedDb",
        "-disableTelemetry",
        "-port",
        str(port),
    ]
    return subprocess.Popen(args, cwd=DDB_LOCAL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_port(port: int, proc: subprocess.Popen[bytes], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"engine_diff: the server for port {port} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"engine_diff: nothing answered on port {port} within {seconds:.0f} s")


def clients(port: int) -> tuple[Any, Any]:
    kw: dict[str, Any] = {
        "endpoint_url": f"http://127.0.0.1:{port}",
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        # the engine's answer as it gave it: no retries, and no client-side check of parameters (Limit=0)
        "config": Config(retries={"max_attempts": 1}, parameter_validation=False),
    }
    return boto3.client("dynamodb", **kw), boto3.client("dynamodbstreams", **kw)


def err(e: ClientError) -> str:
    return f"{e.response['Error']['Code']}: {e.response['Error'].get('Message', '')[:110]}"


def make_table(ddb: Any, name: str, stream: bool = True, tags: bool = False) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if stream:
        kw["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    if tags:
        kw["Tags"] = [{"Key": "stack", "Value": "dev"}]
    return ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "message_group_uuid")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": GSI,
                "KeySchema": [
                    {"AttributeName": "message_group_uuid", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        **kw,
    )["TableDescription"]


def msg(group: str, i: int, text: str = "hi") -> dict[str, Any]:
    return {
        "pk": {"S": f"MSG#{group}"},
        "sk": {"S": f"2026-01-01T00:00:{i:02d}.000000+00:00"},
        "message_group_uuid": {"S": group},
        "message": {"S": text},
    }


def shape(value: Any) -> Any:
    """Keys and types of a response part, values dropped: what a reader of the shape relies on."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


# ---------------------------------------------------------------- probes


def p_batch_26(ddb: Any, st: Any) -> Any:
    make_table(ddb, "batch26", stream=False)
    g = str(uuid.uuid4())
    try:
        r = ddb.batch_write_item(RequestItems={"batch26": [{"PutRequest": {"Item": msg(g, i)}} for i in range(26)]})
        return f"accepted, UnprocessedItems={r.get('UnprocessedItems')}"
    except ClientError as e:
        return err(e)


def p_batch_25_unprocessed(ddb: Any, st: Any) -> Any:
    g = str(uuid.uuid4())
    r = ddb.batch_write_item(RequestItems={"batch26": [{"PutRequest": {"Item": msg(g, i)}} for i in range(25)]})
    dup = None
    try:
        ddb.batch_write_item(
            RequestItems={"batch26": [{"PutRequest": {"Item": msg(g, 1)}}, {"PutRequest": {"Item": msg(g, 1)}}]}
        )
    except ClientError as e:
        dup = err(e)
    return {"UnprocessedItems": r.get("UnprocessedItems", "<absent>"), "same key twice in one batch": dup or "accepted"}


def p_query_limits(ddb: Any, st: Any) -> Any:
    g = str(uuid.uuid4())
    ddb.batch_write_item(RequestItems={"batch26": [{"PutRequest": {"Item": msg(g, i)}} for i in range(5)]})
    out: dict[str, Any] = {}
    for limit in (0, 1, 5, 6, 10000):
        try:
            r = ddb.query(
                TableName="batch26",
                IndexName=GSI,
                KeyConditionExpression="message_group_uuid = :g",
                ExpressionAttributeValues={":g": {"S": g}},
                Limit=limit,
            )
            out[f"GSI Limit={limit}"] = (
                f"Count={r['Count']} LastEvaluatedKey={'yes' if 'LastEvaluatedKey' in r else 'no'}"
            )
        except ClientError as e:
            out[f"GSI Limit={limit}"] = err(e)
    r = ddb.query(
        TableName="batch26",
        KeyConditionExpression="pk = :p",
        FilterExpression="message = :m",
        ExpressionAttributeValues={":p": {"S": f"MSG#{g}"}, ":m": {"S": "nope"}},
        Limit=2,
    )
    out["filter matching nothing, Limit=2"] = (
        f"Count={r['Count']} ScannedCount={r['ScannedCount']} LastEvaluatedKey={'yes' if 'LastEvaluatedKey' in r else 'no'}"
    )
    return out


def p_put_condition(ddb: Any, st: Any) -> Any:
    g = str(uuid.uuid4())
    ddb.put_item(TableName="batch26", Item=msg(g, 0))
    out: dict[str, Any] = {}
    try:
        ddb.put_item(TableName="batch26", Item=msg(g, 0), ConditionExpression="attribute_not_exists(pk)")
        out["plain"] = "accepted"
    except ClientError as e:
        out["plain"] = err(e)
    try:
        ddb.put_item(
            TableName="batch26",
            Item=msg(g, 0),
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as e:
        out["ALL_OLD: Item in error response"] = "Item" in e.response
    return out


def p_transact_cancel(ddb: Any, st: Any) -> Any:
    g = str(uuid.uuid4())
    ddb.put_item(TableName="batch26", Item=msg(g, 1))
    out: dict[str, Any] = {}
    items = [msg(g, 0), msg(g, 1)]  # the second exists
    try:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "batch26", "Item": it, "ConditionExpression": "attribute_not_exists(pk)"}}
                for it in items
            ]
        )
        out["conditional failure"] = "accepted"
    except ClientError as e:
        reasons = e.response.get("CancellationReasons")
        out["conditional failure"] = {
            "code": e.response["Error"]["Code"],
            "message": e.response["Error"].get("Message"),
            "CancellationReasons": reasons,
        }
    try:
        ddb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": "batch26",
                        "Item": msg(g, 1),
                        "ConditionExpression": "attribute_not_exists(pk)",
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            ]
        )
    except ClientError as e:
        out["ALL_OLD: Item in reason"] = ["Item" in r for r in e.response.get("CancellationReasons", [])]
    try:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "batch26", "Item": msg(g, 5)}},
                {"Put": {"TableName": "batch26", "Item": msg(g, 5)}},
            ]
        )
        out["same item twice"] = "accepted"
    except ClientError as e:
        out["same item twice"] = err(e)
    try:
        ddb.transact_write_items(
            TransactItems=[{"Put": {"TableName": "batch26", "Item": msg(g, 10 + i % 50)}} for i in range(101)]
        )
        out["101 actions"] = "accepted"
    except ClientError as e:
        out["101 actions"] = err(e)
    return out


def p_describe_table(ddb: Any, st: Any) -> Any:
    d = make_table(ddb, "described", tags=True)
    t = ddb.describe_table(TableName="described")["Table"]
    keys = [
        "TableStatus",
        "BillingModeSummary",
        "StreamSpecification",
        "LatestStreamLabel",
        "SSEDescription",
        "DeletionProtectionEnabled",
        "TableClassSummary",
        "ProvisionedThroughput",
        "TableArn",
        "TableId",
        "WarmThroughput",
    ]
    out = {k: t.get(k, "<absent>") for k in keys}
    out["LatestStreamArn"] = t.get("LatestStreamArn", "<absent>")
    out["CreateTable answer: TableStatus"] = d.get("TableStatus")
    gsi = t.get("GlobalSecondaryIndexes", [{}])[0]
    out["GSI keys"] = sorted(gsi)
    out["GSI IndexStatus / ProvisionedThroughput"] = [gsi.get("IndexStatus"), gsi.get("ProvisionedThroughput")]
    try:
        out["ListTagsOfResource"] = ddb.list_tags_of_resource(ResourceArn=t["TableArn"]).get("Tags")
    except ClientError as e:
        out["ListTagsOfResource"] = err(e)
    try:
        ddb.update_table(TableName="described", DeletionProtectionEnabled=True)
        try:
            ddb.delete_table(TableName="described")
            out["delete when protected"] = "deleted"
        except ClientError as e:
            out["delete when protected"] = err(e)
        ddb.update_table(TableName="described", DeletionProtectionEnabled=False)
    except ClientError as e:
        out["delete when protected"] = err(e)
    try:
        out["DescribeTimeToLive"] = ddb.describe_time_to_live(TableName="described").get("TimeToLiveDescription")
    except ClientError as e:
        out["DescribeTimeToLive"] = err(e)
    return out


def p_pitr(ddb: Any, st: Any) -> Any:
    out: dict[str, Any] = {}
    try:
        out["before"] = ddb.describe_continuous_backups(TableName="described")["ContinuousBackupsDescription"]
    except ClientError as e:
        out["before"] = err(e)
    try:
        ddb.update_continuous_backups(
            TableName="described", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
        d = ddb.describe_continuous_backups(TableName="described")["ContinuousBackupsDescription"]
        out["after enable"] = {
            k: (
                v
                if not isinstance(v, dict)
                else {kk: type(vv).__name__ if isinstance(vv, datetime) else vv for kk, vv in v.items()}
            )
            for k, v in d.items()
        }
    except ClientError as e:
        out["after enable"] = err(e)
    return out


def _raw_records(st: Any) -> list[Any]:
    captured: list[Any] = []

    def keep(http_response: Any, **_: Any) -> None:
        try:
            captured.append(json.loads(http_response.content or b"{}"))
        except ValueError:  # not JSON: kept as text, so the table shows what came back
            captured.append(
                {
                    "Records": [
                        {"dynamodb": {"ApproximateCreationDateTime": f"<not JSON: {http_response.content[:60]!r}>"}}
                    ]
                }
            )

    st.meta.events.register("after-call.dynamodbstreams.GetRecords", keep)
    return captured


def p_streams(ddb: Any, st: Any) -> Any:
    t = make_table(ddb, "streamed")
    arn = t["LatestStreamArn"]
    g = str(uuid.uuid4())
    for i in range(3):
        ddb.put_item(TableName="streamed", Item=msg(g, i))
    ddb.put_item(TableName="streamed", Item=msg(g, 0, "edited"))
    ddb.delete_item(TableName="streamed", Key={"pk": {"S": f"MSG#{g}"}, "sk": msg(g, 2)["sk"]})
    out: dict[str, Any] = {}
    desc = st.describe_stream(StreamArn=arn)["StreamDescription"]
    out["DescribeStream keys"] = sorted(desc)
    out["StreamStatus"] = desc.get("StreamStatus")
    shard = desc["Shards"][0]
    out["shard count"] = len(desc["Shards"])
    out["shard"] = shard
    raw = _raw_records(st)
    it = st.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    r = st.get_records(ShardIterator=it)
    recs = r["Records"]
    out["records"] = [f"{x['eventName']} {x['dynamodb'].get('SequenceNumber')}" for x in recs]
    out["record shape (boto3)"] = shape(recs[0]) if recs else None
    out["ApproximateCreationDateTime raw JSON"] = (
        [repr(x["dynamodb"].get("ApproximateCreationDateTime")) for x in raw[-1]["Records"][:1]]
        if raw and raw[-1].get("Records")
        else None
    )
    out["NextShardIterator on open shard"] = "yes" if r.get("NextShardIterator") else "no"
    if len(recs) >= 2:
        first = recs[0]["dynamodb"]["SequenceNumber"]
        it2 = st.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=first
        )["ShardIterator"]
        out["AFTER_SEQUENCE_NUMBER first -> records"] = len(st.get_records(ShardIterator=it2)["Records"])
        last = recs[-1]["dynamodb"]["SequenceNumber"]
        it3 = st.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=last
        )["ShardIterator"]
        out["AFTER_SEQUENCE_NUMBER last -> records"] = len(st.get_records(ShardIterator=it3)["Records"])
    for label, seq in (
        ("AT_SEQUENCE_NUMBER 000…001 (before this shard)", "0" * 20 + "1"),
        ("AFTER_SEQUENCE_NUMBER 999…999 (beyond the end)", "9" * 21),
        ("AT_SEQUENCE_NUMBER 'abc'", "abc"),
    ):
        try:
            it4 = st.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType=label.split()[0], SequenceNumber=seq
            )["ShardIterator"]
            out[label] = f"iterator; GetRecords -> {len(st.get_records(ShardIterator=it4)['Records'])} records"
        except ClientError as e:
            out[label] = err(e)
    try:
        st.get_records(ShardIterator="not-an-iterator")
        out["GetRecords bad iterator"] = "accepted"
    except ClientError as e:
        out["GetRecords bad iterator"] = err(e)
    out["ListStreams"] = [sorted(s) for s in st.list_streams(TableName="streamed")["Streams"]]
    return out


def p_delete_with_stream(ddb: Any, st: Any) -> Any:
    arn = ddb.describe_table(TableName="streamed")["Table"]["LatestStreamArn"]
    shard = st.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    it = st.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    ddb.delete_table(TableName="streamed")
    out: dict[str, Any] = {}
    try:
        d = st.describe_stream(StreamArn=arn)["StreamDescription"]
        out["DescribeStream after delete"] = {
            "StreamStatus": d.get("StreamStatus"),
            "shards": [s.get("SequenceNumberRange") for s in d.get("Shards", [])],
        }
    except ClientError as e:
        out["DescribeStream after delete"] = err(e)
    try:
        out["GetRecords with an iterator taken before"] = f"{len(st.get_records(ShardIterator=it)['Records'])} records"
    except ClientError as e:
        out["GetRecords with an iterator taken before"] = err(e)
    try:
        it2 = st.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        out["new TRIM_HORIZON iterator after delete"] = f"{len(st.get_records(ShardIterator=it2)['Records'])} records"
    except ClientError as e:
        out["new TRIM_HORIZON iterator after delete"] = err(e)
    out["ListStreams(TableName) after delete"] = len(st.list_streams(TableName="streamed")["Streams"])
    make_table(ddb, "streamed")
    new_arn = ddb.describe_table(TableName="streamed")["Table"]["LatestStreamArn"]
    out["re-created table: new stream ARN"] = new_arn != arn
    return out


def p_item_size(ddb: Any, st: Any) -> Any:
    g = str(uuid.uuid4())
    out: dict[str, Any] = {}
    base = msg(g, 0)
    overhead = sum(len(k) + len(v["S"]) for k, v in base.items() if k != "message") + len("message")
    for label, size in (("exactly 400 KB", 400 * 1024), ("400 KB + 1 byte", 400 * 1024 + 1)):
        item = dict(base, message={"S": "x" * (size - overhead)})
        try:
            ddb.put_item(TableName="batch26", Item=item)
            out[label] = "accepted"
        except ClientError as e:
            out[label] = err(e)
    big_key = dict(base, pk={"S": "K" * 2049})
    try:
        ddb.put_item(TableName="batch26", Item=big_key)
        out["partition key 2049 bytes"] = "accepted"
    except ClientError as e:
        out["partition key 2049 bytes"] = err(e)
    return out


def p_page_1mb(ddb: Any, st: Any) -> Any:
    g = str(uuid.uuid4())
    for i in range(30):  # 30 items of ~100 KB: 3 MB in one partition
        ddb.put_item(TableName="batch26", Item=msg(g, i, "y" * 100_000))
    out: dict[str, Any] = {}
    r = ddb.query(
        TableName="batch26", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": f"MSG#{g}"}}
    )
    out["Query first page of 30 x 100 KB"] = (
        f"Count={r['Count']} LastEvaluatedKey={'yes' if 'LastEvaluatedKey' in r else 'no'}"
    )
    r = ddb.query(
        TableName="batch26",
        IndexName=GSI,
        KeyConditionExpression="message_group_uuid = :g",
        ExpressionAttributeValues={":g": {"S": g}},
    )
    out["GSI Query first page"] = f"Count={r['Count']} LastEvaluatedKey={'yes' if 'LastEvaluatedKey' in r else 'no'}"
    r = ddb.scan(TableName="batch26")
    out["Scan first page"] = f"Count={r['Count']} LastEvaluatedKey={'yes' if 'LastEvaluatedKey' in r else 'no'}"
    return out


PROBES: list[tuple[str, Callable[[Any, Any], Any]]] = [
    ("BatchWriteItem with 26 items", p_batch_26),
    ("BatchWriteItem 25: UnprocessedItems; duplicate keys", p_batch_25_unprocessed),
    ("Query Limit values", p_query_limits),
    ("PutItem ConditionalCheckFailed", p_put_condition),
    ("TransactWriteItems cancellation", p_transact_cancel),
    ("DescribeTable fields, tags, deletion protection", p_describe_table),
    ("DescribeContinuousBackups / PITR", p_pitr),
    ("Streams: DescribeStream, GetRecords, iterators", p_streams),
    ("DeleteTable while its stream exists", p_delete_with_stream),
    ("Item size limits", p_item_size),
    ("1 MB page limit", p_page_1mb),
]


def run(port: int) -> dict[str, Any]:
    ddb, st = clients(port)
    results: dict[str, Any] = {}
    for name, probe in PROBES:
        try:
            results[name] = probe(ddb, st)
        except ClientError as e:  # a probe that the engine refuses half-way is itself a finding
            results[name] = f"probe stopped: {err(e)}"
        except Exception as e:  # e.g. a response botocore cannot parse
            results[name] = f"probe stopped: {type(e).__name__}: {e}"
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moto-port", type=int, default=13120)
    ap.add_argument("--ddblocal-port", type=int, default=13121)
    ap.add_argument("--json", type=Path, help="also write the results here")
    a = ap.parse_args()
    procs = {"moto": start_moto(a.moto_port), "dynamodb-local": start_ddblocal(a.ddblocal_port)}
    try:
        wait_port(a.moto_port, procs["moto"])
        wait_port(a.ddblocal_port, procs["dynamodb-local"])
        results = {"moto": run(a.moto_port), "dynamodb-local": run(a.ddblocal_port)}
    finally:
        for p in procs.values():
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
    for name, _ in PROBES:
        print(f"## {name}")
        for engine in results:
            print(f"- {engine}: {json.dumps(results[engine][name], default=str)}")
        print()
    if a.json:
        a.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
