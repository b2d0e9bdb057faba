"""Seeding a conversation between two users from a ``Person 1: … / Person 2: …`` file.

The whole file is parsed and validated before the first write, ids and timestamps are
deterministic (same file, same users, same start → same keys), and existing group rows of
the pair are reconciled so a re-seed never leaves two rows for one participant. The group rows
and the pair entry are written before the messages, so a seed stopped at any point (Ctrl-C,
kill -9) leaves a conversation both participants can find, and the same seed run again finishes it. On a stack
that encrypts messages every body is sealed under the group's data key (made, with the
group's key item, when the group has none); a re-seed rewrites the same keys with new nonces.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ops.aws import aws_errors
from ops.budget import Limits
from ops.ddb import batch_write, count_items, delete_keys
from ops.errors import CloudError, InputError, OpsError
from ops.files import read_text_file
from ops.messages.bodies import Cipher, body_of, with_body
from ops.messages.model import (
    MSG_PREFIX,
    TIME_CEILING,
    GroupRow,
    Message,
    Person,
    group_rows_for,
    group_uuid_for,
    instant,
    instant_or_never,
    iso,
    message_uuid_for,
    pair_entry_for,
)
from ops.messages.pairs import find_group, put_entry
from ops.messages.read import group_rows

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "conversations"
DEFAULT_CONVERSATION = FIXTURES / "trail-running.txt"
LINE = re.compile(r"^Person ([12]):[ \t]*(.*?)\s*$")
DIRECTIVE = re.compile(r"^#\s*(\w+)\s*:\s*(.+?)\s*$")
DEFAULT_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MAX_MESSAGE_CHARS = 4000
MIN_SPACING = timedelta(microseconds=1)  # keys are microseconds apart: a smaller step would give two messages one key


@dataclass(frozen=True)
class Conversation:
    path: Path
    start: datetime
    spacing: timedelta
    lines: tuple[tuple[int, str], ...]  # (speaker 1|2, text)


def _parse_time(path: Path, lineno: int, value: str) -> datetime:
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"{_where(path, lineno)}start {value!r} is not an ISO-8601 time (e.g. 2026-01-05T09:00:00Z)"
        ) from None
    if dt.tzinfo is None:
        raise InputError(f"{_where(path, lineno)}start {value!r} needs a timezone (add Z for UTC)")
    try:
        iso(dt)
    except OverflowError:
        raise InputError(
            f"{_where(path, lineno)}start {value!r} is out of range: a time between the years 1 and 9999 in UTC"
        ) from None
    return dt


def _where(path: Path, lineno: int) -> str:
    return f"{path}:{lineno}: " if lineno else f"{path} "


def _parse_spacing(path: Path, lineno: int, value: str) -> timedelta:
    """``# spacing_seconds:``: a finite number of seconds, at least a microsecond (later messages, distinct keys)."""
    try:
        seconds = float(value)
    except ValueError:
        raise InputError(f"{path}:{lineno}: spacing_seconds must be a number, not {value!r}") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise InputError(
            f"{path}:{lineno}: spacing_seconds must be a finite number greater than 0 (each message after the one "
            f"before), not {value!r}"
        )
    try:
        spacing = timedelta(seconds=seconds)
    except OverflowError:
        raise InputError(
            f"{path}:{lineno}: spacing_seconds {value!r} is too large: the conversation would end after the year 9999"
        ) from None
    if spacing < MIN_SPACING:
        raise InputError(
            f"{path}:{lineno}: spacing_seconds must be at least 0.000001 (keys are a microsecond apart at least), not "
            f"{value!r}"
        )
    return spacing


def check_room(conv: Conversation, start: datetime, where: str) -> None:
    """The last message's time must exist (year 9999 at most, in UTC): refused before anything is written."""
    try:
        iso(start + conv.spacing * (len(conv.lines) - 1))
    except OverflowError:
        raise InputError(
            f"{where}leaves no room for {len(conv.lines)} messages {conv.spacing.total_seconds():g} s apart: "
            "the last one would fall after the year 9999"
        ) from None


