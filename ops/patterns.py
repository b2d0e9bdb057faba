"""The table's data model and its access patterns, for tasks, the stream consumer and any backend.

Items (DESIGN.md):
  message    pk ``MSG#<group>``  sk created_at     message_uuid, message, user_uuid/display_name/handle (sender)
  group row  pk ``GRP#<owner>``  sk last_reply_at  message_group_uuid, message, user_uuid/display_name/handle (the other)

This module is shipped inside the stream consumer's Lambda package: it imports only the
standard library, botocore, ``ops.errors`` and ``ops.backoff`` (no yaml, no psycopg).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from botocore.exceptions import ClientError

from ops.backoff import delay
from ops.backoff import error_code as _error_code
from ops.errors import CloudError, ConfigError, NotFoundError, RefusedError

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
    return dt.astimezone(UTC).isoformat(timespec="microseconds")


def now_iso() -> str:
    return iso(datetime.now(UTC))


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
    return [GroupRow.from_item(from_ddb(i)) for i in group_row_items(client, table, group_uuid, index)]


# ---------------------------------------------------------------- pattern 3: send a message
#
# A new pair's group is created in ONE transaction: the pair marker, both group rows and the
# first message. The marker (pk ``PAIR#<group>``, sk ``PAIR``) is the only key of a new group
# that is known in advance: group rows are keyed by their last_reply_at and the first message
# by its created_at, so a condition on them proves nothing about a concurrent sender. The
# marker's ``attribute_not_exists(pk)`` does: of two senders racing to create the same pair,
# DynamoDB commits one transaction and cancels the other, which then appends instead.
# The marker is outside the data model's read paths on purpose: its pk prefix is neither
# ``MSG#`` nor ``GRP#`` and it has no ``message_group_uuid``, so no read pattern, the GSI and
# the stream consumer (which acts on ``MSG#`` only) never see it.

MAX_MESSAGE_CHARS = 4000  # a chat line, not a document; DynamoDB's 400 KB item limit is far above
PAIR_PREFIX = "PAIR#"
PAIR_SK = "PAIR"
SEND_ATTEMPTS = 8  # colliding microseconds and transaction conflicts are rare; a loop forever is not an answer
MOVE_ATTEMPTS = 5


@dataclass(frozen=True)
class SendResult:
    group_uuid: str
    created: bool  # this call created the group (marker, both group rows and this first message)
    message: Message
    attempts: int = 1


@dataclass
class MoveResult:
    """What ``move_group_rows`` did for one message."""

    moved: int = 0  # group rows moved to the message
    skipped: int = 0  # rows already at or past the message (duplicate or late record)
    deduplicated: int = 0  # extra rows of one participant removed
    retries: int = 0

    @property
    def action(self) -> str:
        if self.moved:
            return "moved"
        return "skipped" if self.skipped else "no-group-rows"


def pair_marker_key(group_uuid: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": PAIR_PREFIX + group_uuid}, "sk": {"S": PAIR_SK}}


def pair_marker_item(group_uuid: str, a: Person, b: Person, created_at: str) -> dict[str, Any]:
    """The item that exists exactly when the pair's group exists (DynamoDB JSON)."""
    return pair_marker_key(group_uuid) | {
        "created_at": {"S": created_at},
        "participant_uuids": {"SS": sorted({a.uuid, b.uuid})},
    }


def check_message_text(text: str) -> None:
    if not text or not text.strip():
        raise ConfigError("a message needs some text")
    if len(text) > MAX_MESSAGE_CHARS:
        raise ConfigError(f"a message holds at most {MAX_MESSAGE_CHARS} characters, this one has {len(text)}")


def _cloud_error(err: Exception, doing: str, table: str) -> CloudError | NotFoundError:
    if _error_code(err) == "ResourceNotFoundException":
        return NotFoundError(f"table {table!r} (or its index) does not exist: create it with `invoke ddb.schema-load`")
    detail = getattr(err, "response", {}).get("Error", {}).get("Message", "") or str(err)
    return CloudError(f"DynamoDB refused to {doing}: {_error_code(err)}: {detail}")


def _cancellation_codes(err: Exception) -> list[str]:
    return [str(r.get("Code")) for r in getattr(err, "response", {}).get("CancellationReasons", []) or []]


