"""Conversations by handle: the users from PostgreSQL, their messages in DynamoDB.

Sending also runs, on a twin, the stream consumer's work right after (in the cloud the
Lambda does that part). Not part of the Lambda package (it needs ``ops.db`` and ``ops.target``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ops.db import connect, users_by_handle
from ops.errors import ConfigError
from ops.local.streams import StreamCounts, checkpoint_file, process_stream
from ops.messages.model import GSI_NAME, group_uuid_for
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


def split_handles(handles: Iterable[str] | str | None) -> list[str]:
    """``["ada", "bram"]``, ``["ada,bram"]`` or ``"ada,bram"`` → ``["ada", "bram"]``."""
    values = [handles] if isinstance(handles, str) else list(handles or [])
    return [h.strip() for value in values for h in value.split(",") if h.strip()]


def group_of_handles(conn: Any, handles: Iterable[str] | str | None) -> str:
    """The group id of two users (group ids derive from the pair)."""
    parts = split_handles(handles)
    if len(parts) != 2:
        raise ConfigError("give --group UUID or the two participants' handles, e.g. --handles ada,bram")
    found = users_by_handle(conn, parts)
    return group_uuid_for(found[parts[0]].uuid, found[parts[1]].uuid)
