"""What the journal costs: seed throughput with and without it, and restart time against journal length.

Run from the repository root (ports from CRUDDUR_TEST_PORT_OFFSET + 8000, private temp dirs):

    CRUDDUR_TEST_PORT_OFFSET=3100 .venv/bin/python -m bench.journal_cost [--items 5000] [--rounds 3]

Every configuration runs against its own ``python -m ops.local.motoserver`` (started as local.up
starts it) in the same run, rounds interleaved, so a busy machine slows them alike.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from ops import ddb as ddbops
from ops.local import journal
from ops.messages.model import Message
from ops.stacks import PROJECT_ROOT, load_stack
from ops.table_spec import create_table_kwargs, table_spec
from ops.target import LOCAL_CREDENTIALS, port_open

BASE_PORT = 8000 + int(os.environ.get("CRUDDUR_TEST_PORT_OFFSET", "100"))
CONFIGS = {"no journal": {journal.ENV_ENABLED: "0"}, "journal": {}, "journal + fsync": {journal.ENV_FSYNC: "1"}}


@contextmanager
def server(port: int, state: Path, env: dict[str, str]) -> Iterator[tuple[Any, float]]:
    """A twin AWS server; yields (its dynamodb client, seconds from spawn to answering)."""
    snapshot = state / "aws-state.pickle"
    t0 = time.monotonic()
    with open(state / "aws.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ops.local.motoserver", "--port", str(port), "--snapshot", str(snapshot)],
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,
        )
    try:
        while not port_open("127.0.0.1", port, timeout=0.2):
            if proc.poll() is not None:
                raise SystemExit(f"server on {port} exited: see {state / 'aws.log'}")
            time.sleep(0.05)
        started = time.monotonic() - t0
        client = boto3.client(
            "dynamodb", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1", **LOCAL_CREDENTIALS
        )
        yield client, started
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)  # the callers that want a clean stop have stopped it already
        proc.wait()


def items(n: int) -> Iterator[dict[str, Any]]:
    t0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
    group = str(uuid.uuid4())
    for i in range(n):
        m = Message(
            group,
            (t0 + timedelta(seconds=i)).isoformat(timespec="microseconds"),
            str(uuid.uuid4()),
            f"message {i} " + "x" * 80,
            "a0000000-0000-4000-8000-00000000000a",
            "Ada",
            "ada",
        )
        yield m.to_item()


def seed_rate(client: Any, n: int) -> float:
    spec = table_spec(load_stack("dev"))
    name = f"cost-{uuid.uuid4().hex[:8]}"
    client.create_table(**(create_table_kwargs(spec) | {"TableName": name}))
    t0 = time.monotonic()
    stats = ddbops.batch_write(client, name, items(n), workers=4)
    seconds = time.monotonic() - t0
    assert stats.written == n, stats
    client.delete_table(TableName=name)
    return n / seconds


def restart_after_kill(port: int, state: Path, n_puts: int, batch_items: int) -> dict[str, Any]:
    """Write, kill -9, start again: the restart's wall time, the server's own replay time, the pause of the
    compaction after it."""
    with server(port, state, {journal.ENV_MAX_ENTRIES: str(10**9)}) as (client, _):  # keep every write in the journal
        spec = table_spec(load_stack("dev"))
        client.create_table(**(create_table_kwargs(spec) | {"TableName": "restart"}))
        if batch_items:
            ddbops.batch_write(client, "restart", items(batch_items), workers=4)
        for item in items(n_puts):
            client.put_item(TableName="restart", Item=item)
    entries = sum(
        1
        for seg in journal.segments(journal.journal_dir(state / "aws-state.pickle"))
        for _ in journal.SegmentReader(seg)
    )
    log = state / "aws.log"
    with server(port, state, {}) as (client, started):
        report = journal.read_report(journal.report_path(state / "aws-state.pickle")) or {}
        count = client.describe_table(TableName="restart")["Table"]["ItemCount"]
        deadline = time.monotonic() + 120
        while "compacted:" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)  # the start folds the replayed writes into a snapshot, in the background
    held = re.findall(r"writes held ([0-9.]+)s, ([0-9.]+)s in all", log.read_text())
    return {
        "journal entries": entries,
        "replayed": report.get("replayed"),
        "failed": len(report.get("failed") or []),
        "replay s": report.get("seconds"),
        "restart s": round(started, 2),
        "items after": count,
        "compaction: writes held s / total s": held[-1] if held else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="cruddur-journal-cost-"))
    try:
        rates: dict[str, list[float]] = {name: [] for name in CONFIGS}
        for i in range(args.rounds):
            for j, (name, env) in enumerate(CONFIGS.items()):
                state = root / f"seed-{i}-{j}"
                state.mkdir()
                with server(BASE_PORT + j, state, env) as (client, _):
                    rates[name].append(seed_rate(client, args.items))
        print(
            f"seed of {args.items} items with ops.ddb.batch_write (4 workers), {args.rounds} rounds, median writes/s:"
        )
        base = statistics.median(rates["no journal"])
        for name, values in rates.items():
            med = statistics.median(values)
            print(
                f"  {name:16} {med:8.0f} items/s  ({med / base:.0%} of no journal; rounds: "
                f"{', '.join(f'{v:.0f}' for v in values)})"
            )
        print(
            "restart after kill -9 (wall time: spawn to answering, imports included; replay: the server's own count):"
        )
        for n_puts, batch in ((0, 0), (0, args.items), (1000, 0), (5000, 0)):
            state = root / f"restart-{n_puts}-{batch}"
            state.mkdir()
            row = restart_after_kill(BASE_PORT, state, n_puts, batch)
            print(f"  {n_puts} PutItem + {batch} items in batches: " + json.dumps(row))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
