"""The import contract: the layers (tasks → cli → bench and infra → ops) and no circles between sibling modules.

import-linter checks the packages (pyproject.toml [tool.importlinter]); the two single-module entry
points it cannot take as packages, tasks.py and the policy pack, are checked here by their imports.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from tests.support.helpers import REPO


def _imported(path: Path) -> set[str]:
    """The top-level packages a file imports, wherever the import stands (a function's too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_the_import_contracts_hold() -> None:
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "2 kept, 0 broken" in proc.stdout


def test_tasks_py_imports_only_the_cli_and_invoke() -> None:
    assert _imported(REPO / "tasks.py") <= {"__future__", "invoke", "cli"}


OURS = {"tasks", "cli", "bench", "infra", "ops", "policy"}


def test_the_policy_pack_imports_only_the_library_of_ours() -> None:
    assert _imported(REPO / "policy" / "__main__.py") & OURS == {"ops"}


def test_nothing_imports_the_task_assembly() -> None:
    for package in ("cli", "ops", "bench", "infra"):
        for path in (REPO / package).rglob("*.py"):
            assert "tasks" not in _imported(path), f"{path.relative_to(REPO)} imports tasks.py"
