"""Plain-text rendering for the terminal: pure functions from data to strings (no printing)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import Any

# What a terminal obeys instead of showing: C0 controls (newline, carriage return, ESC…), DEL, C1
# controls (U+009B is a one-byte CSI), the bidi marks, embeddings, overrides and isolates that reorder
# what follows them, and the line and paragraph separators.
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def visible(text: Any, keep_newlines: bool = False) -> str:
    """Text that came from outside (the table, the database, Cognito) as the terminal should show it.

    Every control character is written out (``\\n``, ``\\x1b``, ``\\u202e``), so a message cannot
    start a line of its own, colour the screen, set the window title or reorder what follows it.
    The one function every renderer here uses; JSON output does not need it (json escapes them).
    ``keep_newlines`` is for our own multi-line texts only.
    """
    text = str(text)
    if keep_newlines:
        return "\n".join(_INVISIBLE.sub(lambda m: _escape(m.group()), line) for line in text.split("\n"))
    return _INVISIBLE.sub(lambda m: _escape(m.group()), text)


# A word of an error line longer than this (a value pasted by mistake: a 100 KB handle) is cut, with
# its length said; an ARN, a path or a pair key is far shorter and stays whole.
WORD_LIMIT = 200
_LONG_WORD = re.compile(rf"\S{{{WORD_LIMIT + 1},}}")


def clip_words(text: str) -> str:
    """``text`` with every overlong word cut to its start, so an error line still fits and keeps its advice."""
    return _LONG_WORD.sub(lambda m: f"{m.group()[: WORD_LIMIT // 2]}…[{len(m.group()):,} characters]", text)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return visible(value)


def table(
    rows: Sequence[dict[str, Any]] | Sequence[Any], columns: Sequence[str] | None = None, empty: str = "(none)"
) -> str:
    """A left-aligned text table with a header rule."""
    dict_rows = [asdict(r) if is_dataclass(r) else dict(r) for r in rows]  # type: ignore[arg-type]
    if not dict_rows:
        return empty
    cols = list(columns or dict_rows[0].keys())
    cells = [[_cell(r.get(c)) for c in cols] for r in dict_rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths, strict=False)).rstrip()  # noqa: E731
    return "\n".join([line(cols), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, default=str, sort_keys=True)


def json_lines(rows: Iterable[Any]) -> Iterable[str]:
    for row in rows:
        yield json.dumps(asdict(row) if is_dataclass(row) else row, default=str, separators=(",", ":"))  # type: ignore[arg-type]


def twin_lines(status: Any) -> list[str]:
    return [
        f"  {c.name:<40} {c.engine:<15} {c.endpoint}" + ("" if c.running else "  (not answering)")
        for c in status.components
    ]


def up_lines(stack: str, result: Any) -> list[str]:
    """local.up's report: running or started, what the AWS side restored, the plan's resources, and where each part
    answers."""
    head = f"twin of stack {stack} " + ("is already running" if result.already_running else "is up")
    note = [f"aws state: {result.restore_note}"] if getattr(result, "restore_note", "") else []
    links = links_line(getattr(result, "links", None), stack)
    return [
        head,
        *note,
        *getattr(result, "notes", []),
        *([links] if links else []),
        *cloud_side_lines(getattr(result, "cloud_side", None), getattr(result, "plan_source", None)),
        *twin_lines(result.status),
    ]


def cloud_side_lines(cloud: Any, source: Any) -> list[str]:
    """What the plan's reconcile did: created, updated, replaced, could not change; one line each kind."""
    if cloud is None:
        return []
    where = (
        "" if source is None else (" (cached plan)" if source.cached else f" (plan evaluated in {source.seconds:.1f}s)")
    )
    lines = [
        f"aws resources from the program's plan{where}: {len(cloud.created)} created, {len(cloud.updated)} updated, "
        f"{len(cloud.unchanged)} unchanged"
    ]
    lines.extend(f"  created {c}" for c in cloud.created)
    lines.extend(f"  updated {c}" for c in cloud.updated)
    lines.extend(f"  replaced {c}" for c in cloud.replaced)
    # never advice to delete: a key encrypts the twin's messages, a table or pool holds its data
    lines.extend(
        f"  warning: {c}; kept as it is, with what it holds"
        + (" (the twin's data is encrypted under it: it is never re-created)" if c.startswith("KMS key") else "")
        for c in cloud.stuck
    )
    return lines


