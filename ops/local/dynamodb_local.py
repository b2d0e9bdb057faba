"""AWS's DynamoDB Local as the twin's DynamoDB engine: a Java process over one SQLite file per stack, no Docker.

``bin/install-dynamodb-local`` unpacks DynamoDB Local 1.25.1 into ``.tools/dynamodb-local/`` (or
``$DYNAMODB_LOCAL_DIR``). ``local.up --engine dynamodb-local`` starts it beside the moto server
(which keeps serving Cognito, EC2, SQS and KMS) with ``-sharedDb -dbPath <state>/<stack>/dynamodb-local``:
one file per stack, kept across ``local.down``/``local.up``. Why these flags and not others
(never ``-inMemory``: no data kept and no file to index; never ``-optimizeDbBeforeStartup``:
it drops the item tables' primary keys) is in docs/dynamodb-local-notes.md.

The one change we make to DynamoDB Local's file: two indexes on its stream-record table ``us``.
Every write to a table with a stream runs ``SELECT MIN(SequenceNumber) FROM us WHERE StreamID = ?``,
and ``us`` has no index but its rowid, so a table created after some 30,000 stream records
(of any table, deleted ones included) writes at a few dozen items a second. With
``us(StreamID)`` and ``us(ShardID)`` it writes as fast as a fresh file. DynamoDB Local never
drops foreign indexes, so adding them once per start is idempotent and cheap.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ops.errors import ToolMissingError
from ops.proc import running, state, status_kb
from ops.stacks import PROJECT_ROOT

ENGINE = "dynamodb-local"
VERSION = "1.25.1"
INSTALL_COMMAND = "bin/install-dynamodb-local"
INSTALL_DIR_ENV = "DYNAMODB_LOCAL_DIR"  # the same variable bin/install-dynamodb-local installs into
JAR = "DynamoDBLocal.jar"
PROCESS_NEEDLE = JAR  # what the recorded pid's command line must contain before we signal it
DATA_DIR = "dynamodb-local"  # under the stack's state directory
DB_FILE = "shared-local-instance.db"  # the one file of -sharedDb, whatever credentials a client sends
SCHEMA_VERSION = "v2.4.0"  # the row of table cf in files of DynamoDB Local 1.25.1
STREAM_INDEXES = {"cruddur_us_stream": "StreamID", "cruddur_us_shard": "ShardID"}
# C1 only and a serial collector: the JVM listens after about half the CPU (1.1 s against 2.0 s,
# two runs each on a quiet 2-core machine) while writes, scans and queries stayed within noise
JVM_FLAGS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")


def install_dir() -> Path:
    configured = os.environ.get(INSTALL_DIR_ENV)
    return Path(configured) if configured else PROJECT_ROOT / ".tools" / "dynamodb-local"


def data_dir(state: Path) -> Path:
    return state / DATA_DIR


@dataclass(frozen=True)
class Runtime:
    java: str
    home: Path  # the unpacked emulator/ folder

    def command(self, data: Path, port: int) -> list[str]:
        # -disableTelemetry (and DDB_LOCAL_TELEMETRY=0 in its environment): no outbound calls, the twin is offline
        return [
            self.java,
            *JVM_FLAGS,
            f"-Djava.library.path={self.home / 'DynamoDBLocal_lib'}",
            "-jar",
            str(self.home / JAR),
            "-sharedDb",
            "-disableTelemetry",
            "-dbPath",
            str(data),
            "-port",
            str(port),
        ]


def runtime() -> Runtime:
    """The installed jar and a Java to run it, or one line saying what to install."""
    home = install_dir()
    if not (home / JAR).is_file():
        raise ToolMissingError(
            f"--engine {ENGINE} needs DynamoDB Local {VERSION} in {home}, which has no {JAR}: run {INSTALL_COMMAND}"
        )
    java = shutil.which("java")
    if not java:
        raise ToolMissingError(
            f"--engine {ENGINE} needs Java and no `java` is on PATH: run {INSTALL_COMMAND} as root (installs openjdk-17-jre-headless) "
            "or install any Java runtime ≥ 8"
        )
    return Runtime(java, home)


def installed() -> bool:
    """Whether ``local.up --engine dynamodb-local`` would find what it needs."""
    try:
        runtime()
    except ToolMissingError:
        return False
    return True


def add_stream_indexes(db: Path) -> str | None:
    """Index DynamoDB Local's stream records by stream and by shard; a warning line when the file is not one we know.

    Safe while DynamoDB Local runs (a second SQLite connection waits for its lock) and on a
    file that has them already. A file of another schema version is left alone: a newer jar
    may have changed the table, and a wrong index is worse than a slow one.
    """
    try:
        con = sqlite3.connect(db, timeout=30)
    except sqlite3.Error as err:
        return (
            f"{ENGINE}: cannot open {db} ({err}); stream indexes not added, writes slow down as stream records pile up"
        )
    try:
        found = con.execute("SELECT version FROM cf").fetchone()
        columns = {row[1] for row in con.execute("PRAGMA table_info(us)")}
        version = found[0] if found else None
        if version != SCHEMA_VERSION or not set(STREAM_INDEXES.values()) <= columns:
            return (
                f"{ENGINE}: {db} has schema version {version or 'unknown'}, not {SCHEMA_VERSION} (DynamoDB Local {VERSION}); "
                "stream indexes not added, writes slow down as stream records pile up"
            )
        for name, column in STREAM_INDEXES.items():
            con.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON us({column})')
        con.commit()
        return None
    except sqlite3.Error as err:
        return (
            f"{ENGINE}: could not index the stream records of {db} ({err}); writes slow down as stream records pile up"
        )
    finally:
        con.close()


def use_wal(db: Path) -> str | None:
    """Put the (stopped) file in SQLite's WAL mode, creating it empty when missing; a warning line when that fails.

    DynamoDB Local commits every item write in its own transaction and never sets a journal
    mode, so the mode stored in the file holds. With WAL a commit is one append and one fsync
    instead of a journal file written, synced and deleted: 3 to 8 times the writes per second
    on this project's disk (docs/dynamodb-local-notes.md). Set only while Java is stopped.
    The file then has ``-wal``/``-shm`` companions: copy the directory only while the twin is down.
    """
    try:
        con = sqlite3.connect(db, timeout=30)
        try:
            mode = con.execute("PRAGMA journal_mode=WAL").fetchone()
        finally:
            con.close()
    except sqlite3.Error as err:
        return f"{ENGINE}: cannot set WAL mode on {db} ({err}); writes stay at the rollback journal's speed"
    return (
        None
        if mode and str(mode[0]).lower() == "wal"
        else f"{ENGINE}: {db} stayed in journal mode {mode[0] if mode else '?'}, not WAL"
    )


def initialised(db: Path) -> bool:
    """Whether DynamoDB Local has made its tables in the file (it does on its first request, not at start)."""
    if not db.exists():
        return False
    try:
        con = sqlite3.connect(db, timeout=30)
        try:
            return (
                con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'us'").fetchone() is not None
            )
        finally:
            con.close()
    except sqlite3.Error:
        return True  # not readable as we expect: add_stream_indexes will say so in a warning


def prepare(db: Path) -> list[str]:
    """What ``local.up`` does to the file before Java starts: WAL mode, and the stream indexes when its tables exist."""
    db.parent.mkdir(parents=True, exist_ok=True)
    ready = initialised(db)
    return [w for w in (use_wal(db), add_stream_indexes(db) if ready else None) if w]


def stream_indexes(db: Path) -> set[str]:
    """The names of our indexes present on ``us`` (for status and tests)."""
    con = sqlite3.connect(db, timeout=30)
    try:
        return {row[1] for row in con.execute("PRAGMA index_list(us)")} & set(STREAM_INDEXES)
    finally:
        con.close()


def start(rt: Runtime, data: Path, port: int, log: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start the Java process in its own session (``down`` stops it by pid); the caller waits for the port."""
    data.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"DDB_LOCAL_TELEMETRY": "0"}
    return subprocess.Popen(
        rt.command(data, port),
        cwd=rt.home,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def touch(endpoint: str, region: str) -> None:
    """One cheap request: DynamoDB Local creates its file (and table ``us``) on the first request, not at start."""
    import boto3
    from botocore.config import Config

    from ops.target import LOCAL_CREDENTIALS

    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=region,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, read_timeout=120),
        **LOCAL_CREDENTIALS,
    )
    client.list_tables(Limit=1)


def alive(pid: int) -> bool:
    """Whether our Java process still runs, also while it shuts down.

    When a JVM exits, its main thread goes first: the process then shows as a zombie (which
    ``ops.proc.running`` counts as gone) while its other threads still hold the port for a
    moment. Its thread count tells the two apart.
    """
    if running(pid, PROCESS_NEEDLE):
        return True
    return state(pid) == "Z" and (status_kb("Threads", pid) or 0) > 1  # Threads: a plain count, read like a kB field


def stop(pid: int, seconds: float = 30) -> bool:
    """SIGTERM our Java process and wait until it is gone; SIGKILL when it hangs. False when it was not running.

    Killing is safe: DynamoDB Local commits every write in its own SQLite transaction before it
    answers, so nothing acknowledged is lost (tests/twin/ops/local/test_dynamodb_local.py).
    """
    if not running(pid, PROCESS_NEEDLE):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
        time.sleep(0.05)
        try:
            os.waitpid(pid, os.WNOHANG)  # reap it when we are its parent (tests)
        except ChildProcessError:
            pass
    return True
