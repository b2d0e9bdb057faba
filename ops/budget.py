"""A throughput budget for bulk jobs: read and write capacity units per second, metered and held.

Every bulk job (scan, doctor, migrate, seed) reads or writes a live table as fast as one machine
can; on a production table that is the application's capacity. A ``Budget`` says how many
capacity units a second the job may use (``--max-rcu``/``--max-wcu``, or ``--budget PCT`` of the
table's provisioned capacity). ``Meter.attach`` hooks it onto the job's one DynamoDB client
(botocore's ``provide-client-params``/``after-call`` events), so every request the job makes, from every
parallel scan segment, draws from one shared token bucket per side, whatever code makes it:
the scan's pages, a migration's updates, the doctor's repairs. The checks themselves do not know.

Metering: each request asks for ``ReturnConsumedCapacity=TOTAL`` and is charged what DynamoDB
reports. An engine that reports less than the items it returned must have cost (moto reports 1
unit a page, whatever the page held) is charged the size-based figure instead (DynamoDB's own
rules: reads in 4 KB units, half for eventually consistent reads; writes in 1 KB units), so the
twin paces like the cloud would.

Throttling: DynamoDB's throttling errors carry reasons (``TableReadProvisionedThroughputExceeded``,
``TableReadKeyRangeThroughputExceeded``, …). A limit of the whole table or account (provisioned,
on-demand maximum, account quota: the application needs the capacity too) halves that side's
rate and pauses every segment; it recovers by a tenth of the budget per success. A hot key range
only backs off the segment that met it: the others read other partitions. A throttle without a
reason is taken as the table's. The retry itself is the caller's (``ops.aws.call``).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ops.errors import ConfigError

READS = frozenset({"Scan", "Query", "GetItem", "BatchGetItem", "TransactGetItems"})
WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
THROTTLES = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"})

# With --cloud and no flag: a quarter of a provisioned table's capacity, so the application keeps three
# quarters (and DynamoDB's burst credit) while the job runs. An on-demand table has no capacity to take a
# share of, and what it would take is billed: there the budget must be given (--max-rcu/--max-wcu).
CLOUD_DEFAULT_PCT = 25
READ_UNIT = 4096  # bytes a read capacity unit covers
WRITE_UNIT = 1024  # bytes a write capacity unit covers
FLOOR_SHARE = 1 / 16  # a throttled side never slows below this share of its budget (it still has to finish)


@dataclass(frozen=True)
class Limits:
    """What the user asked for: ``None`` everywhere means "the default for the target"."""

    max_rcu: float | None = None
    max_wcu: float | None = None
    pct: float | None = None

    def given(self) -> bool:
        return self.max_rcu is not None or self.max_wcu is not None or self.pct is not None


@dataclass(frozen=True)
class Budget:
    """Capacity units per second for each side (``None``: unlimited) and why these."""

    rcu: float | None
    wcu: float | None
    why: str

    def describe(self) -> str:
        def side(v: float | None, unit: str) -> str:
            return f"{v:g} {unit}/s" if v is not None else f"unlimited {unit}"

        return f"budget {side(self.rcu, 'RCU')}, {side(self.wcu, 'WCU')} ({self.why})"


def billing_mode(desc: dict[str, Any]) -> str:
    return str((desc.get("BillingModeSummary") or {}).get("BillingMode") or "PROVISIONED")


def provisioned(desc: dict[str, Any]) -> tuple[float, float]:
    """The table's read and write capacity: provisioned units, or an on-demand table's configured maximum (0: none)."""
    if billing_mode(desc) == "PAY_PER_REQUEST":
        od = desc.get("OnDemandThroughput") or {}
        return float(max(od.get("MaxReadRequestUnits") or 0, 0)), float(max(od.get("MaxWriteRequestUnits") or 0, 0))
    pt = desc.get("ProvisionedThroughput") or {}
    return float(pt.get("ReadCapacityUnits") or 0), float(pt.get("WriteCapacityUnits") or 0)


def resolve(desc: dict[str, Any], limits: Limits, *, cloud: bool) -> Budget:
    """The budget a job runs under, from the flags, the table and the target; a ConfigError says what to give."""
    for name, v in (("--max-rcu", limits.max_rcu), ("--max-wcu", limits.max_wcu)):
        if v is not None and v <= 0:
            raise ConfigError(f"{name} must be a positive number of capacity units per second, not {v:g}")
    if limits.pct is not None and not 0 < limits.pct <= 100:
        raise ConfigError(f"--budget must be a percentage above 0 and at most 100, not {limits.pct:g}")
    if limits.pct is not None and (limits.max_rcu is not None or limits.max_wcu is not None):
        raise ConfigError("give either --budget PCT or --max-rcu/--max-wcu, not both")
    rcu, wcu = provisioned(desc)
    on_demand = billing_mode(desc) == "PAY_PER_REQUEST"
    pct = limits.pct if limits.pct is not None else (CLOUD_DEFAULT_PCT if cloud and not limits.given() else None)
    if pct is not None:
        if not (rcu and wcu):
            raise ConfigError(
                "the table is on-demand with no maximum throughput, so it has no capacity to take a share of and "
                "whatever the job uses is billed: give the budget in units, e.g. --max-rcu 500 --max-wcu 100"
                if on_demand
                else "the table reports no provisioned capacity to take a share of: give --max-rcu N / --max-wcu N"
            )
        why = f"{pct:g}% of the table's {'maximum' if on_demand else 'provisioned'} {rcu:g} RCU / {wcu:g} WCU"
        if limits.pct is None:
            why += " (the default with --cloud: the application keeps the rest)"
        return Budget(rcu * pct / 100, wcu * pct / 100, why)
    if limits.given():
        return Budget(limits.max_rcu, limits.max_wcu, "as given")
    return Budget(None, None, "a twin: unlimited by default")


# ------------------------------------------------------------------------------------ sizes
def value_bytes(value: dict[str, Any]) -> int:
    """An attribute value's size as DynamoDB counts it (strings in UTF-8, numbers about a byte per two digits)."""
    ((kind, v),) = value.items()
    if kind == "S":
        return len(v.encode("utf-8"))
    if kind == "N":
        digits = len(str(Decimal(v)).lstrip("-").replace(".", "").lstrip("0")) or 1
        return (digits + 1) // 2 + 1
    if kind == "B":
        return len(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(x.encode("utf-8")) for x in v)
    if kind == "NS":
        return sum(value_bytes({"N": x}) for x in v)
    if kind == "BS":
        return sum(len(x) for x in v)
    if kind == "M":
        return 3 + sum(len(k.encode("utf-8")) + value_bytes(x) + 1 for k, x in v.items())
    if kind == "L":
        return 3 + sum(value_bytes(x) + 1 for x in v)
    return 0


