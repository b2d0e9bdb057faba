"""Invoke tasks: thin shells over ``ops``.

Each task resolves its target, builds a client, calls one ``ops`` function and renders the
result. Imports of ``ops`` (and through it boto3/psycopg) happen inside the tasks so that
``invoke --list`` stays fast; nothing here imports the Pulumi SDK.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

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
        except Exception as err:
            # last resort for an AWS/network failure ops did not name: still one line, never a traceback
            if not type(err).__module__.startswith("botocore"):
                raise
            raise Exit(f"error: AWS: {str(err).splitlines()[0] if str(err) else type(err).__name__}", code=1) from None
        except KeyboardInterrupt:
            raise Exit("interrupted", code=130) from None
        except BrokenPipeError:
            # `invoke ddb.scan --json | head`: the reader left, which is not an error
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise Exit(code=0) from None

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
    say(f"twin of stack {stack} " + ("is already running" if result.already_running else "is up"))
    if result.restore_note:
        say(f"aws state: {result.restore_note}")
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
    """Insert the seed users (idempotent: fixed uuids, upsert by handle); on a twin, also their Cognito users."""
    from ops import db
    from ops.cognito import create_target_users
    from ops.render import create_result_line, users_table

    target = target_for(stack, cloud, writes=True, confirm_protected=confirm_protected, service="postgres")
    with db.connect(target) as conn:
        say(users_table(db.seed_users(conn)))
    if not cloud:  # the twin's pool gets the same people; in the cloud they sign up themselves
        say(create_result_line(create_target_users(target)))


@task(help=DB_FLAGS)
@friendly
def db_setup(c, stack="dev", cloud=False, confirm_protected=False):
    """Drop, create, load the schema, seed and sync the Cognito ids, in order, stopping at the first failure."""
    from ops import db
    from ops.cognito import create_target_users, sync_target
    from ops.render import create_result_line, sync_report_lines, users_table

    target = target_for(stack, cloud, writes=True, confirm_protected=confirm_protected, service="postgres")
    say("== drop: " + ("dropped" if db.drop_database(target) else "nothing to drop"))
    say("== create: " + ("created" if db.create_database(target) else "already there"))
    with db.connect(target) as conn:
        say("== schema-load: " + ", ".join(db.load_schema(conn)))
        say("== seed:\n" + users_table(db.seed_users(conn)))
    if not cloud:  # as db.seed: the twin's pool gets the seed users
        say("== cognito users: " + create_result_line(create_target_users(target)))
    say("== cognito sync-ids:\n" + "\n".join(sync_report_lines(sync_target(target))))


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
DDB_FLAGS = {"stack": STACK_HELP, "cloud": CLOUD_HELP, "confirm_protected": CONFIRM_HELP}


@task(help=DDB_FLAGS)
@friendly
def ddb_schema_load(c, stack="dev", cloud=False, confirm_protected=False):
    """Create the messages table from the one table spec and wait until it is active."""
    from ops import ddb
    from ops.table_spec import table_spec

    target = target_for(stack, cloud, writes=True, confirm_protected=confirm_protected)
    result = ddb.schema_load(target.client("dynamodb"), table_spec(target.stack))
    say(f"table {result.table} " + ("created and active" if result.created else "already exists and matches the spec"))


@task(help={"stack": STACK_HELP, "cloud": CLOUD_HELP})
@friendly
def ddb_list_tables(c, stack="dev", cloud=False):
    """List the DynamoDB tables of the target, every page."""
    from ops import ddb

    say("\n".join(ddb.list_tables(target_for(stack, cloud).client("dynamodb"))) or "(no tables)")


@task(help=DDB_FLAGS)
@friendly
def ddb_drop(c, stack="dev", cloud=False, confirm_protected=False):
    """Delete the stack's messages table (names it first) and wait until it is gone."""
    from ops import ddb

    target = target_for(stack, cloud, writes=True, confirm_protected=confirm_protected)
    client = target.client("dynamodb")
    ddb.require_table(client, target.stack.table_name, stack)
    note(f"deleting table {target.stack.table_name}")
    ddb.drop(client, target.stack.table_name, stack)
    say(f"table {target.stack.table_name} deleted")


