"""Invoke tasks: thin shells over ``ops``.

Each task resolves its target, builds a client, calls one ``ops`` function and renders the
result. Imports of ``ops`` (and through it boto3/psycopg) happen inside the tasks so that
``invoke --list`` stays fast; nothing here imports the Pulumi SDK.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable

from invoke import Collection, Exit, task

STACK_HELP = "stack name, one Pulumi.<stack>.yaml each (default: dev)"
CLOUD_HELP = "talk to the stack's cloud resources instead of its local twin"
CONFIRM_HELP = "required with --cloud to write to or delete from a protected stack"
JSON_HELP = "print JSON lines instead of a table"


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the ops layer's named errors into one line on stderr and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ops.errors import OpsError

        try:
            return fn(*args, **kwargs)
        except OpsError as err:
            raise Exit(f"error: {err}", code=err.exit_code) from None
        except KeyboardInterrupt:
            raise Exit("interrupted", code=130) from None

    return wrapper


def say(text: str = "") -> None:
    print(text, flush=True)


def note(text: str) -> None:
    """Progress and target lines go to stderr, so --json output stays pipeable."""
    print(text, file=sys.stderr, flush=True)


def target_for(stack: str, cloud: bool = False, writes: bool = False, confirm_protected: bool = False, service: str = "dynamodb") -> Any:
    """Resolve (and, for tasks that change data, announce) where requests go."""
    from ops.target import resolve_target

    target = resolve_target(stack, cloud=cloud, writes=writes, confirm_protected=confirm_protected)
    if writes:
        note(target.describe(service))
    return target


# ---------------------------------------------------------------- local (twin lifecycle)
ENGINE_HELP = "AWS endpoint: auto (dynamodb-local container when Docker answers, else embedded moto), moto or docker"


@task(help={"stack": STACK_HELP, "engine": ENGINE_HELP})
@friendly
def local_up(c, stack="dev", engine="auto"):
    """Start the local twin of a stack (AWS endpoint + PostgreSQL) and wait until both answer."""
    import os

    from ops.local import twin
    from ops.render import twin_lines
    from ops.stacks import load_stack

    result = twin.up(load_stack(stack), engine=engine, database_url=os.environ.get("DATABASE_URL"))
    say(f"twin of stack {stack} " + ("is already running" if result.already_running else "is up" + (" (data restored)" if result.restored else "")))
    say("\n".join(twin_lines(result.status)))


@task(help={"stack": STACK_HELP + "; omit to stop every running twin"})
@friendly
def local_down(c, stack=None):
    """Stop what local.up started (by pid), saving the twin's data for the next local.up."""
    from ops.local import twin
    from ops.stacks import list_stacks, load_stack

    for name in [stack] if stack else list_stacks():
        stopped = twin.down(load_stack(name))
        if stopped or stack:
            say(f"stack {name}: " + ("; ".join(stopped) if stopped else "nothing running"))


@task(help={"json": JSON_HELP})
@friendly
def local_status(c, json=False):
    """Show what runs for each stack's twin, and where."""
    from ops.local import twin
    from ops.render import dump_json, status_table
    from ops.stacks import list_stacks, load_stack

    statuses = [twin.status(load_stack(name)) for name in list_stacks()]
    say(dump_json([twin.status_dict(s) for s in statuses]) if json else status_table(statuses))


local_ns = Collection("local")
local_ns.add_task(local_up, "up")
local_ns.add_task(local_down, "down")
local_ns.add_task(local_status, "status")

# ---------------------------------------------------------------- db (PostgreSQL)
DB_FLAGS = {"stack": STACK_HELP, "cloud": CLOUD_HELP, "confirm_protected": CONFIRM_HELP}


@task(help=DB_FLAGS)
@friendly
def db_create(c, stack="dev", cloud=False, confirm_protected=False):
    """Create the stack's application database."""
    from ops import db

    created = db.create_database(target_for(stack, cloud, writes=True, confirm_protected=confirm_protected, service="postgres"))
    say("database created" if created else "database already exists")


@task(help=DB_FLAGS)
@friendly
def db_drop(c, stack="dev", cloud=False, confirm_protected=False):
    """Drop the stack's application database (ends its open sessions first)."""
    from ops import db

    dropped = db.drop_database(target_for(stack, cloud, writes=True, confirm_protected=confirm_protected, service="postgres"))
    say("database dropped" if dropped else "no database to drop")


@task(help=DB_FLAGS)
@friendly
def db_schema_load(c, stack="dev", cloud=False, confirm_protected=False):
    """Create the users and activities tables (idempotent)."""
    from ops import db

    with db.connect(target_for(stack, cloud, writes=True, confirm_protected=confirm_protected, service="postgres")) as conn:
        say("schema loaded: " + ", ".join(db.load_schema(conn)))


@task(help=DB_FLAGS)
@friendly
def db_seed(c, stack="dev", cloud=False, confirm_protected=False):
    """Insert the seed users (idempotent: fixed uuids, upsert by handle)."""
    from ops import db
    from ops.render import users_table

    with db.connect(target_for(stack, cloud, writes=True, confirm_protected=confirm_protected, service="postgres")) as conn:
        say(users_table(db.seed_users(conn)))


@task(help=DB_FLAGS)
@friendly
def db_setup(c, stack="dev", cloud=False, confirm_protected=False):
    """Drop, create, load the schema and seed, in order, stopping at the first failure."""
    from ops import db
    from ops.render import users_table

    target = target_for(stack, cloud, writes=True, confirm_protected=confirm_protected, service="postgres")
    say("== drop: " + ("dropped" if db.drop_database(target) else "nothing to drop"))
    say("== create: " + ("created" if db.create_database(target) else "already there"))
    with db.connect(target) as conn:
        say("== schema-load: " + ", ".join(db.load_schema(conn)))
        say("== seed:\n" + users_table(db.seed_users(conn)))


@task(help={"stack": STACK_HELP, "cloud": CLOUD_HELP})
@friendly
def db_connect(c, stack="dev", cloud=False):
    """Open psql on the stack's database (says how to install psql when it is missing)."""
    import os

    from ops import db

    argv = db.psql_argv(target_for(stack, cloud))
    os.execv(argv[0], argv)  # hand the terminal to psql; the URL is in argv, never printed


@task(help={"stack": STACK_HELP, "cloud": CLOUD_HELP, "json": JSON_HELP})
@friendly
def db_sessions(c, stack="dev", cloud=False, json=False):
    """Show the database's client sessions (pg_stat_activity)."""
    from ops import db
    from ops.render import dump_json, table

    with db.connect(target_for(stack, cloud), maintenance=True) as conn:
        rows = db.sessions(conn)
    say(dump_json(rows) if json else table(rows))


db_ns = Collection("db")
for _t, _name in ((db_create, "create"), (db_drop, "drop"), (db_schema_load, "schema-load"), (db_seed, "seed"), (db_setup, "setup"), (db_connect, "connect"), (db_sessions, "sessions")):
    db_ns.add_task(_t, _name)

# ---------------------------------------------------------------- ddb (DynamoDB)

# ---------------------------------------------------------------- cognito / rds

# ---------------------------------------------------------------- infra (Pulumi)

# ---------------------------------------------------------------- bench

# ---------------------------------------------------------------- namespace
ns = Collection()
ns.add_collection(local_ns)
ns.add_collection(db_ns)
