"""What a workload gets to work with: the twin, the sizes, a measured worker run, fresh tables and its rows.

A workload (``bench.workloads``) prepares data here in the parent process, untimed, and asks
``work`` for each measurement: one fresh interpreter (``python -m bench.worker``) per run, so
a run's time and peak memory are its own.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from bench.model import BenchError, Report, Row, Sizes, make_row
from bench.twin import ENGINE, reset_dynamodb
from ops import proc


class Bench:
    def __init__(
        self, target: Any, sizes: Sizes, report: Report, progress: Callable[[str], None], engine: str = ENGINE
    ) -> None:
        self.target, self.sizes, self.report, self.progress, self.engine = target, sizes, report, progress, engine
        self.ddb = target.client("dynamodb", max_pool_connections=16)
        self.loaded: dict[int, str] = {}  # item count -> a table of that many messages (scan and query share them)

    @property
    def default_engine(self) -> bool:
        """Whether this run is on the default engine, the one the README's targets are for."""
        return self.engine == ENGINE

    def setup(self, text: str) -> None:
        self.report.setup.append(text)
        self.progress("  setup: " + text)

    def row(
        self,
        workload: str,
        case: str,
        size: int,
        unit: str,
        ours: dict[str, Any],
        baseline: str,
        base: dict[str, Any] | None,
        target: str = "",
        met: bool | None = None,
        counts: dict[str, int] | None = None,
        note: str = "",
        latency_ms: int = 0,
    ) -> Row:
        """A result row, stamped with the engine this bench runs on; a target only on the default engine (the
        README's targets are its)."""
        if not self.default_engine:
            target, met = "", None
        return make_row(
            workload,
            case,
            size,
            unit,
            ours,
            baseline,
            base,
            engine=self.engine,
            target=target,
            met=met,
            counts=counts,
            note=note,
            latency_ms=latency_ms,
        )

    def fresh_table(self, name: str | None = None) -> str:
        """Drop every table of the engine, then create the stack's table spec under ``name`` (default: the stack's
        own table)."""
        reset_dynamodb(self.target)
        self.loaded.clear()
        return self._create(name)

    def _create(self, name: str | None) -> str:
        from ops import ddb
        from ops.table_spec import table_spec

        spec = table_spec(self.target.stack)
        spec = dataclasses.replace(spec, name=name or spec.name)
        ddb.schema_load(self.ddb, spec)
        return spec.name

    def table_of(self, size: int) -> str:
        """A table of ``size`` messages (groups of 100), loaded once and kept for the next workload until a
        fresh_table."""
        import time

        from bench.data import SEED_START, plans
        from ops import ddb

        if size in self.loaded:
            return self.loaded[size]
        table = self._create(f"bench-{size}")
        started = time.perf_counter()
        items = (m.to_item() for p in plans(size // 100, 100, 0, SEED_START) for m in p.messages)
        ddb.batch_write(self.ddb, table, items, workers=self.sizes.seed_workers)
        expect(f"items loaded into {table}", self.item_count(table), size)
        self.setup(f"loaded {size:,} items with ops.ddb.batch_write in {time.perf_counter() - started:.1f} s")
        self.loaded[size] = table
        return table

    def server_cpu(self) -> float | None:
        """CPU seconds the DynamoDB engine's process has used so far (Linux), to tell server-bound runs apart."""
        from ops.target import read_twin

        twin = read_twin(self.target.stack.name) or {}
        pid = (twin.get("dynamodb") or twin.get("aws") or {}).get("pid")
        return proc.cpu_seconds(pid) if pid else None

    def item_count(self, table: str) -> int:
        return int(self.ddb.describe_table(TableName=table)["Table"]["ItemCount"])

    def work(self, job: str, **params: Any) -> dict[str, Any]:
        """One measured run in a fresh interpreter."""
        from ops.stacks import PROJECT_ROOT

        server = self.server_cpu()
        done = subprocess.run(
            [sys.executable, "-m", "bench.worker", json.dumps({"job": job, "params": params})],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        after = self.server_cpu()
        if done.returncode != 0:
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
            raise BenchError(f"{job} failed: {lines[-1] if lines else f'exit code {done.returncode}'}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        # the whole worker's share of the server (its preparation's few requests included)
        result["server_cpu_s"] = after - server if server is not None and after is not None else None
        self.progress(
            f"  {job}: {result['seconds']:.3f} s" + (f", {result['items']:,} items" if "items" in result else "")
        )
        return result


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest of repeated runs: the one a busy machine (a 2-core box shared with test runs) disturbed least."""
    return min(runs, key=lambda r: r["seconds"]) | {"runs": len(runs)}


def runs_text(r: dict[str, Any]) -> str:
    return f"best of {r['runs']}" if r.get("runs", 1) > 1 else "one run"


def cpu_text(r: dict[str, Any], key: str) -> str:
    return "?" if r.get(key) is None else f"{r[key]:.1f} s"


def expect(what: str, got: Any, want: Any) -> None:
    if got != want:
        raise BenchError(f"{what}: expected {want}, got {got}")
