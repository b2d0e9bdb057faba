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
from typing import Any, Generic, TypeVar

from ops.aws import pages
from ops.errors import ConfigError
from ops.messages.model import TIME_CEILING

T = TypeVar("T")
MAX_PAGE_SIZE = 1000  # DynamoDB returns at most 1 MB a page anyway; bigger asks are mistakes


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None = None
    requests: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


def encode_cursor(pk: str, sk: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"pk": pk, "sk": sk}, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, pk: str) -> dict[str, Any] | None:
    """The ``ExclusiveStartKey`` a cursor stands for; one made for another listing is refused."""
    if not cursor:
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, dict) or raw.get("pk") != pk or not isinstance(raw.get("sk"), str):
            raise ValueError("cursor is for another listing")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ConfigError("invalid --cursor: use the next-page token printed by the previous page of this same listing") from None
    return {"pk": {"S": pk}, "sk": {"S": raw["sk"]}}


def check_page_size(page_size: int) -> None:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ConfigError(f"page size must be between 1 and {MAX_PAGE_SIZE}, not {page_size}")


def newest_first(client: Any, table: str, pk: str, page_size: int, cursor: str | None, before: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of partition ``pk`` from its newest item (or from ``cursor`` / before ``before``); and the next cursor."""
    check_page_size(page_size)
    want = page_size + 1  # one item more than asked: tells whether an older page exists
    request: dict[str, Any] = {
        "TableName": table,
        # always bounded: items keyed by no time (a group's KEY item) sort above every timestamp
        "KeyConditionExpression": "pk = :pk AND sk < :before",
        "ExpressionAttributeValues": {":pk": {"S": pk}, ":before": {"S": before or TIME_CEILING}},
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
        items.extend(page.get("Items", []))
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
