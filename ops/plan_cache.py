"""The offline plan, cached by what it depends on: ``cached_plan`` skips the evaluation (``ops.plan``)
when nothing changed.

The key hashes the program's files, the repository modules it imports, the stack files, the
files its assets name and the Pulumi SDK versions; a change to any of them evaluates the plan again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.plan import StackPlan, plan_stack
from ops.stacks import PROJECT_ROOT

# ---------------------------------------------------------------- the plan, cached by what it depends on

# Bump when PlannedResource or the mocks change shape: an older cache is then evaluated again.
CACHE_FORMAT = 1


@dataclass(frozen=True)
class PlanSource:
    """Where a plan came from: its cache file (``cached``) or an evaluation that took ``seconds``."""

    cached: bool
    seconds: float
    path: Path


def program_files(stack: str, root: Path = PROJECT_ROOT) -> list[Path]:
    """Every file the stack's plan depends on: the program, the repository modules it imports, the stack files."""
    from ops.lambda_package import module_closure

    program = sorted((root / "infra").rglob("*.py"))
    files = [root / rel for rel in module_closure(program, root)]
    return sorted({*files, root / "Pulumi.yaml", root / f"Pulumi.{stack}.yaml"})


def _sdk_versions() -> list[str]:
    """The installed Pulumi SDKs' dist-info names (``pulumi-3.272.0.dist-info``), found without importing them.

    ``importlib.metadata.version`` scans every installed distribution (150 ms here); the
    dist-info folder beside the package says the same in a directory listing.
    """
    import importlib.util

    names: list[str] = []
    for package in ("pulumi", "pulumi_aws"):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.origin:
            names.append(f"{package} missing")
            continue
        site = Path(spec.origin).resolve().parent.parent
        names.extend(sorted(p.name for p in site.glob(f"{package}-*.dist-info")) or [f"{package} (no dist-info)"])
    return names


def _asset_files(value: Any, root: Path) -> set[Path]:
    """The files a plan's assets name (the Lambda package).

    The program lists the package's files at run time (``ops.lambda_package``), not by import,
    so the import closure alone would miss an edit to one of them.
    """
    found: set[Path] = set()
    if isinstance(value, dict):
        if isinstance(value.get("file"), str):
            found.add(root / value["file"])
        for v in value.values():
            found |= _asset_files(v, root)
    elif isinstance(value, list):
        for v in value:
            found |= _asset_files(v, root)
    return found


def plan_key(stack: str, root: Path = PROJECT_ROOT, extra: list[Path] | tuple[Path, ...] = ()) -> str:
    """A hash of everything the stack's plan depends on: file contents and the SDK versions that evaluate them.

    ``extra``: files found in a previous evaluation (its assets), hashed as well.
    """
    digest = hashlib.sha256(f"format {CACHE_FORMAT}\nstack {stack}\n".encode())
    for dist in _sdk_versions():
        digest.update(f"{dist}\n".encode())
    for path in [*program_files(stack, root), *extra]:
        data = path.read_bytes() if path.exists() else b"(missing)"
        digest.update(f"{path.relative_to(root)} {hashlib.sha256(data).hexdigest()}\n".encode())
    return digest.hexdigest()


def cached_plan(stack: str, cache_file: Path, root: Path = PROJECT_ROOT) -> tuple[StackPlan, PlanSource]:
    """The stack's plan from ``cache_file`` when nothing it depends on changed; else evaluated and cached.

    The key costs a few milliseconds (the program's files are read and hashed); an evaluation
    costs the Pulumi SDK's import and a run of the program under mocks (seconds).
    """
    import time

    from ops.files import write_atomic

    started = time.perf_counter()
    try:
        saved = json.loads(cache_file.read_text())
        extra = [root / rel for rel in saved.get("assets", [])]
        if saved.get("key") == plan_key(stack, root, extra):
            return StackPlan.from_dict(saved["plan"]), PlanSource(True, time.perf_counter() - started, cache_file)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no cache, one from another format, or a file it named is gone: evaluate
    plan = plan_stack(stack)
    assets = sorted(
        str(p.relative_to(root))
        for p in _asset_files([r.inputs for r in plan.resources], root)
        if p.is_relative_to(root)
    )
    key = plan_key(stack, root, [root / rel for rel in assets])
    write_atomic(
        cache_file, json.dumps({"key": key, "assets": assets, "plan": plan.to_dict()}, sort_keys=True, default=str)
    )
    return plan, PlanSource(False, time.perf_counter() - started, cache_file)
