"""Start, stop and inspect the local twin of a stack.

A twin is: one AWS endpoint process (the embedded moto server, serving DynamoDB, Streams, Cognito and EC2), optionally a
second engine for DynamoDB and Streams beside it (MiniStack as a process of ours, ``--engine ministack``, see
``ops.local.ministack``; MiniStack's image with ``--engine docker``; or a DynamoDB-compatible endpoint the user runs,
``CRUDDUR_DYNAMODB_ENDPOINT``, which we only point at), and one real PostgreSQL (embedded, or ``DATABASE_URL``). What
``up`` started is recorded in ``<state>/<stack>/twin.json``; ``down`` stops only that.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ops.errors import ConfigError, RefusedError, ToolMissingError, TwinDownError
from ops.files import disk_problem, ensure_writable_dir, unwritable, write_atomic
from ops.local import journal, ministack, postgres, stack_lock
from ops.plan import StackPlan
from ops.plan_cache import PlanSource
from ops.proc import same_process as process_same
from ops.proc import signal_same
from ops.proc import start_ticks as process_start
from ops.redact import parse, redact, remember, with_database
from ops.stacks import PROJECT_ROOT, StackSettings
from ops.stream_mapping import WORKER_MODULE
from ops.target import LOCAL_DB_NAME, outputs_file, port_open, read_twin, stack_state_dir, state_root, twin_file

if TYPE_CHECKING:
    from ops.local.cloud_side import CloudSide

SNAPSHOT_FILE = "aws-state.pickle"
ENGINES = ("auto", "moto", ministack.ENGINE, "docker", "external")
# A DynamoDB-compatible endpoint the user runs (their compose file's container, say): local.up points the
# twin's DynamoDB and Streams at it (engine "external"), installs and starts nothing, and never stops it.
EXTERNAL_ENDPOINT_ENV = "CRUDDUR_DYNAMODB_ENDPOINT"


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
    not_on_twin: list[str] = field(default_factory=list)  # resources of the plan the engine cannot serve
    played: list[str] = field(default_factory=list)  # resources of the plan a twin process plays
    problem: str = ""  # the stack file's error, when it cannot be read (what twin.json recorded is still shown)

    @property
    def running(self) -> bool:
        return bool(self.components) and all(c.running for c in self.components)


@dataclass
class UpResult:
    status: TwinStatus
    already_running: bool
    restored: bool
    restore_note: str = ""  # the AWS server's restore report in one line (ops.local.journal.restore_summary)
    cloud_side: CloudSide | None = None  # what the plan's reconcile created, updated or could not change
    plan_source: PlanSource | None = None  # the plan from its cache, or evaluated (and how long that took)
    links: Any = (
        None  # after a restore: the Cognito id sync's dry-run report (ops.cognito.SyncReport), when it could run
    )
    notes: list[str] = field(
        default_factory=list
    )  # more lines for local.up to print (the DynamoDB engine's data, warnings)


def docker_answers(timeout: float = 3.0) -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=timeout).returncode == 0
    except (subprocess.TimeoutExpired, OSError):
        return False


def _wait_port(
    port: int,
    seconds: float,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
    what: str = "server",
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_open("127.0.0.1", port, timeout=0.2):
            return
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log and log.exists() else []
            raise TwinDownError(f"the {what} exited while starting: {tail[0] if tail else 'no log'} (log: {log})")
        time.sleep(0.1)
    raise TwinDownError(f"the {what} did not answer on port {port} within {seconds:.0f}s (log: {log})")


def status(stack: StackSettings | str, problem: str = "") -> TwinStatus:
    """What runs for a stack's twin, from what ``up`` recorded; a name is enough (its stack file may be broken)."""
    name = stack if isinstance(stack, str) else stack.name
    twin = read_twin(name) or {}
    comps: list[ComponentStatus] = []
    aws = twin.get("aws")
    if aws:
        alive = _ours(aws, AWS_MODULE) and port_open("127.0.0.1", aws["port"])
        comps.append(
            ComponentStatus(
                "aws (Cognito, EC2" + (")" if twin.get("dynamodb") else ", DynamoDB, Streams)"),
                aws["engine"],
                aws["endpoint"],
                aws.get("pid"),
                alive,
                True,
            )
        )
    ddb = twin.get("dynamodb")
    if ddb:
        pid = ddb.get("pid")  # our MiniStack process; a container or a user's endpoint has none
        alive = (pid is None or _ours(ddb, ministack.PROCESS_NEEDLE)) and _endpoint_answers(ddb["endpoint"])
        ours = ddb["engine"] != "external"
        label = "dynamodb (DynamoDB, Streams)" + ("" if ours else ": not managed by local.up/local.down")
        comps.append(ComponentStatus(label, ddb["engine"], ddb["endpoint"], pid, alive, ours))
    pg = twin.get("postgres")
    if pg:
        if pg["engine"] == "embedded":
            pid = postgres.running_pid(Path(pg["pgdata"]))
            alive = pid is not None and port_open("127.0.0.1", pg["port"])
        else:
            pid = None
            alive = _pg_answers(pg["url"])
        shown = (
            pg["url"].replace("://postgres@", "://postgres:***@", 1) if pg.get("password_file") else redact(pg["url"])
        )
        comps.append(ComponentStatus("postgres", pg["engine"], shown, pid, alive, pg["engine"] == "embedded"))
    worker = twin.get("stream_worker")
    if worker:
        alive = _ours(worker, WORKER_MODULE)
        table = worker.get("table") or (stack if isinstance(stack, str) else stack.table_name)
        comps.append(
            ComponentStatus(
                "stream consumer",
                "twin process",
                f"stream of {table} → {worker.get('log')}",
                worker.get("pid"),
                alive,
                True,
            )
        )
    cloud = twin.get("cloud_side") or {}
    return TwinStatus(
        name,
        str(stack_state_dir(name)),
        comps,
        list(cloud.get("not_served", [])),
        list(cloud.get("played", [])),
        problem,
    )


