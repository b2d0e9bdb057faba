"""The twin's PostgreSQL asks for a password, listens on loopback only, and upgrades twins that trusted everyone."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ops.errors import ConfigError
from ops.local import postgres
from ops.target import read_twin, stack_state_dir, state_root

# ad-hoc servers of this module sit in the suite's private range (base + 8000 … base + 8999)
OLD_TWIN_PORT = int(os.environ["CRUDDUR_LOCAL_PORT_OFFSET"]) + 8810  # set by tests/conftest.py


def test_the_twins_server_wants_the_password_kept_0600_in_the_state_dir(database: Any) -> None:
    pg = (read_twin("dev") or {})["postgres"]
    secret_file = Path(pg["password_file"])
    assert secret_file.parent == stack_state_dir("dev") and stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert "password" not in pg["url"] and ":" not in pg["url"].split("@")[0].removeprefix("postgresql://"), (
        "twin.json holds no password"
    )
    url = database.database_url()
    with psycopg.connect(url, connect_timeout=5) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute("SHOW password_encryption").fetchone() == ("scram-sha-256",)
        methods = {r[0] for r in conn.execute("SELECT auth_method FROM pg_hba_file_rules").fetchall()}
    assert methods == {"scram-sha-256"}
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(pg["url"].rsplit("/", 1)[0] + "/postgres", connect_timeout=5)  # anyone without it
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(postgres.url(pg["port"], "postgres", "not-the-password"), connect_timeout=5)


@pytest.fixture
def old_twin() -> Iterator[tuple[Path, Path]]:
    """A stack state directory whose PostgreSQL an earlier version initialised: --auth=trust, no password file."""
    root = Path(tempfile.mkdtemp(prefix="cruddur-old-twin-"))
    state = root / "dev"
    pgdata = state / "pgdata"
    user = postgres._run_as()
    state.mkdir()
    postgres._reachable(state, root, user)
    pgdata.mkdir()
    postgres._chown(pgdata, user)
    pgdata.chmod(0o700)
    proc = postgres._pg(
        [
            str(postgres.server_bins(user) / "initdb"),  # the programs its user can run, as local.up finds them
            "-D",
            str(pgdata),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-instructions",
        ],
        user,
    )
    assert proc.returncode == 0, proc.stderr
    try:
        yield root, pgdata
    finally:
        postgres.stop(pgdata)
        shutil.rmtree(root, ignore_errors=True)


def _start_old_way(pgdata: Path, port: int) -> None:
    log = pgdata.parent / "postgres.log"
    log.touch()
    postgres._chown(log, postgres._run_as())
    (pgdata / "sock").mkdir(exist_ok=True)
    postgres._chown(pgdata / "sock", postgres._run_as())
    proc = postgres._pg(
        [
            str(postgres.server_bins(postgres._run_as()) / "pg_ctl"),
            "-D",
            str(pgdata),
            "-l",
            str(log),
            "-o",
            f"-h 127.0.0.1 -p {port} -k {pgdata / 'sock'}",
            "-w",
            "start",
        ],
        postgres._run_as(),
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr


def _write_rows(port: int) -> None:
    with psycopg.connect(postgres.url(port, "postgres", None), autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (id int)")
        conn.execute("INSERT INTO kept VALUES (1), (2), (3)")


def _assert_secured(pgdata: Path, port: int) -> None:
    password = postgres.read_password(pgdata.parent)
    assert password and stat.S_IMODE(postgres.password_file(pgdata.parent).stat().st_mode) == 0o600
    assert not postgres.trusts_anyone(pgdata)
    with psycopg.connect(postgres.url(port, "postgres", password)) as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == (3,), "no data lost"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(postgres.url(port, "postgres", None), connect_timeout=5)
    assert password not in (pgdata.parent / "postgres.log").read_text(), "the server's log never saw the password"


def test_a_stopped_twin_that_trusted_everyone_is_upgraded_at_its_next_start(old_twin: tuple[Path, Path]) -> None:
    root, pgdata = old_twin
    _start_old_way(pgdata, OLD_TWIN_PORT)
    _write_rows(OLD_TWIN_PORT)
    postgres.stop(pgdata)

    postgres.start(pgdata, OLD_TWIN_PORT, pgdata.parent / "postgres.log", ours=root)

    _assert_secured(pgdata, OLD_TWIN_PORT)


def test_a_running_twin_that_trusted_everyone_is_upgraded_in_place(old_twin: tuple[Path, Path]) -> None:
    root, pgdata = old_twin
    _start_old_way(pgdata, OLD_TWIN_PORT + 1)
    _write_rows(OLD_TWIN_PORT + 1)
    pid = postgres.postmaster_pid(pgdata)

    postgres.secure(pgdata, OLD_TWIN_PORT + 1, postgres.ensure_password(pgdata.parent))

    _assert_secured(pgdata, OLD_TWIN_PORT + 1)
    assert postgres.postmaster_pid(pgdata) == pid, "reloaded, not restarted"


@pytest.mark.skipif(os.geteuid() != 0, reason="as another user the server runs as you: nothing to reach")
def test_a_state_dir_the_servers_user_cannot_reach_is_one_line_and_nothing_outside_it_changes() -> None:
    closed = Path(tempfile.mkdtemp(prefix="cruddur-closed-"))  # 0700, root's: like /root
    try:
        before = stat.S_IMODE(closed.stat().st_mode)
        root = closed / "state"
        with pytest.raises(ConfigError) as caught:
            postgres.start(root / "dev" / "pgdata", OLD_TWIN_PORT + 2, root / "dev" / "postgres.log", ours=root)
        message = str(caught.value)
        assert "\n" not in message and f"{closed} is not traversable" in message and "CRUDDUR_STATE_DIR" in message, (
            message
        )
        assert stat.S_IMODE(closed.stat().st_mode) == before, "a directory that is not ours keeps its mode"
    finally:
        shutil.rmtree(closed, ignore_errors=True)


def test_the_suites_own_state_root_is_traversable_because_it_is_ours(twin: Any) -> None:
    if os.geteuid() == 0:
        assert state_root().stat().st_mode & 0o001
