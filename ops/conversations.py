"""Conversations by handle: the users from PostgreSQL, their messages in DynamoDB.

On a twin, sending also reports what became of the group rows: moved by the twin's stream
worker (``local.up`` starts it), or by one stream pass here when no worker runs (in the cloud
the Lambda does that part). Bodies are sealed and opened with the stack's cipher (``ops.crypto``).
Not part of the Lambda package (it needs ``ops.db``, ``ops.target`` and ``ops.crypto``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ops.crypto import cipher_for
from ops.db import connect, users_by_handle
from ops.errors import ConfigError, NotFoundError, OpsError
from ops.local.streams import StreamCounts, checkpoint_file, process_stream
from ops.messages.membership import GroupCreated, MemberChange, add_member, check_name, create_group, remove_member
from ops.messages.model import GSI_NAME, MAX_MEMBERS, MIN_MEMBERS, GroupRow, Message, instant, instant_or_never
from ops.messages.paging import Page
from ops.messages.pairs import find_group
from ops.messages.read import get_conversation, get_membership, group_rows, list_conversations
from ops.messages.send import SendResult, check_message_text, send_message
from ops.target import Target

ROWS_WAIT_SECONDS = 5.0  # the twin's stream worker polls every 0.2 s; a pass moves a few hundred records a second


@dataclass(frozen=True)
class Sent:
    send: SendResult
    stream: StreamCounts | None = None  # an inline stream pass (a twin without its stream worker)
    rows: str | None = None  # what became of the group rows, when nothing else says it


def _rows_at(client: Any, table: str, group: str, created_at: str, index: str) -> bool:
    at = instant(created_at)
    rows = group_rows(client, table, group, index)
    return len(rows) >= 2 and all(instant_or_never(r.last_reply_at) >= at for r in rows)


def _follow_up(target: Target, client: Any, result: SendResult, index: str) -> Sent:
    """The group rows after a send on a twin: moved by the twin's stream worker, or by one pass here.

    Never raises: the message is stored, and a caller that retried a failed send would store it twice.
    """
    from ops.local.twin import stream_worker_running

    table = target.stack.table_name
    try:
        if stream_worker_running(target.stack.name):
            deadline = time.monotonic() + ROWS_WAIT_SECONDS
            started = time.monotonic()
            while time.monotonic() < deadline:
                if _rows_at(client, table, result.group_uuid, result.message.created_at, index):
                    return Sent(
                        result,
                        rows=f"group rows moved by the twin's stream consumer in {time.monotonic() - started:.1f}s",
                    )
                time.sleep(0.1)
            return Sent(
                result,
                rows=f"the twin's stream consumer has not moved the group rows within {ROWS_WAIT_SECONDS:.0f}s: see "
                "`invoke local.status` and its log",
            )
        counts = process_stream(
            target.client("dynamodbstreams"), client, table, index, checkpoint_file(target.stack.name)
        )
        return Sent(result, stream=counts)
    except OpsError as err:
        return Sent(
            result,
            rows=f"the message is stored, but the group rows were not moved: {err} (run `invoke ddb.stream-process`)",
        )


def send_by_handles(
    target: Target,
    sender: str,
    text: str,
    *,
    to: str | None = None,
    group_uuid: str | None = None,
    process: bool = True,
    index: str = GSI_NAME,
) -> Sent:
    """Send ``text`` from the user ``sender`` to the user ``to`` or into ``group_uuid``."""
    if not sender:
        raise ConfigError("say who sends the message: --from HANDLE")
    if bool(to) == bool(group_uuid):
        raise ConfigError("give exactly one of --to HANDLE or --group UUID")
    check_message_text(text)  # before any connection: a bad message costs nothing
    with connect(target) as conn:
        users = users_by_handle(conn, [h for h in (sender, to) if h])
    client = target.client("dynamodb")
    result = send_message(
        client,
        target.stack.table_name,
        users[sender].person(),
        text,
        receiver=users[to].person() if to else None,
        group_uuid=group_uuid,
        index=index,
        cipher=cipher_for(target),
    )
    if target.cloud or not process:
        return Sent(result)  # in the cloud the Lambda moves the rows
    return _follow_up(target, client, result, index)


def _participants(handles: Iterable[str]) -> list[str]:
    parts = [h.strip() for value in handles for h in value.split(",") if h.strip()]
    if len(parts) != 2:
        raise ConfigError("give --group UUID or the two participants' handles, e.g. --handle ada --handle bram")
    if parts[0] == parts[1]:
        raise ConfigError(f"a conversation needs two different users, not {parts[0]!r} twice")
    return parts


def group_of_handles(target: Target, handles: Iterable[str]) -> str:
    """The group of two users, whoever created it and whatever its id (read only: no entry is added here)."""
    a, b = _participants(handles)
    with connect(target) as conn:
        users = users_by_handle(conn, [a, b])
    lookup = find_group(target.client("dynamodb"), target.stack.table_name, users[a].person(), users[b].person())
    if lookup.group_uuid is None:
        raise NotFoundError(
            f"{a} and {b} have no conversation on stack {target.stack.name!r}: the first "
            f"`invoke ddb.send-message --from {a} --to {b}` starts one"
        )
    return lookup.group_uuid


def conversation(
    target: Target,
    group_uuid: str | None,
    handles: Iterable[str],
    page_size: int,
    cursor: str | None,
    before: str | None,
) -> Page[Message]:
    """Access pattern 2 for a task: by group id, or by the two participants' handles."""
    group = group_uuid or group_of_handles(target, handles)
    client, table = target.client("dynamodb"), target.stack.table_name
    page = get_conversation(client, table, group, page_size, cursor, before, cipher=cipher_for(target))
    if group_uuid:  # a named group is shown with its name and members (a pair found by handles is none)
        named = get_membership(client, table, group)
        if named is not None:
            page.extra["membership"] = named
    return page


