"""The read patterns: (1) a user's groups, newest reply first; (2) a group's messages, paged from the newest.

No year filter and no fixed page of 20 (the seeds had both): every page leads to the next
older one until the first group or message.

Sealed bodies (a stack that encrypts messages) are opened by the ``cipher`` the caller hands
in (``ops.crypto.MessageCipher``); plain ones are read as they are, so a table holding both
reads in one pass. A sealed body with no cipher, or one that does not open, is an
``EncryptionError`` naming its group and message. ``group_rows`` reads rows for their keys and
participants only and never opens a body (the stream consumer uses it and holds no key).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ops.aws import call, items, pause
from ops.errors import NotFoundError
from ops.messages.bodies import Cipher, readable
from ops.messages.model import GRP_PREFIX, GSI_NAME, MSG_PREFIX, GroupRow, Membership, Message
from ops.messages.paging import Page, iter_pages, newest_first

BATCH_GET_KEYS = 100  # BatchGetItem's limit per request


def list_conversations(
    client: Any,
    table: str,
    user_uuid: str,
    page_size: int = 20,
    cursor: str | None = None,
    before: str | None = None,
    *,
    cipher: Cipher | None = None,
) -> Page[GroupRow]:
    """Access pattern 1: a user's groups, newest reply first, one page (each last message opened when sealed).

    The named groups on the page come with their members: ``extra["members"]`` maps each such
    group to its ``Membership`` (one BatchGetItem for the page; pairs need none).
    """
    found, nxt = newest_first(client, table, GRP_PREFIX + user_uuid, page_size, cursor, before)
    rows = [GroupRow.from_item(readable(cipher, table, i)) for i in found]
    named = [r.message_group_uuid for r in rows if r.named]
    page = Page(rows, nxt)
    if named:
        page.extra["members"] = memberships(client, table, named)
    return page


def get_conversation(
    client: Any,
    table: str,
    group_uuid: str,
    page_size: int = 20,
    cursor: str | None = None,
    before: str | None = None,
    *,
    cipher: Cipher | None = None,
) -> Page[Message]:
    """Access pattern 2: one page of a group's messages, read from the newest, returned oldest to newest.

    ``next_cursor`` leads to the page of older messages. Sealed bodies are opened with ``cipher``. A
    group with no message at all does not exist (a group is made by its first message): that is a
    NotFoundError naming it, not an empty page.
    """
    found, nxt = newest_first(client, table, MSG_PREFIX + group_uuid, page_size, cursor, before)
    if not found and cursor is None and (before is None or not _has_messages(client, table, group_uuid)):
        raise NotFoundError(f"there is no message group {group_uuid} in table {table!r}")
    return Page([Message.from_item(readable(cipher, table, i)) for i in reversed(found)], nxt)


def _has_messages(client: Any, table: str, group_uuid: str) -> bool:
    return bool(newest_first(client, table, MSG_PREFIX + group_uuid, 1, None, None)[0])


def iter_conversations(
    client: Any, table: str, user_uuid: str, page_size: int = 100, *, cipher: Cipher | None = None
) -> Iterator[GroupRow]:
    for page in iter_pages(
        list_conversations, client=client, table=table, user_uuid=user_uuid, page_size=page_size, cipher=cipher
    ):
        yield from page.items


def iter_messages_newest_first(
    client: Any, table: str, group_uuid: str, page_size: int = 100, *, cipher: Cipher | None = None
) -> Iterator[Message]:
    for page in iter_pages(
        get_conversation, client=client, table=table, group_uuid=group_uuid, page_size=page_size, cipher=cipher
    ):
        yield from reversed(page.items)


def group_row_items(client: Any, table: str, group_uuid: str, index: str = GSI_NAME) -> list[dict[str, Any]]:
    """The group rows of a group as stored (every attribute), through the GSI.

    Messages carry no ``message_group_uuid`` and the pair marker names its group otherwise, so
    only group rows are in the index.
    """
    request = {
        "TableName": table,
        "IndexName": index,
        "KeyConditionExpression": "message_group_uuid = :g",
        "ExpressionAttributeValues": {":g": {"S": group_uuid}},
    }
    not_found = f"table {table!r} (or its index {index!r}) does not exist: create it with `invoke ddb.schema-load`"
    return list(
        items(client, "query", f"Query {index} for group {group_uuid}", "Items", not_found=not_found, **request)
    )


def group_rows(client: Any, table: str, group_uuid: str, index: str = GSI_NAME) -> list[GroupRow]:
    """Every group row of a group, through the GSI (a sealed last message is left sealed: ``message`` is then
    ``None``)."""
    return [GroupRow.from_item(i) for i in group_row_items(client, table, group_uuid, index)]


# ---------------------------------------------------------------- named groups' members


def get_membership(client: Any, table: str, group: str) -> Membership | None:
    """The group's membership item (strongly consistent), or ``None`` for a pair's group or no group."""
    item = call(
        client.get_item,
        f"GetItem membership of group {group} on {table}",
        TableName=table,
        Key=Membership.key_of(group),
        ConsistentRead=True,
    ).get("Item")
    return Membership.from_item(item) if item else None


def memberships(client: Any, table: str, groups: Iterable[str]) -> dict[str, Membership]:
    """The membership items of these groups (those that have one), ``BATCH_GET_KEYS`` keys a request."""
    wanted = sorted(set(groups))
    found: dict[str, Membership] = {}
    for start in range(0, len(wanted), BATCH_GET_KEYS):
        request: dict[str, Any] = {
            table: {"Keys": [Membership.key_of(g) for g in wanted[start : start + BATCH_GET_KEYS]]}
        }
        attempt = 0
        while request:
            resp = call(client.batch_get_item, f"BatchGetItem memberships on {table}", RequestItems=request)
            for item in resp.get("Responses", {}).get(table, []):
                m = Membership.from_item(item)
                found[m.group] = m
            request = resp.get("UnprocessedKeys") or {}
            if request:  # throttled part of the batch: back off, then ask for the rest
                attempt += 1
                pause(attempt)
    return found
