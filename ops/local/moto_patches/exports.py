"""DynamoDB's export to S3 written as AWS writes it, so the twin's exports are read like the cloud's.

moto 5.2.5 serves ExportTableToPointInTime (it needs point-in-time recovery, as AWS does) but
writes one data file under a random folder and no manifests, and its ExportArn names the table's
ARN inside the table's ARN with ``/import/``. AWS writes, under ``<prefix>/AWSDynamoDB/<export id>/``:

- ``data/<name>.json.gz``: gzipped DynamoDB JSON, one ``{"Item": {...}}`` a line;
- ``manifest-files.json``: one line per data file (``itemCount``, ``md5Checksum`` base64 of the
  file's MD5, ``etag``, ``dataFileS3Key``), and ``manifest-files.md5`` (its MD5, hex);
- ``manifest-summary.json`` (``exportArn``, ``itemCount``, ``manifestFilesS3Key``, ``exportTime``
  …) and ``manifest-summary.md5``;

and its ExportArn is ``<table arn>/export/<export id>``. ``install()`` makes moto's export do
that (the items and their order are moto's own), and lets the twin's snapshot (a pickle of the
backends) hold exports and imports, which moto keeps as Thread objects; it runs in the process
that serves moto. moto's ImportTable also loses items whose text holds a quote or a brace: it
reads each line as JSON here instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any


def export_id(now: float | None = None) -> str:
    """An id of AWS's form: the export's start in milliseconds, a dash, eight hex digits."""
    return f"{int((now or time.time()) * 1000):014d}-{uuid.uuid4().hex[:8]}"


def _aws_arn(init: Any) -> Any:
    if getattr(init, "_cruddur_patched", False):
        return init

    def patched(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.arn = f"{self.table.table_arn}/export/{export_id()}"
        self.export_time = datetime.now(UTC)

    patched._cruddur_patched = True  # type: ignore[attr-defined]
    return patched


def _write_as_aws(self: Any, s3_backend: Any) -> None:
    from moto.core.utils import gzip_compress
    from moto.dynamodb.models.utilities import dynamo_json_dump

    lines = []
    for item in self.table.all_items():
        json_item = item.to_json(root_attr_name="Item")
        lines.append(dynamo_json_dump(json_item))
        self.processed_bytes += len(json_item)
        self.item_count += 1
    ident = self.arn.rsplit("/", 1)[-1]
    base = f"{self.s3_prefix.strip('/')}/AWSDynamoDB/{ident}" if self.s3_prefix else f"AWSDynamoDB/{ident}"
    data = gzip_compress(("\n".join(lines) + ("\n" if lines else "")).encode("utf-8"))
    data_key = f"{base}/data/{uuid.uuid4().hex}.json.gz"
    digest = hashlib.md5(data).digest()  # noqa: S324 - AWS's manifest names MD5 checksums

    def put(key: str, body: bytes) -> None:
        s3_backend.put_object(bucket_name=self.s3_bucket, key_name=key, value=body)

    put(data_key, data)
    files = (
        json.dumps(
            {
                "itemCount": self.item_count,
                "md5Checksum": base64.b64encode(digest).decode(),
                "etag": digest.hex(),
                "dataFileS3Key": data_key,
            }
        )
        + "\n"
    ).encode()
    put(f"{base}/manifest-files.json", files)
    put(f"{base}/manifest-files.md5", hashlib.md5(files).hexdigest().encode())  # noqa: S324
    summary = json.dumps(
        {
            "version": "2020-06-30",
            "exportArn": self.arn,
            "startTime": self.export_time.isoformat(),
            "endTime": datetime.now(UTC).isoformat(),
            "tableArn": self.table.table_arn,
            "exportTime": self.export_time.isoformat(),
            "s3Bucket": self.s3_bucket,
            "s3Prefix": self.s3_prefix,
            "manifestFilesS3Key": f"{base}/manifest-files.json",
            "billedSizeBytes": self.processed_bytes,
            "itemCount": self.item_count,
            "outputFormat": "DYNAMODB_JSON",
            "exportType": self.export_type,
        }
    ).encode()
    put(f"{base}/manifest-summary.json", summary)
    put(f"{base}/manifest-summary.md5", hashlib.md5(summary).hexdigest().encode())  # noqa: S324
    self.status = "COMPLETED"


def _response_with_time(response: Any) -> Any:
    if getattr(response, "_cruddur_patched", False):
        return response

    def patched(self: Any) -> dict[str, Any]:
        out = dict(response(self))
        if getattr(self, "export_time", None) is not None:
            out["ExportTime"] = self.export_time.timestamp()
            out["StartTime"] = self.export_time.timestamp()
        return out

    patched._cruddur_patched = True  # type: ignore[attr-defined]
    return patched


def _import_by_lines(self: Any, s3_backend: Any, bucket: Any) -> None:
    """moto's ImportTable, reading DynamoDB JSON as it is: one JSON document a line.

    moto parses the files with a PartiQL JSON parser that drops every item whose text holds a
    quote, a brace or a newline (a message does); the rest (the table made first, then every
    object under the prefix put, errors counted) is moto's.
    """
    from moto.core.utils import gzip_decompress
    from moto.dynamodb.models import dynamodb_backends

    dynamo = dynamodb_backends[self.account_id][self.region_name]
    self.table = dynamo.create_table(
        name=self.table_name,
        billing_mode=self.billing_mode,
        throughput=self.throughput,
        schema=self.key_schema,
        global_indexes=self.global_indexes,
        indexes=None,
        attr=self.attrs,
        sse_specification=None,
        streams=None,
        tags=[],
        deletion_protection_enabled=False,
        warm_throughput=None,
    )
    keys, _, _, _ = s3_backend.list_objects(
        bucket, prefix=self.s3_source.get("S3KeyPrefix"), delimiter=None, marker=None, max_keys=None
    )
    for key in keys:
        raw = gzip_decompress(key.value) if self.compression_type == "GZIP" else key.value
        for line in raw.decode("utf-8").splitlines():
            if not line.strip():
                continue
            self.processed_count += 1
            self.processed_bytes += len(line)
            try:
                self.table.put_item(item_attrs=json.loads(line)["Item"])
                self.imported_count += 1
            except Exception as err:  # noqa: BLE001 - counted, as moto counts it
                self.failure_message = str(err)
                self.error_count += 1
    self.status = "COMPLETED" if self.error_count == 0 else "FAILED"


def _thread_fields() -> frozenset[str]:
    import threading

    return frozenset(vars(threading.Thread()))


def _getstate(self: Any) -> dict[str, Any]:
    """moto keeps each export and import as a (finished) Thread: the twin's snapshot keeps only its data."""
    return {k: v for k, v in self.__dict__.items() if k not in _thread_fields()}


def _setstate(self: Any, state: dict[str, Any]) -> None:
    import threading

    threading.Thread.__init__(self)
    self.__dict__.update(state)


def install() -> None:
    """Idempotent; in the process that serves moto (``ops.local.motoserver``, or a test's ``mock_aws``)."""
    from moto.dynamodb.models.table_export import TableExport
    from moto.dynamodb.models.table_import import TableImport

    TableImport._process_s3_files = _import_by_lines  # type: ignore[method-assign]
    for kind in (TableExport, TableImport):
        kind.__getstate__ = _getstate  # type: ignore[method-assign]
        kind.__setstate__ = _setstate  # type: ignore[method-assign]

    TableExport.__init__ = _aws_arn(TableExport.__init__)  # type: ignore[method-assign]
    TableExport._backup_to_s3_file = _write_as_aws  # type: ignore[method-assign]
    TableExport.response = _response_with_time(TableExport.response)  # type: ignore[method-assign]