def statuses(stack: str | None = None) -> list[TwinStatus]:
    """local.status: the named stack's twin (known by its file or by what up recorded), or every one."""
    from ops.stacks import load_stack

    if stack is None:
        return all_statuses()
    try:
        return [status(load_stack(stack))]
    except ConfigError as err:
        if stack not in recorded_stacks():
            raise  # an unknown name lists the stacks
        return [status(stack, problem=str(err))]


def all_statuses() -> list[TwinStatus]:
    """local.status: every stack file's twin and every recorded one; a stack file that does not read is that stack's
    problem only."""
    from ops.stacks import list_stacks, load_stack

    statuses = []
    for name in sorted(set(list_stacks()) | set(recorded_stacks())):
        try:
            statuses.append(status(load_stack(name)))
        except ConfigError as err:
            statuses.append(status(name, problem=str(err)))
    return statuses


def stoppable(stack: str | None) -> list[str]:
    """The stacks local.down stops: the one named (known by its file or by what up recorded), or all of them."""
    from ops.stacks import list_stacks, load_stack

    if stack is None:
        return sorted(set(list_stacks()) | set(recorded_stacks()))
    if stack in recorded_stacks():
        return [stack]
    load_stack(stack)  # an unknown name lists the stacks; a broken file of a stack with no twin says what is wrong
    return [stack]


def recorded_stacks() -> list[str]:
    """The stacks whose twin ``up`` recorded in the state root, whether or not their stack file still reads."""
    root = state_root()
    if not root.is_dir():
        return []
    return sorted(d.name for d in root.iterdir() if (d / "twin.json").is_file())


def _a_twins_own(url: str) -> bool:
    """Whether ``url`` is a twin's embedded server as local.env exports it: its password is one only twins hold."""
    from urllib.parse import unquote, urlsplit

    try:
        parts = urlsplit(url)
        password = unquote(parts.password or "")
    except ValueError:
        return False  # not a URL of ours; parse() says what is wrong with it
    if parts.hostname != "127.0.0.1" or parts.username != postgres.SUPERUSER or not password:
        return False
    root = state_root()
    return root.is_dir() and any(postgres.read_password(d) == password for d in root.iterdir() if d.is_dir())


def _pg_answers(url: str) -> bool:
    return _pg_problem(url) is None


