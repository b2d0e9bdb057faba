"""DynamoDB's export to S3 and import from S3: the path for tables one machine should not scan.

``export`` turns point-in-time recovery on (an export is made from it) and asks DynamoDB for a
full export, or an incremental one from a time, into the stack's export bucket; DynamoDB reads its
backups, not the table, so no read capacity is used. ``read_items`` reads an export back through
its manifests: the summary, then the list of data files, each file's MD5 checked against the
manifest before a line of it is used, and the item counts compared, so a truncated or altered
export is an error rather than a quietly different answer. ``import_export`` loads an export's
data files into a new table with ImportTable (no write capacity; AWS creates the table).

On a twin the export bucket is made on demand in its moto server (which serves S3 too); in the
cloud the bucket is the Pulumi program's.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ops.aws import aws_errors, call, error_code, items, translate
from ops.errors import CloudError, ConfigError, InputError, NotFoundError, RefusedError
from ops.export_spec import EXPORT_PREFIX, bucket_name  # noqa: F401 - bucket_name: the tasks' name for it


@dataclass
class Export:
    arn: str
    status: str
    bucket: str
    prefix: str
    items: int | None = None
    exported_at: datetime | None = None

    @property
    def id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    @property
    def base(self) -> str:
        return f"{self.prefix.strip('/')}/AWSDynamoDB/{self.id}" if self.prefix else f"AWSDynamoDB/{self.id}"


def _export(d: dict[str, Any]) -> Export:
    return Export(
        d["ExportArn"],
        d.get("ExportStatus", ""),
        d.get("S3Bucket", ""),
        d.get("S3Prefix", "") or "",
        d.get("ItemCount"),
        d.get("ExportTime"),
    )


def _wait(check: Callable[[], tuple[bool, str]], what: str, seconds: float, sleep: Callable[[float], None]) -> None:
    deadline = time.monotonic() + seconds
    delay = 0.2
    while True:
        done, failure = check()
        if failure:
            raise CloudError(f"{what} failed: {failure}")
        if done:
            return
        if time.monotonic() > deadline:
            raise CloudError(f"{what} still running after {seconds:.0f}s: it goes on in AWS; look again later")
        sleep(delay)
        delay = min(delay * 2, 10.0)


def start_export(
    ddb: Any,
    s3: Any,
    table: str,
    bucket: str,
    *,
    since: datetime | None = None,
    create_bucket: bool = False,
    wait_seconds: float = 3600,
    sleep: Callable[[float], None] = time.sleep,
) -> Export:
    """Export ``table`` to ``bucket`` (full; incremental from ``since``) and wait until DynamoDB has written it.

    A full export of this table into this bucket already running (a run interrupted while it waited) is
    waited for again instead of started twice: the export goes on in AWS whatever happens here.
    """
    desc = call(ddb.describe_table, f"DescribeTable {table}", TableName=table)["Table"]
    running = None if since is not None else _running(ddb, desc["TableArn"], bucket)
    if running is not None:
        return _wait_for(ddb, running, table, wait_seconds, sleep)
    if create_bucket:
        with aws_errors(f"CreateBucket {bucket}"):
            if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
                s3.create_bucket(Bucket=bucket)
    call(
        ddb.update_continuous_backups,
        f"UpdateContinuousBackups {table}",
        TableName=table,
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
    )
    request: dict[str, Any] = {"TableArn": desc["TableArn"], "S3Bucket": bucket, "S3Prefix": EXPORT_PREFIX}
    request["ExportFormat"] = "DYNAMODB_JSON"
    if since is not None:
        request["ExportType"] = "INCREMENTAL_EXPORT"
        request["IncrementalExportSpecification"] = {
            "ExportFromTime": since,
            "ExportToTime": datetime.now(since.tzinfo),
            "ExportViewType": "NEW_IMAGE",
        }
    started = _export(
        call(ddb.export_table_to_point_in_time, f"ExportTableToPointInTime {table}", **request)["ExportDescription"]
    )
    return _wait_for(ddb, started, table, wait_seconds, sleep)


def _running(ddb: Any, table_arn: str, bucket: str) -> Export | None:
    """A full export of the table into ``bucket`` still in progress, if any."""
    for summary in items(ddb, "list_exports", "ListExports", "ExportSummaries", TableArn=table_arn):
        if summary.get("ExportStatus") != "IN_PROGRESS" or summary.get("ExportType", "FULL_EXPORT") != "FULL_EXPORT":
            continue
        found = call(ddb.describe_export, "DescribeExport", ExportArn=summary["ExportArn"])["ExportDescription"]
        if found.get("S3Bucket") == bucket:
            return _export(found)
    return None


def _wait_for(ddb: Any, started: Export, table: str, wait_seconds: float, sleep: Callable[[float], None]) -> Export:
    state: dict[str, Export] = {"now": started}

    def check() -> tuple[bool, str]:
        found = call(ddb.describe_export, f"DescribeExport {started.id}", ExportArn=started.arn)["ExportDescription"]
        state["now"] = _export(found)
        if found.get("ExportStatus") == "FAILED":
            return False, f"{found.get('FailureCode')}: {found.get('FailureMessage')}"
        return found.get("ExportStatus") == "COMPLETED", ""

    _wait(check, f"export {started.id} of {table}", wait_seconds, sleep)
    return state["now"]


def find_export(ddb: Any, table: str, which: str) -> Export:
    """An export of ``table``: ``latest`` (the newest completed one) or one by its id or ARN."""
    desc = call(ddb.describe_table, f"DescribeTable {table}", TableName=table)["Table"]
    found = [
        _export(call(ddb.describe_export, "DescribeExport", ExportArn=s["ExportArn"])["ExportDescription"])
        for s in items(ddb, "list_exports", f"ListExports {table}", "ExportSummaries", TableArn=desc["TableArn"])
    ]
    done = [e for e in found if e.status == "COMPLETED"]
    if which == "latest":
        if not done:
            raise NotFoundError(f"table {table!r} has no completed export: run `invoke ddb.export` first")
        return max(done, key=lambda e: (e.exported_at is not None, e.exported_at or 0, e.id))
    for e in found:
        if which in (e.id, e.arn):
            if e.status != "COMPLETED":
                raise ConfigError(f"export {e.id} is {e.status}, not COMPLETED: wait for it, or use another")
            return e
    raise NotFoundError(
        f"no export {which!r} of table {table!r}: the completed ones are "
        + (", ".join(e.id for e in done) or "none (run `invoke ddb.export`)")
    )


# S3's answers for an object that is not there: they do not end in "NotFound", so ``translate`` alone
# would make them a CloudError (and the optional .md5 beside a manifest would stop the read).
MISSING_CODES = ("NoSuchKey", "NoSuchBucket", "404")


def _get(s3: Any, bucket: str, key: str) -> bytes:
    what = f"GetObject s3://{bucket}/{key}"
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()  # type: ignore[no-any-return]
    except ClientError as err:
        if error_code(err) in MISSING_CODES:
            raise NotFoundError(
                f"s3://{bucket}/{key} is missing: the export is incomplete (reported done, its files are not all "
                "there); export again with `invoke ddb.export`"
            ) from None
        raise translate(err, what) from None
    except BotoCoreError as err:
        raise translate(err, what) from None


def _checked_json(s3: Any, bucket: str, key: str) -> bytes:
    """A manifest, checked against the ``.md5`` beside it when the export has one."""
    body = _get(s3, bucket, key)
    try:
        want = _get(s3, bucket, key.rsplit(".", 1)[0] + ".md5").decode().strip()
    except NotFoundError:
        return body
    if hashlib.md5(body).hexdigest() != want:  # noqa: S324 - the export's own checksum
        raise InputError(f"s3://{bucket}/{key} does not match its .md5: the export was altered; export again")
    return body


def _verified_files(s3: Any, export: Export) -> Iterator[tuple[str, bytes, int]]:
    """Each data file of an export (key, gzipped bytes, items the manifest says), its MD5 checked first."""
    summary = json.loads(_checked_json(s3, export.bucket, f"{export.base}/manifest-summary.json"))
    listing = _checked_json(s3, export.bucket, summary["manifestFilesS3Key"]).decode()
    total = 0
    for line in filter(None, (x.strip() for x in listing.splitlines())):
        entry = json.loads(line)
        key = entry["dataFileS3Key"]
        raw = _get(s3, export.bucket, key)
        if base64.b64encode(hashlib.md5(raw).digest()).decode() != entry["md5Checksum"]:  # noqa: S324
            raise InputError(f"s3://{export.bucket}/{key}: its MD5 is not the manifest's: the file was altered or cut")
        total += int(entry["itemCount"])
        yield key, raw, int(entry["itemCount"])
    if total != summary.get("itemCount", total):
        raise InputError(f"export {export.id}: its files hold {total} items, its summary says {summary['itemCount']}")


def read_items(s3: Any, export: Export, on_file: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
    """Every item of an export as DynamoDB JSON (what a Scan returns), each data file verified before it is read."""
    for key, raw, expected in _verified_files(s3, export):
        count = 0
        for text in gzip.decompress(raw).decode("utf-8").splitlines():
            if text.strip():
                count += 1
                yield json.loads(text)["Item"]
        if count != expected:
            raise InputError(f"s3://{export.bucket}/{key}: {count} items, the manifest says {expected}")
        if on_file is not None:
            on_file(count)


def download(s3: Any, export: Export, into: Path) -> list[Path]:
    """The export's data files, verified, written under ``into`` (for an engine that reads files: DuckDB)."""
    out = []
    for n, (_key, raw, _count) in enumerate(_verified_files(s3, export)):
        path = into / f"{n:05d}.json.gz"
        path.write_bytes(raw)
        out.append(path)
    return out