def _normalised(now: str) -> str:
    try:
        return iso(datetime.fromisoformat(now))
    except ValueError as err:
        raise ConfigError(f"invalid timestamp {now!r}: {err} (give ISO-8601 with a UTC offset)") from None


def _later(ts: str, explicit: bool) -> str:
    """A timestamp strictly after ``ts``: the clock's when it moved on, else one microsecond more."""
    bumped = iso(datetime.fromisoformat(ts) + timedelta(microseconds=1))
    return bumped if explicit else max(now_iso(), bumped)


def _backoff(attempt: int) -> None:
    # jittered, so two writers that conflicted do not collide again in lockstep
    time.sleep(delay(attempt, base=0.02))


def _marker(client: Any, table: str, group_uuid: str) -> dict[str, Any] | None:
    # strongly consistent: right after another sender created the group, the GSI may lag, this does not
    return client.get_item(TableName=table, Key=pair_marker_key(group_uuid), ConsistentRead=True).get("Item")


def group_exists(client: Any, table: str, group_uuid: str, index: str = GSI_NAME) -> bool:
    """The marker says so; groups written before markers existed (seeds, older clients) have only rows."""
    return _marker(client, table, group_uuid) is not None or bool(group_rows(client, table, group_uuid, index))


def _check_participant(client: Any, table: str, group_uuid: str, user: Person, index: str) -> None:
    rows = group_rows(client, table, group_uuid, index)
    if any(r.owner_uuid == user.uuid for r in rows):
        return
    marker = _marker(client, table, group_uuid)
    if marker and user.uuid in marker.get("participant_uuids", {}).get("SS", []):
        return  # a group created a moment ago whose rows the GSI does not show yet
    if not rows and not marker:
        raise NotFoundError(f"there is no message group {group_uuid}")
    raise RefusedError(f"{user.handle} is not a participant of message group {group_uuid}: nothing was sent")


def _put_message(client: Any, table: str, msg: Message) -> None:
    # never overwrite a message written in the same microsecond: the caller retries with a new time
    client.put_item(TableName=table, Item=to_ddb(msg.item()), ConditionExpression="attribute_not_exists(pk)")


def _create_group(client: Any, table: str, msg: Message, sender: Person, receiver: Person) -> None:
    rows = group_rows_for(msg.message_group_uuid, sender, receiver, msg)
    items = [pair_marker_item(msg.message_group_uuid, sender, receiver, msg.created_at), *(to_ddb(r.item()) for r in rows), to_ddb(msg.item())]
    # the marker comes first: CancellationReasons[0] then tells "the group exists" from other failures
    client.transact_write_items(TransactItems=[{"Put": {"TableName": table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}} for item in items])


def send_message(
    client: Any,
    table: str,
    sender: Person,
    text: str,
    *,
    receiver: Person | None = None,
    group_uuid: str | None = None,
    now: str | None = None,
    index: str = GSI_NAME,
) -> SendResult:
    """Access pattern 3: create the pair's group with its first message, or append to the group.

    Give ``receiver`` (the group is the pair's, created when missing) or only ``group_uuid``
    (the sender must be one of its participants). Appending writes only the ``MSG#`` item:
    the stream consumer moves both group rows to it.
    """
    check_message_text(text)
    try:
        if receiver is not None:
            pair = group_uuid_for(sender.uuid, receiver.uuid)
            if group_uuid is not None and group_uuid != pair:
                raise ConfigError(f"group {group_uuid} is not the group of {sender.handle} and {receiver.handle} ({pair})")
            group_uuid = pair
            exists = group_exists(client, table, group_uuid, index)
        elif group_uuid is not None:
            _check_participant(client, table, group_uuid, sender, index)
            exists = True
        else:
            raise ConfigError("say who gets the message: a receiver or a group id")
    except ClientError as err:
        raise _cloud_error(err, f"read message group {group_uuid}", table) from None

    explicit = now is not None
    created_at = _normalised(now) if now is not None else now_iso()
    for attempt in range(1, SEND_ATTEMPTS + 1):
        msg = Message(group_uuid, created_at, str(uuid.uuid4()), text, sender.uuid, sender.display_name, sender.handle)
        try:
            if exists:
                _put_message(client, table, msg)
            else:
                assert receiver is not None
                _create_group(client, table, msg, sender, receiver)
            return SendResult(group_uuid, created=not exists, message=msg, attempts=attempt)
        except ClientError as err:
            code = _error_code(err)
            reasons = _cancellation_codes(err) if code == "TransactionCanceledException" else []
            if code == "ConditionalCheckFailedException":
                created_at = _later(created_at, explicit)  # a message of this group already has this microsecond
            elif reasons[:1] == ["ConditionalCheckFailed"]:
                exists = True  # the marker is there: the other participant created the group first; append
                if not explicit:
                    created_at = max(now_iso(), created_at)  # stored after their first message, so timed after it
            elif "ConditionalCheckFailed" in reasons:
                created_at = _later(created_at, explicit)  # a group row or message key is taken at this microsecond
            elif "TransactionConflict" in reasons or code in ("TransactionConflictException", "TransactionInProgressException"):
                _backoff(attempt)  # another transaction holds one of these items; try again shortly
            else:
                raise _cloud_error(err, f"store the message in group {group_uuid}", table) from None
    raise CloudError(f"could not store the message in group {group_uuid} after {SEND_ATTEMPTS} attempts (its keys kept colliding)")


