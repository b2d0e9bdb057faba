"""Access pattern 3, first half: send a message, creating the pair's group when they have none.

The pair's group is looked up in the pair index (``ops.messages.pairs``), whoever created it
and whatever its id. A new pair's group is created in ONE transaction: the pair entry, both
group rows and the first message. The entry is the only key of a new group that is known in
advance: group rows are keyed by their last_reply_at and the first message by its created_at,
so a condition on them proves nothing about a concurrent sender. The entry's
``attribute_not_exists(pk)`` does: of two senders racing to create the same pair, DynamoDB
commits one transaction and cancels the other, which then appends to the winner's group.
The entry is outside the data model's read paths on purpose: its pk prefix is neither ``MSG#``
nor ``GRP#`` and it has no ``message_group_uuid``, so no read pattern, the GSI and the stream
consumer (which acts on ``MSG#`` only) never see it.

Appending writes only the ``MSG#`` item; the stream consumer (``ops.messages.fanout``) moves
both group rows to it (every member's, in a named group). Into a named group
(``ops.messages.membership``) the message is put in one transaction with a check that the sender
is still a member, so a member removed while sending stores nothing.

With a ``cipher`` that encrypts (a stack with ``encryptMessages``), the text is sealed before it is
stored: a new group's data key is made first and its key item joins the creating transaction
(so a group never exists without its key), and an existing group's key is read from its key
item (made once when an older group has none). The group rows of a new group take the
message's sealed body as it is, exactly what the consumer copies for later messages.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from ops.aws import aws_errors, cancellation_codes, error_code, items, pause, translate
from ops.errors import CloudError, ConfigError, NotFoundError, RefusedError
from ops.messages.bodies import Cipher, body_of, with_body
from ops.messages.model import (
    GRP_PREFIX,
    GSI_NAME,
    Membership,
    Message,
    Person,
    group_rows_for,
    group_uuid_for,
    iso,
    now_iso,
    pair_entry_for,
)
from ops.messages.pairs import find_group, get_entry
from ops.messages.read import get_membership, group_rows

MAX_MESSAGE_CHARS = 4000  # a chat line, not a document; DynamoDB's 400 KB item limit is far above
SEND_ATTEMPTS = 8  # colliding microseconds and transaction conflicts are rare; a loop forever is not an answer


@dataclass(frozen=True)
class SendResult:
    group_uuid: str
    created: bool  # this call created the group (pair entry, both group rows and this first message)
    message: Message
    attempts: int = 1
    found_by: str | None = None  # how an existing group was found: "entry" (the pair index) or "rows"
    entry_added: bool = False  # this call indexed a group that had no pair entry yet


def check_message_text(text: str) -> None:
    if not text or not text.strip():
        raise ConfigError("a message needs some text")
    if len(text) > MAX_MESSAGE_CHARS:
        raise ConfigError(f"a message holds at most {MAX_MESSAGE_CHARS} characters, this one has {len(text)}")


def _normalised(now: str) -> str:
    try:
        return iso(datetime.fromisoformat(now))
    except ValueError as err:
        raise ConfigError(f"invalid timestamp {now!r}: {err} (give ISO-8601 with a UTC offset)") from None


def _later(ts: str, explicit: bool) -> str:
    """A timestamp strictly after ``ts``: the clock's when it moved on, else one microsecond more."""
    bumped = iso(datetime.fromisoformat(ts) + timedelta(microseconds=1))
    return bumped if explicit else max(now_iso(), bumped)


def _sender_row(client: Any, table: str, group_uuid: str, user: Person) -> bool:
    """Whether ``user`` has a row of the group, read from the base table (strongly consistent)."""
    request = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "FilterExpression": "message_group_uuid = :g",
        "ExpressionAttributeValues": {":pk": {"S": GRP_PREFIX + user.uuid}, ":g": {"S": group_uuid}},
        "ConsistentRead": True,
        "ProjectionExpression": "pk",
    }
    return any(True for _ in items(client, "query", f"Query {GRP_PREFIX}{user.uuid} on {table}", "Items", **request))