def not_on_twin_line(status: Any) -> str:
    """``stack dev: not on the twin: …; played by the stream worker: …`` (empty before the first local.up)."""
    if not status.not_on_twin and not status.played:
        return ""
    parts = []
    if status.not_on_twin:
        parts.append("not on the twin: " + ", ".join(status.not_on_twin))
    if status.played:
        parts.append("played by a twin process: " + ", ".join(status.played))
    return f"stack {status.stack}: " + "; ".join(parts)


def status_table(statuses: Sequence[Any]) -> str:
    rows = []
    for st in statuses:
        stack = st.stack + (" (stack file broken)" if getattr(st, "problem", "") else "")
        if not st.components:
            rows.append(
                {"stack": stack, "component": "-", "engine": "-", "endpoint": "-", "pid": None, "state": "stopped"}
            )
        for comp in st.components:
            rows.append(
                {
                    "stack": stack,
                    "component": comp.name,
                    "engine": comp.engine,
                    "endpoint": comp.endpoint,
                    "pid": comp.pid,
                    "state": "running" if comp.running else "not answering",
                }
            )
    notes = [line for line in (not_on_twin_line(st) for st in statuses if st.components) if line]
    return "\n".join([table(rows), *notes])


def status_problems(statuses: Sequence[Any]) -> str:
    """local.status's error line(s): which stack files do not read (their twins are shown all the same)."""
    return "\n".join(
        f"error: stack {st.stack}: {st.problem}"
        + (f" (`invoke local.down --stack {st.stack}` still stops its twin)" if st.components else "")
        for st in statuses
        if getattr(st, "problem", "")
    )


def users_table(users: Sequence[Any]) -> str:
    return table(users, ["handle", "display_name", "email", "uuid", "cognito_user_id"])


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class Progress:
    """A one-line progress bar on a terminal; on a pipe (a log, CI), a line every tenth of the way and,
    between those, at least every ``every_seconds`` (a tenth of a large seed can take minutes)."""

    def __init__(
        self,
        total: int,
        stream: Any,
        label: str = "items",
        width: int = 30,
        every_seconds: float = 5.0,
        clock: Callable[[], float] | None = None,
        detail: Any = None,
    ) -> None:
        import threading
        import time

        self.total, self.stream, self.label, self.width = max(total, 1), stream, label, width
        self.detail = detail  # () -> str: a bulk job's rates (items/s, capacity units/s), shown after the count
        self.done = 0
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._last_decile = -1
        self._lock = threading.Lock()
        self.every_seconds, self._clock = every_seconds, clock or time.monotonic
        self._last_line = self._clock()

    def __call__(self, n: int) -> None:
        with self._lock:
            self.done += n
            frac = min(self.done / self.total, 1.0)
            if self.tty:
                bar = "#" * int(frac * self.width)
                self.stream.write(f"\r[{bar:<{self.width}}] {self.done}/{self.total} {self.label}{self._detail()}")
                if self.done >= self.total:
                    self.stream.write("\n")
            elif int(frac * 10) > self._last_decile or self._clock() - self._last_line >= self.every_seconds:
                self._last_decile = int(frac * 10)
                self._last_line = self._clock()
                self.stream.write(f"{self.done}/{self.total} {self.label}{self._detail()}\n")
            self.stream.flush()

    def _detail(self) -> str:
        return f" ({self.detail()})" if self.detail is not None else ""


def local_time(iso_text: str) -> str:
    """An item's UTC timestamp in the reader's local time zone (a key that is no time is shown as it is)."""
    try:
        moment = datetime.fromisoformat(iso_text)
    except (TypeError, ValueError):
        return visible(iso_text)
    return (moment.astimezone() if moment.tzinfo else moment).strftime("%Y-%m-%d %H:%M")


