"""`invoke bench --size smoke`: every workload runs on the bench's private twin and reports a measurement.

No timing is asserted here (a shared CI runner's speed says nothing about the code); the
numbers are the README's job. What is asserted: each comparison is present, measured, did all
of its work, and the bench left nothing running.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench.data import seed_count
from bench.model import SIZES
from bench.twin import ENGINE, PORT_OFFSET, STACK
from ops.target import port_open
from tests.support.helpers import assert_one_line_error, run_invoke

# (workload, case prefix) of every row the smoke size must report
EXPECTED = [
    ("seed", "ddb.batch_write", "put_item per item (seeds)"),
    ("seed", "ddb.batch_write", "boto3 Table.batch_writer()"),
    ("scan", "ddb.scan → json_lines", "paginator + TypeDeserializer"),
    ("scan", "ddb.scan, 4 segments", "paginator + TypeDeserializer"),
    ("paging", "get_conversation to the first message", "seeds' Query (Limit 20, this year)"),
    ("paging", "get_conversation, newest 20", "seeds' Query (Limit 20, this year)"),
    ("encryption", "get_conversation to the first message", "the same read, plain text"),
    ("sync", "cognito.sync_ids", "UPDATE + COMMIT per user (seeds)"),
    ("cli", "invoke --list", "-"),
    ("cli", "invoke ddb.patterns.get-conversation", "-"),
]


def _bench_ports(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    from ops.stacks import PORT_OFFSET_ENV, load_stack

    monkeypatch.setenv(PORT_OFFSET_ENV, str(PORT_OFFSET))  # read at call time: the bench twin's ports
    s = load_stack(STACK)
    return [s.local_aws_port, s.local_postgres_port]


def _find(rows: list[dict[str, Any]], workload: str, case: str, baseline: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["workload"] == workload and r["case"].startswith(case) and r["baseline"] == baseline]


@pytest.mark.slow
def test_smoke_bench_reports_every_workload_with_positive_measurements(monkeypatch: pytest.MonkeyPatch) -> None:
    proc = run_invoke("bench", "--size", "smoke", "--json", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    smoke = SIZES["smoke"]
    assert {r["engine"] for r in rows} == {ENGINE}, "every row names the DynamoDB engine it ran on"

    for workload, case, baseline in EXPECTED:
        found = _find(rows, workload, case, baseline)
        assert found, f"no {workload} row for {case!r} vs {baseline!r} in: {[(r['workload'], r['case']) for r in rows]}"
        for row in found:
            assert row["ours_s"] > 0, row
            assert row["baseline_s"] is None or row["baseline_s"] > 0, row
            assert all(v >= 0 for v in row["counts"].values()), row
    assert {r["size"] for r in _find(rows, "scan", "ddb.scan → json_lines", "paginator + TypeDeserializer")} == set(smoke.scan)
    assert all(r["peak_mb"] is not None and r["baseline_peak_mb"] is not None for r in rows if r["workload"] == "scan")

    seed_row = _find(rows, "seed", "ddb.batch_write", "put_item per item (seeds)")[0]
    assert seed_row["size"] == seed_count(smoke.groups, smoke.per_group, smoke.big_group)
    assert seed_row["counts"]["baseline_requests"] == seed_row["size"], "the seeds' way sends one request per item"
    assert 0 < seed_row["counts"]["requests"] < seed_row["size"]

    paged = _find(rows, "paging", "get_conversation to the first message", "seeds' Query (Limit 20, this year)")[0]
    assert paged["met"] is True, "paging from the newest page must reach the first message"
    assert paged["counts"]["requests"] == smoke.page_group // smoke.page_size

    sealed = _find(rows, "encryption", "get_conversation to the first message", "the same read, plain text")[0]
    assert sealed["size"] == smoke.page_group and sealed["ratio"] is not None
    assert sealed["counts"]["requests"] == sealed["counts"]["baseline_requests"] == smoke.page_group // smoke.page_size
    assert sealed["counts"]["kms_decrypts"] == 1, "one KMS Decrypt for the whole read of one group"

    sync = _find(rows, "sync", "cognito.sync_ids", "UPDATE + COMMIT per user (seeds)")[0]
    assert sync["counts"]["transactions"] == 1 and sync["counts"]["baseline_transactions"] == smoke.users
    assert 0 < sync["counts"]["statements"] < sync["counts"]["baseline_statements"]

    get_conversation = _find(rows, "cli", "invoke ddb.patterns.get-conversation", "-")[0]
    assert get_conversation["counts"]["modules_imported"] > 0
    assert get_conversation["counts"]["pulumi_modules"] == 0, "a data task must not import the Pulumi SDK"
    assert not [p for p in _bench_ports(monkeypatch) if port_open("127.0.0.1", p)], "the bench stops its twin"


def test_an_unknown_workload_is_refused_in_one_line_before_any_twin_starts() -> None:
    proc = run_invoke("bench", "--only", "seed,nope", timeout=60)
    assert_one_line_error(proc, "unknown workload 'nope'", "seed, scan, paging, encryption, sync, cli")
    assert proc.stdout == ""
