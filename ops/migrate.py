"""One-time migrations of a stack's table: resumable scans that change items in place.

A migration is a per-item step run over a parallel scan. Each scan segment records the key it
has reached in a small state file after every page, so a run that is interrupted (Ctrl-C, a
lost connection, a throttled table) resumes where it stopped; every step is idempotent, so
re-doing the last page changes nothing. A finished run removes its state file; running again
scans again and finds nothing left to do.

Migrations:
- ``pair-index``: a pair entry for every pair of users that has a group (the groups other
  writers made, and those of earlier versions with a group-keyed marker, which is removed).
- ``encrypt-messages``: on a stack that encrypts messages, seals every body still stored as
  plain text (written before encryption was turned on, or by the original backend): messages,
  and group rows (which then carry the uuid of the message whose text they hold, the one at
  their own time when there is one). A group without a key item gets one first. Each item is
  changed by one ``UpdateItem`` whose condition is the plain text it read, so a concurrent
  change (a row the consumer moved meanwhile, a message rewritten) is left alone and counted,
  never overwritten; a second run finds nothing left to seal.
- ``row-keys``: every group row keyed the old way (by its time alone, as the original backend and
  earlier versions wrote them) moved to its key ``<time>#<group>`` (``model.row_sort_key``), one
  transaction per row (delete the old key if it is still there, put the new one unless it is): a
  row the consumer moved meanwhile is left alone and counted. Rows an old key already lost (two
  groups of one owner at one instant) cannot be found by a scan of keys: ``ddb.doctor`` names
  them ("missing-rows") and ``--fix`` rebuilds them.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from ops.aws import aws_errors, call, cancellation_codes, error_code, pages
from ops.budget import Limits, Usage
from ops.ddb import missing_table
from ops.errors import ConfigError, InputError
from ops.files import write_atomic
from ops.messages import bodies
from ops.messages.model import (
    MSG_PREFIX,
    GroupRow,
    LegacyPairMarker,
    Message,
    Person,
    key_time,
    message_uuid_for,
    pair_key,
)
from ops.messages.pairs import find_group, get_entry

# (client, table, item, dry_run) -> what it did to the item (one or more actions), or None
Step = Callable[[Any, str, dict[str, Any], bool], "str | tuple[str | None, ...] | None"]


@dataclass
class MigrationResult:
    name: str
    dry_run: bool
    scanned: int = 0
    changed: Counter[str] = field(default_factory=Counter)  # action -> count ("would ..." on a dry run)
    resumed: bool = False
    usage: Usage | None = None  # what the run consumed (requests, items, capacity units)


class _PairIndex:
    """Step of ``pair-index``; remembers the pairs it has settled so each costs one lookup."""

    def __init__(self, cipher: bodies.Cipher | None = None) -> None:
        self.settled: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, client: Any, table: str, item: dict[str, Any], dry_run: bool) -> tuple[str, ...]:
        if LegacyPairMarker.matches(item):
            marker = LegacyPairMarker.from_item(item)
            # a scan meets items in hash order: the marker may come before its pair's group rows, and
            # then it is the marker that settles the pair, which counts like any other settling
            settled = (
                self._settle(client, table, *marker.participant_uuids, dry_run=dry_run)
                if len(marker.participant_uuids) == 2
                else None
            )
            if dry_run:
                return ("would remove an old pair marker", *([settled] if settled else []))
            client.delete_item(TableName=table, Key=marker.key())
            return ("removed an old pair marker", *([settled] if settled else []))
        if not (GroupRow.matches(item) and "message_group_uuid" in item and "user_uuid" in item):
            return ()
        row = GroupRow.from_item(item)
        if row.owner_uuid == row.user_uuid or row.named:
            return ()  # a named group's row names the group itself: no pair to index
        settled = self._settle(client, table, row.owner_uuid, row.user_uuid, dry_run=dry_run)
        return (settled,) if settled else ()

    def _settle(self, client: Any, table: str, a: str, b: str, *, dry_run: bool) -> str | None:
        key = pair_key(a, b)
        with self.lock:
            if key in self.settled:
                return None
            self.settled.add(key)
        if get_entry(client, table, a, b) is not None:
            return "pair already indexed"
        if dry_run:
            return "would add a pair entry"
        lookup = find_group(client, table, Person(a, "", ""), Person(b, "", ""), add_entry=True)
        return "added a pair entry" if lookup.entry_added else "pair already indexed"


class _EncryptMessages:
    """Step of ``encrypt-messages``: one plain body sealed in place, under a condition on the text it read."""

    def __init__(self, cipher: bodies.Cipher | None) -> None:
        if cipher is None or not cipher.encrypting:
            raise ConfigError(
                "encrypt-messages seals bodies under the stack's messages key, and this stack has none: "
                "set cruddur:encryptMessages to true in its Pulumi.<stack>.yaml, then `invoke infra.up` (or "
                "`invoke local.up` for the twin)"
            )
        self.cipher = cipher

    def __call__(self, client: Any, table: str, item: dict[str, Any], dry_run: bool) -> str | None:
        if not bodies.is_plain(item):
            return None
        if Message.matches(item) and bodies.UUID in item:
            kind, group, uuid = "message", item["pk"]["S"][len(MSG_PREFIX) :], item[bodies.UUID]["S"]
        elif GroupRow.matches(item) and "message_group_uuid" in item:
            kind, group = "group row", item["message_group_uuid"]["S"]
            uuid = self._row_message_uuid(client, table, group, key_time(item["sk"]["S"]))
        else:
            return None
        if dry_run:
            return f"would encrypt a {kind}"
        key = self.cipher.group_key(client, table, group)  # made (with its key item) the first time a group needs one
        body = self.cipher.sealed_body(table, group, uuid, item[bodies.TEXT]["S"], key, bodies.describe(item))
        try:
            client.update_item(
                TableName=table,
                Key={"pk": item["pk"], "sk": item["sk"]},
                UpdateExpression="SET #sealed = :sealed, #key = :key, #uuid = :uuid REMOVE #text",
                # the text it read is still there: a row moved or a message changed meanwhile is not overwritten
                ConditionExpression="#text = :text" + (" AND #uuid = :uuid" if kind == "message" else ""),
                ExpressionAttributeNames={
                    "#sealed": bodies.SEALED,
                    "#key": bodies.KEY,
                    "#uuid": bodies.UUID,
                    "#text": bodies.TEXT,
                },
                ExpressionAttributeValues={
                    ":sealed": body[bodies.SEALED],
                    ":key": body[bodies.KEY],
                    ":uuid": body[bodies.UUID],
                    ":text": item[bodies.TEXT],
                },
            )
        except ClientError as err:
            if error_code(err) != "ConditionalCheckFailedException":
                raise
            return f"left a {kind} that changed meanwhile (run again)"
        return f"encrypted a {kind}"

    @staticmethod
    def _row_message_uuid(client: Any, table: str, group: str, at: str) -> str:
        """The uuid of the message a row shows (the one at the row's time); rows of other writers may have none."""
        found = (
            call(
                client.get_item,
                f"GetItem message {at} of group {group}",
                TableName=table,
                Key={"pk": {"S": MSG_PREFIX + group}, "sk": {"S": at}},
                ProjectionExpression="message_uuid",
                ConsistentRead=True,
            ).get("Item")
            or {}
        )
        return str((found.get(bodies.UUID) or {}).get("S") or message_uuid_for(group, f"row:{at}"))


def rekey_row(client: Any, table: str, item: dict[str, Any], *, dry_run: bool) -> str | None:
    """Move one old-shape group row to its new key; ``None`` when the item is no old-shape row or it changed meanwhile.

    One transaction: the old key is deleted only if it is still there and the new one put only if it
    is free, so two runs (or a run and the consumer) never leave a participant with zero or two rows.
    When the new key is taken already (the same row written again the new way), the old one is removed.
    """
    if not (GroupRow.matches(item) and "message_group_uuid" in item):
        return None
    row = GroupRow.from_item(item)
    if not row.old_shape:
        return None
    if dry_run:
        return "would move a group row to its new key"
    old, new = row.stored_key(), item | row.key()
    try:
        client.transact_write_items(
            TransactItems=[
                {"Delete": {"TableName": table, "Key": old, "ConditionExpression": "attribute_exists(pk)"}},
                {"Put": {"TableName": table, "Item": new, "ConditionExpression": "attribute_not_exists(pk)"}},
            ]
        )
    except ClientError as err:
        reasons = cancellation_codes(err) if error_code(err) == "TransactionCanceledException" else None
        if reasons is None:
            raise
        if reasons[:1] == ["ConditionalCheckFailed"] or "TransactionConflict" in reasons:
            return None  # gone or being moved meanwhile: the consumer moves it to the new shape itself
        if "ConditionalCheckFailed" not in reasons:
            raise
        try:  # the new key holds this row already: the old copy goes
            client.delete_item(TableName=table, Key=old, ConditionExpression="attribute_exists(pk)")
        except ClientError as gone:
            if error_code(gone) != "ConditionalCheckFailedException":
                raise
            return None
        return "removed an old-shape copy of a row"
    return "moved a group row to its new key"


class _RowKeys:
    """Step of ``row-keys``: one old-shape group row moved to its new key."""

    def __init__(self, cipher: bodies.Cipher | None = None) -> None:
        pass

    def __call__(self, client: Any, table: str, item: dict[str, Any], dry_run: bool) -> str | None:
        if not (GroupRow.matches(item) and "message_group_uuid" in item):
            return None
        try:
            return rekey_row(client, table, item, dry_run=dry_run) or (
                None if not GroupRow.from_item(item).old_shape else "left a row that changed meanwhile (run again)"
            )
        except KeyError:
            return None  # a GRP# item of no known shape: ddb.doctor names it, the migration leaves it


MIGRATIONS: dict[str, Callable[[bodies.Cipher | None], Step]] = {
    "pair-index": _PairIndex,
    "encrypt-messages": _EncryptMessages,
    "row-keys": _RowKeys,
}


def state_file(state_dir: Path, name: str, where: str) -> Path:
    return state_dir / "migrations" / f"{name}-{where}.json"


def _load_state(path: Path, name: str, table: str, segments: int) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("segments"), dict):
            raise ValueError("no segments")
    except ValueError as err:
        raise InputError(
            f"{path}: unreadable migration state ({err}); run again with --restart to start over (safe: every step is "
            "idempotent)"
        ) from None
    if data.get("table") != table or data.get("total_segments") != segments:
        raise ConfigError(
            f"{path} belongs to a run of {name!r} on table {data.get('table')!r} with {data.get('total_segments')} "
            f"segments: run with --segments {data.get('total_segments')} to resume it, or --restart to start over"
        )
    return data


