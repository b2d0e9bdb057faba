"""--plan of the bulk jobs: numbers worked out by hand from DescribeTable, and no item read to get them."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ops.budget import Limits
from ops.bulkplan import EXPORT_ABOVE_BYTES, PRICE_EXPORT_PER_GB, plan, plan_target
from ops.render import plan_lines


def desc(items: int, size: int, mode: str = "PROVISIONED", rcu: int = 100, wcu: int = 50) -> dict[str, Any]:
    return {
        "TableName": "cruddur-messages",
        "ItemCount": items,
        "TableSizeBytes": size,
        "BillingModeSummary": {"BillingMode": mode},
        "ProvisionedThroughput": {"ReadCapacityUnits": rcu, "WriteCapacityUnits": wcu},
    }


def test_scan_plan_matches_the_hand_computed_numbers() -> None:
    # 8,000,000 bytes: 8 pages of at most 1 MiB; 1,954 units of 4 KB plus one rounding per page, halved
    p = plan(desc(20_000, 8_000_000), "scan", Limits(max_rcu=50))
    assert (p.path, p.requests, p.read_units, p.write_units) == ("scan", 8, 981.0, 0.0)
    assert p.seconds == pytest.approx(981 / 50)
    assert p.cost_usd == pytest.approx(981 / 1e6 * 0.125)


def test_doctor_with_fix_reads_twice_and_segments_add_their_last_pages() -> None:
    p = plan(desc(20_000, 8_000_000), "doctor", Limits(max_rcu=50), segments=4, fix=True)
    assert (p.requests, p.read_units) == (2 * (8 + 3), 2 * 981.0)


def test_without_a_budget_the_table_capacity_bounds_the_time_in_the_cloud_only() -> None:
    p = plan(desc(20_000, 8_000_000), "scan", Limits(max_rcu=500), cloud=True)
    assert p.seconds == pytest.approx(981 / 100)  # the table's 100 RCU, not the budget's 500
    assert plan(desc(20_000, 8_000_000), "scan", Limits()).seconds is None  # a twin enforces no capacity
    on_demand = plan(desc(20_000, 8_000_000, "PAY_PER_REQUEST", 0, 0), "scan", Limits())
    assert on_demand.seconds is None and "unbounded" in plan_lines(on_demand)


def test_migrate_and_seed_count_their_writes_with_the_index() -> None:
    m = plan(desc(1_000, 400_000), "migrate", Limits(max_rcu=10, max_wcu=20))
    assert m.write_units == 2_000 and m.seconds == pytest.approx(2_000 / 20)  # the writes take longer than the reads
    s = plan(desc(1_000, 400_000), "seed", Limits(max_wcu=10), writes=23)
    assert (s.requests, s.read_units, s.write_units) == (1 + 3, 0.0, 46.0)
    assert s.seconds == pytest.approx(4.6)


def test_above_the_stated_size_the_plan_takes_the_export_path() -> None:
    size = EXPORT_ABOVE_BYTES + 2**30
    p = plan(desc(50_000_000, size), "doctor", Limits(max_rcu=1000))
    assert p.path == "export" and p.read_units == 0 and p.cost_usd == pytest.approx(size / 1e9 * PRICE_EXPORT_PER_GB)
    assert "--from-export latest" in plan_lines(p)


def test_a_size_moto_does_not_give_is_assumed_and_said() -> None:
    p = plan(desc(1_000, 0), "scan")
    assert p.size_assumed and p.size_bytes == 400_000 and "assumed" in plan_lines(p)


@mock_aws
def test_plan_target_sends_describe_table_and_nothing_else() -> None:
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for n in range(30):
        client.put_item(TableName="t", Item={"pk": {"S": str(n)}})
    sent: list[str] = []
    client.meta.events.register("before-call.dynamodb.*", lambda model, **_: sent.append(model.name))
    target = SimpleNamespace(
        client=lambda service, **_: client, stack=SimpleNamespace(table_name="t", name="dev"), cloud=False
    )
    p = plan_target(target, "doctor")
    assert sent == ["DescribeTable"] and p.items == 30
