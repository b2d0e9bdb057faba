"""ops.proc: what /proc says about real processes, and nothing worse than "unknown" where it is missing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops import proc
from tests.support.helpers import REPO

HAS_PROC = Path("/proc/self/stat").exists()
needs_proc = pytest.mark.skipif(not HAS_PROC, reason="needs Linux /proc")


def _wait_for(condition: object, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A real child whose command line carries a marker; killed and reaped if a test leaves it."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "proc-test-marker"], stdin=subprocess.DEVNULL
    )
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()


@needs_proc
def test_a_child_is_running_then_a_zombie_then_gone(sleeper: subprocess.Popen[bytes]) -> None:
    # GIVEN a running child
    pid = sleeper.pid
    assert _wait_for(lambda: "proc-test-marker" in (proc.cmdline(pid) or "")), proc.cmdline(pid)
    assert proc.state(pid) in {"R", "S"}
    assert proc.running(pid) and proc.running(pid, "proc-test-marker")
    assert not proc.running(pid, "ops.local.motoserver"), "another program's pid (a reused one) is not ours"

    # WHEN it exits but nobody has reaped it yet
    os.kill(pid, signal.SIGKILL)
    # THEN it is a zombie: present in the process table, yet not running, with no command line
    assert _wait_for(lambda: proc.state(pid) == "Z"), proc.state(pid)
    assert not proc.running(pid)
    assert not proc.running(pid, "proc-test-marker")
    assert proc.cmdline(pid) == ""

    # WHEN it is reaped THEN nothing is known about it any more
    sleeper.wait()
    assert proc.state(pid) is None and proc.cmdline(pid) is None and proc.cpu_seconds(pid) is None
    assert not proc.running(pid)


def test_no_pid_is_never_running() -> None:
    assert not proc.running(None) and not proc.running(0)


@needs_proc
def test_cpu_seconds_count_the_work_a_process_did() -> None:
    before = proc.cpu_seconds(os.getpid())
    started = time.process_time()
    while time.process_time() - started < 0.3:  # burn CPU on purpose
        pass
    after = proc.cpu_seconds(os.getpid())
    assert before is not None and after is not None
    assert after - before >= 0.2, (before, after)


@needs_proc
def test_status_fields_are_read_in_kb_and_unknown_ones_are_none() -> None:
    rss = proc.status_kb("VmRSS")
    assert rss is not None and 1_000 < rss < 10_000_000, rss
    assert proc.status_kb("VmHWM") is not None and proc.status_kb("VmHWM") >= rss  # type: ignore[operator]
    assert proc.status_kb("NoSuchField") is None


PEAK_PROBE = """
import json
from ops import proc
block = bytearray(200 * 1024 * 1024)  # touched, so resident: the high-water mark rises by ~200 MB
for i in range(0, len(block), 4096):
    block[i] = 1
del block
high = proc.status_kb("VmHWM")
reset = proc.reset_peak_rss()
print(json.dumps({"high": high, "reset": reset, "after": proc.status_kb("VmHWM"), "rss": proc.status_kb("VmRSS")}))
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux ≥ 4.0 clear_refs")
def test_resetting_the_peak_forgets_memory_freed_before_the_reset() -> None:
    # GIVEN a process that touched 200 MB and freed it; WHEN it resets its peak
    out = subprocess.run(
        [sys.executable, "-c", PEAK_PROBE], cwd=REPO, capture_output=True, text=True, check=True, timeout=60
    )
    seen = json.loads(out.stdout)
    # THEN the high-water mark drops back to about the current RSS, far below the old peak
    assert seen["reset"] is True
    assert seen["high"] - seen["rss"] > 150_000, seen  # the 200 MB block did count before
    assert seen["after"] < seen["high"] - 150_000, seen
    assert seen["after"] - seen["rss"] < 20_000, seen


def test_without_proc_every_reader_says_unknown_and_a_live_pid_is_trusted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN a system without /proc's files (macOS)
    monkeypatch.setattr(proc, "PROC_ROOT", tmp_path / "no-proc")
    me = os.getpid()
    # THEN nothing is invented
    assert proc.state(me) is None and proc.cmdline(me) is None and proc.cpu_seconds(me) is None
    assert proc.status_kb("VmRSS") is None
    assert proc.reset_peak_rss() is False
    # and a pid that exists is trusted (nothing better is known), one that does not is not
    assert proc.running(me, "whatever-the-command")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert not proc.running(dead.pid)


@needs_proc
def test_a_pid_recorded_with_another_start_is_not_the_same_process_and_gets_no_signal(
    sleeper: subprocess.Popen[bytes],
) -> None:
    # GIVEN a live process whose command line matches, recorded with its true start and with an earlier one
    pid = sleeper.pid
    assert _wait_for(lambda: "proc-test-marker" in (proc.cmdline(pid) or ""))
    started = proc.start_ticks(pid)
    assert started is not None
    # THEN only the record with its own start names it
    assert proc.same_process(pid, started, "proc-test-marker")
    assert not proc.same_process(pid, started - 1, "proc-test-marker"), "a reused pid is another process"
    assert not proc.same_process(pid, started, "another-command")
    # AND a signal meant for the earlier process is never sent to it
    assert proc.signal_same(pid, started - 1, "proc-test-marker", signal.SIGTERM) is False
    assert sleeper.poll() is None
    assert proc.signal_same(pid, started, "proc-test-marker", signal.SIGTERM) is True
    assert sleeper.wait(10) == -signal.SIGTERM


@needs_proc
def test_a_process_start_is_a_time_near_now() -> None:
    began = proc.started_epoch("self")
    assert began is not None and abs(began - time.time()) < 24 * 3600