def parse_conversation(path: Path) -> Conversation:
    """Read and validate the whole file; the first bad line stops it, naming file and line."""
    text = read_text_file(path, "conversation file")  # a BOM is dropped; a directory or FIFO is named as such
    start, spacing = DEFAULT_START, timedelta(minutes=1)
    start_line = 0
    lines: list[tuple[int, str]] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        if raw.lstrip().startswith("#"):
            m = DIRECTIVE.match(raw.strip())
            if m and m.group(1) == "start":
                start, start_line = _parse_time(path, lineno, m.group(2)), lineno
            elif m and m.group(1) == "spacing_seconds":
                spacing = _parse_spacing(path, lineno, m.group(2))
            continue  # other comments are notes for the reader
        m = LINE.match(raw)
        if not m:
            raise InputError(f"{path}:{lineno}: expected 'Person 1: …' or 'Person 2: …', found {raw.strip()[:60]!r}")
        if not m.group(2):
            raise InputError(f"{path}:{lineno}: the message after 'Person {m.group(1)}:' is empty")
        if len(m.group(2)) > MAX_MESSAGE_CHARS:
            raise InputError(f"{path}:{lineno}: message longer than {MAX_MESSAGE_CHARS} characters")
        lines.append((int(m.group(1)), m.group(2)))
    if not lines:
        raise InputError(f"{path}: no 'Person 1:' / 'Person 2:' lines")
    conv = Conversation(path, start, spacing, tuple(lines))
    check_room(
        conv,
        start,
        f"{path}:{start_line}: start {iso(start)} " if start_line else f"{path}: the default start {iso(start)} ",
    )
    return conv


@dataclass
class SeedItems:
    """What a seed writes: every message of the conversation and the two group rows at its last one."""

    group_uuid: str
    messages: list[Message]
    rows: tuple[GroupRow, GroupRow]


def build(
    conv: Conversation, me: Person, other: Person, start: datetime | None = None, group: str | None = None
) -> SeedItems:
    """The items of a seeded conversation, in the pair's ``group`` (default: the id this suite derives for the pair)."""
    group = group or group_uuid_for(me.uuid, other.uuid)
    t0 = start or conv.start
    check_room(conv, t0, f"--start {iso(t0)} ")
    people = {1: me, 2: other}
    messages = []
    for i, (speaker, text) in enumerate(conv.lines):
        who = people[speaker]
        created = iso(t0 + conv.spacing * i)
        messages.append(
            Message(
                group, created, message_uuid_for(group, f"seed:{created}"), text, who.uuid, who.display_name, who.handle
            )
        )
    return SeedItems(group, messages, group_rows_for(group, me, other, messages[-1]))


@dataclass
class SeedResult:
    group_uuid: str
    messages_written: int
    group_rows_written: int
    stale_rows_removed: int
    batches: int
    retried_items: int
    messages_in_table: int
    verified: bool


class SeedInterrupted(OpsError):
    """Ctrl-C during a seed: what was written is findable; the same seed, run again, finishes it."""

    exit_code = 130


