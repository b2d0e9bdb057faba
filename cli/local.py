"""local.*: the twin of a stack on this machine (AWS endpoint + PostgreSQL)."""

from __future__ import annotations

from invoke import Collection, Context, Exit

from cli.shell import helps, one_line_errors, say, task


@task(name="up", help=helps("stack", "engine", "empty"))
@one_line_errors
def up(c: Context, stack: str = "dev", engine: str = "auto", empty: bool = False) -> None:
    """Start the local twin of a stack (AWS endpoint + PostgreSQL) and wait until both answer."""
    import os

    from ops.local import twin
    from ops.render import up_lines
    from ops.stacks import load_stack

    say(
        "\n".join(
            up_lines(
                stack,
                twin.up(load_stack(stack), engine=engine, database_url=os.environ.get("DATABASE_URL"), empty=empty),
            )
        )
    )


@task(name="down", help=helps(stack="stack_or_all"))
@one_line_errors
def down(c: Context, stack: str | None = None) -> None:
    """Stop what local.up started (by pid), saving the twin's data for the next local.up."""
    from ops.local import twin

    for name in twin.stoppable(stack):  # by what local.up recorded: a broken stack file does not keep its twin running
        stopped = twin.down(name)
        if stopped or stack:
            say(f"stack {name}: " + ("; ".join(stopped) if stopped else "nothing running"))


@task(name="status", help=helps("json"))
@one_line_errors
def status(c: Context, json: bool = False) -> None:
    """Show what runs for each stack's twin, and where (a stack whose file is broken is marked, the others shown)."""
    from ops.local import twin
    from ops.render import dump_json, status_problems, status_table

    statuses = twin.all_statuses()
    say(dump_json([twin.status_dict(s) for s in statuses]) if json else status_table(statuses))
    if status_problems(statuses):
        raise Exit(status_problems(statuses), code=1)


ns = Collection("local", up, down, status)
