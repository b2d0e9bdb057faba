"""The bulk jobs' throughput budget: held over a run on a fake clock, and throttling handled by its reason.

Stubbed answers (botocore's Stubber) stand in for DynamoDB here: they say exactly what each page
held and what it cost, and how a request was throttled, which no engine can be made to do on demand.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from ops import ddb
from ops.aws import pages
from ops.budget import Bucket, Budget, Limits, Meter, item_bytes, read_units, resolve, write_units
from ops.errors import ConfigError

TABLE = "cruddur-messages"
ARN = f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}"


class FakeClock:
    """Time that passes only when someone sleeps; a sleeper wakes at its own deadline (threads overlap)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now = max(self.now, self.now + max(seconds, 0.0))


def client() -> Any:
    return boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def item(n: int) -> dict[str, Any]:
    return {
        "pk": {"S": f"MSG#{n // 50:08d}"},
        "sk": {"S": f"2026-01-01T00:00:{n % 60:02d}.{n:06d}+00:00"},
        "message": {"S": "x" * 150},
    }


def page(first: int, count: int, last: bool, reported: float | None) -> dict[str, Any]:
    items = [item(n) for n in range(first, first + count)]
    out: dict[str, Any] = {"Items": items, "Count": count, "ScannedCount": count}
    if reported is not None:
        out["ConsumedCapacity"] = {"TableName": TABLE, "CapacityUnits": reported}
    if not last:
        out["LastEvaluatedKey"] = {"pk": items[-1]["pk"], "sk": items[-1]["sk"]}
    return out


@pytest.mark.parametrize("reported", ["as DynamoDB reports it", "1 a page, as moto reports it"])
def test_a_20000_item_scan_holds_50_rcu_a_second_within_10_percent(reported: str) -> None:
    # GIVEN a table of 20,000 items read in pages of 1,000, and a meter of 50 RCU/s on a fake clock
    clock = FakeClock()
    meter = Meter(Budget(50, None, "as given"), clock=clock, sleep=clock.sleep)
    dynamo = meter.attach(client())
    with Stubber(dynamo) as stub:
        for p in range(20):
            cost = read_units(page(p * 1000, 1000, True, None)["Items"])
            stub.add_response("scan", page(p * 1000, 1000, p == 19, cost if reported.startswith("as D") else 1.0))
        # WHEN the whole table is scanned
        got = sum(1 for _ in ddb.scan(dynamo, TABLE, page_size=1000))
    usage = meter.finish()
    # THEN every item came, at 50 RCU/s ± 10% of the fake clock, as the progress line says
    assert got == 20_000 and usage.items == 20_000 and usage.requests == 20
    assert usage.rcu == pytest.approx(20 * read_units(page(0, 1000, True, None)["Items"]))
    rate = usage.rcu / usage.seconds(clock())
    assert 45 <= rate <= 55, rate
    assert "RCU/s" in usage.line(clock()) and "20,000" not in usage.line(clock())


