"""Helpers for tests that run tasks the way a user does (kept out of conftest so importing them has no side effects)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_invoke(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180, cwd: Path = REPO, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a task the way a user does, in a subprocess (``stdin``: what is typed or piped into it)."""
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        **({"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}),
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    """A failed task: non-zero exit, one line on stderr, no traceback."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("target: ")]
    assert len(lines) == 1, f"expected one error line, got: {proc.stderr!r}"
    assert "Traceback" not in proc.stderr + proc.stdout
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"


def s_item(attrs: dict[str, str]) -> dict[str, dict[str, str]]:
    """A raw item of string attributes in DynamoDB's form, as a writer outside our model would put it."""
    return {k: {"S": v} for k, v in attrs.items()}


@contextmanager
def threaded_moto() -> Iterator[str]:
    """An in-process moto server on a free port, for the tests that need one of their own; its URL."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