def item_bytes(item: dict[str, Any]) -> int:
    return sum(len(name.encode("utf-8")) + value_bytes(v) for name, v in item.items())


def read_units(items: list[dict[str, Any]], consistent: bool = False) -> float:
    """What a Query or Scan page costs: its items' bytes in 4 KB units, rounded up once; half for eventual reads."""
    units = max(1, math.ceil(sum(item_bytes(i) for i in items) / READ_UNIT))
    return units * (1.0 if consistent else 0.5)


def write_units(item: dict[str, Any] | None) -> float:
    """One write: 1 KB units of the item (a delete or update of an unknown item: one)."""
    return float(max(1, math.ceil(item_bytes(item) / WRITE_UNIT))) if item else 1.0


# ------------------------------------------------------------------------------------ bucket
class Bucket:
    """A token bucket shared by every thread of a job: admitted while the balance is not negative, charged after.

    A request reserves what a request like it cost last time; the bill settles the difference. It
    starts empty (no initial burst) and holds at most a second's worth, so a run's average stays
    within a page of the rate. ``clock``/``sleep`` are injectable: tests run a 20,000-item scan in
    no time and measure the rate on the fake clock.
    """

    def __init__(
        self,
        rate: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.budget = rate
        self.rate = rate
        self.clock, self.sleep = clock, sleep
        self.balance = 0.0
        self.stamp = clock()
        self.paused_until = 0.0
        self.lock = threading.Lock()

    def _refill(self, now: float) -> None:
        if self.rate is not None:
            self.balance = min(self.balance + (now - self.stamp) * self.rate, self.rate)
        self.stamp = now

    def take(self, estimate: float) -> float:
        """Wait until the job may send a request; returns what was reserved for it."""
        while True:
            with self.lock:
                now = self.clock()
                self._refill(now)
                wait = self.paused_until - now
                if wait <= 0:
                    if self.rate is None or self.balance >= -1e-9:  # float dust: a wait too short to pass
                        if self.rate is not None:
                            self.balance -= estimate
                        return estimate
                    wait = -self.balance / self.rate
            self.sleep(wait)

    def settle(self, reserved: float, actual: float) -> None:
        with self.lock:
            if self.rate is not None:
                self.balance += reserved - actual
            if self.budget is not None and self.rate is not None and self.rate < self.budget:
                self.rate = min(self.budget, self.rate + self.budget / 10)  # recover after a throttle, step by step

    def table_throttled(self, pause: float) -> None:
        """The table (or account) said no: everyone waits, and this side goes on at half its rate."""
        with self.lock:
            self.paused_until = max(self.paused_until, self.clock() + pause)
            if self.budget is not None and self.rate is not None:
                self.rate = max(self.budget * FLOOR_SHARE, self.rate / 2)


# ------------------------------------------------------------------------------------ meter
def throttle_reasons(parsed: dict[str, Any]) -> list[str]:
    """The reasons a throttling answer names (``ThrottlingReasons`` or ``throttlingReasons``), none when absent."""
    found = parsed.get("ThrottlingReasons") or parsed.get("throttlingReasons") or []
    return [str(r.get("reason") or r.get("Reason") or "") for r in found if isinstance(r, dict)]


def key_range_only(reasons: list[str]) -> bool:
    """A hot partition (only the segment that met it should back off), rather than the table's capacity."""
    return bool(reasons) and all(r.endswith("KeyRangeThroughputExceeded") for r in reasons)


@dataclass
class Usage:
    """What a job used: requests, items, capacity units, throttles by reason; the rates on the job's clock."""

    started: float
    requests: int = 0
    items: int = 0
    rcu: float = 0.0
    wcu: float = 0.0
    throttled: dict[str, int] = field(default_factory=dict)
    ended: float | None = None

    def seconds(self, now: float) -> float:
        return max((self.ended if self.ended is not None else now) - self.started, 1e-9)

    def line(self, now: float) -> str:
        s = self.seconds(now)
        parts = [f"{self.items / s:,.0f} items/s"]
        if self.rcu:
            parts.append(f"{self.rcu / s:,.1f} RCU/s")
        if self.wcu:
            parts.append(f"{self.wcu / s:,.1f} WCU/s")
        if self.throttled:
            parts.append("throttled " + ", ".join(f"{n}× {r}" for r, n in sorted(self.throttled.items())))
        return ", ".join(parts)


class Meter:
    """The budget of one job, held over every request of its client; ``usage`` is what it consumed."""

    def __init__(
        self,
        budget: Budget,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.budget = budget
        self.clock, self.sleep, self.rand = clock, sleep, rand
        self.reads = Bucket(budget.rcu, clock, sleep)
        self.writes = Bucket(budget.wcu, clock, sleep)
        self.usage = Usage(clock())
        self.lock = threading.Lock()
        self.local = threading.local()  # per thread: the last read's cost (the next reservation), its own backoff

    def attach(self, client: Any) -> Any:
        """Hook this meter onto ``client`` (every DynamoDB request it sends from now on); returns the client."""
        events = client.meta.events
        # provide-client-params, not before-call: a Stubber answers at before-call, and nothing after it runs
        events.register("provide-client-params.dynamodb.*", self._before)
        events.register("after-call.dynamodb.*", self._after)
        return client

    def line(self) -> str:
        return self.usage.line(self.clock())

    def finish(self) -> Usage:
        self.usage.ended = self.clock()
        return self.usage

    # -- hooks (botocore calls them on the requesting thread, before the request is built and after its answer)
    def _before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        op = model.name
        if op not in READS and op not in WRITES:
            return
        if "ReturnConsumedCapacity" in model.input_shape.members:
            params.setdefault("ReturnConsumedCapacity", "TOTAL")
        context["budget_body"] = params
        backoff = getattr(self.local, "backoff_until", 0.0) - self.clock()
        if backoff > 0:
            self.sleep(backoff)
        if op in READS:
            context["budget"] = ("r", self.reads.take(getattr(self.local, "last_read", 0.5)))
        else:
            context["budget"] = ("w", self.writes.take(_estimated_writes(op, params)))

    def _after(self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        side, reserved = context.pop("budget", (None, 0.0))
        body = context.pop("budget_body", {})
        if side is None:
            return
        bucket = self.reads if side == "r" else self.writes
        status = getattr(http_response, "status_code", 200)
        if status >= 300:
            bucket.settle(reserved, 0.0)  # a refused request consumes nothing
            code = str((parsed.get("Error") or {}).get("Code") or "")
            if code in THROTTLES:
                self._throttled(bucket, throttle_reasons(parsed) or [f"{code} (no reason given)"])
            return
        self.local.attempt = 0
        cost, count = _charge(model.name, body, parsed)
        bucket.settle(reserved, cost)
        if side == "r":
            self.local.last_read = cost
        with self.lock:
            self.usage.requests += 1
            self.usage.items += count
            if side == "r":
                self.usage.rcu += cost
            else:
                self.usage.wcu += cost

    def _throttled(self, bucket: Bucket, reasons: list[str]) -> None:
        attempt = getattr(self.local, "attempt", 0) + 1
        self.local.attempt = attempt
        pause = (0.5 + self.rand()) * min(8.0, 0.1 * 2**attempt)  # jittered, growing while throttles continue
        with self.lock:
            for r in reasons:
                self.usage.throttled[r] = self.usage.throttled.get(r, 0) + 1
        if key_range_only(reasons):
            self.local.backoff_until = self.clock() + pause  # only this segment: the others read other partitions
        else:
            bucket.table_throttled(pause)


def _estimated_writes(op: str, body: dict[str, Any]) -> float:
    if op == "PutItem":
        return write_units(body.get("Item"))
    if op == "BatchWriteItem":
        return sum(
            write_units((r.get("PutRequest") or {}).get("Item"))
            for reqs in (body.get("RequestItems") or {}).values()
            for r in reqs
        )
    if op == "TransactWriteItems":
        return 2.0 * sum(write_units((t.get("Put") or {}).get("Item")) for t in body.get("TransactItems") or [])
    return 1.0


def _reported(parsed: dict[str, Any]) -> float:
    found = parsed.get("ConsumedCapacity")
    if isinstance(found, dict):
        found = [found]
    return float(sum(c.get("CapacityUnits") or 0 for c in found or []))


def _charge(op: str, body: dict[str, Any], parsed: dict[str, Any]) -> tuple[float, int]:
    """(capacity units, items) of a successful request: what DynamoDB reported, at least what the items imply."""
    reported = _reported(parsed)
    consistent = bool(body.get("ConsistentRead"))
    if op in ("Scan", "Query"):
        items = parsed.get("Items") or []
        implied = read_units(items, consistent) if items else 0.5
        return max(reported, implied), int(parsed.get("Count", len(items)))
    if op == "GetItem":
        item = parsed.get("Item")
        return max(reported, read_units([item] if item else [], consistent)), int(bool(item))
    if op == "BatchGetItem":
        got = [i for its in (parsed.get("Responses") or {}).values() for i in its]
        return max(reported, sum(read_units([i]) for i in got)), len(got)
    if op == "BatchWriteItem":
        left = sum(len(v) for v in (parsed.get("UnprocessedItems") or {}).values())
        sent = sum(len(v) for v in (body.get("RequestItems") or {}).values())
        done = _estimated_writes(op, body) * ((sent - left) / sent if sent else 0)
        return max(reported, done), sent - left
    if op == "TransactWriteItems":
        return max(reported, _estimated_writes(op, body)), len(body.get("TransactItems") or [])
    if op == "TransactGetItems":
        return max(reported, 2.0 * len(body.get("TransactItems") or [])), len(parsed.get("Responses") or [])
    return max(reported, _estimated_writes(op, body)), 1