def _not_a_member(user: Person, named: Membership) -> RefusedError:
    return RefusedError(
        f"{user.handle} is not a member of group {named.group_name!r} ({named.group}): nothing was sent"
    )


def _check_participant(client: Any, table: str, group_uuid: str, user: Person, index: str) -> Membership | None:
    """Refuses a sender who is not in the group; a named group's membership item (returned) decides, not the rows."""
    named = get_membership(client, table, group_uuid)
    if named is not None:
        if not named.has(user.uuid):
            raise _not_a_member(user, named)
        return named
    rows = group_rows(client, table, group_uuid, index)
    if any(r.owner_uuid == user.uuid for r in rows):
        return None
    if _sender_row(client, table, group_uuid, user):
        return None  # a group created a moment ago whose rows the GSI does not show yet
    if not rows:
        raise NotFoundError(f"there is no message group {group_uuid}")
    raise RefusedError(f"{user.handle} is not a participant of message group {group_uuid}: nothing was sent")


def _stored(client: Any, table: str, msg: Message, cipher: Cipher | None, key: bytes | None) -> dict[str, Any]:
    """The message item as it is written: sealed under ``key`` when the stack encrypts."""
    item = msg.to_item()
    return cipher.seal(client, table, item, key=key) if cipher is not None and key is not None else item


def _put_message(client: Any, table: str, item: dict[str, Any]) -> None:
    # never overwrite a message written in the same microsecond: the caller retries with a new time
    client.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)")


def _put_member_message(client: Any, table: str, item: dict[str, Any], named: Membership, sender: Person) -> bool:
    """A named group's message, stored only while the sender is a member (checked in the same transaction).

    False when a message of the group already has this microsecond (the caller retries with a new
    time); a sender removed since the membership was read is refused, and nothing is stored.
    """
    try:
        client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}},
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": Membership.key_of(named.group),
                        "ConditionExpression": "attribute_exists(#m.#u)",
                        "ExpressionAttributeNames": {"#m": "members", "#u": sender.uuid},
                    }
                },
            ]
        )
        return True
    except ClientError as err:
        reasons = cancellation_codes(err) if error_code(err) == "TransactionCanceledException" else []
        if reasons[1:2] == ["ConditionalCheckFailed"]:
            raise _not_a_member(sender, named) from None
        if reasons[:1] == ["ConditionalCheckFailed"]:
            return False
        raise  # a conflict or another error: the send loop's handling


