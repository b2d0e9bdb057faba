"""Named groups of 2 to 50 members: their membership item, creating one, adding and removing members.

The membership is stored once, in the group's membership item (pk ``MSG#<group>``, sk ``MEMBERS``,
``ops.messages.model.Membership``); each member has one group row (``named_group_row``) that the
stream consumer moves to every new message while its owner is a member (``ops.messages.fanout``
checks the membership in each move's transaction). Every change of the membership is one
transaction with the rows it implies:

- creating: the membership item, one row per member and the group's first message (and, on a
  stack that encrypts messages, the group's key item), all or nothing;
- adding: the member's entry and their row, pointing at the group's newest message;
- removing: the member's entry out, and their row(s) deleted. A stream record that arrives
  later finds no row of theirs to move, and a move already under way is cancelled by its
  membership check, so the row never comes back; their messages stay in the group's history.

A pair's conversation (``ops.messages.send`` with a receiver) is a group of two without a
membership item: it keeps its pair entry and nothing here applies to it.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from ops.aws import aws_errors, call, cancellation_codes, error_code, items, pause, translate
from ops.errors import CloudError, ConfigError, NotFoundError, RefusedError
from ops.messages.bodies import Cipher, body_of, with_body
from ops.messages.fanout import move_group_rows
from ops.messages.model import (
    GRP_PREFIX,
    GSI_NAME,
    MAX_MEMBERS,
    MIN_MEMBERS,
    MSG_PREFIX,
    TIME_CEILING,
    Membership,
    Message,
    Person,
    instant,
    iso,
    named_group_row,
    now_iso,
)
from ops.messages.read import get_membership
from ops.messages.send import check_message_text

MAX_NAME_CHARS = 100
CHANGE_ATTEMPTS = 8  # a change races a consumer's move of the same row at most a few times
MEMBERS = "#m"
NAMES = {MEMBERS: "members"}


@dataclass(frozen=True)
class GroupCreated:
    group_uuid: str
    membership: Membership
    message: Message  # the group's first message (what every member's row carries)
    attempts: int = 1


@dataclass(frozen=True)
class MemberChange:
    group_uuid: str
    group_name: str
    person: Person
    action: str  # added | removed | already-member | not-member
    members: int  # how many members the group has afterwards
    row_at: str | None = None  # added: the message the new row points at
    rows_deleted: int = 0  # removed: their rows deleted with the membership change
    caught_up: bool = False  # added: a message came in meanwhile and the rows were moved to it


def check_name(name: str) -> str:
    clean = (name or "").strip()
    if not clean:
        raise ConfigError("a group needs a name: --name NAME")
    if len(clean) > MAX_NAME_CHARS:
        raise ConfigError(f"a group's name holds at most {MAX_NAME_CHARS} characters, this one has {len(clean)}")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in clean):
        raise ConfigError("a group's name cannot hold control or format characters: give plain text")
    return clean


def members_of(creator: Person, others: Iterable[Person]) -> list[Person]:
    """The creator and the others, each once, in the order given; 2 to 50 of them or a ConfigError."""
    seen: dict[str, Person] = {creator.uuid: creator}
    for p in others:
        seen.setdefault(p.uuid, p)
    if not MIN_MEMBERS <= len(seen) <= MAX_MEMBERS:
        raise ConfigError(f"a group has {MIN_MEMBERS} to {MAX_MEMBERS} members (the creator included), not {len(seen)}")
    return list(seen.values())


# ---------------------------------------------------------------- reading


def newest_message_item(client: Any, table: str, group: str) -> dict[str, Any] | None:
    """The group's newest message as stored (strongly consistent; never the key or membership item)."""
    resp = call(
        client.query,
        f"Query {MSG_PREFIX}{group} on {table}",
        TableName=table,
        KeyConditionExpression="pk = :pk AND sk < :ceiling",
        ExpressionAttributeValues={":pk": {"S": MSG_PREFIX + group}, ":ceiling": {"S": TIME_CEILING}},
        ScanIndexForward=False,
        Limit=1,
        ConsistentRead=True,
    )
    found = resp.get("Items") or []
    return found[0] if found else None