@dataclass
class Imported:
    table: str
    items: int
    errors: int


def import_export(
    ddb: Any,
    export: Export,
    table: str,
    creation: dict[str, Any],
    *,
    wait_seconds: float = 3600,
    sleep: Callable[[float], None] = time.sleep,
) -> Imported:
    """Load ``export``'s data files into a new table ``table`` with ImportTable (``creation``: its key schema, GSIs
    …)."""
    started = call(
        ddb.import_table,
        f"ImportTable {table}",
        S3BucketSource={"S3Bucket": export.bucket, "S3KeyPrefix": f"{export.base}/data/"},
        InputFormat="DYNAMODB_JSON",
        InputCompressionType="GZIP",
        TableCreationParameters=dict(creation, TableName=table),
    )["ImportTableDescription"]
    state: dict[str, Any] = {"now": started}

    def check() -> tuple[bool, str]:
        found = call(ddb.describe_import, "DescribeImport", ImportArn=started["ImportArn"])["ImportTableDescription"]
        state["now"] = found
        if found.get("ImportStatus") in ("FAILED", "CANCELLED"):
            return False, f"{found.get('FailureCode')}: {found.get('FailureMessage')}"
        return found.get("ImportStatus") == "COMPLETED", ""

    _wait(check, f"import of export {export.id} into {table}", wait_seconds, sleep)
    now = state["now"]
    return Imported(table, int(now.get("ImportedItemCount") or 0), int(now.get("ErrorCount") or 0))


