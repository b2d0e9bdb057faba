"""Access pattern 3, second half: move every member's group row of a group to a new message.

Run by the stream consumer for every new ``MSG#`` item, whoever wrote it. A row is moved in
one transaction (delete the old row, put the new one), so a participant never has zero or two
rows; a row already at or past the message stays, so duplicate, late or out-of-order records
never move a group back in time; a moved row is keyed ``<time>#<group>`` (``model.row_sort_key``),
so two groups of one owner moved to one instant keep a row each; extra rows of one participant
(left by older, non-atomic writers) are removed, keeping the newest.

A row takes the message's body attributes as they are (``ops.messages.bodies.body_of``): the
text, or a sealed body with its encrypted data key and message uuid, copied byte for byte. So
moving rows never needs a key, and the old body goes with the old row: a row never keeps the
plain text of an earlier message beside a sealed one.

Named groups (``ops.messages.membership``, up to 50 members): each row's move also checks, in
the same transaction, that its owner is still in the group's membership item. A member removed
while records were in flight has had their row deleted in the transaction that removed them;
a late record can then only find nothing to move, or (through a lagging index) a row whose
move is cancelled by that check: never a row that comes back. A group's rows are moved
``FANOUT_WORKERS`` at a time (each its own transaction), so a message to 50 members costs one
index query and 50 small transactions spread over 8 connections, not 50 in a row.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ops.aws import cancellation_codes, error_code, pause
from ops.messages.bodies import TEXT, with_body
from ops.messages.model import GRP_PREFIX, GSI_NAME, Membership, instant, key_instant_or_never, row_sort_key
from ops.messages.read import group_row_items

MOVE_ATTEMPTS = 5
# Rows moved at once (threads sharing one client): botocore's default pool holds 10 connections, and
# 50 rows in 7 rounds of ~15 ms (a transaction's latency in-region) is ~0.1 s per message, so a batch
# of 25 such messages (streamBatchSize) takes ~3 s of the function's 30 s timeout.
FANOUT_WORKERS = 8


def _when(row: dict[str, Any]) -> Any:
    # rows are compared as moments, not strings: other writers stamp keys with their host's offset
    return key_instant_or_never(row["sk"]["S"])


@dataclass
class MoveResult:
    """What ``move_group_rows`` did for one message."""

    moved: int = 0  # group rows moved to the message
    skipped: int = 0  # rows already at or past the message (duplicate or late record)
    deduplicated: int = 0  # extra rows of one participant removed
    retries: int = 0
    not_members: int = 0  # rows of a named group whose owner is no member any more: left in place, never moved

    @property
    def action(self) -> str:
        if self.moved:
            return "moved"
        return "skipped" if self.skipped else "no-group-rows"


def _delete_if_there(client: Any, table: str, item: dict[str, Any]) -> bool:
    try:
        client.delete_item(
            TableName=table, Key={"pk": item["pk"], "sk": item["sk"]}, ConditionExpression="attribute_exists(pk)"
        )
        return True
    except ClientError as err:
        if error_code(err) == "ConditionalCheckFailedException":
            return False  # already gone (the GSI showed a row that had just moved)
        raise


def _move_row(client: Any, table: str, row: dict[str, Any], created_at: str, body: dict[str, Any]) -> None:
    # the new key carries the group id after the time: another group of this owner moved to the same
    # instant has a key of its own (an old-shape row, keyed by the time alone, takes the new shape here)
    moved = with_body(row, body) | {"sk": {"S": row_sort_key(created_at, row["message_group_uuid"]["S"])}}
    # one transaction: the participant has exactly one row before and after, never zero or two
    actions: list[dict[str, Any]] = [
        {
            "Delete": {
                "TableName": table,
                "Key": {"pk": row["pk"], "sk": row["sk"]},
                "ConditionExpression": "attribute_exists(pk)",
            }
        },
        {"Put": {"TableName": table, "Item": moved, "ConditionExpression": "attribute_not_exists(pk)"}},
    ]
    if "group_name" in row:
        # a named group's row moves only while its owner is a member: checked in the same transaction
        # as the move, so a removal (which deletes the row with the membership change) always wins
        actions.append(
            {
                "ConditionCheck": {
                    "TableName": table,
                    "Key": Membership.key_of(row["message_group_uuid"]["S"]),
                    "ConditionExpression": "attribute_exists(#m.#u)",
                    "ExpressionAttributeNames": {"#m": "members", "#u": row["pk"]["S"][len(GRP_PREFIX) :]},
                }
            }
        )
    client.transact_write_items(TransactItems=actions)


def _not_a_member(err: ClientError) -> bool:
    """A move cancelled by its membership check (the third action): the owner left the group."""
    reasons = cancellation_codes(err)
    return len(reasons) == 3 and reasons[2] == "ConditionalCheckFailed"


def _move_one(
    client: Any, table: str, row: dict[str, Any], created_at: str, body: dict[str, Any]
) -> tuple[str, ClientError | None]:
    """``moved``, ``not-member``, or ``conflict`` (moved by someone else meanwhile, or the index was behind)."""
    try:
        _move_row(client, table, row, created_at, body)
        return "moved", None
    except ClientError as err:
        if error_code(err) not in ("TransactionCanceledException", "TransactionConflictException"):
            raise
        return ("not-member", None) if _not_a_member(err) else ("conflict", err)


def move_group_rows(
    client: Any, table: str, group_uuid: str, created_at: str, body: dict[str, Any] | str, index: str = GSI_NAME
) -> MoveResult:
    """Move every participant's row of a group to a message, never back in time.

    ``body`` is the message's body attributes (``bodies.body_of``), or its plain text.

    A move that loses a race with a concurrent move is re-read and retried; after ``MOVE_ATTEMPTS``
    the last ``ClientError`` escapes so the caller can report the record as failed. Any other error of
    one row's move escapes after every other row of the round was moved: a retry of the record
    then finds those at the message (skipped) and moves only what is left.
    """
    result = MoveResult()
    if isinstance(body, str):
        body = {TEXT: {"S": body}}
    at = instant(created_at)  # a message key that is no time is a failed record, not a guess
    for attempt in range(1, MOVE_ATTEMPTS + 1):
        by_owner: dict[str, list[dict[str, Any]]] = {}
        for item in group_row_items(client, table, group_uuid, index):
            by_owner.setdefault(item["pk"]["S"], []).append(item)
        todo: list[dict[str, Any]] = []
        for rows in by_owner.values():
            rows.sort(key=_when, reverse=True)
            newest, extras = rows[0], rows[1:]
            result.deduplicated += sum(_delete_if_there(client, table, extra) for extra in extras)
            if _when(newest) >= at:
                result.skipped += 1
            else:
                todo.append(newest)
        outcomes = _move_all(client, table, todo, created_at, body)
        actions = [action for action, _ in outcomes]
        result.moved += actions.count("moved")
        result.not_members += actions.count("not-member")
        conflict = next((err for _, err in outcomes if err is not None), None)
        if conflict is None:
            return result
        if attempt == MOVE_ATTEMPTS:
            raise conflict
        result.retries += 1
        pause(attempt)
    return result


def _move_all(
    client: Any, table: str, rows: list[dict[str, Any]], created_at: str, body: dict[str, Any]
) -> list[tuple[str, ClientError | None]]:
    """Move each row (its own transaction), ``FANOUT_WORKERS`` at a time; the first error after all have run."""
    if len(rows) <= 2:  # a pair: no threads for two requests
        return [_move_one(client, table, row, created_at, body) for row in rows]
    with ThreadPoolExecutor(max_workers=FANOUT_WORKERS) as pool:
        futures = [pool.submit(_move_one, client, table, row, created_at, body) for row in rows]
    outcomes, failure = [], None
    for f in futures:
        err = f.exception()
        if err is None:
            outcomes.append(f.result())
        elif failure is None:
            failure = err
    if failure is not None:
        raise failure
    return outcomes