def seed(
    client: Any,
    table: str,
    p: SeedItems,
    workers: int = 4,
    on_progress: Callable[[int], None] | None = None,
    cipher: Cipher | None = None,
) -> SeedResult:
    """Write the items and the pair entry; verify the table now holds every message and one row per participant.

    The order makes every point of the seed one a reader survives (Ctrl-C, kill -9, a lost connection):
    first both group rows, in one transaction, at the newest message the seed will write (so pattern 1
    lists the conversation from the start), then the pair entry (pattern 3 and ``--handles`` find it in
    one read), then the older rows it replaces, and only then the messages. Stopped midway, the rows
    are ahead of the group's newest message: ``ddb.doctor`` names the group, and the same seed run
    again writes the same keys and finishes it (nothing twice). With an encrypting ``cipher`` the
    messages and the rows' last message are stored sealed.
    """
    key = None
    if cipher is not None and cipher.encrypting:
        with aws_errors(
            f"get the data key of group {p.group_uuid}",
            not_found=f"table {table!r} does not exist: create it with `invoke ddb.schema-load`",
        ):
            key = cipher.group_key(
                client, table, p.group_uuid
            )  # one GenerateDataKey the first time, none after: the rest is cached

    def stored(m: Message) -> dict[str, Any]:
        return (
            cipher.seal(client, table, m.to_item(), key=key) if cipher is not None and key is not None else m.to_item()
        )

    last = stored(p.messages[-1])  # sealed first: the group rows carry its body
    existing = group_rows(client, table, p.group_uuid)
    rows: list[GroupRow] = []
    stale: list[GroupRow] = []
    for row in p.rows:
        mine = sorted(
            (r for r in existing if r.owner_uuid == row.owner_uuid), key=lambda r: instant_or_never(r.last_reply_at)
        )
        # a row already newer than the seed's last message (a later send) wins; older rows are replaced
        keep = mine[-1] if mine and instant_or_never(mine[-1].last_reply_at) > instant(row.last_reply_at) else row
        if keep is row:
            rows.append(row)
        # every other row of this participant goes, an old-shape row at the same time included (its key differs)
        stale.extend(r for r in mine if r.stored_key() != keep.stored_key())
    try:
        with aws_errors(f"write the group rows of group {p.group_uuid} on {table}"):
            if rows:  # both or neither: a participant never sees a conversation the other cannot
                client.transact_write_items(
                    TransactItems=[
                        {"Put": {"TableName": table, "Item": with_body(r.to_item(), body_of(last))}} for r in rows
                    ]
                )
            first = p.rows[0]
            a, b = Person(first.owner_uuid, "", ""), Person(first.user_uuid, "", "")
            # the pair's one group: a later send (and --handles) finds it in one read
            put_entry(client, table, pair_entry_for(p.group_uuid, a, b, p.messages[0].created_at))
        if on_progress is not None:
            on_progress(len(rows))
        if stale:
            delete_keys(client, table, [r.stored_key() for r in stale])  # after the new rows: never zero rows
        items = _chain((stored(m) for m in p.messages[:-1]), [last])
        stats = batch_write(client, table, items, workers=workers, on_progress=on_progress)
    except KeyboardInterrupt:
        raise SeedInterrupted(
            f"interrupted: group {p.group_uuid} is listed for both participants but holds only part of the "
            "conversation; rerun the same seed (same file, handles and --start) to finish it: "
            "it writes the same keys, nothing twice"
        ) from None
    in_table = count_items(
        client, table, MSG_PREFIX + p.group_uuid, below=TIME_CEILING
    )  # messages only, not the key item
    after = group_rows(client, table, p.group_uuid)
    owners = [r.owner_uuid for r in after]
    verified = (
        stats.written == len(p.messages)
        and in_table >= len(p.messages)
        and sorted(owners) == sorted({r.owner_uuid for r in p.rows})
    )
    if not verified:
        raise CloudError(
            f"seed verification failed: wrote {stats.written} of {len(p.messages)} messages, "
            f"the group holds {in_table} messages (expected at least {len(p.messages)}) and {len(owners)} group rows "
            "(expected 2)"
        )
    return SeedResult(
        p.group_uuid, len(p.messages), len(rows), len(stale), stats.requests, stats.retried_items, in_table, verified
    )


def _chain(*its: Any) -> Any:
    for it in its:
        yield from it


def parse_start(value: str | None) -> datetime | None:
    if not value:
        return None
    return _parse_time(Path("--start"), 0, value)


def check_start(conv: Conversation, value: str | None) -> None:
    """ddb.seed's --start against the file, before any connection: a time that leaves room for every message."""
    start = parse_start(value)
    if start is not None:
        check_room(conv, start, f"--start {value} ")


def people(conn: Any, my_handle: str | None, other_handle: str | None) -> tuple[Person, Person]:
    """The two participants from PostgreSQL (default: the first two seed users)."""
    from ops import db

    if my_handle and other_handle:
        found = db.users_by_handle(conn, [my_handle, other_handle])
        users = [found[my_handle], found[other_handle]]
    elif my_handle or other_handle:
        raise InputError("give both --my-handle and --other-handle, or neither for the default pair")
    else:
        users = db.first_users(conn, 2)
    if users[0].uuid == users[1].uuid:
        raise InputError("--my-handle and --other-handle must be two different users")
    return users[0].person(), users[1].person()


@dataclass(frozen=True)
class SeededConversation:
    me: Person
    other: Person
    result: SeedResult


def seed_target(
    target: Any,
    conv: Conversation,
    my_handle: str | None = None,
    other_handle: str | None = None,
    start: str | None = None,
    progress: Callable[..., Callable[[int], None]] | None = None,
    limits: Limits | None = None,
) -> SeededConversation:
    """ddb.seed on a stack: the two people from its PostgreSQL, then ``build`` and ``seed`` on its table.

    ``progress(total)`` returns the callback that hears how many items each batch wrote (the
    total is only known once the items are built).
    """
    from ops import db
    from ops.bulk import open_job
    from ops.crypto import cipher_for

    with db.connect(target) as conn:
        me, other = people(conn, my_handle, other_handle)
    job = open_job(target, limits, pool=16)  # room for the batches in flight; every write under the budget
    client = job.client
    group = find_group(client, target.stack.table_name, me, other).group_uuid  # the pair's group, whoever made it
    p = build(conv, me, other, parse_start(start), group=group)
    on_progress = progress(len(p.messages) + 2, detail=job.meter.line) if progress else None
    return SeededConversation(
        me, other, seed(client, target.stack.table_name, p, on_progress=on_progress, cipher=cipher_for(target))
    )