def creation_parameters(spec: Any) -> dict[str, Any]:
    """ImportTable's TableCreationParameters from the one table spec (keys, attributes, GSI, billing)."""
    from ops.table_spec import create_table_kwargs

    kwargs = create_table_kwargs(spec)
    keep = ("AttributeDefinitions", "KeySchema", "BillingMode", "ProvisionedThroughput", "GlobalSecondaryIndexes")
    return {k: v for k, v in kwargs.items() if k in keep}


# ---------------------------------------------------------------------------- on a stack
def clients(target: Any) -> tuple[Any, Any]:
    """The stack's DynamoDB and S3 clients (path-style S3 on a twin: its moto server has no bucket host names)."""
    s3 = target.client("s3") if target.cloud else target.client("s3", s3={"addressing_style": "path"})
    return target.client("dynamodb"), s3


def stack_bucket(target: Any, ddb: Any) -> str:
    from ops.ddb import require_table

    arn = require_table(ddb, target.stack.table_name, target.stack.name)["TableArn"]
    return bucket_name(target.stack.table_name, arn.split(":")[4])


# A twin's DynamoDB engines that answer ExportTableToPointInTime with COMPLETED and write no file
# (MiniStack, run here or as its docker image): an export there would only be found missing later.
SILENT_EXPORT_ENGINES = ("ministack", "docker")


def check_exports_written(target: Any) -> None:
    """Refuse, before any request, an export on a twin whose DynamoDB engine (its twin record) never writes one."""
    from ops.target import read_twin

    if target.cloud:
        return
    engine = ((read_twin(target.stack.name) or {}).get("dynamodb") or {}).get("engine")
    if engine in SILENT_EXPORT_ENGINES:
        name = target.stack.name
        raise RefusedError(
            f"the twin of stack {name!r} runs DynamoDB on {engine}, which reports an export COMPLETED but writes "
            f"no file (nothing was requested): run the export path on a moto twin, `invoke local.up --stack {name} "
            "--engine moto` (switching engines needs --empty)"
        )


def export_target(target: Any, since: str | None = None) -> Export:
    """ddb.export on a stack: into its export bucket (a twin's is made on demand; the cloud's is the Pulumi
    program's)."""
    check_exports_written(target)
    ddb, s3 = clients(target)
    moment = datetime.fromisoformat(since) if since else None
    return start_export(
        ddb, s3, target.stack.table_name, stack_bucket(target, ddb), since=moment, create_bucket=not target.cloud
    )


def export_items(target: Any, which: str) -> tuple[Export, Iterator[dict[str, Any]]]:
    """``--from-export ID|latest``: the export and its items (verified file by file as they are read)."""
    ddb, s3 = clients(target)
    found = find_export(ddb, target.stack.table_name, which)
    return found, read_items(s3, found)


def import_target(target: Any, which: str, table: str) -> Imported:
    """ddb.import on a stack: export ``which`` into the new table ``table``, made from the stack's table spec."""
    from ops.ddb import describe
    from ops.table_spec import table_spec

    ddb, _ = clients(target)
    if describe(ddb, table) is not None:
        raise ConfigError(f"table {table!r} exists: ImportTable only creates a new table; name another with --table")
    found = find_export(ddb, target.stack.table_name, which)
    return import_export(ddb, found, table, creation_parameters(table_spec(target.stack)))
