"""A writer that fills the table the way the course's original backend does (see ../shared/seeds/INDEX.md).

It is what teams adopting this suite already have running: a group gets a random uuid4 id; its
two group rows and its first message go in ONE ``batch_write_item`` (not a transaction, no pair
entry, nothing that stops a second "first message" from making a second group); replies are a
plain ``put_item`` of the message (the stream consumer moves the group rows); every key is
stamped with ``datetime.now(timezone.utc).astimezone().isoformat()``: the host's offset, and no
fraction at all when the microseconds happen to be zero.

Its reader (``list_message_groups``) is the seeds' pattern 1 as that backend runs it: one query of
``pk = GRP#<user>``, newest first, ``begins_with(sk, <year>)``, a page of 20 and no next page. Rows
keyed ``<time>#<group>`` (this suite's) still start with the year, so it lists them too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from ops.messages.model import Person


@dataclass
class OriginalBackend:
    client: Any
    table: str
    offset_hours: float = 1.0  # a laptop in Lagos: +01:00

    def now(self, shift: timedelta = timedelta()) -> str:
        host = timezone(timedelta(hours=self.offset_hours))
        return (datetime.now(UTC) + shift).astimezone(host).isoformat()

    def create_message_group(self, me: Person, other: Person, text: str, at: str | None = None) -> str:
        """The seeds' pattern 3 for a new pair: a fresh random group, three puts in one non-atomic batch."""
        group = str(uuid.uuid4())
        at = at or self.now()
        rows = [
            {
                "pk": f"GRP#{me.uuid}",
                "sk": at,
                "message_group_uuid": group,
                "message": text,
                "user_uuid": other.uuid,
                "user_display_name": other.display_name,
                "user_handle": other.handle,
            },
            {
                "pk": f"GRP#{other.uuid}",
                "sk": at,
                "message_group_uuid": group,
                "message": text,
                "user_uuid": me.uuid,
                "user_display_name": me.display_name,
                "user_handle": me.handle,
            },
        ]
        message = self._message(group, at, text, me)
        requests = [{"PutRequest": {"Item": _strings(item)}} for item in (*rows, message)]
        self.client.batch_write_item(RequestItems={self.table: requests})  # UnprocessedItems ignored, as there
        return group

    def create_message(self, group: str, me: Person, text: str, at: str | None = None) -> str:
        """A reply: one put of the message; the group rows are the stream consumer's job."""
        at = at or self.now()
        self.client.put_item(TableName=self.table, Item=_strings(self._message(group, at, text, me)))
        return at

    def list_message_groups(self, user: Person, year: str | None = None) -> list[dict[str, str]]:
        """The original pattern 1: the user's group rows of ``year`` (default: this one), newest first, at most 20."""
        return [{k: v["S"] for k, v in item.items() if "S" in v} for item in self._year_rows(user.uuid, year)]

    def _year_rows(self, user_uuid: str, year: str | None) -> list[dict[str, Any]]:
        """The seeds' one query for pattern 1: ``begins_with(sk, year)``, newest first, 20 at most, no paging."""
        return self.client.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk,:year)",
            ScanIndexForward=False,
            Limit=20,
            ExpressionAttributeValues={
                ":year": {"S": year or str(datetime.now().year)},
                ":pk": {"S": f"GRP#{user_uuid}"},
            },
        )["Items"]

    # ---- what its backend serves from them (the seeds' services: attribute by name, keys parsed as times)

    def served_message_groups(self, user_uuid: str, year: str | None = None) -> list[dict[str, str]]:
        """The backend's pattern 1 as served: this year's rows of the user, newest first, 20 at most."""
        return [
            {
                "uuid": i["message_group_uuid"]["S"],
                "display_name": i["user_display_name"]["S"],
                "handle": i["user_handle"]["S"],
                "message": i["message"]["S"],
                "created_at": i["sk"]["S"],
            }
            for i in self._year_rows(user_uuid, year)
        ]

    def list_messages(self, group: str, year: str | None = None) -> list[dict[str, str]]:
        """The backend's pattern 2: this year's newest 20 messages, oldest first, each time parsed as it does."""
        resp = self.client.query(
            TableName=self.table,
            ScanIndexForward=False,
            Limit=20,
            KeyConditionExpression="pk = :pk AND begins_with(sk,:year)",
            ExpressionAttributeValues={":year": {"S": year or str(datetime.now().year)}, ":pk": {"S": f"MSG#{group}"}},
        )
        out = []
        for i in reversed(resp["Items"]):
            datetime.strptime(i["sk"]["S"], "%Y-%m-%dT%H:%M:%S.%f%z")  # what its template does with every key
            out.append(
                {
                    "uuid": i["message_uuid"]["S"],
                    "display_name": i["user_display_name"]["S"],
                    "handle": i["user_handle"]["S"],
                    "message": i["message"]["S"],
                    "created_at": i["sk"]["S"],
                }
            )
        return out

    @staticmethod
    def _message(group: str, at: str, text: str, sender: Person) -> dict[str, str]:
        return {
            "pk": f"MSG#{group}",
            "sk": at,
            "message_uuid": str(uuid.uuid4()),
            "message": text,
            "user_uuid": sender.uuid,
            "user_display_name": sender.display_name,
            "user_handle": sender.handle,
        }


def _strings(item: dict[str, str]) -> dict[str, dict[str, str]]:
    return {k: {"S": v} for k, v in item.items()}
