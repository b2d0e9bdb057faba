"""The export path in-process (moto serves both ExportTableToPointInTime and ImportTable, with AWS's layout patched
in)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ops import export as ex
from ops.errors import InputError, NotFoundError
from ops.local.moto_patches import exports as moto_exports

TABLE = "cruddur-messages"
CREATION = {
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ],
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    "BillingMode": "PAY_PER_REQUEST",
}


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    moto_exports.install()
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        s3 = boto3.client("s3", region_name="us-east-1")
        ddb.create_table(TableName=TABLE, **CREATION)
        for n in range(120):
            ddb.put_item(
                TableName=TABLE,
                Item={
                    "pk": {"S": f"MSG#{n % 7}"},
                    "sk": {"S": f"2026-01-01T00:00:{n % 60:02d}.{n:06d}+00:00"},
                    "n": {"N": str(n)},
                    "message": {"S": f'he said "hi" {{{n}}}\nand left'},  # moto's own import drops these
                },
            )
        yield ddb, s3


def scanned(ddb: Any, table: str) -> list[dict[str, Any]]:
    return [i for p in ddb.get_paginator("scan").paginate(TableName=table) for i in p["Items"]]


def key(i: dict[str, Any]) -> tuple[str, str]:
    return i["pk"]["S"], i["sk"]["S"]


def test_export_then_read_gives_every_item_and_latest_finds_it(aws: tuple[Any, Any]) -> None:
    ddb, s3 = aws
    made = ex.start_export(ddb, s3, TABLE, "exports-bucket", create_bucket=True, sleep=lambda s: None)
    assert made.status == "COMPLETED" and made.arn.endswith(f"table/{TABLE}/export/{made.id}")
    # PITR was turned on for it
    backups = ddb.describe_continuous_backups(TableName=TABLE)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    latest = ex.find_export(ddb, TABLE, "latest")
    assert latest.id == made.id and ex.find_export(ddb, TABLE, made.id).arn == made.arn
    got = sorted(ex.read_items(s3, latest), key=key)
    assert got == sorted(scanned(ddb, TABLE), key=key)


def test_an_altered_data_file_is_refused(aws: tuple[Any, Any]) -> None:
    ddb, s3 = aws
    made = ex.start_export(ddb, s3, TABLE, "exports-bucket", create_bucket=True, sleep=lambda s: None)
    [data] = [o["Key"] for o in s3.list_objects_v2(Bucket="exports-bucket")["Contents"] if "/data/" in o["Key"]]
    body = gzip.decompress(s3.get_object(Bucket="exports-bucket", Key=data)["Body"].read())
    s3.put_object(
        Bucket="exports-bucket", Key=data, Body=gzip.compress(body.replace(b'"n": {"N": "5"}', b'"n": {"N": "6"}'))
    )
    with pytest.raises(InputError, match="MD5"):
        list(ex.read_items(s3, made))


def test_no_export_yet_says_what_to_run(aws: tuple[Any, Any]) -> None:
    ddb, _ = aws
    with pytest.raises(NotFoundError, match="ddb.export"):
        ex.find_export(ddb, TABLE, "latest")


def test_export_then_import_gives_the_same_items(aws: tuple[Any, Any]) -> None:
    ddb, s3 = aws
    made = ex.start_export(ddb, s3, TABLE, "exports-bucket", create_bucket=True, sleep=lambda s: None)
    done = ex.import_export(ddb, made, "rebuilt", CREATION, sleep=lambda s: None)
    assert (done.items, done.errors) == (120, 0)
    assert sorted(scanned(ddb, "rebuilt"), key=key) == sorted(scanned(ddb, TABLE), key=key)


def test_an_export_already_running_is_waited_for_not_started_twice() -> None:
    # GIVEN a table whose full export into the bucket is in progress (a run interrupted while waiting)
    from botocore.stub import Stubber

    ddb = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    arn = f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}"
    running = {"ExportArn": f"{arn}/export/01234567890123-abcdef01", "ExportStatus": "IN_PROGRESS", "S3Bucket": "b"}
    with Stubber(ddb) as stub:
        stub.add_response("describe_table", {"Table": {"TableName": TABLE, "TableArn": arn}})
        summary = {"ExportArn": running["ExportArn"], "ExportStatus": "IN_PROGRESS", "ExportType": "FULL_EXPORT"}
        stub.add_response("list_exports", {"ExportSummaries": [summary]})
        stub.add_response("describe_export", {"ExportDescription": running})
        stub.add_response("describe_export", {"ExportDescription": dict(running, ExportStatus="COMPLETED")})
        # WHEN ddb.export runs again: THEN it waits for that one (no second ExportTableToPointInTime: the stub has none)
        done = ex.start_export(ddb, None, TABLE, "b", sleep=lambda s: None)
        stub.assert_no_pending_responses()
    assert done.id == "01234567890123-abcdef01" and done.status == "COMPLETED"


def test_an_export_whose_files_are_missing_is_one_clear_error(aws: tuple[Any, Any]) -> None:
    # GIVEN an export DynamoDB reports COMPLETED whose files are not there (what MiniStack does)
    ddb, s3 = aws
    made = ex.start_export(ddb, s3, TABLE, "exports-bucket", create_bucket=True, sleep=lambda s: None)
    listed = s3.list_objects_v2(Bucket="exports-bucket")["Contents"]
    [data] = [o["Key"] for o in listed if "/data/" in o["Key"]]
    s3.delete_object(Bucket="exports-bucket", Key=data)
    # WHEN it is read: THEN a NotFoundError naming the missing file, not an S3 error code
    with pytest.raises(NotFoundError, match=r"/data/.* is missing: the export is incomplete.*ddb\.export"):
        list(ex.read_items(s3, made))
    for o in listed:
        s3.delete_object(Bucket="exports-bucket", Key=o["Key"])
    with pytest.raises(NotFoundError, match="manifest-summary.json is missing"):
        list(ex.read_items(s3, made))


def test_a_manifest_without_its_md5_is_still_read(aws: tuple[Any, Any]) -> None:
    ddb, s3 = aws
    made = ex.start_export(ddb, s3, TABLE, "exports-bucket", create_bucket=True, sleep=lambda s: None)
    md5s = [o["Key"] for o in s3.list_objects_v2(Bucket="exports-bucket")["Contents"] if o["Key"].endswith(".md5")]
    assert md5s, "the patched moto writes AWS's .md5 files"
    for k in md5s:
        s3.delete_object(Bucket="exports-bucket", Key=k)
    assert len(list(ex.read_items(s3, made))) == 120


@pytest.mark.parametrize("twin_engine", ["ministack", "docker"])
def test_export_on_a_ministack_twin_is_refused_before_any_request(
    twin_engine: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from ops.errors import RefusedError
    from ops.target import STATE_DIR_ENV, resolve_target, twin_file

    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path))
    twin_file("dev").parent.mkdir(parents=True)
    twin_file("dev").write_text(json.dumps({"dynamodb": {"engine": twin_engine, "endpoint": "http://127.0.0.1:9"}}))
    target = resolve_target("dev")

    def no_request(*_: Any, **__: Any) -> Any:
        raise AssertionError("a client was made: the refusal must come before any request")

    monkeypatch.setattr(ex, "clients", no_request)
    with pytest.raises(RefusedError) as refused:
        ex.export_target(target)
    line = str(refused.value)
    assert "\n" not in line and f"runs DynamoDB on {twin_engine}" in line and "writes no file" in line
    assert "--engine moto" in line

    # a moto twin (or one whose record names no engine) goes on to its request
    twin_file("dev").write_text(json.dumps({"dynamodb": {"engine": "moto", "endpoint": "http://127.0.0.1:9"}}))
    ex.check_exports_written(resolve_target("dev"))
    twin_file("dev").write_text(json.dumps({}))
    ex.check_exports_written(resolve_target("dev"))
