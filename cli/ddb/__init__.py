"""ddb.*: the stack's DynamoDB messages table; ``ddb.patterns.*`` (the read patterns) is ``cli/ddb/patterns.py``."""

from __future__ import annotations

from invoke import Collection, Context, Exit

from cli.ddb import patterns
from cli.shell import Choice, helps, note, one_line_errors, say, stdin_text, target_for, task


@task(name="schema-load", help=helps("stack", cloud="cloud_compare"))
@one_line_errors
def schema_load(c: Context, stack: str = "dev", cloud: bool = False) -> None:
    """Create the twin's messages table from the one table spec; with --cloud, only compare the cloud table with it."""
    from ops import ddb
    from ops.render import table_check_lines
    from ops.table_spec import protections, table_spec

    if cloud:  # the cloud table is the Pulumi program's: compared, never created (so no --confirm-protected)
        target = target_for(stack, cloud=True)
        check = ddb.check_table(target.client("dynamodb"), table_spec(target.stack), protections(target.stack), stack)
        say("\n".join(table_check_lines(check, stack)))
        if check.differences:
            raise Exit(code=1)
        return
    target = target_for(stack, writes=True)
    result = ddb.schema_load(target.client("dynamodb"), table_spec(target.stack))
    say(f"table {result.table} " + ("created and active" if result.created else "already exists and matches the spec"))


@task(name="list-tables", help=helps("stack", "cloud"))
@one_line_errors
def list_tables(c: Context, stack: str = "dev", cloud: bool = False) -> None:
    """List the DynamoDB tables of the target, every page."""
    from ops import ddb

    say("\n".join(ddb.list_tables(target_for(stack, cloud).client("dynamodb"))) or "(no tables)")


@task(name="drop", help=helps("stack", "cloud", "confirm_protected"))
@one_line_errors
def drop(c: Context, stack: str = "dev", cloud: bool = False, confirm_protected: bool = False) -> None:
    """Delete the stack's messages table (names it first) and wait until it is gone."""
    from ops import ddb

    target = target_for(stack, cloud, writes=True, confirm_protected=confirm_protected)
    client, table = target.client("dynamodb"), target.stack.table_name
    ddb.require_table(client, table, stack)  # a missing table is the one error line, not "deleting" first
    note(f"deleting table {table}")
    ddb.drop(client, table, stack)
    say(f"table {table} deleted")


@task(
    name="scan",
    help=helps(
        "stack", "cloud", "limit", "segments", "max_rcu", "max_wcu", "budget", "plan", "from_export", json="scan_json"
    ),
)
@one_line_errors
def scan(
    c: Context,
    stack: str = "dev",
    cloud: bool = False,
    json: bool = False,
    limit: int | None = None,
    segments: int = 1,
    max_rcu: int | None = None,
    max_wcu: int | None = None,
    budget: int | None = None,
    plan: bool = False,
    from_export: str | None = None,
) -> None:
    """Print every item of the messages table, streaming page by page, under a throughput budget (or an export's)."""
    import sys
    from functools import partial

    from ops.budget import Limits
    from ops.bulk import scan_target
    from ops.bulkplan import plan_target
    from ops.render import Progress, item_lines, json_lines, plan_lines

    target, limits = target_for(stack, cloud), Limits(max_rcu, max_wcu, budget)
    if plan:
        return say(plan_lines(plan_target(target, "scan", limits, segments=segments), as_json=json), exact=json)
    run = scan_target(
        target,
        limits,
        segments=segments,
        limit=limit,
        progress=partial(Progress, stream=sys.stderr, label="items read"),
        from_export=from_export,
    )
    for line in json_lines(run.items) if json else item_lines(run.items):
        sys.stdout.write(line + "\n")
    if run.summary():
        note(run.summary() or "")