def rows_of(client: Any, table: str, owner: str, group: str) -> list[dict[str, Any]]:
    """``owner``'s rows of ``group`` as stored, from the base table (strongly consistent, paged)."""
    request = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "FilterExpression": "message_group_uuid = :g",
        "ExpressionAttributeValues": {":pk": {"S": GRP_PREFIX + owner}, ":g": {"S": group}},
        "ConsistentRead": True,
    }
    return list(items(client, "query", f"Query {GRP_PREFIX}{owner} on {table}", "Items", **request))


def _missing(table: str) -> str:
    return f"table {table!r} (or its index) does not exist: create it with `invoke ddb.schema-load`"


def _named(client: Any, table: str, group: str) -> Membership:
    m = get_membership(client, table, group)
    if m is None:
        raise NotFoundError(
            f"there is no named group {group} in table {table!r} (members are managed for groups made by "
            "`invoke ddb.create-group`; a conversation of two made by send-message stays a pair)"
        )
    return m


# ---------------------------------------------------------------- creating


def _later(ts: str) -> str:
    return max(now_iso(), iso(datetime.fromisoformat(ts) + timedelta(microseconds=1)))


def create_group(
    client: Any,
    table: str,
    creator: Person,
    name: str,
    others: Iterable[Person],
    *,
    text: str | None = None,
    now: str | None = None,
    cipher: Cipher | None = None,
) -> GroupCreated:
    """A named group: its membership, a row per member and its first message (from ``creator``), in one transaction."""
    name = check_name(name)
    members = members_of(creator, others)
    group = str(uuid.uuid4())  # a named group is not a pair's: nothing to derive it from
    text = text or f"{creator.display_name} created the group {name}"
    check_message_text(text)
    created_at = iso(instant(now)) if now else now_iso()
    membership = Membership(group, name, created_at, creator.uuid, {p.uuid: Membership.entry(p) for p in members})
    key: bytes | None = None
    key_item: dict[str, Any] | None = None
    what = f"create group {name!r}"
    with aws_errors(what, not_found=_missing(table)):
        if cipher is not None and cipher.encrypting:
            key = cipher.new_group_key(table, group)
            key_item = cipher.key_item(group, key).to_item()  # type: ignore[attr-defined]
    for attempt in range(1, CHANGE_ATTEMPTS + 1):
        msg = Message(group, created_at, str(uuid.uuid4()), text, creator.uuid, creator.display_name, creator.handle)
        item = msg.to_item()
        if key is not None and cipher is not None:
            item = cipher.seal(client, table, item, key=key)
        rows = [with_body(named_group_row(p, group, name, msg).to_item(), body_of(item)) for p in members]
        puts = [
            {"Put": {"TableName": table, "Item": i, "ConditionExpression": "attribute_not_exists(pk)"}}
            for i in (Membership(group, name, msg.created_at, creator.uuid, membership.members).to_item(), item, *rows)
        ]
        if key_item is not None:
            puts.append({"Put": {"TableName": table, "Item": key_item}})
        try:
            client.transact_write_items(TransactItems=puts)
            return GroupCreated(group, Membership.from_item(puts[0]["Put"]["Item"]), msg, attempt)
        except ClientError as err:
            reasons = cancellation_codes(err)
            if "ConditionalCheckFailed" in reasons:
                created_at = _later(created_at)  # a member already has a row at this microsecond
            elif "TransactionConflict" in reasons or error_code(err) in (
                "TransactionConflictException",
                "TransactionInProgressException",
            ):
                pause(attempt)
            else:
                raise translate(err, what, not_found=_missing(table)) from None
    raise CloudError(f"could not create group {name!r} after {CHANGE_ATTEMPTS} attempts (its keys kept colliding)")


# ---------------------------------------------------------------- changing