def _pg_problem(url: str) -> str | None:
    """Why the server at ``url`` does not let us in (redacted, one line), or None when it does."""
    import psycopg

    try:
        with psycopg.connect(with_database(url, "postgres"), connect_timeout=3):
            return None
    except ConfigError as err:
        return str(err)
    except psycopg.Error as err:
        return redact((str(err).strip().splitlines() or [type(err).__name__])[0])


def _refuse_busy(port: int, what: str, key: str, stack: str) -> None:
    """A port the twin needs is taken: say by whom when it is one of our twins, and where the number comes from."""
    if not port_open("127.0.0.1", port):
        return
    from ops.stacks import PORT_OFFSET_ENV

    offset = int(os.environ.get(PORT_OFFSET_ENV, "0") or "0")  # load_stack has checked it is a number
    source = f"cruddur:{key} {port - offset} in Pulumi.{stack}.yaml" + (
        f" + {PORT_OFFSET_ENV}={offset}" if offset else ""
    )
    owner = _twin_on_port(port, stack)
    who = (
        f"the twin of stack {owner!r} (stop it with `invoke local.down --stack {owner}`)"
        if owner
        else "another program"
    )
    raise ConfigError(
        f"port {port} for the {what} of stack {stack!r} ({source}) is already in use by {who}: "
        f"free it, change cruddur:{key} in Pulumi.{stack}.yaml, or shift every local port with {PORT_OFFSET_ENV}=N"
    )


def _twin_on_port(port: int, stack: str) -> str | None:
    """The other stack whose recorded twin listens on ``port`` (any of its parts), if any."""
    for other in recorded_stacks():
        if other == stack:
            continue
        try:
            twin = read_twin(other) or {}
        except ConfigError:
            continue  # a broken record is that stack's problem, not this message's
        ports = [part.get("port") for part in (twin.get("aws"), twin.get("dynamodb"), twin.get("postgres")) if part]
        if port in ports:
            return other
    return None


def plan_file(stack: str) -> Path:
    return stack_state_dir(stack) / "plan.json"


def load_plan(stack: StackSettings) -> tuple[StackPlan, PlanSource]:
    """The stack's plan, from the state directory's cache while the program is unchanged (else evaluated)."""
    from ops.plan_cache import cached_plan

    return cached_plan(stack.name, plan_file(stack.name))


def up(
    stack: StackSettings,
    engine: str = "auto",
    database_url: str | None = None,
    stream_worker: bool = True,
    plan: StackPlan | None = None,
    on_wait: Callable[[str], None] | None = None,
    empty: bool = False,
) -> UpResult:
    """Start the twin (idempotent): returns ``already_running=True`` when it was up.

    ``engine`` other than the stack's engine of last time is refused unless ``empty`` (``choose_engine``).

    Either way its AWS resources are brought to the stack's plan (``ops.local.cloud_side``), so a
    change to ``infra/`` reaches a running twin at the next ``local.up``. ``plan`` replaces the
    stack's own (a test's edited program). ``stream_worker=False`` leaves the stream to whoever
    processes it by hand (tests that count records). One ``up``/``down`` of a stack runs at a
    time (``ops.local.stack_lock``); ``on_wait`` hears, in one line, that this one waits.
    """
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    ignored = ""
    if database_url and _a_twins_own(database_url):
        # what `eval "$(invoke local.env)"` exported: a twin's embedded server, never a developer's own
        ignored, database_url = "note: DATABASE_URL is a twin's own server (from local.env): not used here", None
    if database_url:
        remember(database_url)
        parse(database_url)  # malformed: one line now, before anything starts
    source = None
    state = stack_state_dir(stack.name)
    if plan is None:
        try:
            plan, source = load_plan(stack)  # before anything starts: a program that fails to plan starts nothing
        except OSError as err:  # its cache could not be written: the state directory is the problem
            ensure_writable_dir(state)  # names a file on the way, a full or read-only disk
            raise unwritable(state, err) from None
    ensure_writable_dir(state)  # a path that is a file, a full or read-only disk: one line, before anything starts
    with stack_lock.held(state, stack.name, on_wait):
        result = _up(stack, engine, database_url, stream_worker, plan, empty)
        result.plan_source = source
        result.notes += [ignored] if ignored else []
        return result


