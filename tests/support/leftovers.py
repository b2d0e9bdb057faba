"""Twin processes this test process started and nobody holds any more: what a module must not leave behind.

Every process a test starts (in-process ``twinops.up``, an ``invoke`` subprocess, a server of the
test's own) inherits this process's environment, so a mark set there (``MARK``, unique per pytest
process, so per xdist worker) says whose it is, even after its parent exited and it was reparented:
other workers', other checkouts' and a developer's own twins are never looked at, let alone signalled.

A twin process is a server or worker of ours (``ops.local.*``: the AWS server, MiniStack, the stream
worker) or an embedded PostgreSQL's postmaster. It is held while a twin that outlives the module
(the session's, a package's: stack ``dev`` under the session's state root or the current
``CRUDDUR_STATE_DIR``) records it, or while a session fixture says it keeps it (``keep``);
anything else still alive at the module's end leaked.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from dataclasses import dataclass
from pathlib import Path

from ops.proc import signal_same, start_ticks

MARK = "CRUDDUR_TEST_PROCESS"
PROC = Path("/proc")
_kept: set[int] = set()  # pids a session-wide fixture keeps on purpose, outside any twin.json


def keep(pid: int) -> None:
    """A process a fixture wider than a module holds (and stops) itself, outside any twin: never a leftover."""
    _kept.add(pid)


def mark_this_process() -> str:
    """Set the mark anew in this process (an xdist worker inherits its controller's value)."""
    os.environ[MARK] = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return os.environ[MARK]


@dataclass(frozen=True)
class TwinProcess:
    pid: int
    started: int  # start ticks: with the pid, the process's identity (a pid is reused, the pair never)
    command: str

    def __str__(self) -> str:
        return f"pid {self.pid}: {self.command[:200]}"


def _is_twin(argv: list[bytes]) -> bool:
    return bool(argv) and (
        any(a.startswith(b"ops.local.") for a in argv[1:3]) or argv[0].endswith(b"/postgres")  # its postmaster
    )


def _postgres_child(pid: str) -> bool:
    """A process the postmaster forked (a backend, the checkpointer): it carries the postmaster's command line
    until it retitles itself, and on a busy machine the guard can look in between. The postmaster is the twin's;
    its children come and go with connections and are never a leftover of their own."""
    try:
        ppid = (PROC / pid / "stat").read_text().rsplit(")", 1)[1].split()[1]
        return (PROC / ppid / "cmdline").read_bytes().split(b"\0")[0].endswith(b"/postgres")
    except (OSError, IndexError):
        return False


def own_twin_processes() -> set[TwinProcess]:
    """The live twin processes carrying this process's mark (a few ms: one read per process, two per twin's)."""
    mark = f"{MARK}={os.environ.get(MARK, '')}".encode()
    found: set[TwinProcess] = set()
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        try:
            argv = (PROC / entry.name / "cmdline").read_bytes().split(b"\0")
            if not _is_twin(argv) or mark not in (PROC / entry.name / "environ").read_bytes().split(b"\0"):
                continue
            if argv[0].endswith(b"/postgres") and _postgres_child(entry.name):
                continue
        except OSError:  # gone meanwhile, or another user's
            continue
        pid = int(entry.name)
        started = start_ticks(pid)
        if started is not None:
            found.add(TwinProcess(pid, started, b" ".join(argv).decode(errors="replace").strip()))
    return found


def _recorded_pids(twin_json: Path) -> set[int]:
    """The pids a twin.json names (its servers, its worker, its postmaster by its data directory)."""
    try:
        twin = json.loads(twin_json.read_text())
    except (OSError, ValueError):
        return set()
    pids = {(twin.get(part) or {}).get("pid") for part in ("aws", "dynamodb", "stream_worker")}
    pgdata = (twin.get("postgres") or {}).get("pgdata")
    if pgdata:
        try:
            pids.add(int((Path(pgdata) / "postmaster.pid").read_text().splitlines()[0]))
        except (OSError, ValueError, IndexError):
            pass
    return {p for p in pids if isinstance(p, int)}


def held_pids(session_root: Path) -> set[int]:
    """What the twins that outlive a module record: the session's (one per engine) and a package's own."""
    files = {*session_root.glob("*/dev/twin.json"), session_root / "dev" / "twin.json"}
    files.add(Path(os.environ.get("CRUDDUR_STATE_DIR", session_root)) / "dev" / "twin.json")
    return {pid for f in files for pid in _recorded_pids(f)}


def leftovers(before: set[TwinProcess], session_root: Path) -> list[TwinProcess]:
    """Twin processes started since ``before`` that are still alive and that no lasting twin holds."""
    held = held_pids(session_root) | _kept
    return sorted((p for p in own_twin_processes() - before if p.pid not in held), key=lambda p: p.pid)


def stop(processes: list[TwinProcess]) -> None:
    """SIGKILL each leftover (only while its pid is still that process): a leak must not outlive the run."""
    for p in processes:
        signal_same(p.pid, p.started, None, signal.SIGKILL)
