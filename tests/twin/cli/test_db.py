"""PostgreSQL tasks against the twin's real server."""

from __future__ import annotations

import os
from typing import Any

from ops import db as dbops
from tests.support.helpers import assert_one_line_error, run_invoke


def test_setup_creates_the_seed_users_and_is_repeatable(twin: Any) -> None:
    for _ in range(2):
        proc = run_invoke("db.setup")
        assert proc.returncode == 0, proc.stderr
    with dbops.connect(twin) as conn:
        users = dbops.list_users(conn)
    assert [u.handle for u in users] == [u.handle for u in dbops.SEED_USERS]
    assert [u.uuid for u in users] == [u.uuid for u in dbops.SEED_USERS], "seed uuids are fixed"
    assert all(u.created_at is not None and u.created_at.tzinfo is not None for u in users)


def test_setup_with_keep_keeps_a_users_rows_and_says_so(database: Any) -> None:
    # GIVEN a user and an activity someone added to the twin's database
    with dbops.connect(database) as conn, conn.transaction():
        conn.execute("INSERT INTO users (display_name, handle, email) VALUES ('Kept', 'kept-user', 'kept@example.com')")
        conn.execute(
            "INSERT INTO activities (user_uuid, message) SELECT uuid, 'hi' FROM users WHERE handle = 'kept-user'"
        )
    try:
        # WHEN the database is set up again the way quickstart does it (no --reset)
        proc = run_invoke("db.setup", "--keep")
        # THEN the rows are there, the seed users too, and the output says what was kept
        assert proc.returncode == 0, proc.stderr
        assert f"kept its rows ({len(dbops.SEED_USERS) + 1} users, 1 activities)" in proc.stdout, proc.stdout
        with dbops.connect(database) as conn:
            handles = [u.handle for u in dbops.list_users(conn)]
            assert conn.execute("SELECT count(*) FROM activities").fetchone()[0] == 1
        assert "kept-user" in handles and set(u.handle for u in dbops.SEED_USERS) <= set(handles)
    finally:
        with dbops.connect(database) as conn, conn.transaction():
            conn.execute("DELETE FROM users WHERE handle = 'kept-user'")  # its activity goes with it (cascade)


def test_target_line_is_printed_and_has_no_password(database: Any) -> None:
    proc = run_invoke("db.schema-load")
    assert proc.returncode == 0
    assert proc.stderr.startswith("target: stack dev · local twin · postgresql://postgres:***@127.0.0.1:")


def test_sessions_lists_client_backends(database: Any) -> None:
    with dbops.connect(database) as conn:
        rows = dbops.sessions(conn)
        assert any(r["pid"] == conn.info.backend_pid for r in rows)
    proc = run_invoke("db.sessions")
    assert proc.returncode == 0 and "pid" in proc.stdout.splitlines()[0]


def test_connect_without_psql_says_how_to_install_it(twin: Any, tmp_path: Any) -> None:
    env = {"PATH": str(tmp_path)}  # nowhere to find psql
    proc = run_invoke("db.connect", env=env)
    assert_one_line_error(proc, "psql is not installed", "apt-get install postgresql-client")
    assert (
        "@" not in proc.stderr.split("the database is")[-1]
        or "***" in proc.stderr
        or ":" not in proc.stderr.split("postgresql://")[-1].split("@")[0]
    )


def test_missing_handle_lists_known_ones(conn: Any) -> None:
    import pytest

    from ops.errors import NotFoundError

    with pytest.raises(NotFoundError, match=r"no user with handle 'zed'.*known: ada"):
        dbops.users_by_handle(conn, ["ada", "zed"])


def test_cloud_database_url_comes_from_the_stack_variable(monkeypatch: Any) -> None:
    import pytest

    from ops.errors import ConfigError
    from ops.target import resolve_target

    monkeypatch.delenv("PROD_CONNECTION_URL", raising=False)
    with pytest.raises(ConfigError, match=r"\$PROD_CONNECTION_URL"):
        resolve_target("prod", cloud=True).database_url()
    monkeypatch.setenv("PROD_CONNECTION_URL", "postgresql://a:b@h/db")
    assert resolve_target("prod", cloud=True).database_url() == os.environ["PROD_CONNECTION_URL"]