def _up(
    stack: StackSettings,
    engine: str,
    database_url: str | None,
    stream_worker: bool,
    plan: StackPlan,
    empty: bool = False,
) -> UpResult:
    current = status(stack)
    serving = ((read_twin(stack.name) or {}).get("dynamodb") or {}).get("engine", "moto")
    if current.running and engine not in ("auto", serving):
        raise ConfigError(
            f"the twin of stack {stack.name!r} runs with engine {serving}: run local.down first to start it with "
            f"{engine}"
        )
    if current.running:
        _secure_running(stack)
    down_now = [c.name for c in current.components if not c.running]
    if current.running or down_now == ["stream consumer"]:
        # the data servers answer: follow the plan, and (re)start the consumer if it is down or its settings changed
        cloud = _reconcile(stack, plan)
        twin = read_twin(stack.name) or {}
        twin["cloud_side"] = _cloud_record(cloud)
        worker = twin.get("stream_worker")
        if (
            worker
            and cloud.worker is not None
            and (not _ours(worker, WORKER_MODULE) or worker.get("mapping") != cloud.worker)
        ):
            _stop(worker, WORKER_MODULE, WORKER_GRACE)
            twin["stream_worker"] = _start_worker(stack, stack_state_dir(stack.name), cloud.worker)
        _write_twin(stack.name, twin)
        return UpResult(status(stack), already_running=True, restored=False, cloud_side=cloud)
    if current.components:
        down(stack)  # a half-dead twin (crash, reboot): clear it and start clean

    state = stack_state_dir(stack.name)
    state.mkdir(parents=True, exist_ok=True)
    engine = choose_engine(state, engine, empty)  # a switch that would hide the stack's data: one line, nothing started
    external = os.environ.get(EXTERNAL_ENDPOINT_ENV, "") if engine == "external" else ""
    if engine == "external" and not external.startswith(("http://", "https://")):
        raise ConfigError(
            f"--engine external points the twin's DynamoDB at an endpoint you run: set {EXTERNAL_ENDPOINT_ENV} "
            f"to its URL (e.g. http://127.0.0.1:8000), not {external!r}"
        )
    if engine == "docker" and not docker_answers():
        raise ToolMissingError(
            "--engine docker needs a Docker engine, and none answers: start Docker or use --engine ministack "
            "(the same engine as a process of ours) or --engine moto"
        )
    if engine == ministack.ENGINE:
        ministack.python()  # a missing virtualenv: one line, before anything starts

    _refuse_busy(stack.local_aws_port, "AWS endpoint", "localAwsPort", stack.name)
    if engine in (ministack.ENGINE, "docker"):
        _refuse_busy(stack.local_dynamo_port, "DynamoDB endpoint", "localDynamoPort", stack.name)
    if not database_url:
        _refuse_busy(stack.local_postgres_port, "PostgreSQL server", "localPostgresPort", stack.name)

    try:
        return _start(stack, state, engine, database_url, stream_worker, plan, external)
    except BaseException:
        down(stack)  # never leave half a twin running: a retry would find its ports taken
        raise