@task(
    name="seed",
    help=helps(
        "stack",
        "cloud",
        "confirm_protected",
        "conversation",
        "my_handle",
        "other_handle",
        "start",
        "max_rcu",
        "max_wcu",
        "budget",
        "plan",
    ),
)
@one_line_errors
def seed(
    c: Context,
    stack: str = "dev",
    cloud: bool = False,
    confirm_protected: bool = False,
    conversation: str | None = None,
    my_handle: str | None = None,
    other_handle: str | None = None,
    start: str | None = None,
    max_rcu: int | None = None,
    max_wcu: int | None = None,
    budget: int | None = None,
    plan: bool = False,
) -> None:
    """Seed a conversation between two users of the database: messages plus both group rows."""
    import sys
    from functools import partial
    from pathlib import Path

    from ops import seed as seeding
    from ops.budget import Limits
    from ops.bulkplan import plan_target
    from ops.render import Progress, plan_lines, seeded_line

    conv = seeding.parse_conversation(
        Path(conversation) if conversation else seeding.DEFAULT_CONVERSATION
    )  # a bad file fails before any request
    seeding.check_start(conv, start)  # and so does a --start that leaves no room for it
    if plan:  # the messages, two group rows and the pair entry
        return say(
            plan_lines(
                plan_target(
                    target_for(stack, cloud), "seed", Limits(max_rcu, max_wcu, budget), writes=len(conv.lines) + 3
                )
            )
        )
    target = target_for(stack, cloud, writes=True, confirm_protected=confirm_protected)
    say(
        seeded_line(
            seeding.seed_target(
                target,
                conv,
                my_handle,
                other_handle,
                start,
                progress=partial(Progress, stream=sys.stderr),
                limits=Limits(max_rcu, max_wcu, budget),
            )
        )
    )


@task(
    name="send-message",
    positional=["text"],
    help=helps("text", "stack", "from", "to", "no_process", "cloud", "confirm_protected", group="into_group"),
)
@one_line_errors
def send_message(
    c: Context,
    text: str,
    stack: str = "dev",
    from_: str = "",
    to: str = "",
    group: str = "",
    no_process: bool = False,
    cloud: bool = False,
    confirm_protected: bool = False,
) -> None:
    """Access pattern 3: send TEXT from one user to another (creating their group) or into a group."""
    from ops.conversations import send_by_handles
    from ops.render import sent_lines, stream_line

    text = stdin_text() if text == "-" else text  # `--text -`: a text of any form, piped or typed
    target = target_for(stack, cloud, writes=True, confirm_protected=confirm_protected)
    sent = send_by_handles(target, from_, text, to=to or None, group_uuid=group or None, process=not no_process)
    say("\n".join(sent_lines(sent)))
    if sent.stream is not None:  # a failed record's own log lines are on stderr: keep its summary beside them
        (note if sent.stream.failed else say)(stream_line(sent.stream))


@task(
    name="create-group",
    iterable=["members"],
    checks={"name": None},
    help=helps("stack", "cloud", "confirm_protected", "members", name="group_name", from_="creator", text="first_text"),
)
@one_line_errors
def create_group(
    c: Context,
    name: str = "",
    members: list[str] | None = None,
    from_: str = "",
    text: str = "",
    stack: str = "dev",
    cloud: bool = False,
    confirm_protected: bool = False,
) -> None:
    """Create a named group of 2 to 50 members (handles from the database) with its first message; prints its uuid."""
    from ops.conversations import create_group_by_handles
    from ops.render import group_made_lines

    target = target_for(stack, cloud, writes=True, confirm_protected=confirm_protected)
    made = create_group_by_handles(target, name, members or [], from_ or None, text or None)
    say("\n".join(group_made_lines(made)))


@task(name="add-member", help=helps("stack", "cloud", "confirm_protected", group="named_group", handle="member_handle"))
@one_line_errors
def add_member(
    c: Context,
    group: str = "",
    handle: str = "",
    stack: str = "dev",
    cloud: bool = False,
    confirm_protected: bool = False,
) -> None:
    """Add a user to a named group: their row points at the group's newest message, and new messages reach them."""
    from ops.conversations import change_member
    from ops.render import member_change_line

    target = target_for(stack, cloud, writes=True, confirm_protected=confirm_protected)
    say(member_change_line(change_member(target, group, handle, "add")))


@task(
    name="remove-member", help=helps("stack", "cloud", "confirm_protected", group="named_group", handle="member_handle")
)
@one_line_errors
def remove_member(
    c: Context,
    group: str = "",
    handle: str = "",
    stack: str = "dev",
    cloud: bool = False,
    confirm_protected: bool = False,
) -> None:
    """Remove a user from a named group: their row goes with it (their messages stay); a group keeps 2 members."""
    from ops.conversations import change_member
    from ops.render import member_change_line

    target = target_for(stack, cloud, writes=True, confirm_protected=confirm_protected)
    say(member_change_line(change_member(target, group, handle, "remove")))


