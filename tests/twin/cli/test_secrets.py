"""A canary password in every connection-string form appears in no output and no file of any task,
and `ps` never shows it.

GIVEN a real PostgreSQL that knows the canary (roles on the session twin's server, one per password), WHEN every
task runs as a user runs it, with the twin's DATABASE_URL and the --cloud variable (``databaseUrlEnv``) in each
form libpq accepts (and one it refuses), THEN neither stdout nor stderr of any run, nor any file under the state
directory but the 0600 twin.json that holds DATABASE_URL, contains the canary.

Every task that resolves a database URL runs with the URL form, on the twin and with --cloud (AWS
requests go to this module's twin through AWS_ENDPOINT_URL); every other form goes through local.up,
local.status and db.setup on both sides (maintenance and application database, seed, Cognito sync):
the tasks share one redaction (``ops.redact``), which is unit-tested on every form
(tests/unit/ops/test_redact.py), so the forms are here to prove each one reaches PostgreSQL and the
output through the same paths. Tasks that never read a database URL (the table's, the rule's, the
plan's, the bench's) and quickstart (the others in a row) run once.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from psycopg import sql

from ops import db as dbops
from ops.target import Target, read_twin
from tests.support.helpers import REPO, run_invoke

pytestmark = pytest.mark.spread  # each form brings its own twin up and down: the forms may run on different workers

CANARY = "Kc4n4ryQ7x"
OFFSET = int(os.environ["CRUDDUR_LOCAL_PORT_OFFSET"]) + 300  # this module's own twin
# (role, password): one role per password shape, all of them holding the canary
ROLES = {"canary_plain": CANARY, "canary_quoted": f"{CANARY} it's", "canary_special": f"{CANARY}@:/ %"}


def _forms(port: int, dbname: str) -> dict[str, str]:
    special = quote(ROLES["canary_special"], safe="")
    return {
        "url": f"postgresql://canary_plain:{CANARY}@127.0.0.1:{port}/{dbname}",
        "query": f"postgresql://canary_plain@127.0.0.1:{port}/{dbname}?connect_timeout=5&password={CANARY}",
        "keyword": f"host=127.0.0.1 port={port} user=canary_plain password={CANARY} dbname={dbname}",
        "keyword-quoted": f"host=127.0.0.1 port={port} user=canary_quoted password='{CANARY} it\\'s' dbname={dbname}",
        "multi-host": f"postgresql://canary_plain:{CANARY}@127.0.0.1:1,127.0.0.1:{port}/{dbname}",
        "percent-encoded": f"postgresql://canary_special:{special}@127.0.0.1:{port}/{dbname}",
        "malformed-percent": f"postgresql://canary_plain:{CANARY}%zz@127.0.0.1:{port}/{dbname}",
    }


FORMS = list(_forms(0, "x"))


def _dbname(form: str, side: str = "twin") -> str:
    return f"canary_{form.replace('-', '_')}_{side}"


# tasks that resolve the stack's database URL: run per form (for the twin; those with --cloud also in the cloud)
DB_TASKS = [
    ["local.status"],
    ["local.status", "--json"],
    ["local.env"],  # the twin's own generated password only: a developer's DATABASE_URL is never printed
    ["local.env", "--format", "json"],
    ["db.drop"],
    ["db.create"],
    ["db.schema-load"],
    ["db.seed"],
    ["db.sessions"],
    ["db.sessions", "--json"],
    ["db.setup"],
    ["cognito.create-users"],
    ["cognito.sync-ids", "--dry-run"],
    ["cognito.sync-ids"],
    ["ddb.schema-load"],
    ["ddb.seed"],
    ["ddb.send-message", "--from", "ada", "--to", "chidi", "--text", "canary run"],
    ["ddb.create-group", "--name", "canaries", "--members", "ada,bram,chidi"],
    # no such group: one line, after the handle was looked up in the database
    ["ddb.add-member", "--group", "3f2a9c1e-0000-4000-8000-000000000000", "--handle", "dana"],
    ["ddb.remove-member", "--group", "3f2a9c1e-0000-4000-8000-000000000000", "--handle", "dana"],
    ["ddb.patterns.list-conversations", "--handle", "ada"],
    ["ddb.patterns.get-conversation", "--handle", "ada,bram"],
    # reads dev's users through the URL, then finds prod's twin down: one line
    ["ddb.clone", "--from-stack", "dev", "--to-stack", "prod", "--all"],
    ["local.snapshot.save", "canary"],  # refused: a snapshot cannot hold DATABASE_URL's server
]
CLOUD_TASKS = [
    ["db.drop", "--cloud"],
    ["db.create", "--cloud"],
    ["db.schema-load", "--cloud"],
    ["db.seed", "--cloud"],
    ["db.sessions", "--cloud"],
    ["db.setup", "--cloud"],
    ["cognito.sync-ids", "--cloud", "--dry-run"],
    ["ddb.seed", "--cloud"],
    ["ddb.send-message", "--cloud", "--from", "ada", "--to", "dana", "--text", "canary cloud run"],
    ["ddb.patterns.list-conversations", "--cloud", "--handle", "ada"],
    ["ddb.patterns.get-conversation", "--cloud", "--handle", "ada,bram"],
]
# tasks that never read a database URL: once
OTHER_TASKS = [
    ["ddb.list-tables"],
    ["ddb.scan"],
    ["ddb.scan", "--json"],
    ["ddb.stream-process"],
    ["ddb.doctor"],
    ["ddb.migrate", "--dry-run"],
    ["ddb.export"],
    ["ddb.import", "--table", "canary-imported"],
    ["ddb.dead-letters"],
    ["ddb.redrive"],
    ["cognito.list-users"],
    ["cognito.list-users", "--cloud"],
    ["rds.update-sg-rule", "--ip", "203.0.113.9"],
    ["infra.plan"],
    ["infra.drift"],
    ["infra.diagram", "--output", "{state}/diagram.png"],
    ["infra.plan-diff", "{state}/base.json", "{state}/head.json"],  # reads only the files it is given
    ["infra.outputs"],
    ["infra.preview"],
    ["infra.up"],
    ["ddb.drop"],
    ["local.snapshot.list"],
    ["local.snapshot.restore", "none"],
    ["local.snapshot.delete", "none"],
    ["local.snapshot.export", "none", "{state}/none.tar.gz"],
    ["local.snapshot.import", "{state}/none.tar.gz"],
    ["bench", "--size", "smoke", "--only", "cli"],
    ["quickstart"],
]
CLOUD_FORMS = ("url",)  # every cloud task with these; db.setup with every form
# every twin task with these; the other forms run the tasks that use the URL in every way
TWIN_FORMS = ("url",)
TWIN_ALWAYS = (["local.status"], ["local.env", "--format", "dotenv"], ["db.setup"])
CLOUD_ALWAYS = (["db.setup", "--cloud"],)


@dataclass
class Runs:
    """Every run's output, by what ran."""

    outputs: dict[str, str] = field(default_factory=dict)
    tasks: set[str] = field(default_factory=set)

    def add(self, label: str, proc: subprocess.CompletedProcess[str]) -> None:
        self.outputs[label] = proc.stdout + proc.stderr
        self.tasks.add(proc.args[3])  # [python, -m, invoke, TASK, …]


