"""What a benchmark run produces: sizes in, rows and a report out. Plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ops.errors import OpsError


class BenchError(OpsError):
    """A workload could not be measured (a worker failed, or a run did not do all of its work)."""


@dataclass(frozen=True)
class Sizes:
    seed_messages: int  # seed: one conversation of this many messages (ddb.seed's fixture lines, repeated)
    scan: tuple[int, ...]  # scan and query: table sizes (whole hundreds)
    scan_segments: int  # scan: the extra "parallel segments" run, at the smallest size
    queries: int  # query: newest pages read per table size (the p50 is of these)
    page_group: int  # paging: messages in the group
    page_size: int
    users: int  # sync: users in PostgreSQL and in the Cognito pool
    cli_runs: int  # cli: timed runs per command (median), after one warm-up run
    repeats: int  # seed (ours, batch_writer), paging, sync: best of this many runs, ours and baseline interleaved
    seed_workers: int = 4  # batch_write's default
    fanout_members: int = 50  # fanout: members of the named group one message goes to (the most a group holds)


SIZES: dict[str, Sizes] = {
    # CI: every workload once, small enough to finish in under a minute with the twin's start
    "smoke": Sizes(
        seed_messages=300,
        scan=(500, 1_000),
        scan_segments=4,
        queries=20,
        page_group=300,
        page_size=50,
        users=60,
        cli_runs=2,
        repeats=1,
    ),
    "full": Sizes(
        seed_messages=20_000,
        scan=(10_000, 100_000),
        scan_segments=4,
        queries=300,
        page_group=5_000,
        page_size=100,
        users=3_000,
        cli_runs=5,
        repeats=3,
    ),
}


@dataclass
class Row:
    """One comparison: ours against a baseline on the same items and the same server."""

    workload: str
    case: str  # what ours did
    size: int
    unit: str
    ours_s: float
    baseline: str  # what the baseline did ("-" when there is none)
    baseline_s: float | None
    ratio: float | None  # baseline_s / ours_s: how many times faster ours is
    items_per_s: float | None  # ours
    peak_mb: float | None  # ours: peak RSS growth of the process doing the work
    baseline_peak_mb: float | None
    target: str
    met: bool | None  # None: no target
    counts: dict[str, int] = field(default_factory=dict)  # requests, statements, items reached ...
    note: str = ""
    # the DynamoDB engine the row ran on ("moto", "ministack"): a dimension of its own, so one
    # workload reports a row per engine without changing its case text.
    # Keyword-only and last, so the JSON keys before it keep their order.
    engine: str = field(kw_only=True)
    # the delay the simulated-distance proxy (bench.latency) added to every request; 0: none
    latency_ms: int = field(default=0, kw_only=True)


@dataclass
class Report:
    size: str
    machine: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    setup: list[str] = field(default_factory=list)  # how long the un-timed preparation took
    errors: dict[str, str] = field(default_factory=dict)  # workload -> one line


def make_row(
    workload: str,
    case: str,
    size: int,
    unit: str,
    ours: dict[str, Any],
    baseline: str,
    base: dict[str, Any] | None,
    *,
    engine: str,
    target: str = "",
    met: bool | None = None,
    counts: dict[str, int] | None = None,
    note: str = "",
    latency_ms: int = 0,
) -> Row:
    """A row from two worker results (``seconds``, ``peak_mb``): the ratio and throughput are derived here, once."""
    ours_s = float(ours["seconds"])
    base_s = float(base["seconds"]) if base else None
    return Row(
        workload,
        case,
        size,
        unit,
        ours_s,
        baseline,
        base_s,
        base_s / ours_s if base_s and ours_s > 0 else None,
        size / ours_s if ours_s > 0 else None,
        ours.get("peak_mb"),
        base.get("peak_mb") if base else None,
        target,
        met,
        counts or {},
        note,
        engine=engine,
        latency_ms=latency_ms,
    )
