"""The bulk jobs' --plan and budget as a user runs them, on the dev twin's own table (seeded by ddb.seed)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from ops import ddb as ddbops
from ops.table_spec import table_spec
from ops.target import Target
from tests.support.helpers import assert_one_line_error, run_invoke


@pytest.fixture(scope="module")
def seeded_table(twin: Target, ddb: Any, database: Target) -> Iterator[str]:
    name = twin.stack.table_name
    if ddbops.describe(ddb, name):
        ddbops.drop(ddb, name, "dev")
    ddbops.schema_load(ddb, table_spec(twin.stack))
    seeded = run_invoke("ddb.seed")
    assert seeded.returncode == 0, seeded.stderr
    yield name


@pytest.mark.parametrize("task", ["ddb.doctor", "ddb.scan", "ddb.migrate", "ddb.seed"])
def test_plan_prints_path_capacity_time_and_cost_and_reads_nothing(seeded_table: str, ddb: Any, task: str) -> None:
    items = ddbops.describe(ddb, seeded_table)["ItemCount"]
    proc = run_invoke(task, "--plan", "--max-rcu", "50", "--max-wcu", "20")
    assert proc.returncode == 0, proc.stderr
    for part in ("path:", "requests:", "capacity:", "RCU", "time:", "cost:", "nothing was read or written"):
        assert part in proc.stdout, proc.stdout
    assert ddbops.describe(ddb, seeded_table)["ItemCount"] == items  # and nothing written


def test_doctor_plan_as_json_carries_the_numbers(seeded_table: str) -> None:
    proc = run_invoke("ddb.doctor", "--plan", "--json")
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert found["path"] == "scan" and found["read_units"] > 0 and found["size_assumed"] is True


def test_a_budgeted_scan_reports_its_rates_on_stderr(seeded_table: str) -> None:
    proc = run_invoke("ddb.scan", "--json", "--max-rcu", "1000")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) > 0
    assert "budget 1000 RCU/s" in proc.stderr and "items/s" in proc.stderr and "RCU/s" in proc.stderr


def test_bad_budgets_are_one_line(seeded_table: str) -> None:
    assert_one_line_error(run_invoke("ddb.scan", "--budget", "150"), "--budget must be a whole number from 1 to 100")
    assert_one_line_error(run_invoke("ddb.doctor", "--max-rcu", "0"), "--max-rcu must be a whole number")
    assert_one_line_error(run_invoke("ddb.scan", "--budget", "10", "--max-rcu", "5"), "not both")
