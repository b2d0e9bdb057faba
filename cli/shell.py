"""What every task module shares: the error boundary, the flag help texts and the parse-time checks.

Nothing here imports ``ops`` at module level: ``invoke --list`` loads every task module, and it
stays fast because the library (boto3, psycopg) is only imported by the task that runs.
"""

from __future__ import annotations

import errno
import functools
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import invoke
from invoke import Exit
from invoke.exceptions import ParseError
from invoke.parser import Argument

# Every flag's --help text, in one place: a task picks its entries with `helps(...)`. Most keys are the
# flag's own name; a flag whose meaning differs in one task gets its own key (e.g. "scan_json").
HELP: dict[str, str] = {
    # targets
    "stack": "stack name, one Pulumi.<stack>.yaml each (default: dev)",
    "stack_or_all": "stack name, one Pulumi.<stack>.yaml each; omit to stop every running twin",
    "stack_or_every": "stack name, one Pulumi.<stack>.yaml each; omit to show every stack's twin",
    "pulumi_stack": "stack name, one Pulumi.<stack>.yaml each (default: dev); the Pulumi stack of the same name",
    "cloud": "talk to the stack's cloud resources instead of its local twin",
    "cloud_refused": "refused: in the cloud the stream consumer Lambda processes the stream",
    "cloud_compare": "compare the stack's cloud table with the spec and the program's protections; never creates it "
    "(that is `invoke infra.up`)",
    "confirm_protected": "required with --cloud to write to or delete from a protected stack",
    "confirm_protected_up": "required with --yes on a protected stack (prod)",
    "engine": "DynamoDB engine: auto (the stack's engine of last time, else moto), moto (the embedded moto server), "
    "ministack (MiniStack in its own virtualenv: bin/bootstrap), docker (MiniStack's image) or external "
    "(your own DynamoDB-compatible endpoint, from CRUDDUR_DYNAMODB_ENDPOINT; not managed by us)",
    "empty": "start another engine than the stack's last one without its data (that data stays on the old engine)",
    # db.setup / quickstart
    "keep": "keep the database's rows: create what is missing and upsert the seed users instead of dropping it first",
    "reset": "drop the twin's database first (its users, activities) instead of keeping its rows",
    # output
    "json": "print JSON lines instead of a table",
    "clone_from": "the stack whose messages are copied (its twin; with --cloud its cloud table and "
    "$DATABASE_URL-style database)",
    "clone_to": "the stack whose twin receives the clone (default: dev)",
    "clone_users": "clone the groups of these users (handles of the source; repeat it or give h1,h2)",
    "since": "clone the groups with a message at or after this ISO time, and those messages",
    "clone_all": "clone every group of the source",
    "keep_text": "keep the messages' text (people are still anonymised): prints a warning",
    "no_anonymise": "copy people and text as they are (no fakes, no leak check): prints a warning",
    "snapshot_name": "the snapshot's name (letters, digits, '.', '_', '-')",
    "snapshot_file": "the .tar.gz file to write",
    "snapshot_archive": "an archive written by local.snapshot.export",
    "snapshot_rename": "the name to give it here (default: the name it was saved under)",
    "scan_json": "print JSON lines (one item per line) for piping",
    "outputs_json": "print the outputs as one JSON object",
    "status_json": "print one JSON document: a list with an object per stack (its components, endpoints, pids)",
    "env_format": "sh (export lines for eval in bash or zsh; the default), dotenv (compose, IDEs) or json (one object)",
    "outputs_cloud": "the cloud stack's outputs, from `pulumi stack output` (needs the Pulumi CLI), not the twin's",
    "plan_json": "print every resource with all its inputs, options and tags, and the policy violations, as JSON",
    "drift_json": "print the whole report as one JSON object (resources, differences, expected movements)",
    "drift_cloud": "compare with the stack's cloud resources (needs AWS credentials; ids from `pulumi stack output` "
    "when available)",
    "bench_json": "print one JSON line per result row instead of the table",
    "bench_engine": "DynamoDB engine(s) to measure: moto, ministack or both (default; sync and cli run on moto only)",
    "full": "show whole last messages",
    "full_messages": "show whole messages, not the first line's worth",
    # ddb.scan
    "limit": "stop after this many items (a whole number from 1)",
    "segments": "parallel scan segments, 1 to 64 (default 1; try 4-8 on large cloud tables)",
    # ddb.seed
    "conversation": "conversation file of 'Person 1: …' / 'Person 2: …' lines (default: a shipped fixture)",
    "my_handle": "handle of Person 1 (default: the first seed user)",
    "other_handle": "handle of Person 2 (default: the second seed user)",
    "start": "ISO time of the first message (default: the file's '# start:' line)",
    # ddb.patterns
    "handle": "whose conversations to list",
    "participants": "or the two participants: --handle ada --handle bram (or --handle ada,bram; --handles is the "
    "older spelling)",
    "group": "message group uuid",
    "page_size_groups": "groups per page, 1 to 1000 (default 20)",
    "page_size_messages": "messages per page, 1 to 1000 (default 20)",
    "cursor_groups": "next-page token printed by the previous page",
    "cursor_messages": "next-page token printed by the previous page (older messages)",
    "before_groups": "only groups whose last reply is before this ISO time",
    "before_messages": "only messages created before this ISO time",
    # ddb.send-message / ddb.stream-process
    "text": "the message (quote it; at most 4000 characters); --text TEXT also takes one that starts with '-', --text "
    "- reads it from stdin",
    "from": "handle of the sender, a user of the stack's database",
    "to": "handle of the receiver: their group with the sender is created on the first message",
    "into_group": "or the uuid of an existing group the sender belongs to",
    "no_process": "on a twin, leave the stream unprocessed (the group rows move on the next ddb.stream-process)",
    "follow": "keep polling for new records (every second) until Ctrl-C",
    # ddb.create-group / ddb.add-member / ddb.remove-member
    "group_name": "the group's name as its members see it (plain text, at most 100 characters)",
    "members": "handles of the members, 2 to 50 with the creator: --members ada,bram,chidi (or repeat --members)",
    "creator": "handle of the creator, who sends the group's first message (default: the first of --members)",
    "first_text": "the group's first message (default: '<creator> created the group <name>')",
    "named_group": "uuid of the named group (printed by ddb.create-group)",
    "member_handle": "handle of the user, a user of the stack's database",
    # ddb.doctor / ddb.migrate / ddb.dead-letters / ddb.redrive
    "fix": "repair what loses no message (extra and lagging group rows, missing pair entries, named groups' member "
    "rows); shows what it changes first",
    "doctor_json": "print the whole report as one JSON object",
    "scan_segments": "parallel scan segments, 1 to 64 (default 4)",
    "migration": "which migration: pair-index (a pair entry for every pair that has a group), "
    "row-keys (group rows keyed by their time alone moved to <time>#<group>) "
    "or encrypt-messages (seal the plain-text bodies of a stack that encrypts)",
    "dry_run_migrate": "count what would change, write nothing (needs no --confirm-protected)",
    "restart": "start over instead of resuming an interrupted run",
    # every bulk job (ddb.scan, ddb.doctor, ddb.migrate, ddb.seed): see ops/budget.py
    "max_rcu": "read capacity units per second the job may use, across all its segments (default: unlimited on a twin; "
    "with --cloud 25% of a provisioned table's capacity, and required on an on-demand one)",
    "max_wcu": "write capacity units per second the job may use (defaults as for --max-rcu)",
    "budget": "or a percentage (1-100) of the table's provisioned capacity, for reads and writes alike",
    "plan": "print the path, requests, capacity units, time and on-demand cost from DescribeTable and the budget, "
    "then exit without reading or writing an item",
    # the export path (ops/export.py)
    "from_export": "read the items from an export's files instead of the live table (an export id, or latest): "
    "no read capacity used; see ddb.export",
    "doctor_engine": "scan (default: the live table, or the export's items with --from-export), duckdb (the checks as "
    "SQL over an export's files, on this machine) or athena (the same SQL in the stack's Athena workgroup; with "
    "--cloud)",
    "import_from": "the export to load: an export id, or latest (default)",
    "export_since": "incremental: only what changed from this ISO time (default: a full export)",
    "new_table": "the new table to create and load (ImportTable only creates a new table)",
    # cognito / rds
    "dry_run": "compute and print the report, write nothing (needs no --confirm-protected)",
    "ip": "the one IPv4 host to allow (a.b.c.d or a.b.c.d/32); default: $GITPOD_IP, else $CRUDDUR_MY_IP",
    # infra
    "diff": "show the property-level diff of every change",
    "yes": "skip Pulumi's confirmation prompt",
    "output": "PNG file to write (default: architecture-<stack>.png)",
    "dependencies": "draw every resource and what depends on what, instead of the data flow",
    "plan_base": "the plan before the change: a file written by `invoke infra.plan --stack S --json`",
    "plan_head": "the plan after the change, of the same stack",
    "plan_diff_json": "print the difference as one JSON object",
    "markdown": "print the difference as a Markdown section (what CI posts on the pull request)",
    # bench
    "size": "smoke (every workload once, small: CI, under a minute) or full (the README's numbers, about an hour for "
    "both engines)",
    "only": "a workload to run, of: seed, scan, query, paging, encryption, sync, cli, fanout, bulk; repeat it or give "
    "a,b (default: all)",
}


