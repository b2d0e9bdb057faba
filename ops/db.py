"""PostgreSQL: the users database of a stack (create, drop, schema, seed, sessions, lookups).

Connections come from ``connect(target)``, which turns connection failures into one-line
errors that never contain the password.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ops.errors import CloudError, ConfigError, NotFoundError, ToolMissingError, TwinDownError
from ops.messages.model import Person
from ops.redact import database_name, parse, redact, split_password, with_database
from ops.target import Target

SCHEMA_FILE = Path(__file__).parent / "sql" / "schema.sql"
# Fixed namespace: seeded users get the same uuid on every machine and every re-seed, so
# the DynamoDB items that name them (and the group ids derived from them) stay valid.
USER_NAMESPACE = uuid.UUID("0f4d3c2e-6b1a-4c55-9e77-3a8d2b9c1e50")


@dataclass(frozen=True)
class User:
    uuid: str
    display_name: str
    handle: str
    email: str
    cognito_user_id: str | None = None
    created_at: datetime | None = None

    def person(self) -> Person:
        """The user as the items name them (uuid, display name, handle)."""
        return Person(self.uuid, self.display_name, self.handle)


def seed_user(display_name: str, handle: str, email: str) -> User:
    return User(str(uuid.uuid5(USER_NAMESPACE, handle)), display_name, handle, email)


# The first two are the default pair of `ddb.seed`.
SEED_USERS: tuple[User, ...] = (
    seed_user("Ada Okafor", "ada", "ada@cruddur.test"),
    seed_user("Bram Lindqvist", "bram", "bram@cruddur.test"),
    seed_user("Chidi Mensah", "chidi", "chidi@cruddur.test"),
    seed_user("Dana Ruiz", "dana", "dana@cruddur.test"),
)


def _translate(err: psycopg.Error, target: Target, url: str) -> Exception:
    # libpq's messages may repeat the connection string or its password (a bad % escape): redact both
    text = redact(str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__)
    if isinstance(err, psycopg.OperationalError) and "does not exist" in text and "database" in text:
        return NotFoundError(
            f"database {database_name(url)!r} does not exist on stack {target.stack.name!r}: run "
            f"`invoke db.setup --stack {target.stack.name}`"
        )
    if isinstance(err, psycopg.OperationalError) and "password authentication failed" in text:
        where = f"${target.stack.database_url_env}" if target.cloud else "the twin's URL (twin.json)"
        return ConfigError(f"PostgreSQL at {redact(url)} refused the password: {text} (check {where})")
    if not target.cloud and isinstance(err, psycopg.OperationalError):
        return TwinDownError(
            f"the twin's PostgreSQL of stack {target.stack.name!r} is not answering ({redact(url)}): run "
            f"`invoke local.up --stack {target.stack.name}`"
        )
    return CloudError(f"PostgreSQL at {redact(url)}: {text}")


@contextmanager
def connect(target: Target, maintenance: bool = False, autocommit: bool = False) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the stack's database (or the server's ``postgres`` database for create/drop)."""
    url = target.database_url()
    parse(url)  # a malformed connection string is one line naming the problem, before any connection
    if maintenance:
        url = with_database(url, "postgres")
    try:
        conn = psycopg.connect(url, connect_timeout=5, autocommit=autocommit)
    except psycopg.Error as err:
        raise _translate(err, target, url) from None
    try:
        with conn:
            yield conn
    except psycopg.Error as err:
        raise _translate(err, target, url) from None