def conversation_lines(
    messages: Sequence[Any], full: bool = False, width: int = 72, membership: Any | None = None
) -> str:
    """Pattern 2's page; a named group's (``membership``) opens with its name and members and names senders by
    display name."""
    head = []
    if membership is not None:
        people = membership.people()
        who = ", ".join(f"{visible(p.display_name)} (@{visible(p.handle)})" for p in people)
        head = [f"group {visible(membership.group_name)}: {len(people)} members: {who}"]
    if not messages:
        return "\n".join([*head, "(no messages)"])
    senders = [visible(m.user_display_name if membership is not None else m.user_handle) for m in messages]
    sender_w = max(len(h) for h in senders)
    out = head
    for m, sender in zip(messages, senders, strict=True):
        text = visible(m.message)
        out.append(f"{sender:<{sender_w}}  {local_time(m.created_at)}  {text if full else shorten(text, width)}")
    return "\n".join(out)


def _others(row: Any, memberships: dict[str, Any], reader: str | None) -> list[Any]:
    """A named group's members other than the reader (none known: the group's membership item is gone)."""
    found = memberships.get(row.message_group_uuid)
    return [p for p in found.people() if p.uuid != reader] if found is not None else []


def groups_table(
    rows: Sequence[Any], full: bool = False, memberships: dict[str, Any] | None = None, reader: str | None = None
) -> str:
    """Pattern 1's page: a pair's row names the other participant, a named group's its name and other members."""
    memberships = memberships or {}

    def who(r: Any) -> tuple[str, str]:
        if getattr(r, "group_name", None) is None:
            return r.user_handle, r.user_display_name
        others = ", ".join(p.handle for p in _others(r, memberships, reader))
        return (others if full else shorten(others, 40)), r.group_name

    return table(
        [
            {
                "with": visible(who(r)[0]),
                "name": visible(who(r)[1]),
                "last reply": local_time(r.last_reply_at),
                "group": r.message_group_uuid,
                "last message": visible(r.message) if full else shorten(visible(r.message), 48),
            }
            for r in rows
        ],
        empty="(no conversations)",
    )


def groups_json_lines(rows: Sequence[Any], memberships: dict[str, Any] | None = None) -> Iterable[str]:
    """Pattern 1 as JSON lines: each row's attributes; a named group's also carries ``members`` (every one of them)."""
    memberships = memberships or {}
    for r in rows:
        line = asdict(r)
        found = memberships.get(r.message_group_uuid) if getattr(r, "group_name", None) is not None else None
        if found is not None:
            line["members"] = [asdict(p) for p in found.people()]
        yield json.dumps(line, default=str, separators=(",", ":"))


def conversations_text(page: Any, full: bool = False, as_json: bool = False) -> str:
    """ddb.patterns.list-conversations' output for one page (``ops.conversations.conversations_of``)."""
    memberships = page.extra.get("members") or {}
    if as_json:
        return "\n".join(groups_json_lines(page.items, memberships))
    return groups_table(page.items, full, memberships, page.extra.get("reader"))


def conversation_text(page: Any, full: bool = False, as_json: bool = False) -> str:
    """ddb.patterns.get-conversation's output for one page (``ops.conversations.conversation``)."""
    if as_json:
        return "\n".join(json_lines(page.items))
    return conversation_lines(page.items, full, membership=page.extra.get("membership"))


def group_made_lines(made: Any) -> list[str]:
    """ddb.create-group's report: the group's id first (what the other tasks take), then who is in it."""
    c = made.created
    people = c.membership.people()
    return [
        f"group {c.group_uuid} '{visible(c.membership.group_name)}' created by {visible(made.creator)} "
        f"with {len(people)} members: {', '.join(visible(p.handle) for p in people)}",
        f"first message {c.message.message_uuid} at {c.message.created_at}",
    ]


