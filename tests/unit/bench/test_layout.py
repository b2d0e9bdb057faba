"""The bench package without a twin: its registries, its worker's error line, its rendering, and ops/ left clean."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

from bench import baselines, harness, ours, registry, report
from bench.model import BenchError, Report, Row, make_row
from bench.workloads import WORKLOADS
from ops.errors import ConfigError, OpsError
from tests.support.helpers import REPO


def test_ops_holds_no_benchmark_code_and_never_prints() -> None:
    offenders = []
    for path in sorted((REPO / "ops").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno} print()")
            if (
                isinstance(node, ast.Attribute)
                and node.attr in {"stdout", "stderr"}
                and isinstance(node.value, ast.Name)
                and node.value.id == "sys"
            ):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno} sys.{node.attr}")
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                offenders += [
                    f"{path.relative_to(REPO)}:{node.lineno} imports {n}"
                    for n in names
                    if n == "bench" or n.startswith("bench.")
                ]
    assert not list((REPO / "ops").glob("bench*.py"))
    assert offenders == []


def test_our_jobs_and_the_baselines_are_registered_side_by_side_under_distinct_names() -> None:
    assert set(ours.JOBS) == {
        "seed_ours",
        "scan_ours",
        "page_ours",
        "page_first",
        "page_sealed",
        "query_newest",
        "sync_ours",
        "fanout_ours",
        "doctor_scanning",
        "doctor_export",
    }
    assert set(baselines.JOBS) == {
        "seed_put_loop",
        "seed_batch_writer",
        "scan_baseline",
        "page_seeds",
        "sync_per_row",
        "fanout_seeds",
    }
    assert registry.registry() == ours.JOBS | baselines.JOBS
    assert all(f.__module__ == "bench.ours" for f in ours.JOBS.values())
    assert all(f.__module__ == "bench.baselines" for f in baselines.JOBS.values())


def test_a_clash_between_our_and_a_baseline_job_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(baselines.JOBS, "scan_ours", baselines.scan_paginator)
    with pytest.raises(BenchError, match="scan_ours"):
        registry.registry()


def test_the_worker_refuses_an_unknown_job_in_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.worker", json.dumps({"job": "nope", "params": {}})],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("error: unknown job 'nope': choose from seed_ours, ")


def test_workloads_run_in_registry_order_and_only_picks_known_ones() -> None:
    assert list(WORKLOADS) == ["seed", "scan", "query", "paging", "encryption", "sync", "cli", "fanout", "bulk"]
    assert harness.parse_only("") == list(WORKLOADS)
    assert harness.parse_only(" sync , seed ") == ["sync", "seed"]
    with pytest.raises(
        ConfigError,
        match="unknown workload 'nope': choose from seed, scan, query, paging, encryption, sync, cli, fanout, bulk",
    ):
        harness.parse_only("seed,nope")


def _row(engine: str, seconds: float = 1.0) -> Row:
    return make_row(
        "seed",
        "ddb.batch_write",
        100,
        "items",
        {"seconds": seconds, "peak_mb": 1.0},
        "put_item per item (seeds)",
        {"seconds": 4.0, "peak_mb": 0.5},
        engine=engine,
        target="≥ 10× faster",
        met=False,
        note="n",
    )


def test_a_row_derives_ratio_and_throughput_and_carries_its_engine_and_latency_last_in_json() -> None:
    row = _row("moto", seconds=0.5)
    assert (row.ratio, row.items_per_s, row.engine, row.latency_ms) == (8.0, 200.0, "moto", 0)
    (line,) = report.json_lines(Report("smoke", {}, [row]))
    assert list(json.loads(line))[-2:] == ["engine", "latency_ms"] and json.loads(line)["workload"] == "seed"


def test_the_engine_shows_only_when_rows_span_more_than_one() -> None:
    one = report.report_lines(Report("smoke", {}, [_row("moto"), _row("moto")]))
    assert "seed: ddb.batch_write" in one[2] and "[moto]" not in "\n".join(one)
    two = report.display_rows([_row("moto"), _row("ministack")])
    assert [d["workload"] for d in two] == ["seed [moto]: ddb.batch_write", "seed [ministack]: ddb.batch_write"]
    assert two[0]["ratio"] == "4.0×" and two[0]["target"] == "≥ 10× faster: MISSED"


def test_a_simulated_distance_shows_beside_the_engine() -> None:
    far = make_row(
        "seed",
        "ddb.batch_write",
        100,
        "items",
        {"seconds": 1.0},
        "boto3 Table.batch_writer()",
        {"seconds": 3.5},
        engine="moto",
        latency_ms=20,
    )
    names = [d["workload"] for d in report.display_rows([_row("moto"), far])]
    assert names == ["seed [moto]: ddb.batch_write", "seed [moto, +20 ms]: ddb.batch_write"]


def test_engines_are_moto_ministack_or_both(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    assert harness.parse_engines("moto") == ["moto"]
    with pytest.raises(ConfigError, match="unknown engine 'docker': use moto, ministack or both"):
        harness.parse_engines("docker")
    monkeypatch.setenv("CRUDDUR_MINISTACK_DIR", str(tmp_path))  # nothing installed there
    with pytest.raises(OpsError, match="run bin/bootstrap"):
        harness.parse_engines("both")


def test_the_json_rows_render_as_the_docs_pages_table() -> None:
    rows = [_row("moto", seconds=0.5), _row("dynamodb-local", seconds=2.0)]
    page = report.page_table("\n".join(report.json_lines(Report("full", {}, rows))))
    lines = page.splitlines()
    assert lines[0] == "```text" and lines[-1] == "```"
    assert lines[1].startswith("workload") and "target" in lines[1]
    assert "seed [moto]: ddb.batch_write" in lines[3] and "8.0×" in lines[3]
    assert "seed [dynamodb-local]: ddb.batch_write" in lines[4] and "≥ 10× faster: MISSED" in lines[4]
