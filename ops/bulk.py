"""What every bulk job (scan, doctor, migrate, seed) shares: its client, metered under a budget, and its table.

``open_job`` resolves the budget (``ops.budget``) from the flags, the table's DescribeTable and
the target, and hooks the meter onto the one client the job then uses for everything, so a job
cannot send a request the budget does not see.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ops.budget import READ_UNIT, Budget, Limits, Meter, resolve
from ops.bulkplan import ASSUMED_ITEM_BYTES
from ops.ddb import require_table

PAGE_SECONDS = 0.5  # a page of a budgeted scan costs at most about this much of one segment's share of the budget


@dataclass
class Job:
    target: Any
    client: Any
    table: str
    desc: dict[str, Any]
    meter: Meter

    @property
    def budget(self) -> Budget:
        return self.meter.budget

    def item_bytes(self) -> float:
        count, size = int(self.desc.get("ItemCount") or 0), int(self.desc.get("TableSizeBytes") or 0)
        return size / count if count and size else ASSUMED_ITEM_BYTES

    def page_size(self, segments: int) -> int | None:
        """Items a scan page should hold so one page never eats seconds of the budget at once (None: unlimited)."""
        if self.budget.rcu is None:
            return None
        page_bytes = self.budget.rcu / max(segments, 1) * PAGE_SECONDS * 2 * READ_UNIT  # eventual reads: 8 KB a unit
        return max(10, min(1000, int(page_bytes / self.item_bytes())))


def open_job(
    target: Any,
    limits: Limits | None = None,
    *,
    segments: int = 1,
    pool: int = 10,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Job:
    """The job's client (metered, ``segments`` connections or ``pool``), its table's description and its budget."""
    client = target.client("dynamodb", max_pool_connections=max(pool, segments))
    table = target.stack.table_name
    desc = require_table(client, table, target.stack.name)  # DescribeTable: not metered, it reads no items
    meter = Meter(resolve(desc, limits or Limits(), cloud=bool(target.cloud)), clock=clock, sleep=sleep)
    meter.attach(client)
    return Job(target, client, table, desc, meter)


@dataclass
class ScanRun:
    items: Iterator[dict[str, Any]]
    meter: Meter

    def summary(self) -> str | None:
        """The budget and the rates it ran at; None when it ran unlimited (a twin: stderr stays quiet)."""
        if self.meter.budget.rcu is None and self.meter.budget.wcu is None:
            return None
        return f"{self.meter.budget.describe()}: {self.meter.line()}"


def scan_target(
    target: Any,
    limits: Limits | None = None,
    *,
    segments: int = 1,
    limit: int | None = None,
    progress: Callable[..., Callable[[int], None]] | None = None,
    from_export: str | None = None,
) -> ScanRun:
    """ddb.scan on a stack: every item, under the job's budget, with progress (items/s, RCU/s) when asked.

    ``from_export`` (an export id or ``latest``): the export's items instead, no read capacity used.
    """
    from itertools import islice

    from ops.ddb import plain_item, scan
    from ops.export import export_items

    job = open_job(target, limits, segments=segments)
    estimate = int(job.desc.get("ItemCount") or 0)
    limited = job.budget.rcu is not None  # an unlimited scan is quick and keeps stderr quiet (pipes, scripts)
    on_progress = progress(min(estimate, limit or estimate), detail=job.meter.line) if progress and limited else None

    def counted() -> Iterator[dict[str, Any]]:
        n = 0
        source = (
            islice((plain_item(i) for i in export_items(target, from_export)[1]), limit)
            if from_export
            else scan(job.client, job.table, segments, page_size=job.page_size(segments), limit=limit)
        )
        for n, item in enumerate(source, 1):
            yield item
            if on_progress is not None and n % 100 == 0:
                on_progress(100)
        if on_progress is not None:
            on_progress(n % 100)
        job.meter.finish()

    return ScanRun(counted(), job.meter)