@task(name="stream-process", help=helps("stack", "follow", cloud="cloud_refused"))
@one_line_errors
def stream_process(c: Context, stack: str = "dev", follow: bool = False, cloud: bool = False) -> None:
    """Run the stream consumer over the twin's table stream: every shard, from its last checkpoint."""
    from ops.errors import RefusedError
    from ops.local.streams import process_target_stream
    from ops.render import stream_line

    if cloud:  # before resolving the target: the answer does not depend on credentials
        raise RefusedError(
            "in the cloud the stream consumer Lambda processes the stream: this task runs it on a twin only (nothing "
            "was sent)"
        )
    counts = process_target_stream(
        target_for(stack, writes=True),
        follow,
        on_round=(lambda r: r.records and note(stream_line(r))) if follow else None,
    )
    say(stream_line(counts))
    if counts.failed:
        raise Exit(
            f"error: {counts.failed} record(s) failed (their log lines are above); the next run retries them", code=1
        )


@task(
    name="doctor",
    checks={"engine": Choice(("scan", "duckdb", "athena"))},  # not the twin's DynamoDB engine: where the checks run
    help=helps(
        "stack",
        "cloud",
        "confirm_protected",
        "fix",
        "max_rcu",
        "max_wcu",
        "budget",
        "plan",
        "from_export",
        json="doctor_json",
        engine="doctor_engine",
        segments="scan_segments",
    ),
)
@one_line_errors
def doctor(
    c: Context,
    stack: str = "dev",
    cloud: bool = False,
    confirm_protected: bool = False,
    fix: bool = False,
    json: bool = False,
    segments: int = 4,
    max_rcu: int | None = None,
    max_wcu: int | None = None,
    budget: int | None = None,
    plan: bool = False,
    from_export: str | None = None,
    engine: str = "scan",
) -> None:
    """Check the stack's table in one pass for what breaks the access patterns; exit 1 when anything does."""
    import sys
    from functools import partial

    from ops import doctor_sql
    from ops.budget import Limits
    from ops.bulkplan import plan_target
    from ops.doctor import check_target
    from ops.render import Progress, doctor_report, plan_lines

    target, limits = (
        target_for(stack, cloud, writes=fix and not plan, confirm_protected=confirm_protected),
        Limits(max_rcu, max_wcu, budget),
    )
    if plan:
        return say(
            plan_lines(plan_target(target, "doctor", limits, segments=segments, fix=fix), as_json=json), exact=json
        )
    checkup = (
        doctor_sql.check_target(target, from_export or "latest", engine, fix)
        if engine != "scan"
        else check_target(
            target,
            fix=fix,
            segments=segments,
            progress=partial(Progress, stream=sys.stderr, label="items read"),
            before_repairs=lambda repairs: note(doctor_report(None, repairs=repairs)),
            limits=limits,
            from_export=from_export,
        )
    )
    say(doctor_report(checkup, as_json=json), exact=json)
    if not checkup.final.clean:
        raise Exit(code=1)


@task(
    name="migrate",
    help=helps(
        "stack",
        "cloud",
        "confirm_protected",
        "restart",
        "max_rcu",
        "max_wcu",
        "budget",
        "plan",
        name="migration",
        dry_run="dry_run_migrate",
        segments="scan_segments",
    ),
)
@one_line_errors
def migrate(
    c: Context,
    name: str = "pair-index",
    stack: str = "dev",
    cloud: bool = False,
    confirm_protected: bool = False,
    dry_run: bool = False,
    restart: bool = False,
    segments: int = 4,
    max_rcu: int | None = None,
    max_wcu: int | None = None,
    budget: int | None = None,
    plan: bool = False,
) -> None:
    """Run a one-time migration of the stack's table: resumable, idempotent, with progress and counts."""
    import sys
    from functools import partial

    from ops.budget import Limits
    from ops.bulkplan import plan_target
    from ops.migrate import run_target
    from ops.render import Progress, migration_line, plan_lines

    target, limits = (
        target_for(stack, cloud, writes=not (dry_run or plan), confirm_protected=confirm_protected),
        Limits(max_rcu, max_wcu, budget),
    )
    if plan:
        return say(plan_lines(plan_target(target, "migrate", limits, segments=segments)))
    say(
        migration_line(
            run_target(
                target,
                name,
                dry_run=dry_run,
                restart=restart,
                segments=segments,
                progress=partial(Progress, stream=sys.stderr, label="items scanned"),
                limits=limits,
            )
        )
    )


