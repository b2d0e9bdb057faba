"""The pair index: one group per pair of users, whoever created it.

A pair entry (pk ``PAIR#<lo uuid>#<hi uuid>``, sk ``PAIR``) names the group of two users, so
finding a pair's group is one strongly consistent ``GetItem``. It is also what keeps a pair to
one group when two senders start the same conversation at once: creating a group puts the
entry with ``attribute_not_exists(pk)`` in the same transaction as the group's first items, so
DynamoDB lets one creator through and cancels the other, which then appends.

Tables filled by other writers (the original backend makes random group ids with a non-atomic
batch and no entry) have groups without entries. Until ``ddb.migrate`` has indexed them, the
lookup falls back to reading both users' group rows (paged, strongly consistent) and, when the
caller may write, adds the missing entry, so the fallback is paid once per pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ops.aws import call, error_code, items
from ops.messages.model import GRP_PREFIX, GroupRow, PairEntry, Person, instant_or_never, pair_entry_for


@dataclass(frozen=True)
class PairLookup:
    """Where a pair's group was found: ``entry`` (the index), ``rows`` (the fallback) or nowhere."""

    group_uuid: str | None
    found_by: str | None  # "entry" | "rows" | None
    other_groups: tuple[str, ...] = ()  # further groups of the same pair (made by non-atomic writers): for the doctor
    entry_added: bool = False


def get_entry(client: Any, table: str, user_a: str, user_b: str) -> PairEntry | None:
    # strongly consistent: right after another sender created the group, this already sees it
    item = call(
        client.get_item,
        f"GetItem pair entry on {table}",
        TableName=table,
        Key=PairEntry.key_of(user_a, user_b),
        ConsistentRead=True,
    ).get("Item")
    return PairEntry.from_item(item) if item else None


def put_entry(client: Any, table: str, entry: PairEntry) -> PairEntry:
    """Add an entry unless the pair has one already; returns the entry that is there afterwards."""
    try:
        client.put_item(TableName=table, Item=entry.to_item(), ConditionExpression="attribute_not_exists(pk)")
        return entry
    except ClientError as err:
        if error_code(err) != "ConditionalCheckFailedException":
            raise
    users = entry.participant_uuids
    return get_entry(client, table, users[0], users[1]) or entry


def rows_with(client: Any, table: str, owner: str, other: str) -> list[GroupRow]:
    """``owner``'s group rows whose other participant is ``other`` (paged; strongly consistent)."""
    request = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "FilterExpression": "user_uuid = :other",
        "ExpressionAttributeValues": {":pk": {"S": GRP_PREFIX + owner}, ":other": {"S": other}},
        "ConsistentRead": True,
    }
    return [
        GroupRow.from_item(i)
        for i in items(client, "query", f"Query {GRP_PREFIX}{owner} on {table}", "Items", **request)
    ]


def _newest_first(groups: dict[str, str]) -> list[str]:
    return sorted(groups, key=lambda g: instant_or_never(groups[g]), reverse=True)


def find_group(client: Any, table: str, a: Person, b: Person, *, add_entry: bool = False) -> PairLookup:
    """The pair's group: from its entry, else from either user's group rows (newest group first).

    With ``add_entry`` a group found by its rows gets its entry, so the next lookup is one read.
    """
    entry = get_entry(client, table, a.uuid, b.uuid)
    if entry is not None:
        return PairLookup(entry.group_uuid, "entry")
    groups: dict[str, str] = {}  # group -> its newest row's time
    for row in (*rows_with(client, table, a.uuid, b.uuid), *rows_with(client, table, b.uuid, a.uuid)):
        seen = groups.get(row.message_group_uuid)
        groups[row.message_group_uuid] = (
            max(seen, row.last_reply_at, key=instant_or_never) if seen else row.last_reply_at
        )
    if not groups:
        return PairLookup(None, None)
    ranked = _newest_first(groups)
    chosen = ranked[0]
    if not add_entry:
        return PairLookup(chosen, "rows", tuple(ranked[1:]))
    stored = put_entry(client, table, pair_entry_for(chosen, a, b, groups[chosen]))
    return PairLookup(
        stored.group_uuid,
        "rows",
        tuple(g for g in ranked if g != stored.group_uuid),
        entry_added=stored.group_uuid == chosen,
    )