def _start(
    stack: StackSettings,
    state: Path,
    engine: str,
    database_url: str | None,
    stream_worker: bool,
    plan: StackPlan,
    external: str = "",
) -> UpResult:
    twin: dict[str, Any] = {"stack": stack.name}
    notes: list[str] = []
    snapshot = state / SNAPSHOT_FILE
    report = journal.report_path(snapshot)
    report.unlink(missing_ok=True)  # the server writes a fresh one before it listens
    log = state / "aws.log"
    with open(log, "ab") as logf:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ops.local.motoserver",
                "--port",
                str(stack.local_aws_port),
                "--snapshot",
                str(snapshot),
            ],
            cwd=PROJECT_ROOT,
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    twin["aws"] = {
        "engine": "moto",
        "pid": proc.pid,
        "started": process_start(proc.pid),  # with the pid, the process's identity: down signals only that one
        "port": stack.local_aws_port,
        "endpoint": f"http://127.0.0.1:{stack.local_aws_port}",
    }
    _write_twin(stack.name, twin)  # record before waiting: a failed start can still be cleaned up by down
    _wait_port(
        stack.local_aws_port, 180, proc, log, "AWS endpoint (moto server)"
    )  # replaying a long journal takes a while
    restore = journal.read_report(report)
    restored = journal.restored_anything(restore)

    if engine == ministack.ENGINE:
        kept = _start_ministack(stack, state, twin, notes)
        restored = restored or kept
    elif engine == "docker":
        _start_ministack_image(stack, twin)
    elif engine == "external":
        twin["dynamodb"] = {"engine": "external", "endpoint": external}  # no pid, no container: never stopped by us
        _write_twin(stack.name, twin)
        notes.append(f"dynamodb: your endpoint {external} (not started, stopped or backed up by local.up/local.down)")

    if database_url:
        problem = _pg_problem(database_url)
        if problem:
            raise TwinDownError(
                f"DATABASE_URL ({redact(database_url)}) does not let us in: {problem} (fix it, or unset DATABASE_URL "
                "to use the embedded server)"
            )
        twin["postgres"] = {"engine": "external", "url": database_url}
    else:
        pg = postgres.home(state, state_root())  # as root in a private home: a place its system user can reach
        notes += [pg.note] if pg.note else []
        restored = restored or (pg.pgdata / "PG_VERSION").exists()
        twin["postgres"] = _embedded_record(pg.pgdata, stack.local_postgres_port)
        _write_twin(stack.name, twin)
        password = postgres.start(pg.pgdata, stack.local_postgres_port, pg.log, ours=pg.ours)
        postgres.write_pgpass(state, stack.local_postgres_port, password)  # what local.env exports as PGPASSFILE
    _write_twin(stack.name, twin)

    cloud = _reconcile(stack, plan)
    twin["cloud_side"] = _cloud_record(cloud)
    _write_twin(stack.name, twin)
    if stream_worker and cloud.worker is not None:
        twin["stream_worker"] = _start_worker(stack, state, cloud.worker)
        _write_twin(stack.name, twin)
    write_atomic(state / LAST_ENGINE_FILE, engine + "\n")
    links = _check_links(stack.name) if journal.restored_anything(restore) else None
    return UpResult(
        status(stack),
        already_running=False,
        restored=restored,
        restore_note=journal.restore_summary(restore),
        cloud_side=cloud,
        links=links,
        notes=notes,
    )


def _reconcile(stack: StackSettings, plan: StackPlan) -> CloudSide:
    """Bring the twin's AWS resources to the plan and record their outputs and ids."""
    from ops.local import cloud_side
    from ops.target import resolve_target

    result = cloud_side.reconcile(
        resolve_target(stack.name), plan, _read_outputs(stack.name), cloud_side.read_ids(stack.name)
    )
    cloud_side.save(stack.name, result)
    return result


def _cloud_record(cloud: CloudSide) -> dict[str, Any]:
    return {"not_served": cloud.not_served, "played": cloud.played}


def _check_links(stack: str) -> Any:
    """The id sync's dry run after the AWS side was restored: PostgreSQL's links against the restored pool.

    PostgreSQL keeps its own data directory, so a restore that brought back less than it had seen
    (a crash before the journal existed, a snapshot put back by hand) leaves links to users the pool
    no longer has. None when there is nothing to check yet (no database, no users table).
    """
    from ops.cognito import sync_target
    from ops.errors import OpsError
    from ops.target import resolve_target

    try:
        return sync_target(resolve_target(stack), dry_run=True)
    except OpsError:
        return None


def _embedded_record(pgdata: Path, port: int) -> dict[str, Any]:
    """What twin.json keeps of the embedded server: its URL without the password, and where the password is (0600)."""
    return {
        "engine": "embedded",
        "pgdata": str(pgdata),
        "port": port,
        "url": postgres.url(port, LOCAL_DB_NAME, None),
        "password_file": str(postgres.password_file(pgdata.parent)),
    }


