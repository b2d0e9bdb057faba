"""Helpers for tests that run tasks the way a user does (kept out of conftest so importing them has no side effects)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


@contextmanager
def stream_worker_stopped(stack: str, seconds: float = 120) -> Iterator[None]:
    """The twin's stream worker stopped for the block, then started again by ``local.up``'s code path.

    For tests that plant data the worker would touch (rows it moves or deduplicates while it drains the
    stream) and then read it back: with the worker stopped nothing changes under the test, whatever the
    machine's load. It keeps its checkpoints; started again, it goes on from them. Only the pid the twin
    recorded is signalled, and only while it is that worker.
    """
    import signal
    import time

    from ops.local import twin as twinops
    from ops.proc import running
    from ops.stacks import load_stack
    from ops.target import read_twin

    pid = ((read_twin(stack) or {}).get("stream_worker") or {}).get("pid")
    if pid and running(pid, twinops.WORKER_MODULE):
        os.kill(pid, signal.SIGTERM)  # it finishes the record in hand and saves its checkpoint
        deadline = time.monotonic() + seconds
        while running(pid, twinops.WORKER_MODULE):
            if time.monotonic() > deadline:
                raise AssertionError(f"the twin's stream worker (pid {pid}) did not stop in {seconds:.0f}s")
            try:
                os.waitpid(pid, os.WNOHANG)  # the test session started the twin: reap its child
            except ChildProcessError:
                pass
            time.sleep(0.05)
    try:
        yield
    finally:
        twinops.up(load_stack(stack))  # a twin whose only stopped part is the worker: starts the worker alone


def seed_stack_table(target: Any, ddb: Any) -> str:
    """The stack's own table made anew and seeded by ``invoke ddb.seed``: what a developer has after the quickstart."""
    from ops import ddb as ddbops
    from ops.table_spec import table_spec

    name = target.stack.table_name
    if ddbops.describe(ddb, name):
        ddbops.drop(ddb, name, target.stack.name)
    ddbops.schema_load(ddb, table_spec(target.stack))
    seeded = run_invoke("ddb.seed")
    assert seeded.returncode == 0, seeded.stderr
    return name


def plant_extra_row(ddb: Any, table: str, owner: Any, other: Any, group: str) -> None:
    """An extra, older group row of ``owner``'s for ``group`` (naming ``other``): the doctor's ``extra-rows``."""
    from ops.messages.model import GroupRow

    extra = GroupRow(
        owner.uuid, "2020-01-01T00:00:00.000000+00:00", group, "stale", other.uuid, other.display_name, other.handle
    )
    ddb.put_item(TableName=table, Item=extra.to_item())
