"""The synthetic people and conversations every workload writes: the same keys on every run."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ops.messages.model import Person
from ops.seed import SeedItems

BENCH_NAMESPACE = uuid.UUID("4b0d7e52-3c1a-4f8e-a6d9-2e5c7b9f1a60")
SEED_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # fixed: the seed workload writes the same keys every run


def person(i: int) -> Person:
    """A synthetic user, the same on every run."""
    return Person(str(uuid.uuid5(BENCH_NAMESPACE, f"user:{i}")), f"Bench User {i}", f"bench{i:05d}")


def plans(groups: int, per_group: int, big_group: int, start: datetime) -> list[SeedItems]:
    """Conversations built from the shipped fixture's lines, repeated to length: ``ops.seed.build`` makes the items."""
    from ops import seed

    base = seed.parse_conversation(seed.DEFAULT_CONVERSATION)

    def conversation(n: int) -> Any:
        return dataclasses.replace(base, lines=tuple(base.lines[i % len(base.lines)] for i in range(n)))

    out = [seed.build(conversation(per_group), person(2 * g), person(2 * g + 1), start) for g in range(groups)]
    if big_group:
        out.append(seed.build(conversation(big_group), person(2 * groups), person(2 * groups + 1), start))
    return out


def conversation_plan(messages: int, a: int, b: int, start: datetime) -> SeedItems:
    """One conversation of ``messages`` between ``person(a)`` and ``person(b)``, from the fixture's lines repeated."""
    from ops import seed

    base = seed.parse_conversation(seed.DEFAULT_CONVERSATION)
    lines = tuple(base.lines[i % len(base.lines)] for i in range(messages))
    return seed.build(dataclasses.replace(base, lines=lines), person(a), person(b), start)


def ddb_items(ps: list[SeedItems]) -> list[dict[str, Any]]:
    """Every message and group row of the conversations, in DynamoDB's attribute-value form."""
    return [kind.to_item() for p in ps for kind in (*p.messages, *p.rows)]


def plain_items(ps: list[SeedItems]) -> list[dict[str, str]]:
    """The same items as plain values, as boto3's resource layer takes them (every attribute is a string)."""
    return [{k: v["S"] for k, v in item.items()} for item in ddb_items(ps)]


def write_conversation(path: Path, messages: int, start: datetime = SEED_START) -> Path:
    """A conversation file of ``messages`` lines for ``invoke ddb.seed --conversation``: the shipped fixture's lines,
    repeated."""
    from ops import seed

    base = seed.parse_conversation(seed.DEFAULT_CONVERSATION)
    lines = [f"# start: {start.isoformat()}", f"# spacing_seconds: {base.spacing.total_seconds():g}"]
    lines += [
        f"Person {speaker}: {text}" for speaker, text in (base.lines[i % len(base.lines)] for i in range(messages))
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