def _secure_running(stack: StackSettings) -> None:
    """A twin started by an earlier version, still running with a server that trusts everyone: upgrade it in place."""
    twin = read_twin(stack.name) or {}
    pg = twin.get("postgres") or {}
    if pg.get("engine") != "embedded" or pg.get("password_file"):
        return
    pgdata = Path(pg["pgdata"])
    if postgres.trusts_anyone(pgdata):
        postgres.secure(pgdata, int(pg["port"]), postgres.ensure_password(pgdata.parent))
    twin["postgres"] = _embedded_record(pgdata, int(pg["port"]))
    _write_twin(stack.name, twin)


LAST_ENGINE_FILE = "dynamodb-engine"  # which engine served DynamoDB last time: `local.up` (auto) picks it again


def last_engine(state: Path) -> str | None:
    path = state / LAST_ENGINE_FILE
    return (path.read_text().strip() or None) if path.exists() else None


def choose_engine(state: Path, engine: str, empty: bool = False) -> str:
    """The engine to start: ``auto`` is the stack's engine of last time (moto the first time).

    Each engine keeps its own DynamoDB data (moto's snapshot, MiniStack's directory, the image's
    volume, the user's endpoint), so starting another engine than last time would show other
    tables without a word, and a message sent there would be missing after switching back.
    That switch is refused in one line unless ``empty`` says the user wants the other engine's
    data (none, the first time) while the last engine's stays where it is.
    """
    last = last_engine(state)
    if last and last not in ENGINES and not empty:
        # an engine this version no longer runs (dynamodb-local: AWS's vendor licence): its files stay where they are
        raise ConfigError(
            f"the stack's DynamoDB data is on engine {last}, which the twin no longer runs: run it yourself and "
            f"point the twin at it (--engine external with {EXTERNAL_ENDPOINT_ENV}), or add --empty to start "
            f"{'moto' if engine == 'auto' else engine} without that data (its files stay in {state})"
        )
    if engine == "auto":
        if last == "external" and not os.environ.get(EXTERNAL_ENDPOINT_ENV):
            raise ConfigError(
                f"the stack's DynamoDB was your endpoint last time and {EXTERNAL_ENDPOINT_ENV} is not set: set it "
                "again, or choose --engine moto|ministack (add --empty: that engine has none of the endpoint's data)"
            )
        return last if last in ENGINES else "moto"
    if last and last != engine and last in ENGINES and not empty:
        raise ConfigError(
            f"the stack's DynamoDB data is on engine {last} (its last local.up), and --engine {engine} keeps its own: "
            f"run local.up --engine {last} to keep using it, or add --empty to start {engine} without it "
            f"({last}'s data stays where it is for a later --engine {last})"
        )
    return engine