def run(
    client: Any,
    table: str,
    name: str,
    state_dir: Path,
    where: str,
    *,
    dry_run: bool = False,
    restart: bool = False,
    segments: int = 4,
    page_size: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    cipher: bodies.Cipher | None = None,
) -> MigrationResult:
    """Run migration ``name`` over ``table``; resumes an interrupted run unless ``restart``. ``cipher``: the stack's
    (encrypt-messages)."""
    if name not in MIGRATIONS:
        raise ConfigError(f"unknown migration {name!r}: the migrations are {', '.join(MIGRATIONS)}")
    if not 1 <= segments <= 64:
        raise ConfigError(f"--segments must be a whole number from 1 to 64, not {segments}")
    step = MIGRATIONS[name](cipher)
    path = state_file(state_dir, name, where)
    state = None if restart or dry_run else _load_state(path, name, table, segments)
    result = MigrationResult(name, dry_run, resumed=state is not None)
    progress: dict[str, Any] = state or {"table": table, "total_segments": segments, "segments": {}}
    lock = threading.Lock()
    stop = threading.Event()  # Ctrl-C: every segment stops after its page, its position saved

    def save() -> None:
        if not dry_run:
            write_atomic(path, json.dumps(progress, sort_keys=True))

    def segment(n: int) -> None:
        seg = progress["segments"].get(str(n), {})
        if seg.get("done"):
            return
        request: dict[str, Any] = {"TableName": table, "Segment": n, "TotalSegments": segments} | (
            {"Limit": page_size} if page_size else {}
        )
        if seg.get("next"):
            request["ExclusiveStartKey"] = seg["next"]
        for page in pages(client, "scan", f"Scan {table}", not_found=missing_table(table), **request):
            if stop.is_set():
                return
            did = [step(client, table, item, dry_run) for item in page.get("Items", [])]
            with lock:
                result.scanned += len(did)
                result.changed.update(a for d in did for a in ((d,) if isinstance(d, str) else d or ()) if a)
                progress["segments"][str(n)] = {
                    "next": page.get("LastEvaluatedKey"),
                    "done": not page.get("LastEvaluatedKey"),
                }
                save()
            if on_progress is not None:
                on_progress(len(did))

    pool = ThreadPoolExecutor(max_workers=segments)
    try:
        with aws_errors(f"migration {name} on {table}", not_found=missing_table(table)):
            for future in [pool.submit(segment, n) for n in range(segments)]:
                future.result()
    except BaseException:
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True)
    if not dry_run:
        path.unlink(missing_ok=True)  # finished: the next run starts from the beginning and finds nothing to do
    return result


def run_target(
    target: Any,
    name: str,
    *,
    dry_run: bool = False,
    restart: bool = False,
    segments: int = 4,
    progress: Callable[..., Callable[[int], None]] | None = None,
    limits: Limits | None = None,
) -> MigrationResult:
    """ddb.migrate on a stack; its resume state lives in the stack's state directory, apart for twin and cloud.

    Every request (the scan and each step's reads and writes) runs under the job's budget (``ops.budget``).
    """
    from ops.bulk import open_job
    from ops.crypto import cipher_for
    from ops.target import stack_state_dir

    job = open_job(target, limits, segments=segments)
    estimate = int(job.desc.get("ItemCount") or 0)
    result = run(
        job.client,
        job.table,
        name,
        stack_state_dir(target.stack.name),
        "cloud" if target.cloud else "twin",
        dry_run=dry_run,
        restart=restart,
        segments=segments,
        page_size=job.page_size(segments),
        on_progress=progress(estimate, detail=job.meter.line) if progress else None,
        cipher=cipher_for(target),
    )
    result.usage = job.meter.finish()
    return result
