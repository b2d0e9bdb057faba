"""The table's data model and its access patterns, for tasks, the stream consumer and any backend.

Items (DESIGN.md):
  message    pk ``MSG#<group>``  sk created_at     message_uuid, message, user_uuid/display_name/handle (sender)
  group row  pk ``GRP#<owner>``  sk last_reply_at  message_group_uuid, message, user_uuid/display_name/handle (the other)

This module is shipped inside the stream consumer's Lambda package: it imports only the
standard library and boto3-compatible clients passed in (no yaml, no psycopg).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar

from ops.errors import ConfigError

GSI_NAME = "message-group-sk-index"
MSG_PREFIX = "MSG#"
GRP_PREFIX = "GRP#"
MAX_PAGE_SIZE = 1000  # DynamoDB returns at most 1 MB a page anyway; bigger asks are mistakes
# Group ids are derived from the two participants, so two users can only ever share one
# group, even when both send a "first" message at the same moment.
GROUP_NAMESPACE = uuid.UUID("6c1f9a0e-2d47-4b8e-93a5-0c7e5d4f1b28")
MESSAGE_NAMESPACE = uuid.UUID("a3e8c5d1-7f20-4e9b-8c64-1d5b2f9e0a37")

T = TypeVar("T")


def iso(dt: datetime) -> str:
    """UTC, microseconds always present: string order is time order."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime: give it a timezone")
    return dt.astimezone(timezone.utc).isoformat(timespec="microseconds")


def now_iso() -> str:
    return iso(datetime.now(timezone.utc))


def group_uuid_for(user_a: str, user_b: str) -> str:
    if user_a == user_b:
        raise ConfigError("a conversation needs two different users")
    return str(uuid.uuid5(GROUP_NAMESPACE, ":".join(sorted((user_a, user_b)))))


def message_uuid_for(group_uuid: str, key: str) -> str:
    return str(uuid.uuid5(MESSAGE_NAMESPACE, f"{group_uuid}:{key}"))


@dataclass(frozen=True)
class Person:
    uuid: str
    display_name: str
    handle: str


@dataclass(frozen=True)
class Message:
    message_group_uuid: str
    created_at: str
    message_uuid: str
    message: str
    user_uuid: str
    user_display_name: str
    user_handle: str

    def item(self) -> dict[str, str]:
        return {
            "pk": MSG_PREFIX + self.message_group_uuid,
            "sk": self.created_at,
            "message_uuid": self.message_uuid,
            "message": self.message,
            "user_uuid": self.user_uuid,
            "user_display_name": self.user_display_name,
            "user_handle": self.user_handle,
        }

    @classmethod
    def from_item(cls, item: dict[str, str]) -> Message:
        return cls(item["pk"][len(MSG_PREFIX) :], item["sk"], item["message_uuid"], item["message"], item["user_uuid"], item["user_display_name"], item["user_handle"])


@dataclass(frozen=True)
class GroupRow:
    owner_uuid: str
    last_reply_at: str
    message_group_uuid: str
    message: str
    user_uuid: str  # the other participant
    user_display_name: str
    user_handle: str

    def item(self) -> dict[str, str]:
        return {
            "pk": GRP_PREFIX + self.owner_uuid,
            "sk": self.last_reply_at,
            "message_group_uuid": self.message_group_uuid,
            "message": self.message,
            "user_uuid": self.user_uuid,
            "user_display_name": self.user_display_name,
            "user_handle": self.user_handle,
        }

    @classmethod
    def from_item(cls, item: dict[str, str]) -> GroupRow:
        return cls(item["pk"][len(GRP_PREFIX) :], item["sk"], item["message_group_uuid"], item["message"], item["user_uuid"], item["user_display_name"], item["user_handle"])


def group_rows_for(group_uuid: str, a: Person, b: Person, last: Message) -> tuple[GroupRow, GroupRow]:
    """One row per participant, each naming the other, carrying the last message."""
    return (
        GroupRow(a.uuid, last.created_at, group_uuid, last.message, b.uuid, b.display_name, b.handle),
        GroupRow(b.uuid, last.created_at, group_uuid, last.message, a.uuid, a.display_name, a.handle),
    )


def to_ddb(item: dict[str, str]) -> dict[str, dict[str, str]]:
    return {k: {"S": v} for k, v in item.items()}