# The short flags: one letter, one meaning, in every task. A flag not named here has only its long name
# (invoke would otherwise pick a letter per task from the order of its parameters, so `-n` meant
# --conversation in one task and --no-process in another). Flags that write to a protected stack
# (--confirm-protected, --yes aside) are spelled out on purpose.
SHORT_FLAGS: dict[str, str] = {
    "stack": "s",
    "cloud": "c",
    "json": "j",
    "engine": "e",
    "handle": "h",
    "group": "g",
    "page-size": "p",
    "cursor": "u",
    "before": "b",
    "limit": "l",
    "dry-run": "d",
    "restart": "r",
    "text": "t",
    "ip": "i",
    "output": "o",
    "yes": "y",
}


def helps(*flags: str, **own: str) -> dict[str, str]:
    """A task's ``help=``: each flag in ``flags`` gets ``HELP[flag]``; ``own`` maps a flag to another key of HELP.

    A key missing from HELP fails when the module is imported, so ``invoke --list`` already shows it.
    """
    return {flag: HELP[flag] for flag in flags} | {flag: HELP[key] for flag, key in own.items()}


@dataclass(frozen=True)
class WholeNumber:
    """The range a number flag accepts; checked while invoke parses the command line."""

    low: int
    high: int | None = None

    def parse(self, flag: str, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < self.low or (self.high is not None and value > self.high):
            span = f"from {self.low} to {self.high}" if self.high is not None else f"of at least {self.low}"
            # invoke's Program prints a ParseError as this one line and exits 1: no traceback
            raise ParseError(f"{flag} must be a whole number {span}, not {text!r}")
        return value


# Number flags by name, in every task that has them. 1000 is ops.messages.paging.MAX_PAGE_SIZE, written
# here because importing ops would slow `invoke --list`; tests/cli keeps the two equal.
NUMBERS: dict[str, WholeNumber] = {
    "segments": WholeNumber(1, 64),  # one reader thread and one connection each
    "limit": WholeNumber(1),
    "page_size": WholeNumber(1, 1000),
    "max_rcu": WholeNumber(1),  # capacity units per second
    "max_wcu": WholeNumber(1),
    "budget": WholeNumber(1, 100),  # percent of the provisioned capacity
}


@dataclass(frozen=True)
class Moment:
    """An ISO-8601 time with a zone, compared as a moment: handed to the task as UTC with microseconds (the keys' form).

    A time without a zone is refused rather than read as UTC or local time: the same text would
    name different moments on two laptops, and `# start:` in a seed file already requires one.
    """

    def parse(self, flag: str, text: str) -> str:
        from datetime import UTC, datetime

        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise ParseError(
                f"{flag} must be an ISO-8601 time with a zone, e.g. 2026-01-05T09:00:00Z, not {text!r}"
            ) from None
        if moment.tzinfo is None:
            raise ParseError(f"{flag} {text!r} has no time zone: add Z for UTC or an offset such as +02:00")
        try:
            return moment.astimezone(UTC).isoformat(timespec="microseconds")
        except OverflowError:
            raise ParseError(f"{flag} {text!r} is out of range: a time between the years 1 and 9999 in UTC") from None


@dataclass(frozen=True)
class GroupId:
    """A message group's id: a uuid (8-4-4-4-12 hex digits), kept as typed (other writers' ids are looked up as
    stored)."""

    def parse(self, flag: str, text: str) -> str:
        import re

        if not re.fullmatch(
            r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", text.strip()
        ):
            raise ParseError(
                f"{flag} must be a message group uuid such as 5f0c4a1e-9d2b-4c3a-8e7f-1a2b3c4d5e6f, not {text!r}"
            )
        return text.strip()


@dataclass(frozen=True)
class Handle:
    """A user's handle: printable, no spaces; a list flag may hold 'a,b'."""

    def parse(self, flag: str, text: str) -> str:
        for part in text.split(","):
            if not part.strip() or any(not ch.isprintable() or ch.isspace() for ch in part.strip()):
                raise ParseError(f"{flag} must be a user's handle (printable, no spaces), not {text!r}")
        return text.strip()


@dataclass(frozen=True)
class Cursor:
    """A next-page token as a previous page printed it (which listing it belongs to is checked by the task)."""

    def parse(self, flag: str, text: str) -> str:
        from ops.errors import ConfigError
        from ops.messages.paging import cursor_key

        try:
            cursor_key(text.strip())
        except ConfigError as err:
            raise ParseError(str(err)) from None
        return text.strip()


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of words; ``registry`` names where the set lives when it is not written here."""

    choices: tuple[str, ...] = ()
    registry: str = ""

    def parse(self, flag: str, text: str) -> str:
        choices = self.choices
        if self.registry:
            import importlib

            module, name = self.registry.rsplit(".", 1)
            choices = tuple(getattr(importlib.import_module(module), name))
        if text.strip() not in choices:
            raise ParseError(f"{flag} must be one of {', '.join(choices)}, not {text!r}")
        return text.strip()


# Every checked flag by its name in the tasks' signatures (numbers above, the rest here): checked while
# invoke parses, so a bad value is one line before any connection or request.
CHECKS: dict[str, Any] = NUMBERS | {
    "before": Moment(),
    "start": Moment(),
    "since": Moment(),
    "group": GroupId(),
    "cursor": Cursor(),
    "handle": Handle(),
    "from_": Handle(),
    "to": Handle(),
    "my_handle": Handle(),
    "other_handle": Handle(),
    "engine": Choice(registry="ops.local.twin.ENGINES"),
    "size": Choice(("smoke", "full")),  # bench.harness.SIZES
    "name": Choice(registry="ops.migrate.MIGRATIONS"),
}


class NamedArgument(Argument):
    """invoke's Argument, named as the user typed it in invoke's own one-line errors.

    invoke names the flag with repr() ("Flag --limit needed value and was not given one!"); its own
    repr is ``<Argument: text (t) *>``, which `--text --stack dev` used to print.
    """

    def __repr__(self) -> str:
        return f"--{self.names[0]}"


class CheckedArgument(NamedArgument):
    """A flag whose text is checked (CHECKS) as invoke parses it: `--limit abc` or `--before garbage` is a
    ParseError, one line."""

    def __init__(self, check: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check

    def set_value(self, value: Any, cast: bool = True) -> None:
        if cast and isinstance(value, str):
            try:
                value = self.check.parse(f"--{self.names[0]}", value)
            except ParseError as err:  # it quotes what was typed: shown safe and cut like every error line
                raise ParseError(safe_line(str(err))) from None
        super().set_value(value, cast=self.kind is list)  # a list flag appends the checked value


class Task(invoke.Task):
    """invoke's Task, plus: flags checked at parse time (CHECKS), and older flag spellings kept.

    ``flag_aliases={"handle": ["handles"]}`` makes ``--handles`` a second name of ``--handle``;
    ``checks={"engine": None}`` gives a flag of the same name another meaning here (the task checks it).
    """

    def __init__(
        self,
        body: Callable[..., Any],
        flag_aliases: dict[str, Iterable[str]] | None = None,
        checks: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(body, **kwargs)
        self.flag_aliases = {flag: tuple(names) for flag, names in (flag_aliases or {}).items()}
        self.checks = CHECKS | (checks or {})

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        opts = super().arg_opts(name, default, taken_names)
        if name in NUMBERS:
            opts["kind"] = int  # also when the default is None (invoke would then take a string)
        long = opts["names"][0]
        short = [SHORT_FLAGS[long]] if long in SHORT_FLAGS else []  # never invoke's per-task pick
        opts["names"] = [long, *short, *self.flag_aliases.get(name, ())]
        return opts

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        help_given = dict(self.help)  # invoke pops help entries as it uses them; keep them for the next call
        try:
            args = super().get_arguments(ignore_unknown_help)
        finally:
            self.help = help_given
        return [_checked(arg, self.checks) for arg in args]


def _checked(arg: Argument, checks: dict[str, Any]) -> Argument:
    check = checks.get(arg.attr_name or arg.names[0])
    if check is None or arg.kind is bool:
        named = NamedArgument.__new__(NamedArgument)
        named.__dict__.update(arg.__dict__)  # the same argument, only named the way the user typed it
        return named
    return CheckedArgument(
        check,
        names=arg.names,
        kind=arg.kind,
        default=arg.default,
        help=arg.help,
        positional=arg.positional,
        optional=arg.optional,
        attr_name=arg.attr_name,
    )


# The decorator every task module uses: invoke's @task, building our Task.
task = functools.partial(invoke.task, klass=Task)


# errors of the machine a task runs on, each with what to do about it
ENVIRONMENT_ERRNOS = {
    errno.ENOSPC: "free some space on that disk",
    errno.EDQUOT: "free some space, or ask for a larger quota",
    errno.EROFS: "that file system is mounted read-only: use a writable directory",
    errno.EACCES: "this user may not write there: use a directory of your own",
    errno.ENOTDIR: "a path on the way is a file, not a directory: move it away",
}


def one_line_errors(body: Callable[..., Any]) -> Callable[..., Any]:
    """The error boundary of every task: a problem the user can fix ends as one line on stderr and a non-zero exit.

    The line is ``safe_line``'d: a password it may repeat (libpq does) is masked, control characters it
    may carry (a handle typed with an escape sequence) are shown, not obeyed.
    """

    @functools.wraps(body)
    def boundary(*args: Any, **kwargs: Any) -> Any:
        from ops.errors import OpsError

        try:
            _valid_text(kwargs)  # before any request: a server would store it or answer 500
            result = body(*args, **kwargs)
            # the last buffered lines go out here, inside the boundary, not at interpreter exit where a
            # reader that has left (`| head -1`) would turn into "Exception ignored" and exit status 120
            sys.stdout.flush()
            return result
        except OpsError as err:
            raise Exit(safe_line(f"error: {err}"), code=err.exit_code) from None
        except Exit as done:
            if isinstance(done.message, str):
                done.message = safe_line(done.message)
            raise
        except BrokenPipeError:
            # `invoke ddb.scan --json | head -1`: the reader left, which is not an error. Point stdout at
            # /dev/null so what is still buffered can be flushed at exit without a second error.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise Exit(code=0) from None
        except KeyboardInterrupt:
            raise Exit("interrupted", code=130) from None
        except OSError as err:
            # the machine's state, not a bug: a full or read-only disk, a path that is a file, no permission
            if err.errno not in ENVIRONMENT_ERRNOS:
                raise
            where = f"{err.filename}: " if err.filename else ""
            raise Exit(safe_line(f"error: {where}{err.strerror} ({ENVIRONMENT_ERRNOS[err.errno]})"), code=1) from None
        except Exception as err:
            # last resort for an AWS/network failure ops did not name: still one line, never a traceback;
            # anything else is a bug in this program, and its traceback is what a report needs
            if not type(err).__module__.startswith("botocore"):
                raise
            raise Exit(
                safe_line(f"error: AWS: {str(err).splitlines()[0] if str(err) else type(err).__name__}"), code=1
            ) from None

    boundary.one_line_errors = True  # type: ignore[attr-defined]  # tests/cli checks every task has it
    return boundary


def safe_line(text: str) -> str:
    """A line of ours made safe to print: passwords masked (ops.redact), control characters made visible and
    overlong words cut (ops.render)."""
    from ops.redact import redact
    from ops.render import clip_words, visible

    return clip_words(visible(redact(text), keep_newlines=True))


def say(text: str = "", exact: bool = False) -> None:
    """stdout. Every line goes through ``redact``: the one place no connection string can slip past.

    ``exact`` is for JSON of the table's data, which stays exactly what is stored (JSON escapes
    control characters itself, and a message that reads like a connection string is still data).
    """
    if exact:
        print(text, flush=True)
        return
    from ops.redact import redact

    print(redact(text), flush=True)


def note(text: str) -> None:
    """Progress and target lines go to stderr, so --json output stays pipeable."""
    from ops.redact import redact

    print(redact(text), file=sys.stderr, flush=True)


def _redacted_traceback(kind: type[BaseException], value: BaseException, tb: Any) -> None:
    """A bug's traceback is still printed (a report needs it), with every password in it masked."""
    import traceback

    try:
        from ops.redact import redact
    except Exception:  # noqa: BLE001 - never lose the traceback itself
        redact = str  # type: ignore[assignment]
    sys.stderr.write(redact("".join(traceback.format_exception(kind, value, tb))))


