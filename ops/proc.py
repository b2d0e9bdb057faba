"""Process facts from ``/proc``: the one place that reads it (Linux), graceful where it is missing (macOS).

The twin needs to know whether a recorded pid is still its server (running, not a zombie,
not a reused pid); the benchmark needs a process's CPU time and its peak RSS since a reset.
Every reader returns ``None`` (or ``False`` for the reset) when ``/proc`` cannot answer,
so callers choose their own fallback instead of catching ``OSError`` each time.
"""

from __future__ import annotations

import os
from pathlib import Path

# module-level so a test can point it at a directory without /proc's files (as on macOS)
PROC_ROOT = Path("/proc")

Pid = int | str  # a process id, or "self"


def _stat_fields(pid: Pid) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (which may hold spaces and ')')."""
    try:
        return (PROC_ROOT / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def state(pid: Pid) -> str | None:
    """The kernel's one-letter state (R running, S sleeping, Z zombie, ...), or None when unknown."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def cmdline(pid: Pid) -> str | None:
    """The command line, arguments joined by spaces ("" for a zombie or a kernel thread), or None when unknown."""
    try:
        raw = (PROC_ROOT / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    return raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")


def running(pid: int | None, cmdline_contains: str | None = None) -> bool:
    """Whether ``pid`` is a live process (not a zombie) and, when asked, still runs our command.

    ``cmdline_contains`` guards against pid reuse before signalling a process recorded
    earlier. Without ``/proc`` the pid's existence is trusted, as nothing better is known.
    """
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if state(pid) == "Z":
        return False  # exited, only waiting to be reaped
    if cmdline_contains:
        line = cmdline(pid)
        return True if line is None else cmdline_contains in line
    return True


def cpu_seconds(pid: Pid) -> float | None:
    """User + system CPU time the process has used so far, or None when unknown."""
    fields = _stat_fields(pid)
    try:
        # after the name: state is field 3 of stat(5), utime 14 and stime 15, so indexes 11 and 12 here
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") if fields else None
    except (IndexError, ValueError, OSError):
        return None


def status_kb(field: str, pid: Pid = "self") -> int | None:
    """A kB field of ``/proc/<pid>/status`` (VmRSS, VmHWM, ...), or None when absent or unknown."""
    try:
        text = (PROC_ROOT / str(pid) / "status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            try:
                return int(line.split()[1])
            except (IndexError, ValueError):
                return None
    return None


def reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark (VmHWM) to its current RSS; False where that is not possible.

    Linux ≥ 4.0: writing "5" to ``clear_refs`` does it, so a peak read afterwards belongs to
    the work done since, not to the imports and preparation before.
    """
    try:
        (PROC_ROOT / "self" / "clear_refs").write_text("5")
    except OSError:
        return False
    return True
