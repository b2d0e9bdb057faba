"""Start, stop and inspect the local twin of a stack.

A twin is: one AWS endpoint process (the embedded moto server, serving DynamoDB, Streams,
Cognito and EC2), optionally a second engine for DynamoDB and Streams beside it (AWS's DynamoDB
Local as a Java process of ours, ``--engine dynamodb-local``, see ``ops.local.dynamodb_local``;
or the ``amazon/dynamodb-local`` image when a Docker engine answers), and one real PostgreSQL
(embedded, or ``DATABASE_URL``). What ``up`` started is recorded in ``<state>/<stack>/twin.json``;
``down`` stops only that.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ops.errors import ConfigError, RefusedError, ToolMissingError, TwinDownError
from ops.files import write_atomic
from ops.local import dynamodb_local, journal, postgres
from ops.proc import running as process_running
from ops.stacks import PROJECT_ROOT, StackSettings
from ops.target import LOCAL_DB_NAME, outputs_file, port_open, read_twin, redact_url, stack_state_dir, twin_file

ENGINES = ("auto", "moto", "dynamodb-local", "docker")
DYNAMODB_LOCAL_IMAGE = "amazon/dynamodb-local"


@dataclass
class ComponentStatus:
    name: str
    engine: str
    endpoint: str
    pid: int | None
    running: bool
    started_by_us: bool


@dataclass
class TwinStatus:
    stack: str
    state_dir: str
    components: list[ComponentStatus]

    @property
    def running(self) -> bool:
        return bool(self.components) and all(c.running for c in self.components)


@dataclass
class UpResult:
    status: TwinStatus
    already_running: bool
    restored: bool
    restore_note: str = ""  # the AWS server's restore report in one line (ops.local.journal.restore_summary)
    notes: list[str] = field(default_factory=list)  # more lines for local.up to print (the DynamoDB engine's data, warnings)


def docker_answers(timeout: float = 3.0) -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=timeout).returncode == 0
    except (subprocess.TimeoutExpired, OSError):
        return False


def _wait_port(port: int, seconds: float, proc: subprocess.Popen[bytes] | None = None, log: Path | None = None, what: str = "server") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_open("127.0.0.1", port, timeout=0.2):
            return
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log and log.exists() else []
            raise TwinDownError(f"the {what} exited while starting: {tail[0] if tail else 'no log'} (log: {log})")
        time.sleep(0.1)
    raise TwinDownError(f"the {what} did not answer on port {port} within {seconds:.0f}s (log: {log})")


def status(stack: StackSettings) -> TwinStatus:
    twin = read_twin(stack.name) or {}
    comps: list[ComponentStatus] = []
    aws = twin.get("aws")
    if aws:
        alive = process_running(aws.get("pid"), "ops.local.motoserver") and port_open("127.0.0.1", aws["port"])
        comps.append(ComponentStatus("aws (Cognito, EC2" + (")" if twin.get("dynamodb") else ", DynamoDB, Streams)"), aws["engine"], aws["endpoint"], aws.get("pid"), alive, True))
    ddb = twin.get("dynamodb")
    if ddb:
        pid = ddb.get("pid")  # our Java process; a container has none
        alive = (pid is None or process_running(pid, dynamodb_local.PROCESS_NEEDLE)) and port_open("127.0.0.1", ddb["port"])
        comps.append(ComponentStatus("dynamodb (DynamoDB, Streams)", ddb["engine"], ddb["endpoint"], pid, alive, True))
    pg = twin.get("postgres")
    if pg:
        if pg["engine"] == "embedded":
            pid = postgres.postmaster_pid(Path(pg["pgdata"]))
            alive = process_running(pid) and port_open("127.0.0.1", pg["port"])
        else:
            pid = None
            alive = _pg_answers(pg["url"])
        comps.append(ComponentStatus("postgres", pg["engine"], redact_url(pg["url"]), pid, alive, pg["engine"] == "embedded"))
    worker = twin.get("stream_worker")
    if worker:
        alive = process_running(worker.get("pid"), WORKER_MODULE)
        comps.append(ComponentStatus("stream consumer", "twin process", f"stream of {stack.table_name} → {worker.get('log')}", worker.get("pid"), alive, True))
    return TwinStatus(stack.name, str(stack_state_dir(stack.name)), comps)


def _pg_answers(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(_with_db(url, "postgres"), connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _with_db(url: str, dbname: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{dbname}", parts.query, parts.fragment))


def _refuse_busy(port: int, what: str, key: str, stack: str) -> None:
    if port_open("127.0.0.1", port):
        raise ConfigError(f"port {port} for the {what} of stack {stack!r} is already in use by another program: stop it or change cruddur:{key} in Pulumi.{stack}.yaml")


def up(stack: StackSettings, engine: str = "auto", database_url: str | None = None, stream_worker: bool = True) -> UpResult:
    """Start the twin (idempotent): returns ``already_running=True`` when it was up.

    ``stream_worker=False`` leaves the stream to whoever processes it by hand (tests that count records).
    """
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    current = status(stack)
    if current.running:
        return UpResult(current, already_running=True, restored=False)
    down_now = [c.name for c in current.components if not c.running]
    if down_now == ["stream consumer"]:  # the rest answers: start the consumer again, keep the data servers
        twin = read_twin(stack.name) or {}
        twin["stream_worker"] = _start_worker(stack, stack_state_dir(stack.name))
        _write_twin(stack.name, twin)
        return UpResult(status(stack), already_running=True, restored=False)
    if current.components:
        down(stack)  # a half-dead twin (crash, reboot): clear it and start clean

    state = stack_state_dir(stack.name)
    state.mkdir(parents=True, exist_ok=True)
    if engine == "auto":
        last = last_engine(state)  # the stack's DynamoDB data is where it ran last time: keep serving it from there
        if last in ("moto", dynamodb_local.ENGINE) or (last == "docker" and docker_answers()):
            engine = last
    use_docker = engine == "docker" or (engine == "auto" and docker_answers())
    if engine == "docker" and not docker_answers():
        raise ToolMissingError("--engine docker needs a Docker engine, and none answers: start Docker or use --engine moto")
    ddb_local = dynamodb_local.runtime() if engine == "dynamodb-local" else None  # a missing jar or Java: one line, before anything starts

    _refuse_busy(stack.local_aws_port, "AWS endpoint", "localAwsPort", stack.name)
    if use_docker or ddb_local:
        _refuse_busy(stack.local_dynamo_port, "DynamoDB endpoint", "localDynamoPort", stack.name)
    if not database_url:
        _refuse_busy(stack.local_postgres_port, "PostgreSQL server", "localPostgresPort", stack.name)

    try:
        return _start(stack, state, use_docker, database_url, stream_worker, ddb_local)
    except BaseException:
        down(stack)  # never leave half a twin running: a retry would find its ports taken
        raise


def _start(stack: StackSettings, state: Path, use_docker: bool, database_url: str | None, stream_worker: bool,
           ddb_local: dynamodb_local.Runtime | None = None) -> UpResult:
    twin: dict[str, Any] = {"stack": stack.name}
    notes: list[str] = []
    snapshot = state / "aws-state.pickle"
    report = journal.report_path(snapshot)
    report.unlink(missing_ok=True)  # the server writes a fresh one before it listens
    log = state / "aws.log"
    with open(log, "ab") as logf:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ops.local.motoserver", "--port", str(stack.local_aws_port), "--snapshot", str(snapshot)],
            cwd=PROJECT_ROOT, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    twin["aws"] = {"engine": "moto", "pid": proc.pid, "port": stack.local_aws_port, "endpoint": f"http://127.0.0.1:{stack.local_aws_port}"}
    _write_twin(stack.name, twin)  # record before waiting: a failed start can still be cleaned up by down
    _wait_port(stack.local_aws_port, 180, proc, log, "AWS endpoint (moto server)")  # replaying a long journal takes a while
    restore = journal.read_report(report)
    restored = journal.restored_anything(restore)

    if ddb_local:
        kept = _start_dynamodb_local(stack, state, ddb_local, twin, notes)
        restored = restored or kept
    elif use_docker:
        name = f"cruddur-{stack.name}-dynamodb"
        volume = f"cruddur-{stack.name}-dynamodb-data"
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        run = subprocess.run(
            ["docker", "run", "-d", "--name", name, "-p", f"127.0.0.1:{stack.local_dynamo_port}:8000", "-v", f"{volume}:/home/dynamodblocal/data",
             "-w", "/home/dynamodblocal", DYNAMODB_LOCAL_IMAGE, "-jar", "DynamoDBLocal.jar", "-sharedDb", "-dbPath", "./data"],
            capture_output=True, text=True,
        )
        if run.returncode != 0:
            raise TwinDownError(f"docker could not start {DYNAMODB_LOCAL_IMAGE}: {run.stderr.strip()}")
        twin["dynamodb"] = {"engine": "dynamodb-local", "container": name, "port": stack.local_dynamo_port, "endpoint": f"http://127.0.0.1:{stack.local_dynamo_port}"}
        _write_twin(stack.name, twin)
        _wait_port(stack.local_dynamo_port, 60, None, None, "dynamodb-local container")

    if database_url:
        if not _pg_answers(database_url):
            raise TwinDownError(f"DATABASE_URL ({redact_url(database_url)}) does not answer: start that server or unset DATABASE_URL to use the embedded one")
        twin["postgres"] = {"engine": "external", "url": database_url}
    else:
        pgdata = state / "pgdata"
        restored = restored or (pgdata / "PG_VERSION").exists()
        twin["postgres"] = {"engine": "embedded", "pgdata": str(pgdata), "port": stack.local_postgres_port,
                            "url": f"postgresql://postgres@127.0.0.1:{stack.local_postgres_port}/{LOCAL_DB_NAME}"}
        _write_twin(stack.name, twin)
        postgres.start(pgdata, stack.local_postgres_port, state / "postgres.log")
    _write_twin(stack.name, twin)

    from ops.local.bootstrap import ensure_cloud_side
    from ops.target import resolve_target

    target = resolve_target(stack.name)
    outputs = ensure_cloud_side(target, _read_outputs(stack.name))
    write_atomic(outputs_file(stack.name), json.dumps(outputs, indent=2, sort_keys=True))
    if stream_worker:
        twin["stream_worker"] = _start_worker(stack, state)
        _write_twin(stack.name, twin)
    served = twin.get("dynamodb") or {}
    write_atomic(state / LAST_ENGINE_FILE, ("docker" if served.get("container") else served.get("engine", "moto")) + "\n")
    return UpResult(status(stack), already_running=False, restored=restored, restore_note=journal.restore_summary(restore), notes=notes)


LAST_ENGINE_FILE = "dynamodb-engine"  # which engine served DynamoDB last time: `local.up` (auto) picks it again


def last_engine(state: Path) -> str | None:
    path = state / LAST_ENGINE_FILE
    return (path.read_text().strip() or None) if path.exists() else None


def _start_dynamodb_local(stack: StackSettings, state: Path, rt: dynamodb_local.Runtime, twin: dict[str, Any], notes: list[str]) -> bool:
    """Start DynamoDB Local on the stack's data directory, its stream records indexed; True when it held data already."""
    data = dynamodb_local.data_dir(state)
    db = data / dynamodb_local.DB_FILE
    kept = dynamodb_local.initialised(db)
    warnings = dynamodb_local.prepare(db)  # WAL mode, and the stream indexes when the file has its tables: before Java opens it
    log = state / "dynamodb-local.log"
    with open(log, "ab") as logf:
        proc = dynamodb_local.start(rt, data, stack.local_dynamo_port, logf)
    endpoint = f"http://127.0.0.1:{stack.local_dynamo_port}"
    twin["dynamodb"] = {"engine": dynamodb_local.ENGINE, "pid": proc.pid, "port": stack.local_dynamo_port, "endpoint": endpoint, "data": str(data), "log": str(log)}
    _write_twin(stack.name, twin)  # recorded before waiting, so a failed start is still stopped by down
    _wait_port(stack.local_dynamo_port, 180, proc, log, "DynamoDB Local (java)")  # a JVM on a busy 2-core machine takes its time
    if not kept:
        dynamodb_local.touch(endpoint, stack.region)  # its tables appear on the first request; the indexes go on while it idles
        warnings += [w for w in [dynamodb_local.add_stream_indexes(db)] if w]
    notes.append(f"dynamodb-local: data {'kept from the last run' if kept else 'new'} in {data}")
    notes += [f"warning: {w}" for w in warnings]
    return kept


