"""Entry point of the MiniStack engine: ``<.tools/ministack>/bin/python -m ops.local.ministack_server``.

Runs MiniStack's ASGI application (DynamoDB and DynamoDB Streams only) on 127.0.0.1 under
hypercorn, in MiniStack's own virtualenv (it pins a botocore of its own, so it never shares
``.venv``). This module imports nothing of ours but the standard library, for that reason.

MiniStack keeps its tables in memory and saves them only on a clean stop: a kill -9 lost every
acknowledged write (503 of 503, measured). We give it the default engine's promise instead:

- **write-ahead journal**: every mutating DynamoDB request is appended to
  ``<data>/journal.log`` (length, crc32, JSON) *before* MiniStack applies it, and only then
  does its answer leave the process. A write the journal cannot take gets a 503 and is not
  applied, so nothing unjournaled is ever visible. Journaled requests run one at a time
  under one lock, so journal order is apply order; reads do not take the lock. A request that
  fails (a condition, a validation error) replays to the same failure, so journaling before
  knowing the outcome is harmless.
- **snapshot**: MiniStack's DynamoDB state *and its stream records* (with the sequence counter),
  written atomically with the journal sequence number it covers: on a clean stop, after any
  table-level change (CreateTable draws its stream label from the clock, which a replay
  would not reproduce), and every ``COMPACT_EVERY`` writes (bounds the replay at start).
- **restore at start**: snapshot, then the journal's records past its sequence number, replayed
  through the same application; a record cut short by the kill ends the journal. Because the
  stream records are part of the snapshot and replay is in the original order, sequence numbers
  come back the same and the twin's stream worker resumes from its checkpoint; where a record
  cannot be matched (eventIDs are random) it re-reads the shard from TRIM_HORIZON, which is
  harmless because the consumer never moves a group row back.

The snapshot reads MiniStack's private module state, so the server refuses any MiniStack other
than ``PINNED`` (one line, exit 2). ``ops.local.ministack_patches`` are installed before it serves.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import signal
import struct
import sys
import tempfile
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

PINNED = "1.5.33"
SNAPSHOT_FILE = "snapshot.json"
JOURNAL_FILE = "journal.log"
REPORT_FILE = "restore.json"  # what the last start restored, read by local.up
SNAPSHOT_FORMAT = 1
COMPACT_EVERY = 5000  # journaled writes between two snapshots: a restart replays at most this many
HEADER = struct.Struct(">II")  # payload length, crc32 of the payload
TARGET_PREFIX = "DynamoDB_20120810."
# requests that change DynamoDB's state; the others (reads, Streams) pass without the journal
WRITES = frozenset(
    {
        "CreateTable",
        "DeleteTable",
        "UpdateTable",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "ExecuteStatement",
        "BatchExecuteStatement",
        "ExecuteTransaction",
        "UpdateTimeToLive",
        "UpdateContinuousBackups",
        "TagResource",
        "UntagResource",
        "CreateBackup",
        "DeleteBackup",
        "RestoreTableFromBackup",
        "RestoreTableToPointInTime",
        "ImportTable",
        "ExportTableToPointInTime",
        "PutResourcePolicy",
        "DeleteResourcePolicy",
        "UpdateContributorInsights",
        "EnableKinesisStreamingDestination",
        "DisableKinesisStreamingDestination",
        "UpdateKinesisStreamingDestination",
    }
)
# their outcome depends on the clock (stream labels, ARNs, backup ids): snapshot right after them
TABLE_LEVEL = frozenset(
    {"CreateTable", "DeleteTable", "UpdateTable", "RestoreTableFromBackup", "RestoreTableToPointInTime", "ImportTable"}
)
KEPT_HEADERS = (b"authorization", b"x-amz-target", b"content-type", b"x-amz-date", b"host")  # region, account, action

log = logging.getLogger("ministack-server")

Asgi = Callable[
    [dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Callable[[dict[str, Any]], Awaitable[None]]],
    Awaitable[None],
]


def configure_environment(port: int) -> None:
    """MiniStack reads its settings at import: loopback only, our two services, no persistence of its own."""
    os.environ["BIND_HOST"] = "127.0.0.1"  # its default is every interface
    os.environ["GATEWAY_PORT"] = str(port)
    os.environ["SERVICES"] = "dynamodb,dynamodbstreams"
    os.environ["PERSIST_STATE"] = "0"  # we snapshot ourselves, with the stream records and the journal's seq
    os.environ.setdefault("LOG_LEVEL", "WARNING")


def installed_version() -> str:
    from importlib.metadata import version

    return version("ministack")


# ---------------------------------------------------------------- journal


class Journal:
    """Append-only file of the requests to replay; one ``os.write`` per record, so a kill -9 after it keeps it."""

    def __init__(self, path: Path, seq: int, fsync: bool) -> None:
        self.path = path
        self.seq = seq
        self.fsync = fsync
        self.count = 0
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def append(self, record: dict[str, Any]) -> int:
        seq = self.seq + 1
        payload = json.dumps(record | {"seq": seq}, separators=(",", ":")).encode()
        data = HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        if os.write(self.fd, data) != len(data):  # a short write (disk full): the request is refused
            raise OSError("short write")
        if self.fsync:
            os.fsync(self.fd)
        self.seq = seq
        self.count += 1
        return seq

    def reset(self) -> None:
        """Empty the journal once a snapshot covers it (records at or below the snapshot's seq are skipped anyway)."""
        os.ftruncate(self.fd, 0)
        self.count = 0

    def close(self) -> None:
        os.close(self.fd)


def read_journal(path: Path) -> tuple[list[dict[str, Any]], int, str]:
    """The journal's whole records, the byte offset where they end, and why it ended early ("" when it did not)."""
    if not path.exists():
        return [], 0, ""
    raw = path.read_bytes()
    records: list[dict[str, Any]] = []
    at = 0
    while at < len(raw):
        if at + HEADER.size > len(raw):
            return records, at, f"a record cut short at byte {at}"
        size, crc = HEADER.unpack_from(raw, at)
        payload = raw[at + HEADER.size : at + HEADER.size + size]
        if len(payload) < size or zlib.crc32(payload) != crc:
            return records, at, f"a record cut short or damaged at byte {at}"
        records.append(json.loads(payload))
        at += HEADER.size + size
    return records, at, ""


# ---------------------------------------------------------------- snapshot


def _modules() -> tuple[Any, Any]:
    from ministack.core import persistence
    from ministack.services import dynamodb

    return dynamodb, persistence


def snapshot_bytes(seq: int) -> bytes:
    dynamodb, persistence = _modules()
    state = {
        "format": SNAPSHOT_FORMAT,
        "ministack": installed_version(),
        "seq": seq,
        "dynamodb": dynamodb.get_state(),
        # MiniStack's own persistence drops these: a restart would trim every stream the worker reads
        "stream_records": dynamodb._stream_records,
        "stream_trimmed": dynamodb._stream_trimmed,
        "stream_counter": dynamodb._stream_seq_counter,
        "closed_streams": dynamodb._closed_streams,
    }
    return json.dumps(state, default=persistence._json_default, separators=(",", ":")).encode()


def write_snapshot(path: Path, seq: int) -> None:
    data = snapshot_bytes(seq)
    fd, tmp = tempfile.mkstemp(prefix=".snapshot.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # the journal it covers is emptied next: the snapshot must be on disk first
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_snapshot(path: Path) -> int:
    """Put a snapshot's state into MiniStack; the journal seq it covers (0 without one)."""
    if not path.exists():
        return 0
    dynamodb, persistence = _modules()
    state = json.loads(path.read_bytes(), object_hook=persistence._json_object_hook)
    dynamodb.load_persisted_state(state["dynamodb"])
    dynamodb._stream_records.update(state.get("stream_records") or {})
    dynamodb._stream_trimmed.update(state.get("stream_trimmed") or {})
    dynamodb._closed_streams.update(state.get("closed_streams") or {})
    dynamodb._stream_seq_counter = int(state.get("stream_counter") or 0)
    return int(state["seq"])


# ---------------------------------------------------------------- the ASGI wrapper


async def call_app(app: Asgi, headers: list[tuple[bytes, bytes]], body: bytes, send: Any) -> None:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # no disconnect while the app answers
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    await app(scope, receive, send)


class Durable:
    """MiniStack's application behind the write-ahead journal."""

    def __init__(self, app: Asgi, data: Path, fsync: bool) -> None:
        self.app = app
        self.data = data
        self.fsync = fsync
        self.lock = asyncio.Lock()
        self.journal: Journal | None = None
        self.report: dict[str, Any] = {}

    async def restore(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        snap = self.data / SNAPSHOT_FILE
        jpath = self.data / JOURNAL_FILE
        covered = load_snapshot(snap)
        records, end, problem = read_journal(jpath)
        replayed = 0
        seq = covered
        for record in records:
            if record["seq"] <= covered:
                continue  # a crash between a snapshot and the journal's reset: already in the snapshot
            headers = [(k.encode(), v.encode()) for k, v in record["headers"]]
            await call_app(self.app, headers, base64.b64decode(record["body"]), _discard)
            seq = record["seq"]
            replayed += 1
        if problem:
            with open(jpath, "r+b") as f:
                f.truncate(end)  # the torn tail was never acknowledged: drop it
        self.journal = Journal(jpath, seq, self.fsync)
        if replayed:
            self.compact()  # start from a snapshot: the replayed writes' clock-dependent results are now fixed
        self.report = {
            "snapshot": snap.exists() and covered > 0,
            "snapshot_seq": covered,
            "replayed": replayed,
            "journal_problem": problem,
        }
        _write_report(self.data / REPORT_FILE, self.report)

    def compact(self) -> None:
        assert self.journal is not None
        write_snapshot(self.data / SNAPSHOT_FILE, self.journal.seq)
        self.journal.reset()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        target = headers.get(b"x-amz-target", b"").decode(errors="replace")
        action = target[len(TARGET_PREFIX) :] if target.startswith(TARGET_PREFIX) else ""
        if action not in WRITES:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        kept = [(k.decode(), v.decode(errors="replace")) for k, v in scope["headers"] if k.lower() in KEPT_HEADERS]
        async with self.lock:
            assert self.journal is not None
            try:
                self.journal.append({"headers": kept, "body": base64.b64encode(body).decode()})
            except OSError as err:
                await _refuse(
                    send, f"the MiniStack twin could not journal this write in {self.data} ({err}); not applied"
                )
                return
            await call_app(self.app, scope["headers"], body, send)
            if action in TABLE_LEVEL or self.journal.count >= COMPACT_EVERY:
                try:
                    self.compact()
                except OSError as err:  # the journal still holds everything: only the replay gets longer
                    log.warning("snapshot failed (%s); the journal keeps the writes", err)

    async def stop(self) -> None:
        async with self.lock:
            if self.journal is not None:
                self.compact()
                self.journal.close()
                self.journal = None


async def _discard(message: dict[str, Any]) -> None:
    return None


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _refuse(send: Any, message: str) -> None:
    body = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [(b"content-type", b"application/x-amz-json-1.0"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _write_report(path: Path, report: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(report))
    os.replace(tmp, path)


async def serve(port: int, data: Path, fsync: bool) -> None:
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config
    from ministack.app import app as ministack_app

    from ops.local import ministack_patches

    if not ministack_patches.install():  # a Query that costs its page (ops/local/ministack_patches)
        log.warning("ministack patches off (%s=0): plain MiniStack", ministack_patches.DISABLE_ENV)
    durable = Durable(ministack_app, data, fsync)
    await durable.restore()  # before the port opens: local.up waits for the port, so it waits for this
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.keep_alive_timeout = 75
    config.accesslog = None
    config.graceful_timeout = 5
    await hypercorn_serve(durable, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]
    await durable.stop()  # after the last request: the snapshot covers the whole journal
    log.warning("stopped; state saved in %s", data / SNAPSHOT_FILE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data", type=Path, required=True, help="the stack's MiniStack directory (snapshot, journal)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    found = installed_version()
    if found != PINNED:
        # the log is the process's output: local.up shows its last line when the port never opens
        log.error("ministack %s is installed, the twin needs %s: run bin/bootstrap", found, PINNED)
        return 2
    configure_environment(args.port)
    fsync = os.environ.get("CRUDDUR_TWIN_JOURNAL_FSYNC") == "1"  # the moto journal's switch: survive a power loss too
    asyncio.run(serve(args.port, args.data, fsync))
    return 0


if __name__ == "__main__":
    sys.exit(main())