def _endpoint_answers(endpoint: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    return bool(parts.hostname) and port_open(
        parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    )


def _start_ministack(stack: StackSettings, state: Path, twin: dict[str, Any], notes: list[str]) -> bool:
    """Start MiniStack on the stack's data directory (snapshot + journal); True when it held data already."""
    data = ministack.data_dir(state)
    kept = ministack.kept_data(data)
    log = state / "ministack.log"
    with open(log, "ab") as logf:
        proc = ministack.start(data, stack.local_dynamo_port, logf)
    twin["dynamodb"] = {
        "engine": ministack.ENGINE,
        "pid": proc.pid,
        "started": process_start(proc.pid),  # with the pid, the process's identity: down signals only that one
        "port": stack.local_dynamo_port,
        "endpoint": f"http://127.0.0.1:{stack.local_dynamo_port}",
        "data": str(data),
        "log": str(log),
    }
    _write_twin(stack.name, twin)  # recorded before waiting, so a failed start is still stopped by down
    _wait_port(stack.local_dynamo_port, 180, proc, log, "MiniStack")  # it restores before it listens
    report = ministack.restore_report(data)
    replayed = f", {report['replayed']} journaled write(s) replayed" if report.get("replayed") else ""
    notes.append(f"ministack: data {'kept from the last run' if kept else 'new'} in {data}{replayed}")
    if report.get("journal_problem"):
        notes.append(f"ministack: the journal ended with {report['journal_problem']} (never acknowledged; dropped)")
    return kept


def _start_ministack_image(stack: StackSettings, twin: dict[str, Any]) -> None:
    name = f"cruddur-{stack.name}-dynamodb"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    run = subprocess.run(
        ministack.docker_command(name, f"cruddur-{stack.name}-ministack-data", stack.local_dynamo_port),
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        raise TwinDownError(f"docker could not start {ministack.IMAGE}: {run.stderr.strip()}")
    twin["dynamodb"] = {
        "engine": "docker",
        "container": name,
        "port": stack.local_dynamo_port,
        "endpoint": f"http://127.0.0.1:{stack.local_dynamo_port}",
    }
    _write_twin(stack.name, twin)
    _wait_port(stack.local_dynamo_port, 60, None, None, f"{ministack.IMAGE} container")


def stream_worker_running(stack: str) -> bool:
    """Whether the twin's stream worker (started by ``local.up``) is alive."""
    worker = (read_twin(stack) or {}).get("stream_worker") or {}
    return _ours(worker, WORKER_MODULE)


def worker_argv(stack: StackSettings, mapping: dict[str, Any]) -> list[str]:
    """The stream worker's command line from the plan's mapping (``ops.resources.mapping.WORKER_FIELDS``).

    Lambda's -1 (retry until the record expires, any age) is passed as it is; the worker reads it as no limit.
    """
    return [
        sys.executable,
        "-m",
        WORKER_MODULE,
        "--stack",
        stack.name,
        "--batch-size",
        str(mapping["BatchSize"]),
        "--max-retry-attempts",
        str(mapping.get("MaximumRetryAttempts", -1)),
        "--max-record-age",
        str(mapping.get("MaximumRecordAgeInSeconds", -1)),
        "--function-name",
        str(mapping["FunctionArn"]),
        "--filters",
        json.dumps(mapping.get("FilterCriteria.Filters") or []),
    ]


def _start_worker(stack: StackSettings, state: Path, mapping: dict[str, Any]) -> dict[str, Any]:
    """The twin's event source mapping: a process that feeds the table's stream to the consumer, with the plan's
    settings."""
    log = state / "stream-worker.log"
    with open(log, "ab") as logf:
        proc = subprocess.Popen(
            worker_argv(stack, mapping),
            cwd=PROJECT_ROOT,
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    # the settings it runs with, so infra.drift compares them with the plan and local.up sees when they change
    return {
        "pid": proc.pid,
        "started": process_start(proc.pid),
        "log": str(log),
        "mapping": mapping,
        "table": stack.table_name,
    }


AWS_MODULE = "ops.local.motoserver"
# how long each process gets to stop on SIGTERM before SIGKILL; together local.down stays within 15 s:
# the worker only finishes the batch in hand (a kill loses nothing: its checkpoint is written after each
# batch, and the consumer is idempotent); the AWS server saves its snapshot (a kill loses nothing either:
# its journal holds every acknowledged write and is replayed at the next start)
WORKER_GRACE = 4.0
AWS_GRACE = 9.0
STOP_BUDGET = 12.0  # worker + AWS server together; PostgreSQL's fast shutdown takes well under the 3 s left


def _ours(record: dict[str, Any] | None, needle: str) -> bool:
    """Whether the process a twin.json entry names is still the one we started (pid, start time, command)."""
    record = record or {}
    return process_same(record.get("pid"), record.get("started"), needle)


def _stop(record: dict[str, Any], needle: str, grace: float) -> str | None:
    """SIGTERM a process we started, SIGKILL it after ``grace`` seconds: "stopped", "killed", or None when not ours.

    Only the recorded process is ever signalled: a pid now naming another process (reused after
    a reboot or a crash, another twin's server) is left alone.
    """
    pid, started = record.get("pid"), record.get("started")
    if not pid or not signal_same(pid, started, needle, signal.SIGTERM):
        return None
    outcome = "stopped"
    for sig, seconds in ((None, grace), (signal.SIGKILL, 5.0)):
        if sig is not None:
            if not signal_same(pid, started, needle, sig):
                break
            outcome = "killed"
        deadline = time.monotonic() + seconds
        while process_same(pid, started, needle) and time.monotonic() < deadline:
            time.sleep(0.05)
            _reap(pid)
        _reap(pid)  # a zombie child has an empty cmdline: reap it too
        if not process_same(pid, started, needle):
            return outcome
    raise RefusedError(f"process {pid} ({needle}) did not stop, even on SIGKILL")


def _saved(state: Path, outcome: str) -> str:
    """What became of the AWS server's state as it stopped: its final snapshot covers the journal, or not (and why)."""
    if outcome == "killed":
        return "killed, its snapshot unfinished; its journal keeps every acknowledged write for the next local.up"
    if journal.saved_on_stop(state / SNAPSHOT_FILE):
        return "state saved"
    why = disk_problem(state) or f"see {state / 'aws.log'}"
    return (
        f"its snapshot could NOT be written ({why}); its journal keeps every acknowledged write for the next local.up"
    )


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)  # when we are its parent (tests)
    except ChildProcessError:
        pass


def _read_outputs(stack: str) -> dict[str, Any]:
    path = outputs_file(stack)
    return json.loads(path.read_text()) if path.exists() else {}


def _write_twin(stack: str, twin: dict[str, Any]) -> None:
    write_atomic(twin_file(stack), json.dumps(twin, indent=2), mode=0o600)  # may hold DATABASE_URL


def down(stack: StackSettings | str, on_wait: Callable[[str], None] | None = None) -> list[str]:
    """Stop what ``up`` recorded (by pid / container name); returns what was stopped.

    Needs nothing but twin.json, so a stack whose file no longer reads can still be stopped by name.
    Waits for an ``up``/``down`` of the same stack in progress (``ops.local.stack_lock``).
    """
    name = stack if isinstance(stack, str) else stack.name
    if not twin_file(name).exists():
        return []
    with stack_lock.held(stack_state_dir(name), name, on_wait, required=False):
        return _down(name)


def _down(name: str) -> list[str]:
    twin = read_twin(name)
    if not twin:
        return []
    stopped: list[str] = []
    budget = time.monotonic() + STOP_BUDGET
    worker = twin.get("stream_worker")
    # first: it ends after the batch in hand while the AWS side still answers; the rest of the backlog waits
    outcome = _stop(worker, WORKER_MODULE, WORKER_GRACE) if worker else None
    if outcome:
        stopped.append(
            f"stream consumer (pid {worker['pid']}, "  # type: ignore[index]
            + (
                "checkpoints kept)"
                if outcome == "stopped"
                else "killed mid-batch; that batch runs again at the next up)"
            )
        )
    aws = twin.get("aws")
    grace = max(2.0, min(AWS_GRACE, budget - time.monotonic()))  # what the worker left of the budget
    outcome = _stop(aws, AWS_MODULE, grace) if aws else None
    if outcome:
        stopped.append(f"aws endpoint (pid {aws['pid']}, {_saved(stack_state_dir(name), outcome)})")  # type: ignore[index]
    ddb = twin.get("dynamodb")
    # MiniStack journals every write before it answers: a kill at the end of the budget loses nothing acknowledged
    outcome = (
        _stop(ddb, ministack.PROCESS_NEEDLE, max(2.0, budget - time.monotonic())) if ddb and ddb.get("pid") else None
    )
    if outcome:
        saved = (
            "state saved" if outcome == "stopped" else "killed at the end of its grace; its journal holds every write"
        )
        stopped.append(f"ministack (pid {ddb['pid']}, {saved}, data in {ddb.get('data')})")  # type: ignore[index]
    if ddb and ddb.get("container"):
        subprocess.run(["docker", "stop", ddb["container"]], capture_output=True)
        subprocess.run(["docker", "rm", ddb["container"]], capture_output=True)
        stopped.append(f"ministack container {ddb['container']} (data kept in its volume)")
    pg = twin.get("postgres")
    if pg and pg["engine"] == "embedded":
        pgdata = Path(pg["pgdata"])
        pid = postgres.running_pid(pgdata)
        if postgres.stop(pgdata):
            stopped.append(f"postgres (pid {pid}, data kept in {pgdata})")
    try:
        twin_file(name).unlink(missing_ok=True)
    except OSError:
        pass  # a read-only state directory: what it names is stopped, and no longer ours (start times differ)
    return stopped


def status_dict(st: TwinStatus) -> dict[str, Any]:
    return asdict(st) | {"running": st.running}