# ---------------------------------------------------------------- pattern 3, second half: move the group rows


def group_row_items(client: Any, table: str, group_uuid: str, index: str = GSI_NAME) -> list[dict[str, Any]]:
    """The group rows of a group as stored (DynamoDB JSON, every attribute), through the GSI."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": table,
        "IndexName": index,
        "KeyConditionExpression": "message_group_uuid = :g",
        "ExpressionAttributeValues": {":g": {"S": group_uuid}},
    }
    while True:
        resp = client.query(**kwargs)
        items.extend(resp.get("Items", []))
        if not resp.get("LastEvaluatedKey"):
            return items
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def _delete_if_there(client: Any, table: str, item: dict[str, Any]) -> bool:
    try:
        client.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]}, ConditionExpression="attribute_exists(pk)")
        return True
    except ClientError as err:
        if _error_code(err) == "ConditionalCheckFailedException":
            return False  # already gone (the GSI showed a row that had just moved)
        raise


def _move_row(client: Any, table: str, row: dict[str, Any], created_at: str, text: str) -> None:
    moved = dict(row) | {"sk": {"S": created_at}, "message": {"S": text}}
    # one transaction: the participant has exactly one row before and after, never zero or two
    client.transact_write_items(
        TransactItems=[
            {"Delete": {"TableName": table, "Key": {"pk": row["pk"], "sk": row["sk"]}, "ConditionExpression": "attribute_exists(pk)"}},
            {"Put": {"TableName": table, "Item": moved, "ConditionExpression": "attribute_not_exists(pk)"}},
        ]
    )


def move_group_rows(client: Any, table: str, group_uuid: str, created_at: str, text: str, index: str = GSI_NAME) -> MoveResult:
    """Move every participant's row of a group to a message, never back in time.

    A row already at or past ``created_at`` stays (a duplicate or late stream record); extra
    rows of one participant (left by older, non-atomic writers) are removed, keeping the newest.
    A move that loses a race with a concurrent move is re-read and retried; ``ClientError``
    escapes after ``MOVE_ATTEMPTS`` so the caller can report the record as failed.
    """
    result = MoveResult()
    for attempt in range(1, MOVE_ATTEMPTS + 1):
        by_owner: dict[str, list[dict[str, Any]]] = {}
        for item in group_row_items(client, table, group_uuid, index):
            by_owner.setdefault(item["pk"]["S"], []).append(item)
        conflict: ClientError | None = None
        for rows in by_owner.values():
            rows.sort(key=lambda i: i["sk"]["S"], reverse=True)
            newest, extras = rows[0], rows[1:]
            result.deduplicated += sum(_delete_if_there(client, table, extra) for extra in extras)
            if newest["sk"]["S"] >= created_at:
                result.skipped += 1
                continue
            try:
                _move_row(client, table, newest, created_at, text)
                result.moved += 1
            except ClientError as err:
                if _error_code(err) not in ("TransactionCanceledException", "TransactionConflictException"):
                    raise
                conflict = err  # moved by someone else meanwhile, or the GSI was behind: re-read
        if conflict is None:
            return result
        if attempt == MOVE_ATTEMPTS:
            raise conflict
        result.retries += 1
        _backoff(attempt)
    return result
