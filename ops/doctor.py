"""A health check of a stack's messages table: what breaks the access patterns, found in one pass.

``examine`` reads every item once (parallel scan segments; memory grows with the number of
groups, never with the number of messages) and reports:
- pairs of users with more than one group (the seeds' non-atomic "first message" bug);
- a participant with more than one row for a group;
- group rows whose group has no messages;
- a participant of a group with messages who has no row for it: the conversation is missing from
  their list (a writer stopped midway, two groups' rows that overwrote each other under the old key,
  a lost stream record). A group's participants are everyone any item names: the pair entry
  pointing at it, its messages' senders, its rows' owners and the participant each row names;
- group rows behind their group's newest message (a consumer that missed records), and rows
  ahead of it (a seed stopped midway: its rows point at a message it never wrote);
- group rows keyed the old way, by the time alone (``model.row_sort_key`` adds the group id): two
  groups of one owner at one instant overwrite each other there;
- keys whose timestamps are not UTC with microseconds (other writers' host offsets);
- pairs without a pair entry, and pair markers of earlier versions;
- items of no known shape;
- named groups (``ops.messages.membership``): a member without a row, a row of someone who is no
  member (left by a removal that did not go through ``ddb.remove-member``), rows of a group whose
  membership item is gone; a member's lagging or extra rows count as any participant's;
- on a stack that encrypts messages: bodies still stored as plain text (``ddb.migrate --name
  encrypt-messages`` seals them); on any stack, given a cipher: sealed bodies that do not open
  (tampered, copied from another message or group, or their key missing). Only the item's keys
  and the reason are reported, never a message's text.

``repairs`` turns what can be fixed without losing a message into a list of ``Repair``s
(extra rows deleted, lagging rows moved to the newest message, rows ahead moved back to it,
missing rows rebuilt from the newest message, missing pair entries added, legacy markers replaced,
old-shape keys moved to the new shape, a named group's missing member
row put at the newest message, a non-member's row deleted), which ``apply`` carries out. "Healthy" means every group
with messages is listed for each of its participants, at its newest message. Duplicate groups of one pair are only
reported, with what merging them would take: merging rewrites messages, which is a decision
for a person.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from ops.aws import aws_errors, error_code
from ops.budget import Limits, Usage
from ops.ddb import missing_table, scan
from ops.errors import ConfigError, EncryptionError
from ops.messages import bodies
from ops.messages.bodies import with_body
from ops.messages.fanout import move_group_rows
from ops.messages.model import (
    GSI_NAME,
    NEVER,
    GroupKey,
    GroupRow,
    LegacyPairMarker,
    Membership,
    Message,
    PairEntry,
    Person,
    instant,
    instant_or_never,
    is_canonical,
    key_time,
    pair_key,
    row_sort_key,
)
from ops.messages.pairs import put_entry
from ops.migrate import rekey_row

SAMPLE = 5  # examples kept per kind of finding; the counts are always whole


@dataclass
class GroupFacts:
    messages: int = 0
    newest_sk: str | None = None
    newest_at: datetime | None = None
    newest_body: dict[str, Any] | None = (
        None  # the newest message's body attributes, sealed or not: what its rows carry
    )
    rows: list[GroupRow] = field(default_factory=list)
    participants: set[str] = field(default_factory=set)  # everyone an item names as being in the group
    people: dict[str, Person] = field(default_factory=dict)  # how messages and rows name them (for rebuilt rows)


@dataclass
class Finding:
    """One kind of problem: how many, and a few examples (keys, ids) to look at."""

    kind: str
    title: str
    count: int
    fixable: bool
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Examination:
    items: int = 0
    messages: int = 0
    group_rows: int = 0
    pair_entries: int = 0
    groups: int = 0
    group_keys: int = 0
    named_groups: int = 0  # groups with a membership item
    findings: list[Finding] = field(default_factory=list)
    # every instance of the fixable findings (the report shows samples), and what the pass kept
    instances: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)
    collected: Any = field(default=None, repr=False)

    @property
    def clean(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "clean": self.clean,
            "items": self.items,
            "messages": self.messages,
            "group_rows": self.group_rows,
            "pair_entries": self.pair_entries,
            "groups": self.groups,
            "group_keys": self.group_keys,
            "named_groups": self.named_groups,
            "findings": [
                {"kind": f.kind, "title": f.title, "count": f.count, "fixable": f.fixable, "examples": f.examples}
                for f in self.findings
            ],
        }


@dataclass(frozen=True)
class Repair:
    """One change ``apply`` makes; ``describe`` is the line shown before it is made."""

    action: (
        str  # delete-row | move-rows | rewind-row | put-row | put-entry | delete-marker | rekey-row | put-member-row
    )
    describe: str
    key: dict[str, Any] | None = None  # delete-row, delete-marker, rewind-row and rekey-row: the key stored now
    group: str | None = None  # move-rows
    newest_sk: str | None = None
    newest_body: dict[str, Any] | None = None  # move-rows, rewind-row, put-row: copied as it is, sealed or not
    entry: PairEntry | None = None  # put-entry
    row: GroupRow | None = None  # rewind-row, put-row: the row to write (its body is ``newest_body``)
    member_row: dict[str, Any] | None = None  # put-member-row: a named group's member row as stored, body included


class _Collector:
    """Everything one pass keeps: per group, per pair; samples of the odd items."""

    def __init__(self, table: str = "", cipher: bodies.Cipher | None = None) -> None:
        self.table, self.cipher = table, cipher
        self.plain: list[dict[str, str]] = []  # plain-text bodies, where the stack encrypts
        self.plain_count = 0
        self.unreadable: list[dict[str, str]] = []
        self.unreadable_count = 0
        self.groups: dict[str, GroupFacts] = {}
        self.entries: dict[str, PairEntry] = {}  # pair key -> entry
        self.memberships: dict[str, Membership] = {}  # group -> its membership item (named groups)
        self.legacy: list[LegacyPairMarker] = []
        self.odd_keys: list[dict[str, str]] = []
        self.odd_key_count = 0
        self.unknown: list[dict[str, str]] = []
        self.unknown_count = 0
        self.old_rows: list[dict[str, str]] = []  # rows keyed by the time alone (every one: --fix moves them)
        self.counts: Counter[str] = Counter()

    def add(self, item: dict[str, Any]) -> None:
        self.counts["items"] += 1
        pk, sk = item.get("pk", {}).get("S", "?"), item.get("sk", {}).get("S", "?")
        try:
            if Message.matches(item) and "message_uuid" in item:
                self._message(Message.from_item(item), item)
                self._body(item, pk, sk)
            elif GroupRow.matches(item) and "message_group_uuid" in item:
                self._row(GroupRow.from_item(item))
                self._body(item, pk, sk)
            elif Membership.matches(item):
                m = Membership.from_item(item)
                self.memberships[m.group] = m
                self.groups.setdefault(m.group, GroupFacts())
            elif GroupKey.matches(item):
                self.counts["group_keys"] += 1
            elif PairEntry.matches(item):
                entry = PairEntry.from_item(item)
                self.entries[entry.pair] = entry
                self.counts["pair_entries"] += 1
            elif LegacyPairMarker.matches(item):
                self.legacy.append(LegacyPairMarker.from_item(item))
            else:
                raise KeyError("no known shape")
        except KeyError:
            self.unknown_count += 1
            if len(self.unknown) < SAMPLE:
                self.unknown.append({"pk": pk, "sk": sk})

    def _time(self, pk: str, sk: str) -> datetime | None:
        if is_canonical(sk):
            return instant(sk)
        self.odd_key_count += 1
        if len(self.odd_keys) < SAMPLE:
            self.odd_keys.append({"pk": pk, "sk": sk})
        try:
            return instant(sk)
        except ValueError:
            return None

    def _body(self, item: dict[str, Any], pk: str, sk: str) -> None:
        """Plain text where the stack encrypts; a sealed body that does not open (never the text itself)."""
        if self.cipher is None:
            return
        if bodies.is_plain(item):
            if self.cipher.encrypting:
                self.plain_count += 1
                if len(self.plain) < SAMPLE:
                    self.plain.append({"pk": pk, "sk": sk})
            return
        if not bodies.is_sealed(item):
            return
        try:
            self.cipher.open(self.table, item)
        except EncryptionError as err:
            self.unreadable_count += 1
            if len(self.unreadable) < SAMPLE:
                self.unreadable.append(
                    {"pk": pk, "sk": sk, "error": str(err).partition("cannot be read: ")[2] or str(err)}
                )

    def _message(self, m: Message, item: dict[str, Any]) -> None:
        self.counts["messages"] += 1
        facts = self.groups.setdefault(m.message_group_uuid, GroupFacts())
        facts.messages += 1
        if m.user_uuid not in facts.participants:
            facts.participants.add(m.user_uuid)
            facts.people.setdefault(m.user_uuid, Person(m.user_uuid, m.user_display_name, m.user_handle))
        at = self._time(f"MSG#{m.message_group_uuid}", m.created_at)
        if at is not None and (facts.newest_at is None or at > facts.newest_at):
            facts.newest_at, facts.newest_sk, facts.newest_body = at, m.created_at, bodies.body_of(item)

    def _row(self, row: GroupRow) -> None:
        self.counts["group_rows"] += 1
        self._time(f"GRP#{row.owner_uuid}", row.last_reply_at)
        facts = self.groups.setdefault(row.message_group_uuid, GroupFacts())
        facts.rows.append(row)
        facts.participants.update((row.owner_uuid, row.user_uuid))
        facts.people.setdefault(row.user_uuid, Person(row.user_uuid, row.user_display_name, row.user_handle))
        if row.old_shape:
            self.old_rows.append({"owner": row.owner_uuid, "sk": row.stored_sk or "", "group": row.message_group_uuid})


def examine(
    client: Any,
    table: str,
    *,
    segments: int = 4,
    on_progress: Callable[[int], None] | None = None,
    cipher: bodies.Cipher | None = None,
    page_size: int | None = None,
    items: Iterable[dict[str, Any]] | None = None,
) -> Examination:
    """One pass over the table; every finding with its count and a few examples.

    With a ``cipher`` every sealed body is opened (one KMS Decrypt per group, cached), and plain
    bodies are reported when it encrypts. ``items``: read these (an export's, ``ops.export``) instead of scanning.
    """
    found = _Collector(table, cipher)
    source = items if items is not None else scan(client, table, segments=segments, page_size=page_size, raw=True)
    with aws_errors(f"Scan {table}", not_found=missing_table(table)):
        for n, item in enumerate(source, start=1):
            found.add(item)
            if on_progress is not None and n % 1000 == 0:
                on_progress(1000)
    if on_progress is not None:
        on_progress(found.counts["items"] % 1000)
    return _judge(found)


def _judge(c: _Collector) -> Examination:
    out = Examination(
        c.counts["items"],
        c.counts["messages"],
        c.counts["group_rows"],
        c.counts["pair_entries"],
        len(c.groups),
        c.counts["group_keys"],
    )
    out.named_groups = len(c.memberships)
    extra, lagging, ahead, orphans, missing_row = [], [], [], [], []
    no_row, not_member, unnamed = [], [], []
    pairs: dict[str, dict[str, GroupFacts]] = {}
    # (owner, time) -> the group whose old-shape row holds that key: where another group's row was overwritten
    old_keys = {(o["owner"], o["sk"]): o["group"] for o in c.old_rows}
    for entry in c.entries.values():  # the pair entry names a group's participants even when every row is gone
        if entry.group_uuid in c.groups:
            c.groups[entry.group_uuid].participants.update(entry.participant_uuids)
    for group, facts in sorted(c.groups.items()):
        named = c.memberships.get(group)
        if named is not None or any(r.named for r in facts.rows):
            _judge_named(group, facts, named, no_row, not_member, unnamed)
            # its members are its membership's, not whoever an item names (a removed member's messages stay):
            # missing and non-member rows are judged above, and a named group of two is no pair
            kept = [r for r in facts.rows if named is None or named.has(r.owner_uuid)]
            facts = dataclasses.replace(facts, rows=kept, participants=set())
        owners = Counter(r.owner_uuid for r in facts.rows)
        for owner, n in sorted(owners.items()):
            if n > 1:
                extra.append({"group": group, "owner": owner, "rows": n})
        if facts.rows and not facts.messages:
            orphans.append({"group": group, "rows": len(facts.rows)})
        for absent in sorted(facts.participants - set(owners)):
            # not in their list: the conversation is lost to them until a row is rebuilt
            found = {"group": group, "participant": absent, "newest": facts.newest_sk}
            taken = old_keys.get((absent, facts.newest_sk or ""))
            if taken is not None and taken != group:
                found["collided_with"] = taken  # the old key of another group of theirs, at this group's newest time
            missing_row.append(found)
        if facts.newest_at is not None:
            latest: dict[
                str, datetime
            ] = {}  # each participant's newest row: older extra rows are "extra", not "lagging"
            for r in facts.rows:
                latest[r.owner_uuid] = max(latest.get(r.owner_uuid, NEVER), instant_or_never(r.last_reply_at))
            for owner in sorted(o for o, at in latest.items() if at < facts.newest_at):
                lagging.append({"group": group, "owner": owner, "newest": facts.newest_sk})
            for owner in sorted(o for o, at in latest.items() if at > facts.newest_at):
                ahead.append({"group": group, "owner": owner, "newest": facts.newest_sk})
        for r in facts.rows:
            if r.owner_uuid != r.user_uuid and not r.named:
                pairs.setdefault(pair_key(r.owner_uuid, r.user_uuid), {})[group] = facts
        if len(facts.participants) == 2 and facts.messages:  # a pair whose rows are gone is still a pair
            pairs.setdefault(pair_key(*sorted(facts.participants)), {})[group] = facts
    duplicates, unindexed = [], []
    for pair, groups in sorted(pairs.items()):
        if len(groups) > 1:
            ranked = sorted(groups, key=lambda g: groups[g].newest_at or NEVER, reverse=True)
            keep, rest = ranked[0], ranked[1:]
            moves = sum(groups[g].messages for g in rest)
            duplicates.append(
                {
                    "pair": pair,
                    "groups": {g: groups[g].messages for g in ranked},
                    "keep": keep,
                    "merge": f"move {moves} message(s) of {len(rest)} group(s) into {keep} (new keys under "
                    f"MSG#{keep}), delete their {sum(len(groups[g].rows) for g in rest)} group row(s), point the pair "
                    f"entry at {keep}",
                }
            )
        entry = c.entries.get(pair)
        if entry is None:
            unindexed.append({"pair": pair, "group": _newest_group(groups)})
    kinds: list[tuple[str, str, list[dict[str, Any]], int | None, bool]] = [
        ("duplicate-groups", "pairs with more than one group (merge by hand)", duplicates, None, False),
        ("extra-rows", "participants with more than one row for a group", extra, None, True),
        ("lagging-rows", "group rows behind their group's newest message", lagging, None, True),
        (
            "rows-ahead",
            "group rows ahead of their group's newest message (a seed stopped midway: rerun the same seed, "
            "or --fix moves them back to the newest message)",
            ahead,
            None,
            True,
        ),
        (
            "orphan-rows",
            "group rows whose group has no messages (a seed stopped before its first message: rerun the same seed)",
            orphans,
            None,
            False,
        ),
        (
            "missing-rows",
            "participants of a group with messages who have no row for it: the conversation is not in their list "
            "(--fix rebuilds the row from the newest message)",
            missing_row,
            None,
            True,
        ),
        (
            "old-shape-rows",
            "group rows keyed by their time alone, without their group id: two groups of one owner at one instant "
            "overwrite each other (run ddb.migrate --name row-keys, or --fix)",
            c.old_rows,
            None,
            True,
        ),
        ("missing-pair-entries", "pairs without a pair entry (run ddb.migrate, or --fix)", unindexed, None, True),
        ("missing-member-rows", "members of a named group without a row", no_row, None, True),
        ("non-member-rows", "rows of a named group whose owner is no member (removed)", not_member, None, True),
        ("named-rows-without-membership", "rows of a named group whose membership item is gone", unnamed, None, False),
        (
            "legacy-markers",
            "pair markers of earlier versions (replaced by pair entries)",
            [m.__dict__ | {"participant_uuids": list(m.participant_uuids)} for m in c.legacy],
            None,
            True,
        ),
        (
            "non-utc-keys",
            "keys whose time is not UTC with microseconds (string order is not time order)",
            c.odd_keys,
            c.odd_key_count,
            False,
        ),
        ("unknown-items", "items of no known shape", c.unknown, c.unknown_count, False),
        (
            "plain-text-bodies",
            "bodies stored as plain text on a stack that encrypts messages (run ddb.migrate --name encrypt-messages)",
            c.plain,
            c.plain_count,
            False,
        ),
        (
            "unreadable-bodies",
            "sealed bodies that do not open (altered, moved, or their key missing)",
            c.unreadable,
            c.unreadable_count,
            False,
        ),
    ]
    for kind, title, found, count, fixable in kinds:
        total = len(found) if count is None else count
        if total:
            out.findings.append(Finding(kind, title, total, fixable, found[:SAMPLE]))
            out.instances[kind] = found
    out.collected = c
    return out


def _judge_named(
    group: str,
    facts: GroupFacts,
    named: Membership | None,
    no_row: list[dict[str, Any]],
    not_member: list[dict[str, Any]],
    unnamed: list[dict[str, Any]],
) -> None:
    """A named group's rows against its membership: one row per member, none for anyone else."""
    if named is None:
        unnamed.append({"group": group, "rows": len(facts.rows)})
        return
    owners = {r.owner_uuid for r in facts.rows}
    for member in sorted(set(named.members) - owners):
        if facts.newest_sk is not None:  # no message at all is another finding (the rows have nothing to carry)
            no_row.append({"group": group, "member": member, "newest": facts.newest_sk})
    for r in facts.rows:
        if not named.has(r.owner_uuid):
            not_member.append({"group": group, "owner": r.owner_uuid, "sk": r.stored_key()["sk"]["S"]})


def _newest_group(groups: dict[str, GroupFacts]) -> str:
    return max(groups, key=lambda g: groups[g].newest_at or NEVER)


def unnamed_partners(ex: Examination) -> list[str]:
    """The participants a missing row would name but no item of the table names (for a lookup in the users table)."""
    c: _Collector = ex.collected
    wanted: set[str] = set()
    for example in ex.instances.get("missing-rows", []):
        facts = c.groups[example["group"]]
        others = facts.participants - {example["participant"]}
        if len(others) == 1 and not others <= set(facts.people):
            wanted |= others
    return sorted(wanted)


def repairs(ex: Examination, people: Mapping[str, Person] | None = None) -> list[Repair]:
    """What ``apply`` would change, in the order it changes it; nothing that could lose a message.

    ``people`` names participants no item of the table names (from the users table): a row rebuilt
    for their partner names them.
    """
    c: _Collector = ex.collected
    out: list[Repair] = []
    moved: set[str] = set()
    for kind in ("lagging-rows", "extra-rows"):
        for example in ex.instances.get(kind, []):
            group = example["group"]
            facts = c.groups[group]
            if group in moved or facts.newest_sk is None:
                continue
            moved.add(group)
            out.append(
                Repair(
                    "move-rows",
                    f"group {group}: move its rows to the newest message ({facts.newest_sk}) and keep one row per "
                    "participant",
                    group=group,
                    newest_sk=facts.newest_sk,
                    newest_body=facts.newest_body,
                )
            )
    for example in ex.instances.get("extra-rows", []):
        if example["group"] in moved:
            continue  # move-rows keeps the newest row and removes the others
        rows = sorted(
            (r for r in c.groups[example["group"]].rows if r.owner_uuid == example["owner"]),
            key=lambda r: instant_or_never(r.last_reply_at),
        )
        for r in rows[:-1]:
            out.append(
                Repair(
                    "delete-row",
                    f"group {example['group']}: delete the older row {r.last_reply_at} of {example['owner']}",
                    key=r.stored_key(),
                )
            )
    for example in ex.instances.get("rows-ahead", []):
        facts = c.groups[example["group"]]
        if facts.newest_sk is None:
            continue
        for r in facts.rows:
            if r.owner_uuid == example["owner"] and instant_or_never(r.last_reply_at) > (facts.newest_at or NEVER):
                out.append(
                    Repair(
                        "rewind-row",
                        f"group {example['group']}: move the row of {r.owner_uuid} back from {r.last_reply_at} "
                        f"to the newest message ({facts.newest_sk})",
                        key=r.stored_key(),
                        newest_body=facts.newest_body,
                        row=_row_at(r, facts.newest_sk),
                    )
                )
    for example in ex.instances.get("missing-rows", []):
        rebuilt = _rebuilt_row(c.groups[example["group"]], example["group"], example["participant"], people or {})
        if rebuilt is not None:
            out.append(
                Repair(
                    "put-row",
                    f"group {example['group']}: rebuild the row of {example['participant']} at the newest message "
                    f"({rebuilt.last_reply_at})",
                    newest_body=c.groups[example["group"]].newest_body,
                    row=rebuilt,
                )
            )
    for example in ex.instances.get("missing-pair-entries", []):
        a, b = example["pair"].split("#")
        facts = c.groups[example["group"]]
        stamp = facts.newest_sk or (facts.rows[0].last_reply_at if facts.rows else "")
        out.append(
            Repair(
                "put-entry",
                f"pair {example['pair']}: add the pair entry naming group {example['group']}",
                entry=PairEntry(example["pair"], example["group"], stamp, tuple(sorted((a, b)))),
            )
        )
    for example in ex.instances.get("missing-member-rows", []):
        group, member = example["group"], example["member"]
        facts, named = c.groups[group], c.memberships[group]
        row = GroupRow(
            member, facts.newest_sk, group, None, group, named.group_name, named.group_name, named.group_name
        )
        out.append(
            Repair(
                "put-member-row",
                f"group {group}: put member {member}'s row at the newest message ({facts.newest_sk})",
                member_row=bodies.with_body(row.to_item(), facts.newest_body or {}),
            )
        )
    for example in ex.instances.get("non-member-rows", []):
        row_key = {"pk": {"S": "GRP#" + example["owner"]}, "sk": {"S": example["sk"]}}
        out.append(
            Repair(
                "delete-row",
                f"group {example['group']}: delete the row of {example['owner']}, who is no member",
                key=row_key,
            )
        )
    for marker in c.legacy:
        out.append(
            Repair(
                "delete-marker",
                f"delete the old pair marker of group {marker.group_uuid} (the pair entry takes its place)",
                key=marker.key(),
            )
        )
    # last: the repairs above name rows by the key they are stored under now
    for old in ex.instances.get("old-shape-rows", []):
        out.append(
            Repair(
                "rekey-row",
                f"group {old['group']}: move the row of {old['owner']} from key {old['sk']} "
                f"to {row_sort_key(key_time(old['sk']), old['group'])}",
                key={"pk": {"S": f"GRP#{old['owner']}"}, "sk": {"S": old["sk"]}},
            )
        )
    return out


def _row_at(row: GroupRow, newest_sk: str) -> GroupRow:
    """``row`` moved to the group's newest message (its body is set from the message when written)."""
    return GroupRow(
        row.owner_uuid,
        newest_sk,
        row.message_group_uuid,
        None,
        row.user_uuid,
        row.user_display_name,
        row.user_handle,
        row.group_name,  # a named group's row stays one
    )


def _rebuilt_row(facts: GroupFacts, group: str, owner: str, people: Mapping[str, Person]) -> GroupRow | None:
    """The row a participant lacks, at the newest message; None when it cannot be built from what the table says.

    A row names the one other participant: a group of two whose other member some message or row
    names (display name and handle), or ``people`` does. Anything else is left to a person (or to
    the same seed, run again).
    """
    others = facts.participants - {owner}
    if facts.newest_sk is None or not facts.newest_body or len(others) != 1:
        return None
    partner = next(iter(others))
    other = facts.people.get(partner) or people.get(partner)
    if other is None:
        return None
    return GroupRow(owner, facts.newest_sk, group, None, other.uuid, other.display_name, other.handle)


def apply(
    client: Any,
    table: str,
    todo: Iterable[Repair],
    index: str = GSI_NAME,
    on_progress: Callable[[int], None] | None = None,
) -> Counter[str]:
    """Carry out repairs; returns how many of each action were made."""
    done: Counter[str] = Counter()
    with aws_errors(f"repair {table}", not_found=missing_table(table)):
        for r in todo:
            if r.action == "move-rows":
                assert r.group and r.newest_sk is not None and r.newest_body
                move_group_rows(client, table, r.group, r.newest_sk, r.newest_body, index)
            elif r.action in ("delete-row", "delete-marker"):
                client.delete_item(TableName=table, Key=r.key)
            elif r.action == "rewind-row":
                assert r.key is not None and r.row is not None and r.newest_body
                if not _rewind(client, table, r.key, with_body(r.row.to_item(), r.newest_body)):
                    done["left (changed meanwhile)"] += 1
                    continue
            elif r.action == "put-row":
                assert r.row is not None and r.newest_body
                _put_new(client, table, with_body(r.row.to_item(), r.newest_body))
            elif r.action == "rekey-row":
                assert r.key is not None
                item = client.get_item(TableName=table, Key=r.key, ConsistentRead=True).get("Item")
                if item is None:
                    continue  # moved to the new shape already, by a repair above or by the consumer
                if rekey_row(client, table, item, dry_run=False) is None:
                    done["left (changed meanwhile)"] += 1
                    continue
            elif r.action == "put-entry":
                assert r.entry is not None
                put_entry(client, table, r.entry)
            elif r.action == "put-member-row":
                assert r.member_row is not None
                _put_member_row(client, table, r.member_row)
            done[r.action] += 1
            if on_progress is not None:
                on_progress(1)
    return done


def _put_member_row(client: Any, table: str, row: dict[str, Any]) -> None:
    """A member's missing row, only while they are a member and have none at that key (one transaction)."""
    group, owner = row["message_group_uuid"]["S"], row["pk"]["S"].partition("#")[2]
    try:
        client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": row, "ConditionExpression": "attribute_not_exists(pk)"}},
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": Membership.key_of(group),
                        "ConditionExpression": "attribute_exists(#m.#u)",
                        "ExpressionAttributeNames": {"#m": "members", "#u": owner},
                    }
                },
            ]
        )
    except ClientError as err:
        if error_code(err) != "TransactionCanceledException":
            raise  # cancelled: removed meanwhile, or the row is there already; the pass after the repairs tells


