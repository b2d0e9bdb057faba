"""db.*: the stack's PostgreSQL database (the users the messages name)."""

from __future__ import annotations

from invoke import Collection, Context

from cli.shell import helps, one_line_errors, say, target_for, task


@task(name="create", help=helps("stack", "cloud", "confirm_protected"))
@one_line_errors
def create(c: Context, stack: str = "dev", cloud: bool = False, confirm_protected: bool = False) -> None:
    """Create the stack's application database."""
    from ops import db

    created = db.create_database(
        target_for(stack, cloud, writes=True, confirm_protected=confirm_protected, service="postgres")
    )
    say("database created" if created else "database already exists")


@task(name="drop", help=helps("stack", "cloud", "confirm_protected"))
@one_line_errors
def drop(c: Context, stack: str = "dev", cloud: bool = False, confirm_protected: bool = False) -> None:
    """Drop the stack's application database (ends its open sessions first)."""
    from ops import db

    dropped = db.drop_database(
        target_for(stack, cloud, writes=True, confirm_protected=confirm_protected, service="postgres")
    )
    say("database dropped" if dropped else "no database to drop")


@task(name="schema-load", help=helps("stack", "cloud", "confirm_protected"))
@one_line_errors
def schema_load(c: Context, stack: str = "dev", cloud: bool = False, confirm_protected: bool = False) -> None:
    """Create the users and activities tables (idempotent)."""
    from ops import db

    with db.connect(
        target_for(stack, cloud, writes=True, confirm_protected=confirm_protected, service="postgres")
    ) as conn:
        say("schema loaded: " + ", ".join(db.load_schema(conn)))


@task(name="seed", help=helps("stack", "cloud", "confirm_protected"))
@one_line_errors
def seed(c: Context, stack: str = "dev", cloud: bool = False, confirm_protected: bool = False) -> None:
    """Insert the seed users (idempotent: fixed uuids, upsert by handle); on a twin, also their Cognito users."""
    from ops import accounts
    from ops.render import create_result_line, users_table

    seeded = accounts.seed_target(
        target_for(stack, cloud, writes=True, confirm_protected=confirm_protected, service="postgres"),
        cognito_users=not cloud,
    )
    say(users_table(seeded.users))
    if seeded.cognito is not None:
        say(create_result_line(seeded.cognito))


@task(name="setup", help=helps("stack", "cloud", "confirm_protected", "keep"))
@one_line_errors
def setup(
    c: Context, stack: str = "dev", cloud: bool = False, confirm_protected: bool = False, keep: bool = False
) -> None:
    """Drop (unless --keep), create, load the schema, seed and sync the Cognito ids, in order,
    stopping at the first failure."""
    from ops import accounts
    from ops.render import setup_step_line

    target = target_for(stack, cloud, writes=True, confirm_protected=confirm_protected, service="postgres")
    on_step = lambda step, result: say(setup_step_line(step, result))  # noqa: E731
    accounts.setup(target, cognito_users=not cloud, on_step=on_step, keep=keep)


@task(name="connect", help=helps("stack", "cloud"))
@one_line_errors
def connect(c: Context, stack: str = "dev", cloud: bool = False) -> None:
    """Open psql on the stack's database (says how to install psql when it is missing)."""
    from invoke import Exit

    from ops import db

    code = db.run_psql(target_for(stack, cloud))  # the password reaches psql through a 0600 passfile, never its argv
    if code:
        raise Exit(code=code)  # psql has said why


@task(name="sessions", help=helps("stack", "cloud", "json"))
@one_line_errors
def sessions(c: Context, stack: str = "dev", cloud: bool = False, json: bool = False) -> None:
    """Show the database's client sessions (pg_stat_activity)."""
    from ops import db
    from ops.render import dump_json, table

    with db.connect(target_for(stack, cloud), maintenance=True) as conn:
        rows = db.sessions(conn)
    say(dump_json(rows) if json else table(rows))


ns = Collection("db", create, drop, schema_load, seed, setup, connect, sessions)
