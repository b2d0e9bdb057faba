"""Run ``invoke`` with every DynamoDB BatchWriteItem after the first N held until the process is interrupted.

    python tests/support/held_writes.py N TASK [ARGS...]

A test that stops a bulk writer midway (kill -9, Ctrl-C) must not race it: on a busy machine the
writer can finish between the moment the test decides to stop it and the moment the signal lands.
Here the writer reaches batch N, says so on stderr (``HELD``), and every later batch waits at a gate:
the stop lands while exactly that much is written, however slow or fast the machine is. Ctrl-C
(SIGINT) opens the gate before it interrupts, as the real one would find batches in flight; kill -9
needs nothing. The requests go to the real endpoint through botocore; only their timing is held.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

HELD = "held-writes: holding every batch after this one"


def main(argv: list[str]) -> None:
    import botocore.client
    from invoke.main import program

    after = int(argv[0])
    gate, lock = threading.Event(), threading.Lock()
    seen = 0
    send = botocore.client.BaseClient._make_api_call

    def held(client: Any, operation: str, params: dict[str, Any]) -> Any:
        nonlocal seen
        if operation == "BatchWriteItem":
            with lock:
                seen += 1
                mine = seen
            if mine == after + 1:
                print(f"{HELD} ({after})", file=sys.stderr, flush=True)
            if mine > after:
                gate.wait()
        return send(client, operation, params)

    def interrupt(signum: int, frame: Any) -> None:
        gate.set()  # the batches in flight go through, as they would after a real Ctrl-C
        signal.default_int_handler(signum, frame)

    botocore.client.BaseClient._make_api_call = held  # type: ignore[method-assign]
    signal.signal(signal.SIGINT, interrupt)
    sys.argv = ["invoke", *argv[1:]]
    program.run()


if __name__ == "__main__":
    main(sys.argv[1:])