def create_database(target: Target) -> bool:
    """CREATE DATABASE; False when it already existed."""
    name = database_name(target.database_url())
    with connect(target, maintenance=True, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return True


def drop_database(target: Target) -> bool:
    """DROP DATABASE (ending other sessions first); False when there was none."""
    name = database_name(target.database_url())
    with connect(target, maintenance=True, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    return True


def load_schema(conn: psycopg.Connection[Any]) -> list[str]:
    """Apply ops/sql/schema.sql in one transaction; returns the tables it defines."""
    with conn.transaction():
        conn.execute(SCHEMA_FILE.read_text())  # type: ignore[arg-type]
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename").fetchall()
    return [r[0] for r in rows]


def seed_users(conn: psycopg.Connection[Any], users: tuple[User, ...] = SEED_USERS) -> list[User]:
    """Insert (or refresh) the seed users in one statement; re-running changes nothing."""
    with conn.transaction():
        with conn.cursor() as cur:
            cur.executemany(
                """INSERT INTO users (uuid, display_name, handle, email) VALUES (%s, %s, %s, %s)
                   ON CONFLICT (handle) DO UPDATE SET display_name = EXCLUDED.display_name, email = EXCLUDED.email""",
                [(u.uuid, u.display_name, u.handle, u.email) for u in users],
            )
    return list_users(conn)


def list_users(conn: psycopg.Connection[Any]) -> list[User]:
    try:
        rows = conn.execute(
            "SELECT uuid::text, display_name, handle, email, cognito_user_id, created_at FROM users ORDER BY "
            "created_at, handle"
        ).fetchall()
    except psycopg.errors.UndefinedTable:
        raise NotFoundError("the users table does not exist: run `invoke db.setup`") from None
    return [User(*r) for r in rows]


def users_by_handle(conn: psycopg.Connection[Any], handles: list[str]) -> dict[str, User]:
    """The users with these handles; a handle that is not there is a NotFoundError naming it."""
    try:
        rows = conn.execute(
            "SELECT uuid::text, display_name, handle, email, cognito_user_id, created_at FROM users WHERE handle = "
            "ANY(%s)",
            (handles,),
        ).fetchall()
    except psycopg.errors.UndefinedTable:
        raise NotFoundError("the users table does not exist: run `invoke db.setup`") from None
    found = {r[2]: User(*r) for r in rows}
    missing = [h for h in handles if h not in found]
    if missing:
        known = ", ".join(u.handle for u in list_users(conn)[:10]) or "none"
        raise NotFoundError(
            f"no user with handle {', '.join(repr(m) for m in missing)} in the database (known: {known})"
        )
    return found


def users_by_uuid(conn: psycopg.Connection[Any], uuids: list[str]) -> dict[str, User]:
    """The users with these ids (those that are there: a caller asks to name people, not to check them)."""
    try:
        rows = conn.execute(
            "SELECT uuid::text, display_name, handle, email, cognito_user_id, created_at FROM users "
            "WHERE uuid::text = ANY(%s)",
            (uuids,),
        ).fetchall()
    except psycopg.errors.UndefinedTable:
        raise NotFoundError("the users table does not exist: run `invoke db.setup`") from None
    return {r[0]: User(*r) for r in rows}


def first_users(conn: psycopg.Connection[Any], n: int = 2) -> list[User]:
    users = [u for u in list_users(conn) if u.handle in {s.handle for s in SEED_USERS}]
    users.sort(key=lambda u: [s.handle for s in SEED_USERS].index(u.handle))
    if len(users) < n:
        raise NotFoundError(
            "the seed users are not in the database: run `invoke db.setup` (or pass --my-handle/--other-handle)"
        )
    return users[:n]


def sessions(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """pg_stat_activity's client sessions (not the server's own background workers)."""
    cur = conn.execute(
        """SELECT pid, usename AS user, datname AS database, client_addr::text AS client, state,
                  to_char(backend_start, 'YYYY-MM-DD HH24:MI:SS') AS since, left(query, 60) AS query
           FROM pg_stat_activity WHERE backend_type = 'client backend' ORDER BY backend_start"""
    )
    names = [d.name for d in cur.description or []]
    return [dict(zip(names, row, strict=False)) for row in cur.fetchall()]


def psql_command(target: Target) -> tuple[list[str], str | None]:
    """psql's command line (the connection string without its password) and the password, kept apart.

    A command line is visible to every user of the machine (``ps``, ``/proc/*/cmdline``), so the
    password never goes there: ``psql`` gets it from a passfile (see ``run_psql``).
    """
    exe = shutil.which("psql")
    if not exe:
        raise ToolMissingError(
            "psql is not installed: apt-get install postgresql-client (or brew install libpq); "
            f"the database is {redact(target.database_url())}"
        )
    conninfo, password = split_password(target.database_url())
    return [exe, conninfo], password


def _passfile_line(password: str) -> str:
    # any host, port, database and user: the one connection psql makes; ':' and '\' are escaped by the format
    return "*:*:*:*:" + password.replace("\\", "\\\\").replace(":", "\\:") + "\n"


def run_psql(target: Target) -> int:
    """Open psql on the stack's database, on this terminal; returns psql's exit status.

    The password goes through a passfile (mode 0600, in a private directory, removed when psql
    exits) named by PGPASSFILE: not argv, which ``ps`` shows, and not PGPASSWORD, which every
    program psql starts (``\\!``) would inherit.
    """
    argv, password = psql_command(target)
    env = {k: v for k, v in os.environ.items() if k not in ("PGPASSWORD", "PGPASSFILE")}
    with tempfile.TemporaryDirectory(prefix="cruddur-psql-") as private:  # 0700
        if password is not None:
            passfile = os.path.join(private, "pgpass")
            fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(_passfile_line(password))
            env["PGPASSFILE"] = passfile
        # Ctrl-C belongs to psql (it cancels the running query); we only wait and clean up
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            return subprocess.run(argv, env=env).returncode
        finally:
            signal.signal(signal.SIGINT, previous)


def row_counts(target: Target) -> dict[str, int] | None:
    """How many rows the database's tables hold (users, activities); None when there is no database yet."""
    name = database_name(target.database_url())
    with connect(target, maintenance=True, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return None
    counts: dict[str, int] = {}
    with connect(target) as conn:
        for table in ("users", "activities"):
            exists = conn.execute("SELECT to_regclass(%s)", (f"public.{table}",)).fetchone()
            if exists and exists[0]:
                query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
                counts[table] = int(conn.execute(query).fetchone()[0])  # type: ignore[index]
    return counts
