"""``--plan`` of a bulk job: what it would read and write, how long that takes under its budget, what it costs.

Everything comes from DescribeTable (item count, size, billing mode, capacity) and the job's
budget; no item is read. The estimate follows DynamoDB's rules: a Scan page holds at most 1 MB and
costs its bytes in 4 KB units, halved for eventually consistent reads; a write costs 1 KB units,
once for the table and once more for each index the item appears in (every item of the messages
table carries the GSI's key). Prices are AWS's list prices in one place, with the date they were
read; the cost is what the job would add on an on-demand table (on a provisioned one the capacity
is already paid for, and the budget decides how much of it the job takes).

Above ``EXPORT_ABOVE_BYTES`` a job that reads the whole table plans the export path instead:
DynamoDB exports the table to S3 from its backups, using no read capacity at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ops.budget import READ_UNIT, Budget, Limits, billing_mode, provisioned, resolve

# AWS list prices, us-east-1, as published from PRICES_DATE (when on-demand throughput was halved); check them
# at https://aws.amazon.com/dynamodb/pricing/ and https://aws.amazon.com/athena/pricing/ before trusting a cost.
PRICES_DATE = "2024-11-01"
PRICE_PER_MILLION_READ_UNITS = 0.125  # on-demand read request units
PRICE_PER_MILLION_WRITE_UNITS = 0.625  # on-demand write request units
PRICE_EXPORT_PER_GB = 0.10  # full export to S3, per GB of table
PRICE_IMPORT_PER_GB = 0.15  # import from S3, per GB of uncompressed data
PRICE_ATHENA_PER_TB = 5.00  # SQL over the export, per TB scanned

# Above 10 GiB a whole-table read takes the export path: at a 1,000 RCU/s budget a 10 GiB scan already
# takes 45 minutes of the application's capacity, and AWS's guidance is a segment per ~2 GB anyway.
EXPORT_ABOVE_BYTES = 10 * 2**30
PAGE_BYTES = 2**20  # a Scan page stops at 1 MB
INDEXES_PER_ITEM = 1  # the messages table's one GSI (message-group-sk-index) holds every item
# An item's size when DescribeTable has none to divide (moto always says 0 bytes; DynamoDB updates the
# figure about every six hours, so a new table says 0 too): a message of this model is 250-400 bytes.
ASSUMED_ITEM_BYTES = 400


@dataclass
class Plan:
    job: str
    table: str
    items: int
    size_bytes: int
    size_assumed: bool
    billing: str
    capacity: tuple[float, float]  # provisioned (or on-demand maximum) RCU, WCU; 0 = none
    budget: Budget
    path: str  # "scan" or "export"
    requests: int = 0
    read_units: float = 0.0
    write_units: float = 0.0
    seconds: float | None = None  # None: no budget and no capacity bounds it
    cost_usd: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__, budget=self.budget.describe(), prices_date=PRICES_DATE)


def plan(
    desc: dict[str, Any],
    job: str,
    limits: Limits | None = None,
    *,
    cloud: bool = False,
    segments: int = 1,
    writes: int | None = None,
    fix: bool = False,
) -> Plan:
    """The plan of ``job`` (scan, doctor, migrate, seed) on the table ``desc`` describes; ``writes``: items seed
    writes."""
    items = int(desc.get("ItemCount") or 0)
    size = int(desc.get("TableSizeBytes") or 0)
    assumed = bool(items and not size)
    if assumed:
        size = items * ASSUMED_ITEM_BYTES
    out = Plan(
        job,
        str(desc.get("TableName", "")),
        items,
        size,
        assumed,
        billing_mode(desc),
        provisioned(desc),
        resolve(desc, limits or Limits(), cloud=cloud),
        "scan",
    )
    if assumed:
        out.notes.append(
            f"DescribeTable gives no size for {items:,} items (moto never does; DynamoDB updates it every ~6 hours): "
            f"assumed {ASSUMED_ITEM_BYTES} bytes an item"
        )
    if job == "seed":
        n = writes or 0
        out.requests = math.ceil(n / 25) + 3  # batches of 25, the pair entry, the verification reads
        out.write_units = n * (1 + INDEXES_PER_ITEM)
    else:
        passes = 2 if fix else 1  # --fix examines again after its repairs
        if size > EXPORT_ABOVE_BYTES:
            out.path = "export"
            out.requests = 1
            out.cost_usd = size / 1e9 * PRICE_EXPORT_PER_GB
            out.notes.append(
                f"{size / 2**30:,.1f} GiB is above {EXPORT_ABOVE_BYTES / 2**30:g} GiB: export the table "
                f"(`invoke ddb.export`, no read capacity) and run with --from-export latest"
            )
            return out
        pages = max(math.ceil(size / PAGE_BYTES), 1)
        out.requests = passes * (pages + segments - 1)  # each segment ends with a page of its own
        out.read_units = passes * (math.ceil(size / READ_UNIT) + pages) * 0.5  # each page rounds up once
        if job == "migrate":
            out.write_units = items * (1 + INDEXES_PER_ITEM)  # at most: one change per item
            out.requests += items
            out.notes.append("writes are an upper bound: one change per item (a second run changes nothing)")
        if job == "doctor" and fix:
            out.notes.append("repairs are not estimated: they depend on the findings (run without --fix first)")
    out.cost_usd += out.read_units / 1e6 * PRICE_PER_MILLION_READ_UNITS
    out.cost_usd += out.write_units / 1e6 * PRICE_PER_MILLION_WRITE_UNITS
    out.seconds = _seconds(out, cloud)
    if out.billing != "PAY_PER_REQUEST":
        out.notes.append("provisioned table: the capacity is already paid for; the cost is what on-demand would bill")
    return out


def _seconds(p: Plan, cloud: bool) -> float | None:
    """How long the job's capacity units take at its budget (or, in the cloud, the table's capacity when lower).

    A twin's engine does not enforce the capacity its table declares: there only the budget bounds the time.
    """
    need: list[float] = []
    for units, budget, capacity in (
        (p.read_units, p.budget.rcu, p.capacity[0]),
        (p.write_units, p.budget.wcu, p.capacity[1]),
    ):
        if not units:
            continue
        bounds = [b for b in (budget, capacity if cloud else None) if b]
        if not bounds:
            return None
        need.append(units / min(bounds))
    return max(need, default=0.0)


def plan_target(
    target: Any,
    job: str,
    limits: Limits | None = None,
    *,
    segments: int = 1,
    writes: int | None = None,
    fix: bool = False,
) -> Plan:
    """``--plan`` on a stack: one DescribeTable, no item read."""
    from ops.ddb import require_table

    client = target.client("dynamodb")
    desc = require_table(client, target.stack.table_name, target.stack.name)
    return plan(desc, job, limits, cloud=bool(target.cloud), segments=segments, writes=writes, fix=fix)
