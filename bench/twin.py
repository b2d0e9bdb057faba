"""The bench's private twin: its own state directory and ports, always stopped and removed at the end.

Neither a developer's twin nor the tests' is touched: ``PORT_OFFSET`` sits far from both.
The measured workers inherit the environment set here, so they find this twin too.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

STACK = "dev"
# Far from the tests' offset (100): the bench's twin can run beside a developer's and the tests'.
PORT_OFFSET = int(os.environ.get("CRUDDUR_BENCH_PORT_OFFSET") or 500)
# The engines serving DynamoDB, each in a twin of its own: every row records its engine. The first
# is the default engine (the twin's and the targets'); workloads that do not touch DynamoDB run on it only.
ENGINES = ("moto", "ministack")
ENGINE = ENGINES[0]


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI timeout, kill) unwinds like Ctrl-C, so the twin is still stopped."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def private_twin(stack: str = STACK, engine: str = ENGINE) -> Iterator[Any]:
    """A twin of ``stack`` of the bench's own: temporary state dir, shifted ports; always stopped and removed."""
    from ops.local import twin
    from ops.stacks import PORT_OFFSET_ENV, load_stack
    from ops.target import STATE_DIR_ENV, resolve_target

    state = tempfile.mkdtemp(prefix="cruddur-bench-")
    saved = {k: os.environ.get(k) for k in (STATE_DIR_ENV, PORT_OFFSET_ENV)}
    # set before any stack is resolved (both are read at call time), and inherited by the workers
    os.environ[STATE_DIR_ENV] = state
    os.environ[PORT_OFFSET_ENV] = str(PORT_OFFSET)
    try:
        with _sigterm_as_interrupt():
            settings = load_stack(stack)
            # never DATABASE_URL: the bench's own PostgreSQL; a failed up stops what it started. No stream
            # worker: it would consume the seeds' stream records while they are being timed
            twin.up(settings, engine=engine, stream_worker=False)
            target = None
            try:
                target = resolve_target(stack)
                yield target
            finally:
                try:
                    if target is not None:
                        reset_moto(
                            target.endpoint("default")
                        )  # the server snapshots its state on stop: keep that small
                except OSError:
                    pass
                twin.down(settings)
    finally:
        shutil.rmtree(state, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def reset_moto(endpoint: str | None) -> None:
    """Empty every moto backend: its memory grows with each table created until reset."""
    if not endpoint:
        return
    request = urllib.request.Request(endpoint.rstrip("/") + "/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=60) as resp:
        resp.read()


def reset_dynamodb(target: Any) -> None:
    """Drop every table of the twin's DynamoDB engine: moto's reset (all its services), or each table on MiniStack."""
    from ops import ddb

    url = target.endpoint("dynamodb")
    if url == target.endpoint("default"):
        reset_moto(url)
        return
    client = target.client("dynamodb")
    for name in ddb.list_tables(client):
        client.delete_table(TableName=name)  # MiniStack drops it at once (and snapshots: a table-level change)
