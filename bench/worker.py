"""One measured run of a benchmark job, alone in a fresh interpreter: ``python -m bench.worker JSON``.

``bench.context.Bench.work`` starts one of these per measurement, so a run's time and peak
memory are its own: no imports, connection pools or garbage of an earlier run are counted.
The job (``bench.ours`` or ``bench.baselines``) is prepared first (data built, client created
and warmed with one cheap request), then only the work itself is timed and its peak RSS growth
measured. Prints one JSON object on stdout, or one error line on stderr and exits 1.
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import time
from typing import Any

from ops import proc


def _maxrss_kb() -> int:
    """The peak RSS of this process's whole life (it cannot be reset): the fallback without /proc."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB on Linux


def measure(job: str, params: dict[str, Any]) -> dict[str, Any]:
    from bench import registry

    run = registry.find(job)(**params)
    gc.collect()
    # exact: the kernel's high-water mark, reset now, so the peak is the run's and not the imports'
    exact = proc.reset_peak_rss() and proc.status_kb("VmHWM") is not None
    before = (proc.status_kb("VmRSS") if exact else None) or _maxrss_kb()
    started, cpu = time.perf_counter(), time.process_time()
    result = run()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = (proc.status_kb("VmHWM") if exact else None) or _maxrss_kb()
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
