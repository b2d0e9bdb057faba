"""Every benchmark job by name: ours and the baselines', side by side, for the worker that runs one.

It sits above ``bench.ours`` and ``bench.baselines``, which both build on ``bench.jobs``, so the
lookup never makes those modules import each other.
"""

from __future__ import annotations

from bench import baselines, ours
from bench.jobs import JobFactory
from bench.model import BenchError


def registry() -> dict[str, JobFactory]:
    """Every job by name; a name used by both sides is an error rather than one silently shadowing the other."""
    clash = ours.JOBS.keys() & baselines.JOBS.keys()
    if clash:
        raise BenchError(f"job names used by both ours and the baselines: {', '.join(sorted(clash))}")
    return ours.JOBS | baselines.JOBS


def find(name: str) -> JobFactory:
    jobs = registry()
    if name not in jobs:
        raise BenchError(f"unknown job {name!r}: choose from {', '.join(jobs)}")
    return jobs[name]