def _create_group(
    client: Any,
    table: str,
    msg: Message,
    item: dict[str, Any],
    sender: Person,
    receiver: Person,
    key_item: dict[str, Any] | None,
) -> None:
    rows = [
        with_body(row.to_item(), body_of(item)) for row in group_rows_for(msg.message_group_uuid, sender, receiver, msg)
    ]
    items = [pair_entry_for(msg.message_group_uuid, sender, receiver, msg.created_at).to_item(), *rows, item]
    # the entry comes first: CancellationReasons[0] then tells "the pair has a group" from other failures
    puts = [{"Put": {"TableName": table, "Item": i, "ConditionExpression": "attribute_not_exists(pk)"}} for i in items]
    if key_item is not None:
        # unconditional: the pair entry already guards the creation, and every sealed body carries its own key copy
        puts.append({"Put": {"TableName": table, "Item": key_item}})
    client.transact_write_items(TransactItems=puts)


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
    cipher: Cipher | None = None,
) -> SendResult:
    """Access pattern 3: create the pair's group with its first message, or append to the group.

    Give ``receiver`` (the group is the pair's, found whoever created it, created when missing)
    or only ``group_uuid`` (the sender must be one of its participants). With an encrypting
    ``cipher`` the text is stored sealed under the group's data key.
    """
    check_message_text(text)
    not_found = f"table {table!r} (or its index) does not exist: create it with `invoke ddb.schema-load`"
    found_by, entry_added = None, False
    named: Membership | None = None  # a named group's membership: a message goes in only while its sender is a member
    with aws_errors("look up the message group", not_found=not_found):
        if receiver is not None:
            lookup = find_group(client, table, sender, receiver, add_entry=True)
            pair_group = lookup.group_uuid or group_uuid_for(sender.uuid, receiver.uuid)
            if group_uuid is not None and group_uuid != pair_group:
                raise ConfigError(
                    f"group {group_uuid} is not the group of {sender.handle} and {receiver.handle} ({pair_group})"
                )
            exists, group_uuid = lookup.group_uuid is not None, pair_group
            found_by, entry_added = lookup.found_by, lookup.entry_added
        elif group_uuid is not None:
            named = _check_participant(client, table, group_uuid, sender, index)
            exists = True
        else:
            raise ConfigError("say who gets the message: a receiver or a group id")

    sealing = cipher is not None and cipher.encrypting
    key: bytes | None = None  # the group's encrypted data key, when the text is sealed
    key_item: dict[str, Any] | None = None  # a new group's key item, written with the group
    if sealing:
        assert cipher is not None
        with aws_errors(f"get the data key of group {group_uuid}", not_found=not_found):
            key = cipher.group_key(client, table, group_uuid) if exists else cipher.new_group_key(table, group_uuid)
        key_item = None if exists else cipher.key_item(group_uuid, key).to_item()

    explicit = now is not None
    created_at = _normalised(now) if now is not None else now_iso()
    for attempt in range(1, SEND_ATTEMPTS + 1):
        msg = Message(group_uuid, created_at, str(uuid.uuid4()), text, sender.uuid, sender.display_name, sender.handle)
        try:
            item = _stored(client, table, msg, cipher, key)
            if exists and named is not None:
                if not _put_member_message(client, table, item, named, sender):
                    created_at = _later(created_at, explicit)  # a message of this group already has this microsecond
                    continue
            elif exists:
                _put_message(client, table, item)
            else:
                assert receiver is not None
                _create_group(client, table, msg, item, sender, receiver, key_item)
            return SendResult(
                group_uuid,
                created=not exists,
                message=msg,
                attempts=attempt,
                found_by=found_by if exists else None,
                entry_added=entry_added,
            )
        except ClientError as err:
            code = error_code(err)
            reasons = cancellation_codes(err) if code == "TransactionCanceledException" else []
            if code == "ConditionalCheckFailedException":
                created_at = _later(created_at, explicit)  # a message of this group already has this microsecond
            elif reasons[:1] == ["ConditionalCheckFailed"]:
                # the pair entry is there: the other participant created the group first; append to theirs
                assert receiver is not None
                with aws_errors("look up the message group", not_found=not_found):
                    entry = get_entry(client, table, sender.uuid, receiver.uuid)
                if entry is None:  # pragma: no cover - an entry is never deleted by this suite
                    raise CloudError(
                        f"the pair entry of {sender.handle} and {receiver.handle} vanished while sending: try again"
                    ) from None
                exists, group_uuid, found_by = True, entry.group_uuid, "entry"
                if sealing:  # the data key made for our group is dropped with it: the winner's group has its own
                    assert cipher is not None
                    with aws_errors(f"get the data key of group {group_uuid}", not_found=not_found):
                        key, key_item = cipher.group_key(client, table, group_uuid), None
                if not explicit:
                    created_at = max(now_iso(), created_at)  # stored after their first message, so timed after it
            elif "ConditionalCheckFailed" in reasons:
                created_at = _later(created_at, explicit)  # a group row or message key is taken at this microsecond
            elif "TransactionConflict" in reasons or code in (
                "TransactionConflictException",
                "TransactionInProgressException",
            ):
                pause(attempt)  # another transaction holds one of these items; try again shortly
            else:
                raise translate(err, f"store the message in group {group_uuid}", not_found=not_found) from None
    raise CloudError(
        f"could not store the message in group {group_uuid} after {SEND_ATTEMPTS} attempts (its keys kept colliding)"
    )