def test_parallel_segments_share_one_bucket() -> None:
    # GIVEN four threads taking from one 20-unit bucket, each request costing 2 units
    clock = FakeClock()
    bucket = Bucket(20, clock=clock, sleep=clock.sleep)
    spent = [0.0]
    lock = threading.Lock()

    def segment() -> None:
        for _ in range(50):
            reserved = bucket.take(2.0)
            bucket.settle(reserved, 2.0)
            with lock:
                spent[0] += 2.0

    threads = [threading.Thread(target=segment) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # THEN the four together held the one rate (400 units in ~20 s), not four times it
    assert spent[0] == 400
    assert 18 <= 400 / clock() <= 22, clock()


def throttle(reason: str | None) -> dict[str, Any]:
    fields = {"ThrottlingReasons": [{"reason": reason, "resource": ARN}]} if reason else {}
    return fields


@pytest.mark.parametrize(
    "reason, table_wide",
    [
        ("TableReadProvisionedThroughputExceeded", True),
        ("TableReadMaxOnDemandThroughputExceeded", True),
        ("TableReadAccountLimitExceeded", True),
        ("IndexReadProvisionedThroughputExceeded", True),
        ("TableReadKeyRangeThroughputExceeded", False),
        (None, True),
    ],
)
def test_throttling_backs_off_by_its_reason(reason: str | None, table_wide: bool) -> None:
    # GIVEN a metered client whose first Scan is throttled for REASON, the retry answered
    clock = FakeClock()
    meter = Meter(Budget(100, None, "as given"), clock=clock, sleep=clock.sleep, rand=lambda: 0.5)
    dynamo = meter.attach(client())
    with Stubber(dynamo) as stub:
        stub.add_client_error(
            "scan",
            service_error_code="ProvisionedThroughputExceededException",
            service_message="slow down",
            http_status_code=400,
            modeled_fields=throttle(reason),
        )
        stub.add_response("scan", page(0, 10, True, 0.5))
        # WHEN the pages are read (ops.aws retries the throttled page)
        got = [p for p in pages(dynamo, "scan", "Scan", sleep=clock.sleep, TableName=TABLE)]
    # THEN the page came; the throttle is counted under its reason
    assert len(got) == 1
    named = reason or "ProvisionedThroughputExceededException (no reason given)"
    assert meter.usage.throttled == {named: 1}
    if table_wide:
        # the table's capacity: every segment paused, this side slowed to half (then recovering by a tenth)
        assert meter.reads.paused_until > 0 and meter.reads.rate == pytest.approx(60)
    else:
        # a hot key range: only this segment backed off, the rate untouched
        assert meter.reads.paused_until == 0 and meter.reads.rate == 100
        assert meter.local.backoff_until > 0


def test_writes_are_metered_from_what_was_sent() -> None:
    clock = FakeClock()
    meter = Meter(Budget(None, 10, "as given"), clock=clock, sleep=clock.sleep)
    dynamo = meter.attach(client())
    big = {"pk": {"S": "MSG#a"}, "sk": {"S": "1"}, "message": {"S": "y" * 3000}}
    with Stubber(dynamo) as stub:
        stub.add_response("batch_write_item", {"UnprocessedItems": {}})
        dynamo.batch_write_item(
            RequestItems={TABLE: [{"PutRequest": {"Item": big}}, {"PutRequest": {"Item": item(1)}}]}
        )
    assert meter.usage.wcu == write_units(big) + write_units(item(1)) == 3 + 1  # 3,021 bytes: three 1 KB units
    assert meter.usage.items == 2


def test_sizes_follow_dynamodbs_rules() -> None:
    assert item_bytes({"pk": {"S": "ab"}, "n": {"N": "12345"}, "b": {"BOOL": True}}) == 2 + 2 + 1 + 4 + 1 + 1
    assert read_units([{"a": {"S": "x" * 5000}}]) == 1.0  # 2 units of 4 KB, halved (eventually consistent)
    assert read_units([{"a": {"S": "x" * 5000}}], consistent=True) == 2.0


def desc(mode: str = "PROVISIONED", rcu: int = 400, wcu: int = 100, **extra: Any) -> dict[str, Any]:
    return {
        "BillingModeSummary": {"BillingMode": mode},
        "ProvisionedThroughput": {"ReadCapacityUnits": rcu, "WriteCapacityUnits": wcu},
    } | extra


def test_budget_defaults_and_refusals() -> None:
    assert resolve(desc(), Limits(), cloud=False) == Budget(None, None, "a twin: unlimited by default")
    cloud = resolve(desc(), Limits(), cloud=True)
    assert (cloud.rcu, cloud.wcu) == (100, 25) and "default with --cloud" in cloud.why
    assert resolve(desc(), Limits(pct=50), cloud=True).rcu == 200
    assert resolve(desc(), Limits(max_rcu=50), cloud=True) == Budget(50, None, "as given")
    with pytest.raises(ConfigError, match="on-demand.*--max-rcu"):
        resolve(desc("PAY_PER_REQUEST", 0, 0), Limits(), cloud=True)
    with pytest.raises(ConfigError, match="on-demand"):
        resolve(desc("PAY_PER_REQUEST", 0, 0), Limits(pct=10), cloud=False)
    on_demand_max = desc(
        "PAY_PER_REQUEST", 0, 0, OnDemandThroughput={"MaxReadRequestUnits": 1000, "MaxWriteRequestUnits": 200}
    )
    assert resolve(on_demand_max, Limits(pct=10), cloud=True).rcu == 100
    with pytest.raises(ConfigError, match="not both"):
        resolve(desc(), Limits(max_rcu=5, pct=5), cloud=True)
