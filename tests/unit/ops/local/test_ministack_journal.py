"""The write-ahead journal in front of MiniStack: journal first, then apply; a write it cannot journal is refused.

GIVEN ``ops.local.ministack_server.Durable`` around a stand-in ASGI application (the journal's logic is
ours; MiniStack itself is exercised by tests/twin/ops/local/test_ministack.py) WHEN writes, reads and a
failing journal come through THEN writes are on disk before the application sees them, reads are not
journaled, a torn tail is dropped at the next start, and a write the journal refuses is never applied.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from ops.local import ministack_server as server


class App:
    """Records what reached it, and what the journal held at that moment."""

    def __init__(self, journal: Path) -> None:
        self.journal = journal
        self.seen: list[tuple[str, int]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        target = dict(scope["headers"]).get(b"x-amz-target", b"").decode()
        await receive()
        records, _, _ = server.read_journal(self.journal)
        self.seen.append((target, len(records)))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def _request(durable: server.Durable, action: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    payload = json.dumps(body).encode()
    scope = {
        "type": "http",
        "method": "POST",
        "headers": [(b"x-amz-target", f"DynamoDB_20120810.{action}".encode()), (b"authorization", b"AWS4 x")],
    }
    chunks = [{"type": "http.request", "body": payload, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return chunks.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(durable(scope, receive, send))
    return sent


def _durable(tmp_path: Path) -> tuple[server.Durable, App]:
    app = App(tmp_path / server.JOURNAL_FILE)
    durable = server.Durable(app, tmp_path, fsync=False)
    asyncio.run(durable.restore())
    return durable, app


def test_a_write_is_journaled_before_the_engine_applies_it_and_a_read_is_not(tmp_path: Path) -> None:
    durable, app = _durable(tmp_path)
    _request(durable, "PutItem", {"TableName": "t", "Item": {"pk": {"S": "a"}}})
    _request(durable, "GetItem", {"TableName": "t", "Key": {"pk": {"S": "a"}}})
    assert app.seen == [("DynamoDB_20120810.PutItem", 1), ("DynamoDB_20120810.GetItem", 1)]
    (record,) = server.read_journal(tmp_path / server.JOURNAL_FILE)[0]
    assert record["seq"] == 1 and dict(record["headers"])["x-amz-target"].endswith("PutItem")


def test_a_torn_last_record_is_dropped_and_the_whole_ones_replayed(tmp_path: Path) -> None:
    durable, _ = _durable(tmp_path)
    for i in range(3):
        _request(durable, "PutItem", {"TableName": "t", "Item": {"pk": {"S": str(i)}}})
    journal = tmp_path / server.JOURNAL_FILE
    journal.write_bytes(journal.read_bytes()[:-5])  # the kill came in the middle of the last append
    records, end, problem = server.read_journal(journal)
    assert len(records) == 2 and "cut short" in problem and end < journal.stat().st_size


def test_a_write_the_journal_cannot_take_is_refused_and_never_applied(tmp_path: Path) -> None:
    durable, app = _durable(tmp_path)
    assert durable.journal is not None

    def full(record: dict[str, Any]) -> int:
        raise OSError(28, "No space left on device")

    durable.journal.append = full  # type: ignore[method-assign]
    sent = _request(durable, "PutItem", {"TableName": "t", "Item": {"pk": {"S": "lost"}}})
    assert sent[0]["status"] == 503 and b"could not journal" in sent[1]["body"]
    assert app.seen == []
