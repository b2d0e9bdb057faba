"""The synthetic people and conversations every workload writes: the same keys on every run."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any

from ops.patterns import Person
from ops.seed import SeedPlan

BENCH_NAMESPACE = uuid.UUID("4b0d7e52-3c1a-4f8e-a6d9-2e5c7b9f1a60")
SEED_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # fixed: the seed workload writes the same keys every run


def person(i: int) -> Person:
    """A synthetic user, the same on every run."""
    return Person(str(uuid.uuid5(BENCH_NAMESPACE, f"user:{i}")), f"Bench User {i}", f"bench{i:05d}")


def plans(groups: int, per_group: int, big_group: int, start: datetime) -> list[SeedPlan]:
    """Conversations built from the shipped fixture's lines, repeated to length: ``ops.seed.plan`` makes the items."""
    from ops import seed

    base = seed.parse_conversation(seed.DEFAULT_CONVERSATION)

    def conversation(n: int) -> Any:
        return dataclasses.replace(base, lines=tuple(base.lines[i % len(base.lines)] for i in range(n)))

    out = [seed.plan(conversation(per_group), person(2 * g), person(2 * g + 1), start) for g in range(groups)]
    if big_group:
        out.append(seed.plan(conversation(big_group), person(2 * groups), person(2 * groups + 1), start))
    return out


def plain_items(ps: list[SeedPlan]) -> list[dict[str, str]]:
    """Every message and group row of the plans as plain attribute dicts."""
    out: list[dict[str, str]] = []
    for p in ps:
        out.extend(m.item() for m in p.messages)
        out.extend(r.item() for r in p.rows)
    return out


def seed_count(groups: int, per_group: int, big_group: int) -> int:
    return groups * per_group + big_group + 2 * (groups + (1 if big_group else 0))