WORKER_MODULE = "ops.local.stream_worker"


def stream_worker_running(stack: str) -> bool:
    """Whether the twin's stream worker (started by ``local.up``) is alive."""
    worker = (read_twin(stack) or {}).get("stream_worker") or {}
    return process_running(worker.get("pid"), WORKER_MODULE)


def _start_worker(stack: StackSettings, state: Path) -> dict[str, Any]:
    """The twin's event source mapping: a process that feeds the table's stream to the consumer."""
    from ops import stream_mapping

    log = state / "stream-worker.log"
    argv = [sys.executable, "-m", WORKER_MODULE, "--stack", stack.name, "--batch-size", str(stack.stream_batch_size),
            "--max-retry-attempts", str(stream_mapping.MAX_RETRY_ATTEMPTS), "--max-record-age", str(stream_mapping.MAX_RECORD_AGE_SECONDS),
            "--function-name", stream_mapping.function_name(stack)]
    with open(log, "ab") as logf:
        proc = subprocess.Popen(argv, cwd=PROJECT_ROOT, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    return {"pid": proc.pid, "log": str(log)}


def _stop(pid: int, needle: str, what: str, seconds: float) -> None:
    """SIGTERM a process we started and wait for it to go (reaping it when it is our child)."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + seconds
    while process_running(pid, needle) and time.monotonic() < deadline:
        time.sleep(0.05)
        try:
            os.waitpid(pid, os.WNOHANG)  # reap it when we are its parent (tests)
        except ChildProcessError:
            pass
    try:
        os.waitpid(pid, os.WNOHANG)  # a zombie child has an empty cmdline: reap it too
    except ChildProcessError:
        pass
    if process_running(pid, needle):
        raise RefusedError(f"the {what} (pid {pid}) did not stop in {seconds:.0f}s")


def _read_outputs(stack: str) -> dict[str, Any]:
    path = outputs_file(stack)
    return json.loads(path.read_text()) if path.exists() else {}


def _write_twin(stack: str, twin: dict[str, Any]) -> None:
    write_atomic(twin_file(stack), json.dumps(twin, indent=2), mode=0o600)  # may hold DATABASE_URL


def down(stack: StackSettings) -> list[str]:
    """Stop what ``up`` recorded (by pid / container name); returns what was stopped."""
    twin = read_twin(stack.name)
    if not twin:
        return []
    stopped: list[str] = []
    worker = twin.get("stream_worker")
    if worker and process_running(worker.get("pid"), WORKER_MODULE):
        _stop(worker["pid"], WORKER_MODULE, "stream consumer", 30)  # first: it finishes its pass while the AWS side still answers
        stopped.append(f"stream consumer (pid {worker['pid']}, checkpoints kept)")
    aws = twin.get("aws")
    if aws and process_running(aws.get("pid"), "ops.local.motoserver"):
        _stop(aws["pid"], "ops.local.motoserver", "AWS endpoint (its snapshot may be incomplete)", 120)  # it saves its snapshot, then exits
        stopped.append(f"aws endpoint (pid {aws['pid']}, state saved)")
    ddb = twin.get("dynamodb")
    if ddb and ddb.get("pid") and dynamodb_local.stop(ddb["pid"]):
        stopped.append(f"dynamodb-local (pid {ddb['pid']}, data kept in {ddb.get('data')})")
    if ddb and ddb.get("container"):
        subprocess.run(["docker", "stop", ddb["container"]], capture_output=True)
        subprocess.run(["docker", "rm", ddb["container"]], capture_output=True)
        stopped.append(f"dynamodb-local container {ddb['container']} (data kept in its volume)")
    pg = twin.get("postgres")
    if pg and pg["engine"] == "embedded":
        pgdata = Path(pg["pgdata"])
        pid = postgres.postmaster_pid(pgdata)
        if pid:
            postgres.stop(pgdata)
            stopped.append(f"postgres (pid {pid}, data kept in {pgdata})")
    twin_file(stack.name).unlink(missing_ok=True)
    return stopped


def status_dict(st: TwinStatus) -> dict[str, Any]:
    return asdict(st) | {"running": st.running}