def member_change_line(change: Any) -> str:
    """ddb.add-member / ddb.remove-member: what changed, and how many members the group has now."""
    who, name = visible(change.person.handle), visible(change.group_name)
    said = {
        "added": f"{who} added to group '{name}': their row points at the message of {change.row_at}"
        + ("; a message that came in meanwhile moved the rows" if change.caught_up else ""),
        "removed": f"{who} removed from group '{name}': {change.rows_deleted} row(s) deleted, their messages stay",
        "already-member": f"{who} is already a member of group '{name}': nothing changed",
        "not-member": f"{who} is not a member of group '{name}': nothing changed",
    }[change.action]
    return f"{said} ({change.members} members)"


# ---- identity (cognito / rds)
def cognito_users_table(users: Sequence[Any]) -> str:
    return table(
        [
            {
                "handle": u.handle,
                "sub": u.sub,
                "email": u.email,
                "status": u.status + ("" if u.enabled else " (disabled)"),
            }
            for u in users
        ],
        empty="(no Cognito users)",
    )


def _names(names: Sequence[str], limit: int) -> str:
    shown = ", ".join(visible(n) for n in names[:limit])
    return shown + (f", … ({len(names) - limit} more)" if len(names) > limit else "")


def sync_report_lines(report: Any, limit: int = 8) -> list[str]:
    """A cognito sync's report: one line per outcome, with the first few handles of each."""
    head = "dry run, nothing written" if report.dry_run else ("ids written" if report.changed else "nothing to change")
    rows = [
        ("would update" if report.dry_run else "updated", report.updated),
        ("already right", report.already_right),
        ("would unlink (sub moved)" if report.dry_run else "unlinked (sub moved)", report.unlinked),
        ("Cognito users without preferred_username", report.without_handle),
        ("handles not in the database", report.not_in_database),
        ("database users not in Cognito", report.not_in_cognito),
        ("handles claimed by several Cognito users (skipped)", report.ambiguous),
        ("links to no Cognito user", report.stale_links),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [f"cognito id sync: {report.cognito_users} Cognito users, {report.database_users} database users; {head}"]
    lines += [f"  {label:<{width}}  {len(names):>5}  {_names(names, limit)}".rstrip() for label, names in rows]
    return lines


def links_line(report: Any, stack: str, limit: int = 4) -> str:
    """After a restore: one line when PostgreSQL's Cognito links disagree with the restored pool, else ''."""
    if report is None or not report.drift:
        return ""
    parts = [
        f"{len(names)} {label} ({_names(names, limit)})"
        for label, names in (
            ("link(s) to no Cognito user", report.stale_links),
            ("would be updated", report.updated),
            ("would be unlinked (sub moved)", report.unlinked),
            ("handle(s) claimed by several Cognito users", report.ambiguous),
        )
        if names
    ]
    missing = report.stale_links and report.not_in_cognito
    fix = (
        f"`invoke cognito.create-users --stack {stack}` then " if missing else ""
    ) + f"`invoke cognito.sync-ids --stack {stack}`"
    return (
        f"cognito links: the restored pool disagrees with PostgreSQL: {', '.join(parts)}; see "
        f"`invoke cognito.sync-ids --stack {stack} --dry-run`, fix with {fix}"
    )


def create_result_line(result: Any) -> str:
    created = f"created {len(result.created)} Cognito user(s)" + (
        f" ({_names(result.created, 8)})" if result.created else ""
    )
    return created + (f"; {len(result.existing)} already there" if result.existing else "")


def fit(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, cut in the middle: a key keeps its prefix and its end."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head) :]


# The scan table's fixed widths: a group row's pk (GRP# + uuid) and a UTC key with microseconds fit
# whole; a longer value (a pair entry's PAIR#<uuid>#<uuid>, 78 characters) is cut in the middle.
SCAN_WIDTHS = {"pk": 44, "sk": 32, "user_handle": 12}


def item_lines(items: Iterable[dict[str, Any]], message_width: int = 60) -> Iterable[str]:
    """Scan output as a table that streams: fixed widths, so no item has to wait for the last one."""
    w = SCAN_WIDTHS
    yield f"{'pk':<{w['pk']}}  {'sk':<{w['sk']}}  {'user_handle':<{w['user_handle']}}  message"
    yield f"{'-' * w['pk']}  {'-' * w['sk']}  {'-' * w['user_handle']}  {'-' * 7}"
    for item in items:
        text = (
            "(encrypted)" if "message" not in item and "message_sealed" in item else _cell(item.get("message"))
        )  # a scan never opens a body
        cells = [f"{fit(_cell(item.get(name)), width):<{width}}" for name, width in w.items()]
        yield "  ".join([*cells, shorten(text, message_width)])


def stream_line(counts: Any) -> str:
    """One line for a run of the twin's stream consumer (ddb.send-message, ddb.stream-process), after its warnings."""
    warnings = [f"warning: {visible(w)}\n" for w in getattr(counts, "warnings", [])]
    return "".join(warnings) + (
        f"stream: {counts.records} records over {counts.shards} shard(s), {counts.processed} processed, "
        f"{counts.failed} failed, {counts.rows_moved} group rows moved"
        + (" (interrupted)" if counts.interrupted else "")
    )


def sent_lines(sent: Any) -> list[str]:
    """What ddb.send-message prints on stdout: the group, whether this message created it, the message."""
    how = {
        "entry": " (existing, found by its pair entry)",
        "rows": " (existing, found by its group rows" + ("; pair entry added)" if sent.send.entry_added else ")"),
    }
    lines = [
        f"group {sent.send.group_uuid} "
        + ("created by this first message" if sent.send.created else how.get(sent.send.found_by or "", "(existing)")),
        f"message {sent.send.message.message_uuid} at {sent.send.message.created_at}",
    ]
    return lines + ([sent.rows] if sent.rows else [])


def setup_step_line(step: str, result: Any) -> str:
    """One step of db.setup, as ``ops.accounts.setup`` reports it when the step is done."""
    if step == "seed":
        return "== seed:\n" + users_table(result)
    if step == "cognito sync-ids":
        return "== cognito sync-ids:\n" + "\n".join(sync_report_lines(result))
    if step == "keep":
        text = (
            "no database yet"
            if result is None
            else "kept its rows ("
            + ", ".join(f"{n} {table}" for table, n in result.items())
            + "); the seed users are upserted by handle, --reset starts empty"
        )
    elif step == "drop":
        text = "dropped" if result else "nothing to drop"
    elif step == "create":
        text = "created" if result else "already there"
    elif step == "schema-load":
        text = ", ".join(result)
    else:  # "cognito users"
        text = create_result_line(result)
    return f"== {step}: {text}"


def seeded_line(seeded: Any) -> str:
    """ddb.seed's summary of ``ops.seed.seed_target``'s result."""
    r = seeded.result
    return (
        f"seeded {r.messages_written} messages and {r.group_rows_written} group rows ({visible(seeded.me.handle)} <-> "
        f"{visible(seeded.other.handle)}, group {r.group_uuid}) in {r.batches} batches; verified: the group holds "
        f"{r.messages_in_table} messages"
    )


# ---- the table's health, migrations, dead letters
def doctor_report(checkup: Any, repairs: Sequence[Any] | None = None, as_json: bool = False) -> str:
    """ddb.doctor's output: the repairs about to be made (``repairs``), or the whole checkup."""
    if checkup is None:
        return "\n".join(repair_lines(repairs or []))
    if as_json:
        return json.dumps(
            {
                "first": checkup.first.to_dict(),
                "applied": dict(checkup.applied),
                "after": checkup.after.to_dict() if checkup.after else None,
                "clean": checkup.final.clean,
            },
            sort_keys=True,
        )
    lines = doctor_lines(checkup.first)
    if checkup.after is not None:
        lines += [applied_line(checkup.applied), "after the repairs:", *doctor_lines(checkup.after)]
    return "\n".join(lines)


def doctor_lines(ex: Any) -> list[str]:
    """ddb.doctor's report: what was read, then one row per kind of finding with a few examples."""
    head = (
        f"read {ex.items} items: {ex.messages} messages, {ex.group_rows} group rows, {ex.pair_entries} pair entries, "
        f"{ex.groups} groups"
    )
    head += f", {ex.group_keys} group keys" if getattr(ex, "group_keys", 0) else ""
    head += f", {ex.named_groups} named groups" if getattr(ex, "named_groups", 0) else ""
    if ex.clean:
        return [head, "healthy: nothing breaks the access patterns"]
    rows = [
        {
            "finding": f.title,
            "count": f.count,
            "fix": "--fix" if f.fixable else "by hand",
            "example": shorten(visible(" ".join(f"{k}={v}" for k, v in f.examples[0].items())), 90)
            if f.examples
            else "-",
        }
        for f in ex.findings
    ]
    return [head, table(rows)]


def repair_lines(repairs: Sequence[Any], limit: int = 20) -> list[str]:
    lines = [f"will change {len(repairs)} thing(s):" if repairs else "nothing can be repaired automatically"]
    lines += [f"  {visible(r.describe)}" for r in repairs[:limit]]
    if len(repairs) > limit:
        lines.append(f"  … and {len(repairs) - limit} more")
    return lines


def applied_line(applied: Any) -> str:
    return "repaired: " + (", ".join(f"{n} {action}" for action, n in sorted(applied.items())) or "nothing")


def migration_line(result: Any) -> str:
    did = ", ".join(f"{what}: {n}" for what, n in sorted(result.changed.items())) or "nothing to do"
    mode = "dry run, nothing written; " if result.dry_run else ("resumed; " if result.resumed else "")
    return f"migration {result.name}: {mode}scanned {result.scanned} items; {did}"


def dead_letter_lines(letters: Sequence[Any], foreign: int) -> list[str]:
    if not letters:
        return ["(the dead-letter queue holds no stream records)"] + (
            [f"{foreign} other message(s) in the queue"] if foreign else []
        )
    rows = []
    for letter in letters:
        keys = (
            "; ".join(
                f"{r['dynamodb']['Keys']['pk']['S']} {r['dynamodb']['Keys']['sk']['S']}" for r in letter.records[:2]
            )
            if letter.records
            else "(trimmed from the stream)"
        )
        rows.append(
            {
                "when": letter.timestamp,
                "why": letter.condition,
                "attempts": letter.attempts,
                "records": letter.batch_size,
                "shard": letter.shard_id[-12:],
                "first keys": keys,
            }
        )
    return [table(rows)] + ([f"{foreign} other message(s) in the queue (not stream pointers)"] if foreign else [])


def redrive_line(result: Any) -> str:
    return (
        f"redrive: {result.redriven} pointer(s) done and removed ({result.records} records), {result.still_failing} "
        f"still failing, {result.expired} past the stream's retention"
        + (f", {result.foreign} foreign message(s) left alone" if result.foreign else "")
    )


def table_check_lines(check: Any, stack: str) -> list[str]:
    """``ddb.schema-load --cloud``: what was compared, and each difference."""
    lines = [
        f"table {check.table} (cloud, stack {stack}) "
        + (
            "differs from what the program declares:"
            if check.differences
            else f"matches the spec: {', '.join(check.compared)}"
        )
    ]
    lines += [f"  - {diff}" for diff in check.differences]
    if check.unseen:
        lines.append(f"not visible to these credentials, not compared: {', '.join(check.unseen)}")
    if check.differences:
        lines.append(
            f"nothing was changed: `invoke infra.preview --stack {stack}` shows what `invoke infra.up --stack {stack}` "
            "would set"
        )
    return lines


def snapshot_line(done: str, result: Any) -> str:
    """One line for a snapshot saved, restored, exported or imported."""
    info = getattr(result, "info", result)
    again = " (the twin was stopped for it and started again)" if getattr(result, "restarted", False) else ""
    return (
        f"{done} snapshot {info.name} of stack {info.stack}: {info.files} files, {info.bytes / 1e6:.1f} MB, "
        f"engine {info.engine}, saved {info.created_at}{again}"
    )


def snapshot_table(infos: Sequence[Any], as_json: bool = False) -> str:
    if as_json:
        return "\n".join(json_lines(infos))
    if not infos:
        return "no snapshots (save one with `invoke local.snapshot.save NAME`)"
    rows = [
        {"name": i.name, "saved": i.created_at, "engine": i.engine, "files": i.files, "MB": f"{i.bytes / 1e6:.1f}"}
        for i in infos
    ]
    return table(rows)


def clone_warnings(keep_text: bool, no_anonymise: bool) -> list[str]:
    """The one-line warnings of the flags that let source data through."""
    out = []
    if no_anonymise:
        out.append("warning: --no-anonymise: real people and their messages are copied as they are into the twin")
    elif keep_text:
        out.append("warning: --keep-text: the messages' text is copied as it is (people are still anonymised)")
    return out


def clone_lines(r: Any) -> list[str]:
    how = "anonymised" if r.anonymised else "NOT anonymised"
    if r.anonymised and r.keep_text:
        how += " (text kept)"
    lines = [
        f"cloned {r.items_selected} of {r.items_read} items of stack {r.source} into the twin of {r.target} ({how}): "
        f"{r.groups} groups, {r.users} users ({r.cognito_created} new in Cognito), {r.items_written} items written"
        + (f" (resumed after {r.resumed_at})" if r.resumed_at else "")
        + (", bodies sealed with the target's key" if r.sealed else ""),
    ]
    if r.handles:
        lines.append(f"try: invoke ddb.patterns.list-conversations --stack {r.target} --handle {r.handles[0]}")
    return lines


def plan_lines(plan: Any, as_json: bool = False) -> str:
    """A bulk job's --plan: the path, requests, capacity units, time and on-demand cost (ops.bulkplan)."""
    if as_json:
        return json.dumps(plan.to_dict(), sort_keys=True)
    from ops.bulkplan import PRICES_DATE

    size = f"{plan.size_bytes / 2**20:,.1f} MiB" + (" (assumed)" if plan.size_assumed else "")
    cap = "on-demand" if plan.billing == "PAY_PER_REQUEST" else "provisioned"
    if any(plan.capacity):
        cap += f" {plan.capacity[0]:g} RCU / {plan.capacity[1]:g} WCU"
    if plan.seconds is None:
        took = "unbounded by a budget: as fast as the table and this machine allow"
    else:
        took = f"{plan.seconds:,.0f} s" + (f" ({plan.seconds / 3600:,.1f} h)" if plan.seconds >= 3600 else "")
    lines = [
        f"plan of ddb.{plan.job} on table {plan.table}: {plan.items:,} items, {size}, {cap}",
        "  path:     "
        f"{'DynamoDB export to S3 (no read capacity)' if plan.path == 'export' else 'scan of the live table'}",
        f"  {plan.budget.describe()}",
        f"  requests: {plan.requests:,}",
        f"  capacity: {plan.read_units:,.1f} RCU, {plan.write_units:,.1f} WCU",
        f"  time:     {took}",
        f"  cost:     ${plan.cost_usd:,.4f} on demand (AWS list prices, us-east-1, from {PRICES_DATE})",
        *(f"  note: {n}" for n in plan.notes),
        "nothing was read or written (--plan)",
    ]
    return "\n".join(lines)


def export_line(export: Any) -> str:
    where = f"s3://{export.bucket}/{export.base}/"
    count = f"{export.items:,} items, " if export.items is not None else ""
    return (
        f"export {export.id} {export.status.lower()}: {count}{where} (read it with --from-export {export.id} or latest)"
    )


def imported_line(done: Any) -> str:
    errors = f", {done.errors:,} items refused" if done.errors else ""
    return f"table {done.table} created from the export: {done.items:,} items imported{errors}"
