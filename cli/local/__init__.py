"""local.*: the twin of a stack on this machine (AWS endpoint + PostgreSQL)."""

from __future__ import annotations

from invoke import Collection, Context, Exit

from cli.local import snapshot
from cli.shell import Choice, helps, note, one_line_errors, say, task


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
                twin.up(
                    load_stack(stack),
                    engine=engine,
                    database_url=os.environ.get("DATABASE_URL"),
                    on_wait=say,
                    empty=empty,
                ),
            )
        )
    )


@task(name="down", help=helps(stack="stack_or_all"))
@one_line_errors
def down(c: Context, stack: str | None = None) -> None:
    """Stop what local.up started (by pid), saving the twin's data for the next local.up."""
    from ops.local import twin
    from ops.target import state_root

    # by what local.up recorded: a broken stack file does not keep its twin running
    stopped = {name: twin.down(name, on_wait=say) for name in twin.stoppable(stack)}
    for name, parts in stopped.items():
        if parts or stack:
            say(f"stack {name}: " + ("; ".join(parts) if parts else "nothing running"))
    if not stack and not any(stopped.values()):
        say(f"nothing was running: no twin is recorded under {state_root()} (CRUDDUR_STATE_DIR moves it)")


@task(name="status", help=helps(stack="stack_or_every", json="status_json"))
@one_line_errors
def status(c: Context, stack: str | None = None, json: bool = False) -> None:
    """Show what runs for each stack's twin, and where (a stack whose file is broken is marked, the others shown)."""
    from ops.local import twin
    from ops.render import dump_json, status_problems, status_table

    statuses = twin.statuses(stack)
    say(dump_json([twin.status_dict(s) for s in statuses]) if json else status_table(statuses))
    if status_problems(statuses):
        raise Exit(status_problems(statuses), code=1)


@task(name="env", help=helps("stack", format="env_format"), checks={"format": Choice(("sh", "dotenv", "json"))})
@one_line_errors
def env(c: Context, stack: str = "dev", format: str = "sh") -> None:
    """What any program needs to use the twin (AWS endpoints, region, ids, PostgreSQL): eval "$(invoke local.env)"."""
    from ops.local.env import render, twin_env
    from ops.stacks import load_stack

    found = twin_env(load_stack(stack))
    if format == "json":
        note("\n".join(f"# {line}" for line in found.notes))  # stdout stays one JSON object
    say(render(found, format), exact=True)  # the twin's own password, on purpose: the one secret this prints


ns = Collection("local", up, down, status, env, snapshot.ns)