# an uncaught exception (a bug) may carry a connection string in its message or its chained causes
sys.excepthook = _redacted_traceback


def target_for(
    stack: str, cloud: bool = False, writes: bool = False, confirm_protected: bool = False, service: str = "dynamodb"
) -> Any:
    """Resolve (and, for tasks that change data, announce) where requests go."""
    from ops.target import resolve_target

    target = resolve_target(stack, cloud=cloud, writes=writes, confirm_protected=confirm_protected)
    if writes:
        note(target.describe(service))
    return target


def stdin_text() -> str:
    """What `--text -` reads: all of stdin, less the one newline that ends what was typed or echoed.

    Read as bytes and decoded strictly, so text that is not UTF-8 is one line here, not a request
    the server answers with a 500; a closed stdin (``<&-``) is one line too.
    """
    from ops.errors import InputError

    stream = getattr(sys.stdin, "buffer", None)
    try:
        raw = stream.read() if stream is not None else None
    except (OSError, ValueError):
        raw = None
    if raw is None:
        raise InputError(
            "--text -: stdin is closed, so there is no text to read: pipe the text in, or pass --text TEXT"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(
            f"--text -: stdin is not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}): "
            "convert it first, e.g. iconv -f LATIN1 -t UTF-8"
        ) from None
    return text[:-1] if text.endswith("\n") else text


def _valid_text(flags: dict[str, Any]) -> None:
    """Every text flag is valid UTF-8: Python hands undecodable argv bytes over as lone surrogates."""
    from ops.errors import InputError

    for name, value in flags.items():
        for text in value if isinstance(value, (list, tuple)) else [value]:
            if not isinstance(text, str):
                continue
            bad = next((i for i, ch in enumerate(text) if "\ud800" <= ch <= "\udfff"), None)
            if bad is not None:
                byte = ord(text[bad]) - 0xDC00 if ord(text[bad]) >= 0xDC80 else None
                shown = f"byte 0x{byte:02x}" if byte is not None else "a lone surrogate"
                raise InputError(
                    f"--{name.rstrip('_').replace('_', '-')} is not valid UTF-8 text ({shown} at character {bad}): "
                    "set a UTF-8 locale or convert the text (iconv -t UTF-8)"
                )


def comma_separated(values: Iterable[str]) -> list[str]:
    """A repeatable flag's values, each of which may also be 'a,b' (the older spelling of a list)."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]
