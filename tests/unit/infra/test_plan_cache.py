"""The plan cache: an unchanged program is read back, a change to anything the plan depends on evaluates it again.

GIVEN a copy of the program, the library and the stack files, WHEN one file changes, THEN the plan is
evaluated again exactly when that file can change it: the program, a module it imports, a file of the
Lambda package, a stack file; not for a library module the program never imports.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ops import plan_cache
from ops.plan import StackPlan
from ops.plan_cache import cached_plan
from ops.stacks import PROJECT_ROOT
from tests.support.plans import planned


@pytest.fixture
def root(tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    for folder in ("infra", "ops"):
        shutil.copytree(PROJECT_ROOT / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        shutil.copy(PROJECT_ROOT / name, copy / name)
    return copy


@pytest.fixture
def evaluations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count evaluations (each would cost the SDK's import and a run of the program) and answer the real plan."""
    calls: list[str] = []

    def fake_plan(stack: str) -> StackPlan:
        calls.append(stack)
        return planned(stack)

    monkeypatch.setattr(plan_cache, "plan_stack", fake_plan)  # where cached_plan looks the name up
    return calls


def _touch(path: Path) -> None:
    path.write_text(path.read_text() + "\n# edited\n")


@pytest.mark.parametrize(
    ("edited", "evaluates"),
    [
        ("infra/identity.py", True),  # the program
        ("ops/stream_mapping.py", True),  # a module the program imports
        ("ops/messages/consumer.py", True),  # a file of the Lambda package the program uploads
        ("Pulumi.dev.yaml", True),  # the stack's settings
        ("ops/ddb.py", False),  # a library module the program never imports
        ("Pulumi.prod.yaml", False),  # another stack's settings
    ],
)
def test_only_what_the_plan_depends_on_evaluates_it_again(
    root: Path, evaluations: list[str], tmp_path: Path, edited: str, evaluates: bool
) -> None:
    cache = tmp_path / "plan.json"
    first, source = cached_plan("dev", cache, root)
    assert not source.cached and evaluations == ["dev"]
    again, source = cached_plan("dev", cache, root)
    assert source.cached and evaluations == ["dev"], "an unchanged program is read back"
    assert again == first, "the cached plan is the plan"

    _touch(root / edited)
    _, source = cached_plan("dev", cache, root)
    assert source.cached is not evaluates
    assert len(evaluations) == (2 if evaluates else 1)


def test_a_broken_cache_file_is_evaluated_again(root: Path, evaluations: list[str], tmp_path: Path) -> None:
    cache = tmp_path / "plan.json"
    cache.write_text("{not json")
    plan, source = cached_plan("dev", cache, root)
    assert not source.cached and plan.stack == "dev" and evaluations == ["dev"]
