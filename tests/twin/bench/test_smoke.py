"""`invoke bench --size smoke`: every workload runs on the bench's private twin and reports a measurement.

No timing is asserted here (a shared CI runner's speed says nothing about the code); the
numbers are the README's job. What is asserted: each comparison is present, measured, did all
of its work, and the bench left nothing running.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from bench.model import SIZES
from bench.twin import ENGINE, PORT_OFFSET, STACK
from bench.workloads import DISTANCE_MS, DYNAMODB_WORKLOADS
from ops.local import ministack
from ops.target import port_open
from tests.support.helpers import assert_one_line_error, run_invoke

# (workload, case prefix, baseline, latency) of every row the smoke size must report on every engine
EXPECTED = [
    ("seed", "invoke ddb.seed (start-up included)", "put_item per item (seeds)", 0),
    ("seed", "ddb.batch_write", "boto3 Table.batch_writer()", 0),
    ("seed", "ddb.batch_write", "boto3 Table.batch_writer()", DISTANCE_MS),
    ("scan", "ddb.scan → json_lines", "paginator + TypeDeserializer", 0),
    ("scan", "ddb.scan, 4 segments", "paginator + TypeDeserializer", 0),
    ("query", "get_conversation newest 20 (one Query), p50", "-", 0),
    ("paging", "get_conversation to the first message", "seeds' Query (Limit 20, this year)", 0),
    ("paging", "get_conversation, newest 20", "seeds' Query (Limit 20, this year)", 0),
    ("fanout", "consumer: one message to 50 members", "seeds' consumer (delete + put per row, in turn)", 0),
]
# ... and on the default engine only (they do not touch DynamoDB)
EXPECTED_ONCE = [
    ("sync", "cognito.sync_ids", "UPDATE + COMMIT per user (seeds)", 0),
    ("encryption", "get_conversation to the first message", "the same read, plain text", 0),
    ("cli", "invoke --list", "-", 0),
    ("cli", "invoke ddb.patterns.get-conversation", "-", 0),
    ("bulk", "ddb.doctor --from-export (export + files)", "ddb.doctor scanning, 4 segments", 0),
]


def _bench_ports(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    from ops.stacks import PORT_OFFSET_ENV, load_stack

    monkeypatch.setenv(PORT_OFFSET_ENV, str(PORT_OFFSET))  # read at call time: the bench twin's ports
    s = load_stack(STACK)
    return [s.local_aws_port, s.local_dynamo_port, s.local_postgres_port]


def _find(
    rows: list[dict[str, Any]], workload: str, case: str, baseline: str, latency: int = 0, engine: str = ENGINE
) -> list[dict[str, Any]]:
    return [
        r
        for r in rows
        if r["workload"] == workload
        and r["case"].startswith(case)
        and r["baseline"] == baseline
        and r["latency_ms"] == latency
        and r["engine"] == engine
    ]


def _engines(config: pytest.Config) -> list[str]:
    """The engines the suite runs on (tests/conftest.py's --engine), less MiniStack where it is not installed (CI
    installs it)."""
    choice = config.getoption("--engine")
    engines = ["moto", ministack.ENGINE] if choice == "both" else [choice]
    if ministack.ENGINE in engines and not ministack.installed() and not os.environ.get("CI"):
        engines.remove(ministack.ENGINE)  # tests/conftest.py skips that engine's tests too
    return engines


@pytest.mark.slow
@pytest.mark.parametrize("measured", ["moto", ministack.ENGINE])
def test_smoke_bench_reports_every_workload_with_positive_measurements(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, measured: str
) -> None:
    """One engine per run (so the two can run on two workers): the default one with every workload, MiniStack with
    its own."""
    if measured not in _engines(request.config):
        pytest.skip(f"{measured} is not selected (--engine) or not installed")
    engines = [measured]
    only = () if measured == ENGINE else ("--only", ",".join(DYNAMODB_WORKLOADS))
    proc = run_invoke("bench", "--size", "smoke", "--json", "--engine", measured, *only, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    smoke = SIZES["smoke"]
    assert {r["engine"] for r in rows} == set(engines), "every row names the DynamoDB engine it ran on"

    for engine in engines:
        for workload, case, baseline, latency in EXPECTED + (EXPECTED_ONCE if engine == ENGINE else []):
            found = _find(rows, workload, case, baseline, latency, engine)
            assert found, (
                f"no {workload} row on {engine} for {case!r} vs {baseline!r} in: "
                f"{[(r['workload'], r['case'], r['engine']) for r in rows]}"
            )
            for row in found:
                assert row["ours_s"] > 0, row
                assert row["baseline_s"] is None or row["baseline_s"] > 0, row
                assert all(v >= 0 for v in row["counts"].values()), row
            if engine != ENGINE:
                assert all(r["target"] == "" and r["met"] is None for r in found), (
                    "the targets are the default engine's"
                )
        assert {
            r["size"]
            for r in _find(rows, "scan", "ddb.scan → json_lines", "paginator + TypeDeserializer", engine=engine)
        } == set(smoke.scan)
        assert {r["size"] for r in _find(rows, "query", "get_conversation newest 20", "-", engine=engine)} == set(
            smoke.scan
        )
        assert all(
            r["peak_mb"] is not None and r["baseline_peak_mb"] is not None for r in rows if r["workload"] == "scan"
        )

        cli_seed = _find(rows, "seed", "invoke ddb.seed", "put_item per item (seeds)", engine=engine)[0]
        assert cli_seed["size"] == smoke.seed_messages + 2
        assert cli_seed["counts"]["baseline_requests"] == cli_seed["size"], "the seeds' way sends one request per item"
        assert 0 < cli_seed["counts"]["requests"] < cli_seed["size"]
        near, far = (
            _find(rows, "seed", "ddb.batch_write", "boto3 Table.batch_writer()", latency, engine)[0]
            for latency in (0, DISTANCE_MS)
        )
        assert far["counts"]["baseline_requests"] == near["counts"]["baseline_requests"] == -(-cli_seed["size"] // 25)
        assert far["baseline_s"] >= far["counts"]["baseline_requests"] * DISTANCE_MS / 1000, (
            "batch_writer waits the distance once per batch"
        )

        [fanned] = _find(rows, "fanout", "consumer", "seeds' consumer (delete + put per row, in turn)", engine=engine)
        members = smoke.fanout_members
        assert (fanned["size"], fanned["counts"]["requests"]) == (members, 1 + members), (
            "one Query and a transaction per member"
        )
        assert fanned["counts"]["baseline_requests"] == 1 + 2 * members, "the seeds' way: a delete and a put per row"
        paged = _find(
            rows, "paging", "get_conversation to the first message", "seeds' Query (Limit 20, this year)", engine=engine
        )[0]
        assert paged["counts"]["reached_first_message"] == 1, "paging from the newest page must reach the first message"
        assert paged["counts"]["requests"] == smoke.page_group // smoke.page_size
        assert paged["counts"]["baseline_items_reached"] == 20

    if measured != ENGINE:
        assert {r["workload"] for r in rows} == set(DYNAMODB_WORKLOADS)
        assert not [p for p in _bench_ports(monkeypatch) if port_open("127.0.0.1", p)], "the bench stops its twin"
        return
    sealed = _find(
        rows, "encryption", "get_conversation to the first message", "the same read, plain text", engine=engines[0]
    )[0]
    assert sealed["size"] == smoke.page_group and sealed["ratio"] is not None
    assert sealed["counts"]["requests"] == sealed["counts"]["baseline_requests"] == smoke.page_group // smoke.page_size
    assert sealed["counts"]["kms_decrypts"] == 1, "one KMS Decrypt for the whole read of one group"

    sync = _find(rows, "sync", "cognito.sync_ids", "UPDATE + COMMIT per user (seeds)", engine=engines[0])[0]
    assert sync["counts"]["transactions"] == 1 and sync["counts"]["baseline_transactions"] == smoke.users
    assert 0 < sync["counts"]["statements"] < sync["counts"]["baseline_statements"]

    get_conversation = _find(rows, "cli", "invoke ddb.patterns.get-conversation", "-", engine=engines[0])[0]
    assert get_conversation["counts"]["modules_imported"] > 0
    assert get_conversation["counts"]["pulumi_modules"] == 0, "a data task must not import the Pulumi SDK"
    assert not [p for p in _bench_ports(monkeypatch) if port_open("127.0.0.1", p)], "the bench stops its twin"


def test_an_unknown_workload_is_refused_in_one_line_before_any_twin_starts() -> None:
    proc = run_invoke("bench", "--only", "seed,nope", timeout=60)
    assert_one_line_error(proc, "unknown workload 'nope'", "seed, scan, query, paging, encryption, sync, cli")
    assert proc.stdout == ""
