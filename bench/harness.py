"""Benchmarks: our tools against the ways the seeds (and plain boto3) do the same jobs, in one run.

``run(size, only)`` starts a private twin of the dev stack (``bench.twin``), runs each workload
of ``bench.workloads.WORKLOADS`` against the same server with a fresh table, and returns a
``Report`` with one ``Row`` per comparison; ``bench.report`` renders it. Nothing here prints:
progress goes to the ``progress`` callback.

The package, like aws-powertools' ``benchmark/`` folder, sits outside the library it measures:

  harness    this orchestration: sizes chosen, twin started, workloads run, failures recorded
  workloads  each workload's preparation, measurements and rows, and their registry
  ours       our jobs (the suite's ops functions) ─┐ side by side: the same work,
  baselines  the baselines' jobs (the seeds' ways) ─┘ measured on the same items
  jobs       what both share: job contract and lookup, warmed clients, request/statement counters
  worker     ``python -m bench.worker``: one measured job in a fresh interpreter
  context    ``Bench``: what a workload gets (twin, sizes, measured runs, fresh tables, rows)
  twin       the private twin: own state dir and ports, always stopped
  model      sizes, rows, the report; data      the synthetic people and conversations
  report     the printed table and the JSON lines
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.context import Bench
from bench.model import SIZES, Report
from bench.twin import ENGINE, ENGINES, private_twin, reset_dynamodb
from bench.workloads import DYNAMODB_WORKLOADS, WORKLOADS
from ops.errors import ConfigError, OpsError


def machine(target: Any | None = None) -> dict[str, Any]:
    from importlib.metadata import version

    from ops.local import ministack

    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "moto": version("moto"),
        "boto3": version("boto3"),
        "ministack": ministack.VERSION,
    }
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        info["memory_gb"] = round(pages / 2**30)
    except (ValueError, OSError, AttributeError):
        pass
    if target is not None:
        from ops import db

        try:
            with db.connect(target, maintenance=True) as conn:
                info["postgres"] = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        except OpsError:
            pass
    return info


def parse_only(only: str | None) -> list[str]:
    names = [n.strip() for n in (only or "").split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise ConfigError(f"unknown workload {', '.join(repr(n) for n in unknown)}: choose from {', '.join(WORKLOADS)}")
    return names or list(WORKLOADS)


def parse_engines(engine: str | None) -> list[str]:
    """``--engine``: one of ENGINES or ``both`` (default); MiniStack must be installed to be chosen."""
    from ops.local import ministack

    choice = engine or "both"
    if choice not in (*ENGINES, "both"):
        raise ConfigError(f"unknown engine {choice!r}: use {', '.join(ENGINES)} or both")
    engines = list(ENGINES) if choice == "both" else [choice]
    if ministack.ENGINE in engines:
        ministack.python()  # one line naming what to install, before any twin starts
    return engines


def run(
    size: str = "smoke",
    only: list[str] | None = None,
    progress: Callable[[str], None] = lambda _: None,
    engines: list[str] | None = None,
) -> Report:
    """For each engine: start a private twin, run the workloads in order, stop the twin;
    a failing workload is recorded, the rest still run.

    The workloads that do not touch DynamoDB (``sync``, ``cli``) run on the first engine only.
    """
    if size not in SIZES:
        raise ConfigError(f"unknown size {size!r}: use smoke or full")
    names = only or list(WORKLOADS)
    engines = engines or [ENGINE]
    report: Report | None = None
    for n, engine in enumerate(engines):
        wanted = [name for name in names if n == 0 or name in DYNAMODB_WORKLOADS]
        if not wanted:
            continue
        progress(f"== engine {engine}")
        with private_twin(engine=engine) as target:
            if report is None:
                report = Report(size, machine(target))
            report.machine.setdefault("engines", []).append(engine)
            b = Bench(target, SIZES[size], report, progress, engine=engine)
            for name in wanted:
                key = name if len(engines) == 1 else f"{name} [{engine}]"
                progress(f"== {key}")
                started = time.perf_counter()
                try:
                    report.rows.extend(WORKLOADS[name](b))
                except Exception as err:  # recorded; the other workloads still run and the task exits non-zero
                    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
                    report.errors[key] = f"{type(err).__name__}: {first}" if not isinstance(err, OpsError) else first
                progress(
                    f"   {key} took {time.perf_counter() - started:.0f} s"
                    + (f" and FAILED: {report.errors[key]}" if key in report.errors else "")
                )
            reset_dynamodb(target)
    assert report is not None
    return report
