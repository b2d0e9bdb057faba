"""Conversations by handle: the users from PostgreSQL, their messages in DynamoDB.

Sending also runs, on a twin, the stream consumer's work right after (in the cloud the
Lambda does that part). Not part of the Lambda package (it needs ``ops.db`` and ``ops.target``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ops.db import connect, users_by_handle
from ops.errors import ConfigError, NotFoundError
from ops.local.streams import StreamCounts, checkpoint_file, process_stream
from ops.messages.model import GSI_NAME, GroupRow, Message
from ops.messages.paging import Page
from ops.messages.pairs import find_group
from ops.messages.read import get_conversation, list_conversations
from ops.messages.send import SendResult, check_message_text, send_message
from ops.target import Target


@dataclass(frozen=True)
class Sent:
    send: SendResult
    stream: StreamCounts | None  # None in the cloud (the Lambda moves the rows) or when not asked


def send_by_handles(target: Target, sender: str, text: str, *, to: str | None = None, group_uuid: str | None = None, process: bool = True, index: str = GSI_NAME) -> Sent:
    """Send ``text`` from the user ``sender`` to the user ``to`` or into ``group_uuid``."""
    if not sender:
        raise ConfigError("say who sends the message: --from HANDLE")
    if bool(to) == bool(group_uuid):
        raise ConfigError("give exactly one of --to HANDLE or --group UUID")
    check_message_text(text)  # before any connection: a bad message costs nothing
    with connect(target) as conn:
        users = users_by_handle(conn, [h for h in (sender, to) if h])
    client = target.client("dynamodb")
    table = target.stack.table_name
    result = send_message(client, table, users[sender].person(), text, receiver=users[to].person() if to else None, group_uuid=group_uuid, index=index)
    stream = None
    if process and not target.cloud:
        stream = process_stream(target.client("dynamodbstreams"), client, table, index, checkpoint_file(target.stack.name))
    return Sent(result, stream)


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
        raise NotFoundError(f"{a} and {b} have no conversation on stack {target.stack.name!r}: the first `invoke ddb.send-message --from {a} --to {b}` starts one")
    return lookup.group_uuid


def conversation(target: Target, group_uuid: str | None, handles: Iterable[str], page_size: int, cursor: str | None, before: str | None) -> Page[Message]:
    """Access pattern 2 for a task: by group id, or by the two participants' handles."""
    group = group_uuid or group_of_handles(target, handles)
    return get_conversation(target.client("dynamodb"), target.stack.table_name, group, page_size, cursor, before)


def conversations_of(target: Target, handle: str, page_size: int, cursor: str | None, before: str | None) -> Page[GroupRow]:
    """Access pattern 1 for a task: the user by handle from PostgreSQL, their groups from the table."""
    with connect(target) as conn:
        user = users_by_handle(conn, [handle])[handle]
    return list_conversations(target.client("dynamodb"), target.stack.table_name, user.uuid, page_size, cursor, before)