def add_member(client: Any, table: str, group: str, person: Person, *, index: str = GSI_NAME) -> MemberChange:
    """Add ``person`` to a named group with a row at its newest message; adding a member again changes nothing."""
    what = f"add {person.handle} to group {group}"
    with aws_errors(what, not_found=_missing(table)):
        for attempt in range(1, CHANGE_ATTEMPTS + 1):
            m = _named(client, table, group)
            if m.has(person.uuid):
                return MemberChange(group, m.group_name, person, "already-member", len(m.members))
            if len(m.members) >= MAX_MEMBERS:
                raise RefusedError(
                    f"group {m.group_name!r} has {MAX_MEMBERS} members already, the most a group holds: "
                    f"remove one first (nothing was changed)"
                )
            newest = newest_message_item(client, table, group)
            if newest is None:
                raise NotFoundError(f"group {group} has no messages: `invoke ddb.doctor` tells what is wrong with it")
            last = Message.from_item(newest)
            row = with_body(named_group_row(person, group, m.group_name, last).to_item(), body_of(newest))
            try:
                client.transact_write_items(
                    TransactItems=[
                        {
                            "Update": {
                                "TableName": table,
                                "Key": Membership.key_of(group),
                                "UpdateExpression": f"SET {MEMBERS}.#u = :entry",
                                "ConditionExpression": f"attribute_exists(pk) AND attribute_not_exists({MEMBERS}.#u) "
                                f"AND size({MEMBERS}) < :most",
                                "ExpressionAttributeNames": NAMES | {"#u": person.uuid},
                                "ExpressionAttributeValues": {
                                    ":entry": {"M": {k: {"S": v} for k, v in Membership.entry(person).items()}},
                                    ":most": {"N": str(MAX_MEMBERS)},
                                },
                            }
                        },
                        {"Put": {"TableName": table, "Item": row, "ConditionExpression": "attribute_not_exists(pk)"}},
                    ]
                )
            except ClientError as err:
                if error_code(err) not in ("TransactionCanceledException", "TransactionConflictException"):
                    raise
                pause(attempt)  # the membership changed meanwhile: read it again
                continue
            # a message stored between reading the newest and this change may have been fanned out
            # before the new row existed: move the rows to it now (a no-op when nothing came in)
            caught_up = False
            latest = newest_message_item(client, table, group)
            if latest is not None and instant(latest["sk"]["S"]) > instant(last.created_at):
                caught_up = move_group_rows(client, table, group, latest["sk"]["S"], body_of(latest), index).moved > 0
            return MemberChange(
                group, m.group_name, person, "added", len(m.members) + 1, row_at=last.created_at, caught_up=caught_up
            )
    raise CloudError(f"could not {what} after {CHANGE_ATTEMPTS} attempts (the group kept changing): try again")


def remove_member(client: Any, table: str, group: str, person: Person) -> MemberChange:
    """Remove ``person`` from a named group and delete their row(s) in the same transaction; their messages stay."""
    what = f"remove {person.handle} from group {group}"
    with aws_errors(what, not_found=_missing(table)):
        for attempt in range(1, CHANGE_ATTEMPTS + 1):
            m = _named(client, table, group)
            if not m.has(person.uuid):
                return MemberChange(group, m.group_name, person, "not-member", len(m.members))
            if len(m.members) <= MIN_MEMBERS:
                raise RefusedError(
                    f"group {m.group_name!r} has {MIN_MEMBERS} members, the fewest a group holds: nothing was changed"
                )
            rows = rows_of(client, table, person.uuid, group)
            deletes = [
                {
                    "Delete": {
                        "TableName": table,
                        "Key": {"pk": r["pk"], "sk": r["sk"]},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                }
                for r in rows
            ]
            try:
                client.transact_write_items(
                    TransactItems=[
                        {
                            "Update": {
                                "TableName": table,
                                "Key": Membership.key_of(group),
                                "UpdateExpression": f"REMOVE {MEMBERS}.#u",
                                "ConditionExpression": f"attribute_exists({MEMBERS}.#u) AND size({MEMBERS}) > :fewest",
                                "ExpressionAttributeNames": NAMES | {"#u": person.uuid},
                                "ExpressionAttributeValues": {":fewest": {"N": str(MIN_MEMBERS)}},
                            }
                        },
                        *deletes,
                    ]
                )
            except ClientError as err:
                if error_code(err) not in ("TransactionCanceledException", "TransactionConflictException"):
                    raise
                pause(attempt)  # the consumer moved their row (or the membership changed) meanwhile: read again
                continue
            return MemberChange(group, m.group_name, person, "removed", len(m.members) - 1, rows_deleted=len(rows))
    raise CloudError(f"could not {what} after {CHANGE_ATTEMPTS} attempts (the group kept changing): try again")
