"""One ``local.up`` or ``local.down`` of a stack at a time, across processes.

Two starts racing on a fresh state each ran initdb and wrote a password: the data directory and
the password file ended up from different runs. Holding an exclusive ``flock`` on
``<state>/<stack>/.lifecycle.lock`` for the whole of ``up``/``down`` serialises them: the second
waits (bounded) and then finds the twin up (or down). The kernel releases the lock when its
holder dies, so a killed ``local.up`` never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ops.errors import RefusedError
from ops.files import unwritable

LOCK_NAME = ".lifecycle.lock"
WAIT_ENV = "CRUDDUR_TWIN_LOCK_WAIT"  # seconds a second local.up/down waits for the first (default below)
DEFAULT_WAIT = 600.0  # a first start replays a long journal or runs initdb on a busy machine: minutes, not hours

_held = threading.local()  # the stacks this thread holds (up calls down on a half-dead twin: no self-deadlock)


def wait_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get(WAIT_ENV) or DEFAULT_WAIT))
    except ValueError:
        return DEFAULT_WAIT


@contextmanager
def held(
    state: Path, stack: str, on_wait: Callable[[str], None] | None = None, required: bool = True
) -> Iterator[None]:
    """Hold the stack's lifecycle lock; wait for another holder at most ``wait_seconds()``, then refuse in one line.

    ``required=False`` (a stop) goes on without the lock where its file cannot be made (a read-only
    state directory): nothing can start there anyway, and what runs must still be stoppable.
    """
    mine: set[str] = getattr(_held, "stacks", set())
    if stack in mine:
        yield
        return
    path = state / LOCK_NAME
    try:
        state.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as err:
        if required:
            raise unwritable(state, err) from None
        yield
        return
    try:
        if not _try(fd):
            holder = _holder(path)
            if on_wait is not None:
                on_wait(f"stack {stack}: another local.up/local.down{holder} is running; waiting for it")
            deadline = time.monotonic() + wait_seconds()
            while not _try(fd):
                if time.monotonic() >= deadline:
                    raise RefusedError(
                        f"stack {stack}: another local.up/local.down{holder} is still running after "
                        f"{wait_seconds():.0f}s; let it finish, then run this again"
                    )
                time.sleep(0.1)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)  # who holds it, for the message of the one that waits
        except OSError:
            pass  # a full disk: the lock holds all the same
        _held.stacks = mine | {stack}
        try:
            yield
        finally:
            _held.stacks = mine
    finally:
        os.close(fd)  # releases the lock


def _try(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""
