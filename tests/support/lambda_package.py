"""The stream consumer's Lambda package, copied alone into a directory and run there (the repository not importable)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def lambda_package(tmp_path: Path) -> Path:
    """The files infra/stream_consumer.py uploads, and nothing else, in a directory of their own."""
    pytest.importorskip("pulumi")
    from infra.stream_consumer import LAMBDA_FILES

    for rel in LAMBDA_FILES:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, tmp_path / rel)
    return tmp_path


def run_in_package(
    package: Path, code: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    # -I: neither the repository nor PYTHONPATH is importable, only the package and site-packages (boto3)
    clean = {k: v for k, v in os.environ.items() if k not in ("TABLE_NAME", "GSI_NAME", "PYTHONPATH")}
    return subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(package)!r}); {code}"],
        cwd=package,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
    )