def from_ddb(item: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {k: next(iter(v.values())) for k, v in item.items()}


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None = None
    requests: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


def encode_cursor(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(from_ddb(key), separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, pk: str) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, dict) or raw.get("pk") != pk or not isinstance(raw.get("sk"), str):
            raise ValueError("cursor is for another listing")
    except (ValueError, binascii.Error, json.JSONDecodeError):
        raise ConfigError("invalid --cursor: use the next-page token printed by the previous page of this same listing") from None
    return to_ddb(raw)


def _check_page_size(page_size: int) -> None:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ConfigError(f"page size must be between 1 and {MAX_PAGE_SIZE}, not {page_size}")


def _query_newest_first(client: Any, table: str, pk: str, page_size: int, cursor: str | None, before: str | None) -> tuple[list[dict[str, str]], str | None]:
    _check_page_size(page_size)
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk" + (" AND sk < :before" if before else ""),
        "ExpressionAttributeValues": {":pk": {"S": pk}} | ({":before": {"S": before}} if before else {}),
        "ScanIndexForward": False,  # newest first: the page a person wants to see first
        # one item more than asked: tells whether an older page exists without an empty extra request
        "Limit": page_size + 1,
    }
    start = decode_cursor(cursor, pk)
    if start:
        kwargs["ExclusiveStartKey"] = start
    items: list[dict[str, str]] = []
    while len(items) <= page_size:
        resp = client.query(**kwargs)
        items.extend(from_ddb(i) for i in resp.get("Items", []))
        if not resp.get("LastEvaluatedKey"):
            break
        # a page can end early at DynamoDB's 1 MB limit: keep reading until page_size + 1
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        kwargs["Limit"] = page_size + 1 - len(items)
    if len(items) > page_size:
        items = items[:page_size]
        last = items[-1]
        return items, encode_cursor({"pk": {"S": last["pk"]}, "sk": {"S": last["sk"]}})
    return items, None


def list_conversations(client: Any, table: str, user_uuid: str, page_size: int = 20, cursor: str | None = None, before: str | None = None) -> Page[GroupRow]:
    """Access pattern 1: a user's groups, newest reply first, one page."""
    items, nxt = _query_newest_first(client, table, GRP_PREFIX + user_uuid, page_size, cursor, before)
    return Page([GroupRow.from_item(i) for i in items], nxt)


def get_conversation(client: Any, table: str, group_uuid: str, page_size: int = 20, cursor: str | None = None, before: str | None = None) -> Page[Message]:
    """Access pattern 2: one page of a group's messages, read from the newest, returned oldest to newest.

    ``next_cursor`` leads to the page of older messages.
    """
    items, nxt = _query_newest_first(client, table, MSG_PREFIX + group_uuid, page_size, cursor, before)
    return Page([Message.from_item(i) for i in reversed(items)], nxt)


def iter_pages(fetch: Any, **kwargs: Any) -> Iterator[Page[Any]]:
    """Follow ``next_cursor`` until the listing ends."""
    cursor = kwargs.pop("cursor", None)
    while True:
        page = fetch(cursor=cursor, **kwargs)
        yield page
        if not page.next_cursor:
            return
        cursor = page.next_cursor


def iter_conversations(client: Any, table: str, user_uuid: str, page_size: int = 100) -> Iterator[GroupRow]:
    for page in iter_pages(list_conversations, client=client, table=table, user_uuid=user_uuid, page_size=page_size):
        yield from page.items


def iter_messages_newest_first(client: Any, table: str, group_uuid: str, page_size: int = 100) -> Iterator[Message]:
    for page in iter_pages(get_conversation, client=client, table=table, group_uuid=group_uuid, page_size=page_size):
        yield from reversed(page.items)


def group_rows(client: Any, table: str, group_uuid: str, index: str = GSI_NAME) -> list[GroupRow]:
    """Every group row of a group, through the GSI (messages carry no message_group_uuid, so only group rows are in it)."""
    rows: list[GroupRow] = []
    kwargs: dict[str, Any] = {
        "TableName": table,
        "IndexName": index,
        "KeyConditionExpression": "message_group_uuid = :g",
        "ExpressionAttributeValues": {":g": {"S": group_uuid}},
    }
    while True:
        resp = client.query(**kwargs)
        rows.extend(GroupRow.from_item(from_ddb(i)) for i in resp.get("Items", []))
        if not resp.get("LastEvaluatedKey"):
            return rows
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
