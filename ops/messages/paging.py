"""One page of a partition, newest first, and the opaque cursor that leads to the next one.

Both read patterns are "the newest N items of one partition, then the N before those": a
``Query`` with ``ScanIndexForward=False``. It asks for one item more than the page holds, so a
next-page cursor is handed out only when an older item really exists (no empty last page).
The cursor is the last item's key, base64url'd; it only works for the listing it came from.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from ops.aws import pages
from ops.errors import ConfigError
from ops.messages.model import TIME_CEILING, instant, iso, key_instant_or_never

T = TypeVar("T")
MAX_PAGE_SIZE = 1000  # DynamoDB returns at most 1 MB a page anyway; bigger asks are mistakes


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None = None
    requests: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


def encode_cursor(pk: str, sk: str) -> str:
    return (
        base64.urlsafe_b64encode(json.dumps({"pk": pk, "sk": sk}, separators=(",", ":")).encode()).decode().rstrip("=")
    )


def cursor_key(cursor: str) -> tuple[str, str]:
    """The (pk, sk) a cursor holds; anything that is not a cursor is refused."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, dict) or not isinstance(raw.get("pk"), str) or not isinstance(raw.get("sk"), str):
            raise ValueError("not a cursor")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ConfigError(
            "invalid --cursor: use the next-page token printed by the previous page of this same listing"
        ) from None
    return raw["pk"], raw["sk"]


def decode_cursor(cursor: str | None, pk: str) -> dict[str, Any] | None:
    """The ``ExclusiveStartKey`` a cursor stands for; one made for another listing is refused."""
    if not cursor:
        return None
    found, sk = cursor_key(cursor)
    if found != pk:
        raise ConfigError(
            "invalid --cursor: it belongs to another listing; use the next-page token printed by the previous page of "
            "this same listing"
        )
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def check_page_size(page_size: int) -> None:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ConfigError(f"page size must be between 1 and {MAX_PAGE_SIZE}, not {page_size}")


# Keys written by other writers carry their host's offset (up to +14:00), so their text can read up to
# 14 hours later than the moment it names: the query's bound leaves that room, the moment decides.
LATEST_OFFSET = timedelta(hours=14)


def before_moment(before: str | datetime | None) -> datetime | None:
    """``--before`` as a moment (ISO-8601 with a zone); anything else is a ConfigError."""
    if before is None or isinstance(before, datetime):
        if isinstance(before, datetime) and before.tzinfo is None:
            raise ConfigError("--before needs a time zone")
        return before
    try:
        moment = instant(before)
    except ValueError:
        raise ConfigError(
            f"--before must be an ISO-8601 time with a zone, e.g. 2026-01-05T09:00:00Z, not {before!r}"
        ) from None
    return moment


def newest_first(
    client: Any, table: str, pk: str, page_size: int, cursor: str | None, before: str | datetime | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of partition ``pk`` from its newest item (or from ``cursor`` / before ``before``); and the next cursor.

    ``before`` is compared as a moment, not as text: keys of other writers carry other offsets. A group
    row's key is its time then its group id (``model.row_sort_key``): the time part decides.
    """
    check_page_size(page_size)
    until = before_moment(before)
    want = page_size + 1  # one item more than asked: tells whether an older page exists
    try:
        bound = iso(until + LATEST_OFFSET) if until else TIME_CEILING
    except OverflowError:  # within 14 hours of the year 10000: every key is below it, the moment filter decides
        bound = TIME_CEILING
    request: dict[str, Any] = {
        "TableName": table,
        # always bounded: items keyed by no time (a group's KEY item) sort above every timestamp
        "KeyConditionExpression": "pk = :pk AND sk < :before",
        "ExpressionAttributeValues": {":pk": {"S": pk}, ":before": {"S": bound}},
        "ScanIndexForward": False,  # newest first: the page a person wants to see first
        "Limit": want,
    }
    start = decode_cursor(cursor, pk)
    if start:
        request["ExclusiveStartKey"] = start
    items: list[dict[str, Any]] = []
    not_found = f"table {table!r} does not exist: create it with `invoke ddb.schema-load`"
    # a page can end early at DynamoDB's 1 MB limit: keep reading until page_size + 1
    for page in pages(client, "query", f"Query {pk} on {table}", not_found=not_found, **request):
        found = page.get("Items", [])
        items.extend(found if until is None else (i for i in found if key_instant_or_never(i["sk"]["S"]) < until))
        if len(items) >= want:
            break
    if len(items) > page_size:
        items = items[:page_size]
        return items, encode_cursor(pk, items[-1]["sk"]["S"])
    return items, None


def iter_pages(fetch: Callable[..., Page[T]], **kwargs: Any) -> Iterator[Page[T]]:
    """Follow ``next_cursor`` until the listing ends."""
    cursor = kwargs.pop("cursor", None)
    while True:
        page = fetch(cursor=cursor, **kwargs)
        yield page
        if not page.next_cursor:
            return
        cursor = page.next_cursor