@task(help={"stack": STACK_HELP, "cloud": CLOUD_HELP, "json": "print JSON lines (one item per line) for piping",
            "limit": "stop after this many items", "segments": "parallel scan segments (default 1; try 4-8 on large cloud tables)"})
@friendly
def ddb_scan(c, stack="dev", cloud=False, json=False, limit=None, segments=1):
    """Print every item of the messages table, streaming page by page."""
    from ops import ddb
    from ops.render import item_lines, json_lines

    target = target_for(stack, cloud)
    items = ddb.scan(target.client("dynamodb", max_pool_connections=max(10, int(segments))), target.stack.table_name, int(segments), limit=int(limit) if limit else None)
    for line in json_lines(items) if json else item_lines(items):
        sys.stdout.write(line + "\n")


@task(help=DDB_FLAGS | {"conversation": "conversation file of 'Person 1: …' / 'Person 2: …' lines (default: a shipped fixture)",
                        "my_handle": "handle of Person 1 (default: the first seed user)", "other_handle": "handle of Person 2 (default: the second seed user)",
                        "start": "ISO time of the first message (default: the file's '# start:' line)"})
@friendly
def ddb_seed(c, stack="dev", cloud=False, confirm_protected=False, conversation=None, my_handle=None, other_handle=None, start=None):
    """Seed a conversation between two users of the database: messages plus both group rows."""
    from pathlib import Path

    from ops import db, ddb, seed
    from ops.render import Progress

    conv = seed.parse_conversation(Path(conversation) if conversation else seed.DEFAULT_CONVERSATION)  # fail before any request
    target = target_for(stack, cloud, writes=True, confirm_protected=confirm_protected)
    with db.connect(target) as conn:
        me, other = seed.people(conn, my_handle, other_handle)
    client = target.client("dynamodb", max_pool_connections=16)
    ddb.require_table(client, target.stack.table_name, stack)
    p = seed.plan(conv, me, other, seed.parse_start(start))
    r = seed.seed(client, target.stack.table_name, p, on_progress=Progress(len(p.messages) + 2, sys.stderr))
    say(f"seeded {r.messages_written} messages and {r.group_rows_written} group rows ({me.handle} <-> {other.handle}, group {r.group_uuid}) in {r.batches} batches; verified: the group holds {r.messages_in_table} messages")


@task(help={"stack": STACK_HELP, "cloud": CLOUD_HELP, "handle": "whose conversations to list", "page_size": "groups per page (default 20)",
            "cursor": "next-page token printed by the previous page", "before": "only groups whose last reply is before this ISO time",
            "json": JSON_HELP, "full": "show whole last messages"})
@friendly
def patterns_list_conversations(c, handle, stack="dev", cloud=False, page_size=20, cursor=None, before=None, json=False, full=False):
    """Access pattern 1: a user's conversations, newest reply first, one page at a time."""
    from ops import db, patterns
    from ops.render import groups_table, json_lines

    target = target_for(stack, cloud)
    with db.connect(target) as conn:
        user = db.users_by_handle(conn, [handle])[handle]
    page = patterns.list_conversations(target.client("dynamodb"), target.stack.table_name, user.uuid, int(page_size), cursor, before)
    say("\n".join(json_lines(page.items)) if json else groups_table(page.items, full))
    if page.next_cursor:
        note(f"next page: --cursor {page.next_cursor}")


@task(help={"stack": STACK_HELP, "cloud": CLOUD_HELP, "group": "message group uuid", "handles": "or the two participants' handles, comma-separated (ada,bram)",
            "page_size": "messages per page (default 20)", "cursor": "next-page token printed by the previous page (older messages)",
            "before": "only messages created before this ISO time", "json": JSON_HELP, "full": "show whole messages, not the first line's worth"})
