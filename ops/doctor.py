"""A health check of a stack's messages table: what breaks the access patterns, found in one pass.

``examine`` reads every item once (parallel scan segments; memory grows with the number of
groups, never with the number of messages) and reports:
- pairs of users with more than one group (the seeds' non-atomic "first message" bug);
- a participant with more than one row for a group;
- group rows whose group has no messages; groups whose participant has no row;
- group rows behind their group's newest message (a consumer that missed records);
- keys whose timestamps are not UTC with microseconds (other writers' host offsets);
- pairs without a pair entry, and pair markers of earlier versions;
- items of no known shape;
- on a stack that encrypts messages: bodies still stored as plain text (``ddb.migrate --name
  encrypt-messages`` seals them); on any stack, given a cipher: sealed bodies that do not open
  (tampered, copied from another message or group, or their key missing). Only the item's keys
  and the reason are reported, never a message's text.

``repairs`` turns what can be fixed without losing a message into a list of ``Repair``s
(extra rows deleted, lagging rows moved to the newest message, missing pair entries added,
legacy markers replaced), which ``apply`` carries out. Duplicate groups of one pair are only
reported, with what merging them would take: merging rewrites messages, which is a decision
for a person.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ops.aws import aws_errors
from ops.budget import Limits, Usage
from ops.ddb import missing_table, scan
from ops.errors import ConfigError, EncryptionError
from ops.messages import bodies
from ops.messages.fanout import move_group_rows
from ops.messages.model import (
    GSI_NAME,
    NEVER,
    GroupKey,
    GroupRow,
    LegacyPairMarker,
    Message,
    PairEntry,
    instant,
    instant_or_never,
    is_canonical,
    pair_key,
)
from ops.messages.pairs import put_entry

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
            "findings": [
                {"kind": f.kind, "title": f.title, "count": f.count, "fixable": f.fixable, "examples": f.examples}
                for f in self.findings
            ],
        }


@dataclass(frozen=True)
class Repair:
    """One change ``apply`` makes; ``describe`` is the line shown before it is made."""

    action: str  # delete-row | move-rows | put-entry | delete-marker
    describe: str
    key: dict[str, Any] | None = None  # delete-row, delete-marker
    group: str | None = None  # move-rows
    newest_sk: str | None = None
    newest_body: dict[str, Any] | None = None  # move-rows: copied as it is, sealed or not (no key needed)
    entry: PairEntry | None = None  # put-entry


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
        self.legacy: list[LegacyPairMarker] = []
        self.odd_keys: list[dict[str, str]] = []
        self.odd_key_count = 0
        self.unknown: list[dict[str, str]] = []
        self.unknown_count = 0
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
        at = self._time(f"MSG#{m.message_group_uuid}", m.created_at)
        if at is not None and (facts.newest_at is None or at > facts.newest_at):
            facts.newest_at, facts.newest_sk, facts.newest_body = at, m.created_at, bodies.body_of(item)

    def _row(self, row: GroupRow) -> None:
        self.counts["group_rows"] += 1
        self._time(f"GRP#{row.owner_uuid}", row.last_reply_at)
        self.groups.setdefault(row.message_group_uuid, GroupFacts()).rows.append(row)


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
    extra, lagging, orphans, missing_row = [], [], [], []
    pairs: dict[str, dict[str, GroupFacts]] = {}
    for group, facts in sorted(c.groups.items()):
        owners = Counter(r.owner_uuid for r in facts.rows)
        for owner, n in sorted(owners.items()):
            if n > 1:
                extra.append({"group": group, "owner": owner, "rows": n})
        if facts.rows and not facts.messages:
            orphans.append({"group": group, "rows": len(facts.rows)})
        named = {r.user_uuid for r in facts.rows}
        for absent in sorted(named - set(owners)):
            missing_row.append({"group": group, "participant": absent})
        if facts.newest_at is not None:
            latest: dict[
                str, datetime
            ] = {}  # each participant's newest row: older extra rows are "extra", not "lagging"
            for r in facts.rows:
                latest[r.owner_uuid] = max(latest.get(r.owner_uuid, NEVER), instant_or_never(r.last_reply_at))
            for owner in sorted(o for o, at in latest.items() if at < facts.newest_at):
                lagging.append({"group": group, "owner": owner, "newest": facts.newest_sk})
        for r in facts.rows:
            if r.owner_uuid != r.user_uuid:
                pairs.setdefault(pair_key(r.owner_uuid, r.user_uuid), {})[group] = facts
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
                    "merge": f"move {moves} message(s) of {len(rest)} group(s) into {keep} (new keys under MSG#{keep}), delete their {sum(len(groups[g].rows) for g in rest)} group row(s), point the pair entry at {keep}",
                }
            )
        entry = c.entries.get(pair)
        if entry is None:
            unindexed.append({"pair": pair, "group": _newest_group(groups)})
    kinds: list[tuple[str, str, list[dict[str, Any]], int | None, bool]] = [
        ("duplicate-groups", "pairs with more than one group (merge by hand)", duplicates, None, False),
        ("extra-rows", "participants with more than one row for a group", extra, None, True),
        ("lagging-rows", "group rows behind their group's newest message", lagging, None, True),
        ("orphan-rows", "group rows whose group has no messages", orphans, None, False),
        ("missing-rows", "participants named by a group without a row of their own", missing_row, None, False),
        ("missing-pair-entries", "pairs without a pair entry (run ddb.migrate, or --fix)", unindexed, None, True),
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


def _newest_group(groups: dict[str, GroupFacts]) -> str:
    return max(groups, key=lambda g: groups[g].newest_at or NEVER)


def repairs(ex: Examination) -> list[Repair]:
    """What ``apply`` would change, in the order it changes it; nothing that could lose a message."""
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
                    f"group {group}: move its rows to the newest message ({facts.newest_sk}) and keep one row per participant",
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
                    key=r.key(),
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
    for marker in c.legacy:
        out.append(
            Repair(
                "delete-marker",
                f"delete the old pair marker of group {marker.group_uuid} (the pair entry takes its place)",
                key=marker.key(),
            )
        )
    return out


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
            elif r.action == "put-entry":
                assert r.entry is not None
                put_entry(client, table, r.entry)
            done[r.action] += 1
            if on_progress is not None:
                on_progress(1)
    return done


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
            "--fix repairs the live table from what it reads there: run it without --from-export (an export is a past copy)"
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
    checkup.repairs = repairs(first)
    if before_repairs is not None:
        before_repairs(checkup.repairs)
    if checkup.repairs:
        checkup.applied = apply(client, table, checkup.repairs)
        checkup.after = examine(client, table, segments=segments, cipher=cipher, page_size=page_size)
    checkup.usage = job.meter.finish()
    return checkup
