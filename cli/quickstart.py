"""``invoke quickstart``: the main job on the local twin, made of the other namespaces' tasks."""

from __future__ import annotations

from invoke import Context

from cli import db, local
from cli import ddb as ddb_tasks
from cli.ddb import patterns
from cli.shell import helps, one_line_errors, say, task


@task(name="quickstart", help=helps("stack", "engine", "reset"))
@one_line_errors
def quickstart(c: Context, stack: str = "dev", engine: str = "auto", reset: bool = False) -> None:
    """The main job on the local twin: twin up, database set up (its rows kept), table loaded,
    a conversation seeded and shown."""
    local.up(c, stack=stack, engine=engine)
    db.setup(c, stack=stack, keep=not reset)
    ddb_tasks.schema_load(c, stack=stack)
    ddb_tasks.seed(c, stack=stack)
    say("\n== conversations of ada")
    patterns.list_conversations(c, handle="ada", stack=stack)
    say("\n== ada <-> bram, newest page")
    patterns.get_conversation(c, stack=stack, handle=["ada", "bram"])