@friendly
def patterns_get_conversation(c, stack="dev", cloud=False, group=None, handles=None, page_size=20, cursor=None, before=None, json=False, full=False):
    """Access pattern 2: a conversation's newest page of messages, shown oldest to newest."""
    from ops import db, patterns
    from ops.render import conversation_lines, json_lines

    target = target_for(stack, cloud)
    if not group:
        with db.connect(target) as conn:
            group = db.group_of_handles(conn, handles)
    page = patterns.get_conversation(target.client("dynamodb"), target.stack.table_name, group, int(page_size), cursor, before)
    say("\n".join(json_lines(page.items)) if json else conversation_lines(page.items, full))
    if page.next_cursor:
        note(f"older messages: --cursor {page.next_cursor}")


@task(help={"stack": STACK_HELP})
@friendly
def quickstart(c, stack="dev"):
    """The main job on the local twin: twin up, database set up, table loaded, a conversation seeded and shown."""
    local_up(c, stack=stack)
    db_setup(c, stack=stack)
    ddb_schema_load(c, stack=stack)
    ddb_seed(c, stack=stack)
    say("\n== conversations of ada")
    patterns_list_conversations(c, handle="ada", stack=stack)
    say("\n== ada <-> bram, newest page")
    patterns_get_conversation(c, stack=stack, handles="ada,bram")


patterns_ns = Collection("patterns")
patterns_ns.add_task(patterns_list_conversations, "list-conversations")
patterns_ns.add_task(patterns_get_conversation, "get-conversation")
ddb_ns = Collection("ddb")
for _t, _name in ((ddb_schema_load, "schema-load"), (ddb_list_tables, "list-tables"), (ddb_drop, "drop"), (ddb_scan, "scan"), (ddb_seed, "seed")):
    ddb_ns.add_task(_t, _name)
ddb_ns.add_collection(patterns_ns)

# ---------------------------------------------------------------- ddb write path
SEND_HELP = {
    "text": "the message (quote it; at most 4000 characters)",
    "stack": STACK_HELP, "cloud": CLOUD_HELP, "confirm_protected": CONFIRM_HELP,
    "from": "handle of the sender, a user of the stack's database",
    "to": "handle of the receiver: their group with the sender is created on the first message",
    "group": "or the uuid of an existing group the sender belongs to",
    "no_process": "on a twin, leave the stream unprocessed (the group rows move on the next ddb.stream-process)",
}


def _stream_warnings(counts: Any) -> None:
    for warning in counts.warnings:
        note(f"warning: {warning}")


def _stream_round(counts: Any) -> None:
    _stream_warnings(counts)
    if counts.records:
        note(_stream_line(counts))


def _stream_line(counts: Any) -> str:
    return (f"stream: {counts.records} records over {counts.shards} shard(s), {counts.processed} processed, {counts.failed} failed, "
            f"{counts.rows_moved} group rows moved" + (" (interrupted)" if counts.interrupted else ""))


@task(positional=["text"], help=SEND_HELP)
@friendly
def ddb_send_message(c, text, stack="dev", from_="", to="", group="", no_process=False, cloud=False, confirm_protected=False):
    """Access pattern 3: send TEXT from one user to another (creating their group) or into a group."""
    from ops.messaging import send_by_handles

    target = target_for(stack, cloud, writes=True, confirm_protected=confirm_protected)
    sent = send_by_handles(target, from_, text, to=to or None, group_uuid=group or None, process=not no_process)
    say(f"group {sent.send.group_uuid} " + ("created by this first message" if sent.send.created else "(existing)"))
    say(f"message {sent.send.message.message_uuid} at {sent.send.message.created_at}")
    if sent.stream is not None:
        _stream_warnings(sent.stream)
        (note if sent.stream.failed else say)(_stream_line(sent.stream))


@task(help={"stack": STACK_HELP, "follow": "keep polling for new records (every second) until Ctrl-C",
            "cloud": "refused: in the cloud the stream consumer Lambda processes the stream"})
@friendly
def ddb_stream_process(c, stack="dev", follow=False, cloud=False):
    """Run the stream consumer over the twin's table stream: every shard, from its last checkpoint."""
    from ops.errors import RefusedError
    from ops.local.streams import checkpoint_file, process_stream
    from ops.patterns import GSI_NAME

    if cloud:
        raise RefusedError("in the cloud the stream consumer Lambda processes the stream: this task runs it on a twin only (nothing was sent)")
    target = target_for(stack, writes=True)
    counts = process_stream(target.client("dynamodbstreams"), target.client("dynamodb"), target.stack.table_name, GSI_NAME, checkpoint_file(stack),
                            follow=follow, on_round=_stream_round if follow else None)
    if not follow:
        _stream_warnings(counts)  # with --follow each round's were shown as it ended
    say(_stream_line(counts))
    if counts.failed:
        raise Exit(f"error: {counts.failed} record(s) failed (their log lines are above); the next run retries them", code=1)