@task(name="export", help=helps("stack", "cloud", "confirm_protected", since="export_since"))
@one_line_errors
def export(
    c: Context, stack: str = "dev", cloud: bool = False, confirm_protected: bool = False, since: str | None = None
) -> None:
    """Export the stack's table to its export bucket (point-in-time recovery turned on): no read capacity used."""
    from ops.export import export_target
    from ops.render import export_line

    # it changes the table's backups setting and writes the bucket: a write, as far as protection goes
    say(export_line(export_target(target_for(stack, cloud, writes=True, confirm_protected=confirm_protected), since)))


@task(name="import", help=helps("stack", "cloud", "confirm_protected", table="new_table", from_export="import_from"))
@one_line_errors
def import_(
    c: Context,
    table: str,
    stack: str = "dev",
    cloud: bool = False,
    confirm_protected: bool = False,
    from_export: str = "latest",
) -> None:
    """Load an export of the stack's table into a new table with ImportTable (no write capacity used)."""
    from ops.export import import_target
    from ops.render import imported_line

    target = target_for(stack, cloud, writes=True, confirm_protected=confirm_protected)
    say(imported_line(import_target(target, from_export, table)))


@task(name="dead-letters", help=helps("stack", "cloud"))
@one_line_errors
def dead_letters(c: Context, stack: str = "dev", cloud: bool = False) -> None:
    """List the stream consumer's dead-letter queue: which records it gave up on, and why (the queue keeps them)."""
    from ops.dead_letters import list_target
    from ops.render import dead_letter_lines

    say("\n".join(dead_letter_lines(*list_target(target_for(stack, cloud)))))


@task(name="redrive", help=helps("stack", "cloud", "confirm_protected"))
@one_line_errors
def redrive(c: Context, stack: str = "dev", cloud: bool = False, confirm_protected: bool = False) -> None:
    """Send the dead-lettered records through the consumer again; remove the pointers that succeed."""
    from ops.dead_letters import redrive_target
    from ops.render import redrive_line

    result = redrive_target(target_for(stack, cloud, writes=True, confirm_protected=confirm_protected))
    say(redrive_line(result))
    if result.still_failing or result.expired:
        raise Exit(code=1)


@task(
    name="clone",
    iterable=["users"],
    help=helps(
        "cloud",
        "confirm_protected",
        "restart",
        "since",
        from_stack="clone_from",
        to_stack="clone_to",
        users="clone_users",
        all_="clone_all",
        keep_text="keep_text",
        no_anonymise="no_anonymise",
    ),
)
@one_line_errors
def clone(
    c: Context,
    from_stack: str,
    cloud: bool = False,
    to_stack: str = "dev",
    users: list[str] | None = None,
    since: str | None = None,
    all_: bool = False,
    keep_text: bool = False,
    no_anonymise: bool = False,
    restart: bool = False,
    confirm_protected: bool = False,
) -> None:
    """Copy a stack's messages (its twin, or --cloud its table) and their users into a twin, anonymised by default."""
    import sys
    from functools import partial

    from cli.shell import comma_separated
    from ops.clone import Options, Selection, clone_target
    from ops.render import Progress, clone_lines, clone_warnings

    for warning in clone_warnings(keep_text, no_anonymise):
        note(warning)
    selection = Selection(tuple(comma_separated(users or [])), since, all_)
    options = Options(anonymise=not no_anonymise, keep_text=keep_text, restart=restart)
    source, target = (
        target_for(from_stack, cloud),
        target_for(to_stack, writes=True, confirm_protected=confirm_protected),
    )
    progress = partial(Progress, stream=sys.stderr, label="items written")
    say("\n".join(clone_lines(clone_target(source, target, selection, options, progress))))


ns = Collection(
    "ddb",
    schema_load,
    list_tables,
    drop,
    scan,
    seed,
    send_message,
    create_group,
    add_member,
    remove_member,
    stream_process,
    doctor,
    migrate,
    export,
    import_,
    dead_letters,
    redrive,
    clone,
    patterns.ns,
)
