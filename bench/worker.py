"""One measured run of a benchmark job, alone in a fresh interpreter: ``python -m bench.worker JSON``.

``bench.harness`` starts one of these per measurement, so a run's time and peak memory are its
own: no imports, connection pools or garbage of an earlier run are counted. The job is
prepared first (data built, client created and warmed with one cheap request), then only
the work itself is timed and its peak RSS growth measured. Prints one JSON object.
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kb(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset the kernel's high-water mark (VmHWM) so the peak measured is the run's, not the imports'."""
    try:
        _CLEAR_REFS.write_text("5")  # Linux ≥ 4.0: "5" resets the peak RSS
        return True
    except OSError:
        return False


def _maxrss_kb() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB on Linux


def measure(job: str, params: dict[str, Any]) -> dict[str, Any]:
    from bench import harness as bench

    run = bench.JOBS[job](**params)
    gc.collect()
    exact = _reset_peak() and _status_kb("VmHWM") is not None
    before = (_status_kb("VmRSS") if exact else None) or _maxrss_kb()
    started, cpu = time.perf_counter(), time.process_time()
    result = run()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = (_status_kb("VmHWM") if exact else None) or _maxrss_kb()
    # cpu_s: this process's own CPU (all threads); the rest of `seconds` is waiting for the server
    return result | {"seconds": seconds, "cpu_s": cpu, "peak_mb": max(peak - before, 0) / 1024, "peak_exact": exact}


def main(argv: list[str] | None = None) -> int:
    from ops.errors import OpsError

    spec = json.loads((argv if argv is not None else sys.argv[1:])[0])
    try:
        result = measure(spec["job"], spec.get("params", {}))
    except OpsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