write_tasks = [(ddb_send_message, "send-message"), (ddb_stream_process, "stream-process")]

# ---------------------------------------------------------------- cognito / rds
DRY_RUN_HELP = "compute and print the report, write nothing (needs no --confirm-protected)"
IP_HELP = "the one IPv4 host to allow (a.b.c.d or a.b.c.d/32); default: $GITPOD_IP, else $CRUDDUR_MY_IP"


@task(help={"stack": STACK_HELP, "cloud": CLOUD_HELP, "json": JSON_HELP})
@friendly
def cognito_list_users(c, stack="dev", cloud=False, json=False):
    """List every user of the stack's Cognito pool (all pages): handle, sub, email, status."""
    from ops.cognito import list_target_users
    from ops.render import cognito_users_table, json_lines

    users = list_target_users(target_for(stack, cloud))
    say("\n".join(json_lines(users)) if json else cognito_users_table(users))


@task(help={"stack": STACK_HELP, "cloud": CLOUD_HELP, "confirm_protected": CONFIRM_HELP, "dry_run": DRY_RUN_HELP})
@friendly
def cognito_sync_ids(c, stack="dev", cloud=False, confirm_protected=False, dry_run=False):
    """Set users.cognito_user_id to the sub of the Cognito user with the same handle, in one transaction."""
    from ops.cognito import sync_target
    from ops.render import sync_report_lines

    target = target_for(stack, cloud, writes=not dry_run, confirm_protected=confirm_protected, service="postgres")
    say("\n".join(sync_report_lines(sync_target(target, dry_run=dry_run))))


@task(help={"stack": STACK_HELP})
@friendly
def cognito_create_users(c, stack="dev"):
    """Create in the twin's pool a Cognito user per row of the users table (existing ones are kept)."""
    from ops.cognito import create_target_users
    from ops.render import create_result_line

    say(create_result_line(create_target_users(target_for(stack, writes=True, service="cognito-idp"))))


@task(help={"stack": STACK_HELP, "cloud": CLOUD_HELP, "confirm_protected": CONFIRM_HELP, "ip": IP_HELP})
@friendly
def rds_update_sg_rule(c, stack="dev", cloud=False, confirm_protected=False, ip=None):
    """Move the PostgreSQL ingress rule of the RDS security group to one IPv4 host; prints old → new."""
    import os

    from ops.rds import resolve_ip, update_target_rule

    address, source = resolve_ip(ip, os.environ)  # refused here, before any target or request
    old, new = update_target_rule(target_for(stack, cloud, writes=True, confirm_protected=confirm_protected, service="ec2"), address)
    say(f"{old} → {new}" + ("  (already there)" if old == new else "") + f"  (address from {source})")


cognito_ns = Collection("cognito")
for _t, _name in ((cognito_list_users, "list-users"), (cognito_sync_ids, "sync-ids"), (cognito_create_users, "create-users")):
    cognito_ns.add_task(_t, _name)
rds_ns = Collection("rds")
rds_ns.add_task(rds_update_sg_rule, "update-sg-rule")

# ---------------------------------------------------------------- infra (Pulumi)
PULUMI_STACK_HELP = STACK_HELP + "; the Pulumi stack of the same name"


def _pulumi(*args: str) -> None:
    """Run the pulumi CLI from the repository root; its output and exit code pass straight through."""
    import subprocess

    from ops.outputs import pulumi_cli
    from ops.stacks import PROJECT_ROOT

    code = subprocess.run([pulumi_cli(), *args], cwd=PROJECT_ROOT, check=False).returncode
    if code:
        raise Exit(code=code)