def _rewind(client: Any, table: str, key: dict[str, Any], item: dict[str, Any]) -> bool:
    """Replace a row ahead of its group's newest message by ``item`` in one transaction; False if it moved meanwhile."""
    try:
        client.transact_write_items(
            TransactItems=[
                {"Delete": {"TableName": table, "Key": key, "ConditionExpression": "attribute_exists(pk)"}},
                {"Put": {"TableName": table, "Item": item}},
            ]
        )
    except ClientError as err:
        if error_code(err) != "TransactionCanceledException":
            raise
        return False  # the consumer (or a rerun seed) moved it: what it holds now is newer than this repair
    return True


def _put_new(client: Any, table: str, item: dict[str, Any]) -> None:
    """A rebuilt row, unless one appeared at that key meanwhile (the consumer moving a row there is as good)."""
    try:
        client.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)")
    except ClientError as err:
        if error_code(err) != "ConditionalCheckFailedException":
            raise


def _people(target: Any, uuids: list[str]) -> dict[str, Person]:
    """Participants the table does not name, from the stack's users table; none when it cannot be read.

    Only the rows that would name them wait on it: the finding stays, with its advice, when it fails.
    """
    if not uuids:
        return {}
    from ops import db
    from ops.errors import OpsError

    try:
        with db.connect(target) as conn:
            return {u: user.person() for u, user in db.users_by_uuid(conn, uuids).items()}
    except OpsError:
        return {}


