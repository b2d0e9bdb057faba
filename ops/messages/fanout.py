"""Access pattern 3, second half: move both group rows of a group to a new message.

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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ops.aws import error_code, pause
from ops.messages.bodies import TEXT, with_body
from ops.messages.model import GSI_NAME, instant, key_instant_or_never, row_sort_key
from ops.messages.read import group_row_items

MOVE_ATTEMPTS = 5


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
    client.transact_write_items(
        TransactItems=[
            {
                "Delete": {
                    "TableName": table,
                    "Key": {"pk": row["pk"], "sk": row["sk"]},
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
            {"Put": {"TableName": table, "Item": moved, "ConditionExpression": "attribute_not_exists(pk)"}},
        ]
    )


def move_group_rows(
    client: Any, table: str, group_uuid: str, created_at: str, body: dict[str, Any] | str, index: str = GSI_NAME
) -> MoveResult:
    """Move every participant's row of a group to a message, never back in time.

    ``body`` is the message's body attributes (``bodies.body_of``), or its plain text.

    A move that loses a race with a concurrent move is re-read and retried; the last
    ``ClientError`` escapes after ``MOVE_ATTEMPTS`` so the caller can report the record as failed.
    """
    result = MoveResult()
    if isinstance(body, str):
        body = {TEXT: {"S": body}}
    at = instant(created_at)  # a message key that is no time is a failed record, not a guess
    for attempt in range(1, MOVE_ATTEMPTS + 1):
        by_owner: dict[str, list[dict[str, Any]]] = {}
        for item in group_row_items(client, table, group_uuid, index):
            by_owner.setdefault(item["pk"]["S"], []).append(item)
        conflict: ClientError | None = None
        for rows in by_owner.values():
            rows.sort(key=_when, reverse=True)
            newest, extras = rows[0], rows[1:]
            result.deduplicated += sum(_delete_if_there(client, table, extra) for extra in extras)
            if _when(newest) >= at:
                result.skipped += 1
                continue
            try:
                _move_row(client, table, newest, created_at, body)
                result.moved += 1
            except ClientError as err:
                if error_code(err) not in ("TransactionCanceledException", "TransactionConflictException"):
                    raise
                conflict = err  # moved by someone else meanwhile, or the GSI was behind: re-read
        if conflict is None:
            return result
        if attempt == MOVE_ATTEMPTS:
            raise conflict
        result.retries += 1
        pause(attempt)
    return result
