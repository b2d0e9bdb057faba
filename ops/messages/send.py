"""Access pattern 3, first half: send a message, creating the pair's group when they have none.

A new pair's group is created in ONE transaction: the pair marker, both group rows and the
first message. The marker (pk ``PAIR#<group>``, sk ``PAIR``) is the only key of a new group
that is known in advance: group rows are keyed by their last_reply_at and the first message
by its created_at, so a condition on them proves nothing about a concurrent sender. The
marker's ``attribute_not_exists(pk)`` does: of two senders racing to create the same pair,
DynamoDB commits one transaction and cancels the other, which then appends instead.
The marker is outside the data model's read paths on purpose: its pk prefix is neither
``MSG#`` nor ``GRP#`` and it has no ``message_group_uuid``, so no read pattern, the GSI and
the stream consumer (which acts on ``MSG#`` only) never see it.

Appending writes only the ``MSG#`` item; the stream consumer (``ops.messages.fanout``) moves
both group rows to it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from ops.aws import aws_errors, cancellation_codes, error_code, pause, translate
from ops.errors import CloudError, ConfigError, NotFoundError, RefusedError
from ops.messages.model import GSI_NAME, Message, PairMarker, Person, group_rows_for, group_uuid_for, iso, now_iso, pair_marker_for
from ops.messages.read import group_rows

MAX_MESSAGE_CHARS = 4000  # a chat line, not a document; DynamoDB's 400 KB item limit is far above
SEND_ATTEMPTS = 8  # colliding microseconds and transaction conflicts are rare; a loop forever is not an answer


@dataclass(frozen=True)
class SendResult:
    group_uuid: str
    created: bool  # this call created the group (marker, both group rows and this first message)
    message: Message
    attempts: int = 1


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


def _marker(client: Any, table: str, group_uuid: str) -> PairMarker | None:
    # strongly consistent: right after another sender created the group, the GSI may lag, this does not
    key = PairMarker(group_uuid, "", ()).key()
    item = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
    return PairMarker.from_item(item) if item else None


def group_exists(client: Any, table: str, group_uuid: str, index: str = GSI_NAME) -> bool:
    """The marker says so; groups written before markers existed (seeds, older clients) have only rows."""
    return _marker(client, table, group_uuid) is not None or bool(group_rows(client, table, group_uuid, index))


def _check_participant(client: Any, table: str, group_uuid: str, user: Person, index: str) -> None:
    rows = group_rows(client, table, group_uuid, index)
    if any(r.owner_uuid == user.uuid for r in rows):
        return
    marker = _marker(client, table, group_uuid)
    if marker and user.uuid in marker.participant_uuids:
        return  # a group created a moment ago whose rows the GSI does not show yet
    if not rows and not marker:
        raise NotFoundError(f"there is no message group {group_uuid}")
    raise RefusedError(f"{user.handle} is not a participant of message group {group_uuid}: nothing was sent")


def _put_message(client: Any, table: str, msg: Message) -> None:
    # never overwrite a message written in the same microsecond: the caller retries with a new time
    client.put_item(TableName=table, Item=msg.to_item(), ConditionExpression="attribute_not_exists(pk)")


def _create_group(client: Any, table: str, msg: Message, sender: Person, receiver: Person) -> None:
    rows = group_rows_for(msg.message_group_uuid, sender, receiver, msg)
    kinds = [pair_marker_for(msg.message_group_uuid, sender, receiver, msg.created_at), *rows, msg]
    # the marker comes first: CancellationReasons[0] then tells "the group exists" from other failures
    client.transact_write_items(TransactItems=[{"Put": {"TableName": table, "Item": k.to_item(), "ConditionExpression": "attribute_not_exists(pk)"}} for k in kinds])


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
    (the sender must be one of its participants).
    """
    check_message_text(text)
    not_found = f"table {table!r} (or its index) does not exist: create it with `invoke ddb.schema-load`"
    with aws_errors(f"read message group {group_uuid}", not_found=not_found):
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
            code = error_code(err)
            reasons = cancellation_codes(err) if code == "TransactionCanceledException" else []
            if code == "ConditionalCheckFailedException":
                created_at = _later(created_at, explicit)  # a message of this group already has this microsecond
            elif reasons[:1] == ["ConditionalCheckFailed"]:
                exists = True  # the marker is there: the other participant created the group first; append
                if not explicit:
                    created_at = max(now_iso(), created_at)  # stored after their first message, so timed after it
            elif "ConditionalCheckFailed" in reasons:
                created_at = _later(created_at, explicit)  # a group row or message key is taken at this microsecond
            elif "TransactionConflict" in reasons or code in ("TransactionConflictException", "TransactionInProgressException"):
                pause(attempt)  # another transaction holds one of these items; try again shortly
            else:
                raise translate(err, f"store the message in group {group_uuid}", not_found=not_found) from None
    raise CloudError(f"could not store the message in group {group_uuid} after {SEND_ATTEMPTS} attempts (its keys kept colliding)")