@dataclass
class Canary:
    port: int
    state: Path
    env: dict[str, str]
    runs: Runs


@pytest.fixture(scope="module")
def canary(database: Target) -> Iterator[Canary]:
    """Roles that know the canary on the session twin's server, and a state directory of this module's own."""
    port = int((read_twin("dev") or {})["postgres"]["port"])
    with dbops.connect(database, maintenance=True, autocommit=True) as conn:
        for role, password in ROLES.items():
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
            )
    state = Path(tempfile.mkdtemp(prefix="cruddur-canary-"))
    env = {
        "CRUDDUR_STATE_DIR": str(state),
        "CRUDDUR_LOCAL_PORT_OFFSET": str(OFFSET),
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    found = Canary(port, state, env, Runs())
    try:
        yield found
    finally:
        run_invoke("local.down", env=env)
        with dbops.connect(database, maintenance=True, autocommit=True) as conn:
            for name in (_dbname(form, side) for form in FORMS for side in ("twin", "cloud", "other", "other_cloud")):
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            for role in ROLES:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        shutil.rmtree(state, ignore_errors=True)


def _leaks(text: str) -> bool:
    return CANARY in text or quote(CANARY) in text


def _files_with_the_canary(root: Path) -> dict[Path, int]:
    found = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                data = path.read_bytes()
            except PermissionError:
                continue
            if CANARY.encode() in data:
                found[path] = stat.S_IMODE(path.stat().st_mode)
    return found


@pytest.mark.parametrize("form", FORMS)
def test_no_task_shows_or_writes_the_canary_password(canary: Canary, form: str) -> None:
    # a database per form: each form's role owns (and may drop) its own
    twin_url, cloud_url = _forms(canary.port, _dbname(form))[form], _forms(canary.port, _dbname(form, "cloud"))[form]
    env = canary.env | {"DATABASE_URL": twin_url}
    runs = Runs()
    up = _twin_up(canary, env, runs, form)
    if form == "malformed-percent":  # libpq refuses it: every task says so in one line
        assert up.returncode == 1 and "not one libpq accepts" in up.stderr, up.stderr
    else:
        assert up.returncode == 0, up.stderr
        cloud_env = _as_cloud(canary, env, cloud_url)

        def twin_side() -> None:
            for args in DB_TASKS if form in TWIN_FORMS else TWIN_ALWAYS:
                runs.add(f"{form}: {' '.join(args)}", run_invoke(*args, env=env))

        def cloud_side() -> None:
            for args in CLOUD_TASKS if form in CLOUD_FORMS else CLOUD_ALWAYS:
                runs.add(f"{form} --cloud: {' '.join(args)}", run_invoke(*args, env=cloud_env))

        with ThreadPoolExecutor(2) as pool:  # separate databases: the two sides cannot disturb each other
            for done in [pool.submit(twin_side), pool.submit(cloud_side)]:
                done.result()
        # the tasks did reach the database: a canary that never left the environment would prove nothing
        assert "== seed:" in runs.outputs[f"{form}: db.setup"], runs.outputs[f"{form}: db.setup"]
        assert form not in TWIN_FORMS or "ada" in runs.outputs[f"{form}: ddb.patterns.list-conversations --handle ada"]
        assert "== seed:" in runs.outputs[f"{form} --cloud: db.setup --cloud"], runs.outputs[
            f"{form} --cloud: db.setup --cloud"
        ]
    runs.add(f"{form}: local.down", run_invoke("local.down", env=env))
    _assert_no_canary(canary, runs)


def test_tasks_that_read_no_database_url_show_no_canary_either(canary: Canary) -> None:
    """With the canary in DATABASE_URL and the --cloud variable, the table's, rule's, plan's and bench's tasks and
    quickstart, once."""
    form = FORMS[0]
    env = canary.env | {"DATABASE_URL": _forms(canary.port, _dbname(form, "other"))[form]}
    runs = Runs()
    assert _twin_up(canary, env, runs, form).returncode == 0
    cloud_env = _as_cloud(canary, env, _forms(canary.port, _dbname(form, "other_cloud"))[form])
    for args in ([a.format(state=canary.state) for a in task] for task in OTHER_TASKS):
        runs.add(f"{form}: {' '.join(args)}", run_invoke(*args, env=cloud_env))
    assert "== seed:" in runs.outputs[f"{form}: quickstart"], "quickstart reached the database"
    runs.add(f"{form}: local.down", run_invoke("local.down", env=env))
    _assert_no_canary(canary, runs)


def _twin_up(canary: Canary, env: dict[str, str], runs: Runs, form: str) -> subprocess.CompletedProcess[str]:
    run_invoke("local.down", env=env)
    up = run_invoke("local.up", "--engine", "moto", env=env)
    runs.add(f"{form}: local.up", up)
    return up


def _as_cloud(canary: Canary, env: dict[str, str], cloud_url: str) -> dict[str, str]:
    """The stack's --cloud variable holds the canary too, and AWS requests go to this module's twin."""
    endpoint = (read_twin_in(canary.state) or {})["aws"]["endpoint"]
    return env | {"CONNECTION_URL": cloud_url, "AWS_ENDPOINT_URL": endpoint}


def _assert_no_canary(canary: Canary, runs: Runs) -> None:
    canary.runs.tasks |= runs.tasks
    leaked = [label for label, out in runs.outputs.items() if _leaks(out)]
    assert leaked == [], f"the canary shows in: {leaked}: {[runs.outputs[label] for label in leaked][:1]}"
    assert all("Traceback" not in out for out in runs.outputs.values()), [
        label for label, out in runs.outputs.items() if "Traceback" in out
    ]
    files = _files_with_the_canary(canary.state)
    assert all(path.name == "twin.json" and mode == 0o600 for path, mode in files.items()), (
        f"the canary is written to {files}"
    )


def read_twin_in(state: Path) -> dict[str, Any] | None:
    path = state / "dev" / "twin.json"
    return json.loads(path.read_text()) if path.exists() else None


def test_every_task_ran_with_a_canary(canary: Canary) -> None:
    """The matrix above covers `invoke --list`: a task added later without a canary run fails here."""
    listed = subprocess.run(
        [sys.executable, "-m", "invoke", "--list"], cwd=REPO, capture_output=True, text=True, timeout=60
    ).stdout
    tasks = {
        line.split()[0] for line in listed.splitlines()[2:] if line.startswith("  ") and not line.startswith("    ")
    }
    covered = {args[0] for args in DB_TASKS + CLOUD_TASKS + OTHER_TASKS} | {"local.up", "local.down", "db.connect"}
    assert tasks <= covered, f"tasks without a canary run: {sorted(tasks - covered)}"


FAKE_PSQL = """#!/bin/sh
# stands in for psql: says where it got its password from, then stays a while so `ps` can look at it
printf '%s\\n' "$@" > "$FAKE_PSQL_DIR/args"
printf '%s' "$PGPASSFILE" > "$FAKE_PSQL_DIR/passfile"
stat -c %a "$PGPASSFILE" > "$FAKE_PSQL_DIR/mode"
cp "$PGPASSFILE" "$FAKE_PSQL_DIR/content"
env > "$FAKE_PSQL_DIR/env"
touch "$FAKE_PSQL_DIR/ready"
sleep 3
"""


def test_db_connect_hands_the_password_to_psql_through_a_passfile_never_its_command_line(
    canary: Canary, tmp_path: Path
) -> None:
    env = canary.env | {
        "DATABASE_URL": _forms(canary.port, "postgres")["percent-encoded"],
        "CONNECTION_URL": _forms(canary.port, "postgres")["keyword-quoted"],
    }
    assert run_invoke("local.up", "--engine", "moto", env=env).returncode == 0
    try:
        for args, password in (
            (["db.connect"], ROLES["canary_special"]),
            (["db.connect", "--cloud"], ROLES["canary_quoted"]),
        ):
            bin_dir, seen = tmp_path / "bin", tmp_path / "seen"
            shutil.rmtree(seen, ignore_errors=True)
            bin_dir.mkdir(exist_ok=True)
            seen.mkdir()
            (bin_dir / "psql").write_text(FAKE_PSQL)
            (bin_dir / "psql").chmod(0o755)
            proc = subprocess.Popen(
                [sys.executable, "-m", "invoke", *args],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=os.environ | env | {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_PSQL_DIR": str(seen)},
            )
            deadline = time.monotonic() + 60
            while not (seen / "ready").exists():
                assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
                time.sleep(0.05)
            # WHILE psql runs: no process's command line holds the password
            cmdlines = {}
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        cmdlines[pid] = (
                            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                        )
                    except OSError:
                        continue
            assert not [c for c in cmdlines.values() if _leaks(c)], "the password is on a command line"
            assert any("host=127.0.0.1" in c and "psql" in c for c in cmdlines.values()), (
                "psql was found among the processes"
            )
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0 and not _leaks(out + err), err
            # psql got it from a 0600 passfile, gone when psql ended, and not from its environment
            assert (seen / "mode").read_text().strip() == "600" and (seen / "content").read_text().endswith(
                password.replace(":", "\\:") + "\n"
            )
            assert not Path((seen / "passfile").read_text()).exists()
            # its environment holds no password of ours (the variables the user set are theirs: psql does not read them)
            inherited = [
                line
                for line in (seen / "env").read_text().splitlines()
                if not line.startswith(("DATABASE_URL=", "CONNECTION_URL="))
            ]
            assert not _leaks((seen / "args").read_text()) and not [line for line in inherited if _leaks(line)]
            assert not [line for line in inherited if line.startswith("PGPASSWORD=")]
    finally:
        run_invoke("local.down", env=env)


def test_the_real_psql_connects_with_the_passfile(canary: Canary) -> None:
    if not shutil.which("psql"):
        if os.environ.get("CI"):
            pytest.fail("psql is missing: bin/bootstrap installs it (postgresql-client) as root")
        pytest.skip("psql is not installed")
    env = canary.env | {"CONNECTION_URL": _forms(canary.port, "postgres")["percent-encoded"]}
    proc = run_invoke("db.connect", "--cloud", env=env, stdin="SELECT current_user || ' via passfile';\n")
    assert proc.returncode == 0 and "canary_special via passfile" in proc.stdout, proc.stderr
    assert not _leaks(proc.stdout + proc.stderr)


def test_the_embedded_twins_own_password_never_shows(database: Target, tmp_path: Path) -> None:
    password = Path((read_twin("dev") or {})["postgres"]["password_file"]).read_text().strip()
    outputs = [
        run_invoke(*args)
        for args in (["local.up"], ["local.status"], ["local.status", "--json"], ["db.sessions"], ["db.schema-load"])
    ]
    outputs.append(run_invoke("db.connect", stdin="SELECT 'connected as ' || current_user;\n"))
    assert all(p.returncode == 0 for p in outputs), [p.stderr for p in outputs]
    assert "connected as postgres" in outputs[-1].stdout
    assert not [p.args for p in outputs if password in p.stdout + p.stderr]