@dataclass
class Checkup:
    """What ``ddb.doctor`` did on a stack: the first pass, the repairs made (with --fix) and the pass after them."""

    first: Examination
    repairs: list[Repair] = field(default_factory=list)
    applied: Counter[str] = field(default_factory=Counter)
    after: Examination | None = None
    usage: Usage | None = None  # what the job consumed (requests, items, capacity units), on its clock

    @property
    def final(self) -> Examination:
        return self.after or self.first


def check_target(
    target: Any,
    *,
    fix: bool = False,
    segments: int = 4,
    progress: Callable[..., Callable[[int], None]] | None = None,
    before_repairs: Callable[[list[Repair]], None] | None = None,
    limits: Limits | None = None,
    from_export: str | None = None,
) -> Checkup:
    """ddb.doctor on a stack: examine; with ``fix``, say what will change (``before_repairs``), repair, examine again.

    Every request (the scans and the repairs) runs under the job's budget (``limits``, see ``ops.budget``).
    ``from_export`` (an export id or ``latest``): the items come from that export's files, no read capacity used.
    """
    from ops.bulk import open_job
    from ops.crypto import cipher_for
    from ops.export import export_items

    if from_export and fix:
        raise ConfigError(
            "--fix repairs the live table from what it reads there: run it without --from-export (an export is a past "
            "copy)"
        )
    job = open_job(target, limits, segments=segments)
    client, table, page_size = job.client, job.table, job.page_size(segments)
    estimate = int(job.desc.get("ItemCount") or 0)
    cipher = cipher_for(target)
    first = examine(
        client,
        table,
        segments=segments,
        on_progress=progress(estimate, detail=job.meter.line) if progress else None,
        cipher=cipher,
        page_size=page_size,
        items=export_items(target, from_export)[1] if from_export else None,
    )
    checkup = Checkup(first)
    if not fix:
        return checkup
    checkup.repairs = repairs(first, _people(target, unnamed_partners(first)))
    if before_repairs is not None:
        before_repairs(checkup.repairs)
    if checkup.repairs:
        checkup.applied = apply(client, table, checkup.repairs)
        checkup.after = examine(client, table, segments=segments, cipher=cipher, page_size=page_size)
    checkup.usage = job.meter.finish()
    return checkup
