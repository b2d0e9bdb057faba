"""A copy of the project to break files in (a stack file, say) without touching the checkout the suite runs from."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.helpers import REPO

PARTS = ("tasks.py", "cli", "ops", "infra", "bench", "fixtures", "Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml")


def repo_copy(where: Path) -> Path:
    """The code and stack files, copied under ``where``; ``run_invoke(..., cwd=copy)`` runs the tasks from there."""
    copy = where / "repo"
    copy.mkdir()
    for part in PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(source, copy / part)
    return copy
