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


def argv(pid: Pid) -> list[str] | None:
    """The command line as its arguments ([] for a zombie or a kernel thread), or None when unknown."""
    try:
        raw = (PROC_ROOT / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0")[:-1]] if raw else []


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


def start_ticks(pid: Pid) -> int | None:
    """When the process started, in clock ticks after boot (stat(5) field 22): with the pid, a process's identity.

    A pid is reused once its process is gone; the pair (pid, start) never is, so a pid recorded
    with its start is only ever the process that was recorded.
    """
    fields = _stat_fields(pid)
    try:
        return int(fields[19]) if fields else None
    except (IndexError, ValueError):
        return None


def started_epoch(pid: Pid) -> float | None:
    """The process's start as seconds since the epoch (boot time + start ticks), or None when unknown."""
    ticks = start_ticks(pid)
    try:
        stat = (PROC_ROOT / "stat").read_text()
        boot = next(int(line.split()[1]) for line in stat.splitlines() if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK") if ticks is not None else None
    except (OSError, StopIteration, ValueError, IndexError):
        return None


def same_process(pid: int | None, started: int | None, cmdline_contains: str | None = None) -> bool:
    """Whether ``pid`` is still the process recorded with start ``started`` (``start_ticks``) and runs our command.

    ``started`` None (a record written before starts were kept) falls back to the command line
    alone; where ``/proc`` cannot tell the start, the command line decides too.
    """
    if not running(pid, cmdline_contains):
        return False
    if started is None:
        return True
    now = start_ticks(pid)  # type: ignore[arg-type]
    return now is None or now == started


def signal_same(pid: int, started: int | None, cmdline_contains: str | None, sig: int) -> bool:
    """Send ``sig`` to ``pid`` only while it is the recorded process; False (nothing sent) when it is not.

    Where the system has pidfds, the identity is checked on a handle that keeps naming that one
    process, so a pid reused between the check and the signal cannot receive it.
    """
    import signal as signals

    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        if not same_process(pid, started, cmdline_contains):
            return False
        os.kill(pid, sig)
        return True
    try:
        fd = opener(pid)
    except OSError:
        return False  # gone
    try:
        if not same_process(pid, started, cmdline_contains):
            return False
        try:
            signals.pidfd_send_signal(fd, sig)
        except ProcessLookupError:
            return False
        return True
    finally:
        os.close(fd)


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