def conversations_of(
    target: Target, handle: str, page_size: int, cursor: str | None, before: str | None
) -> Page[GroupRow]:
    """Access pattern 1 for a task: the user by handle from PostgreSQL, their groups from the table.

    ``extra["reader"]`` is the reader's uuid: a named group is shown with its members other than them.
    """
    with connect(target) as conn:
        user = users_by_handle(conn, [handle])[handle]
    page = list_conversations(
        target.client("dynamodb"),
        target.stack.table_name,
        user.uuid,
        page_size,
        cursor,
        before,
        cipher=cipher_for(target),
    )
    page.extra["reader"] = user.uuid
    return page


# ---------------------------------------------------------------- named groups (ops.messages.membership)


@dataclass(frozen=True)
class GroupMade:
    created: GroupCreated
    creator: str  # the creator's handle


def create_group_by_handles(
    target: Target, name: str, members: Iterable[str], creator: str | None = None, text: str | None = None
) -> GroupMade:
    """ddb.create-group: the members by handle from PostgreSQL (the creator, default the first, is one of them)."""
    name = check_name(name)  # before any connection: a bad name costs nothing
    handles = list(dict.fromkeys(h.strip() for value in members for h in value.split(",") if h.strip()))
    if text is not None:
        check_message_text(text)
    if not handles:
        raise ConfigError("say who is in the group: --members ada,bram,chidi (2 to 50 handles, the creator included)")
    creator = creator or handles[0]
    wanted = len(set(handles) | {creator})
    if not MIN_MEMBERS <= wanted <= MAX_MEMBERS:  # before any connection, as the database would not change it
        raise ConfigError(f"a group has {MIN_MEMBERS} to {MAX_MEMBERS} members (the creator included), not {wanted}")
    with connect(target) as conn:
        users = users_by_handle(conn, list(dict.fromkeys([creator, *handles])))
    made = create_group(
        target.client("dynamodb"),
        target.stack.table_name,
        users[creator].person(),
        name,
        [users[h].person() for h in handles],
        text=text,
        cipher=cipher_for(target),
    )
    return GroupMade(made, creator)


def change_member(target: Target, group_uuid: str, handle: str, action: str) -> MemberChange:
    """ddb.add-member / ddb.remove-member: the user by handle from PostgreSQL, the change in the table."""
    if not group_uuid or not handle:
        raise ConfigError(f"say which group and whom to {action}: --group UUID --handle HANDLE")
    with connect(target) as conn:
        person = users_by_handle(conn, [handle])[handle].person()
    client, table = target.client("dynamodb"), target.stack.table_name
    if action == "add":
        return add_member(client, table, group_uuid, person)
    return remove_member(client, table, group_uuid, person)