@task(help={"stack": PULUMI_STACK_HELP, "diff": "show the property-level diff of every change"})
@friendly
def infra_preview(c, stack="dev", diff=False):
    """Preview what `up` would change (needs the Pulumi CLI, `pulumi login` and AWS credentials)."""
    from ops.stacks import load_stack

    load_stack(stack)  # a typo is one line here, not Pulumi offering to create a new stack
    _pulumi("preview", "--stack", stack, *(["--diff"] if diff else []))


@task(help={"stack": PULUMI_STACK_HELP, "yes": "skip Pulumi's confirmation prompt",
            "confirm_protected": "required with --yes on a protected stack (prod)"})
@friendly
def infra_up(c, stack="dev", yes=False, confirm_protected=False):
    """Create or update the stack's cloud resources with `pulumi up`."""
    from ops.errors import RefusedError
    from ops.stacks import load_stack

    if load_stack(stack).protected and yes and not confirm_protected:
        raise RefusedError(f"stack {stack!r} is protected: --yes also needs --confirm-protected")
    _pulumi("up", "--stack", stack, *(["--yes"] if yes else []))


@task(help={"stack": PULUMI_STACK_HELP, "json": "print the outputs as one JSON object"})
@friendly
def infra_outputs(c, stack="dev", json=False):
    """Show the stack's outputs (table name and ARNs, user pool, RDS rule id…) from `pulumi stack output`."""
    import json as jsonlib

    from ops.outputs import read_cloud_outputs
    from ops.stacks import PROJECT_ROOT, load_stack

    load_stack(stack)
    values = read_cloud_outputs(stack, PROJECT_ROOT)
    say(jsonlib.dumps(values, indent=2, sort_keys=True) if json else "\n".join(f"{k} = {v}" for k, v in sorted(values.items())))


@task(help={"stack": STACK_HELP, "json": "print every resource with all its inputs, options and tags as JSON"})
@friendly
def infra_plan(c, stack="dev", json=False):
    """List every resource the program declares for a stack, evaluated offline (no CLI, credentials or network)."""
    from ops.plan import describe, plan_stack

    plan = plan_stack(stack)
    say(plan.to_json() if json else "\n".join(describe(plan)))


@task(help={"stack": STACK_HELP, "output": "PNG file to write (default: architecture-<stack>.png)"})
@friendly
def infra_diagram(c, stack="dev", output=None):
    """Draw the stack's architecture from its offline plan into a PNG (needs Graphviz's `dot`)."""
    from pathlib import Path

    from ops.diagram import draw
    from ops.plan import plan_stack

    say(f"wrote {draw(plan_stack(stack), Path(output or f'architecture-{stack}.png'))}")


infra_ns = Collection("infra")
infra_ns.add_task(infra_preview, "preview")
infra_ns.add_task(infra_up, "up")
infra_ns.add_task(infra_outputs, "outputs")
infra_ns.add_task(infra_plan, "plan")
infra_ns.add_task(infra_diagram, "diagram")


# ---------------------------------------------------------------- bench
@task(help={"size": "smoke (every workload once, small: CI, under a minute) or full (the README's numbers, about 15 minutes)",
            "only": "comma-separated workloads to run, of: seed, scan, paging, sync, cli (default: all)",
            "json": "print one JSON line per result row instead of the table"})
@friendly
def bench(c, size="smoke", only="", json=False):
    """Measure our tools against the seeds' ways on a private twin (own state dir and ports, stopped at the end)."""
    from ops import bench as benchmarks
    from ops.render import json_lines

    report = benchmarks.run(size, benchmarks.parse_only(only), progress=note)
    say("\n".join(json_lines(report.rows)) if json else "\n".join(benchmarks.report_lines(report)))
    if report.errors:
        raise Exit("error: " + "; ".join(f"{name}: {err}" for name, err in report.errors.items()), code=1)


# ---------------------------------------------------------------- namespace
ns = Collection()
ns.add_collection(infra_ns)
ns.add_collection(local_ns)
ns.add_collection(db_ns)
ns.add_collection(cognito_ns)
ns.add_collection(rds_ns)
for _t, _name in write_tasks:
    ddb_ns.add_task(_t, _name)
ns.add_collection(ddb_ns)
ns.add_task(quickstart)
ns.add_task(bench)
