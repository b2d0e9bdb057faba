"""Reads on the twin's moto server with and without ``ops.local.moto_patches``, measured in one run.

    python -m bench.moto_reads [--modes plain,patched] [--port N] [--json]

Each mode gets its own moto server subprocess on the same machine, one after the other:
``plain`` is moto 5.2.5 with only the isolation patch (what the twin ran before the read
patches), ``patched`` is the twin's own entry point, ``python -m ops.local.motoserver``.
Per mode it measures, through the project's own client code over HTTP:

  seed     20,000 messages written with ``ops.ddb.batch_write``
  query    p50 of ``get_conversation`` (newest 20 of one group) at 10,000 and 100,000 items,
           beside the p50 of ListTables (the cheapest request: what HTTP and moto cost alone)
  paging   a 5,000-message group paged to its first message, 100 per page, alone in its
           table and inside the 100,000-item table
  scan     every item of the 100,000-item table with ``ops.ddb.scan``, and the CPU seconds the
           server and this client spent on it
  txn      p50 of one two-item ``TransactWriteItems`` on the 20,000-item table (moto copies
           every table a transaction touches: not a read, but what a write costs there)

Nothing here is asserted: the targets (query p50 ≤ 10 ms at 100,000 items, the group paged in
≤ 1 s, scan ≥ 10,000 items/s) belong to the benchmark that reads these numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

REPO = Path(__file__).resolve().parent.parent
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
PER_GROUP = 100
BIG_GROUP = 5_000


def serve_plain(port: int) -> None:
    """moto's threaded server with only the isolation patch: the twin before the read patches."""
    from moto.server import ThreadedMotoServer

    from ops.local.moto_patches.isolation import serialise_dynamodb

    serialise_dynamodb()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    server.stop()


@contextmanager
def server(mode: str, port: int, workdir: Path) -> Iterator[tuple[Any, subprocess.Popen[bytes]]]:
    if mode == "plain":
        cmd = [sys.executable, "-m", "bench.moto_reads", "serve-plain", "--port", str(port)]
    else:
        cmd = [
            sys.executable,
            "-m",
            "ops.local.motoserver",
            "--port",
            str(port),
            "--snapshot",
            str(workdir / f"{mode}.snapshot"),
        ]
    log = open(workdir / f"{mode}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    client = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}", **CREDENTIALS)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                client.list_tables()
                break
            except Exception:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{mode} server did not start: see {workdir / (mode + '.log')}") from None
                time.sleep(0.2)
        yield client, proc
    finally:
        proc.kill()  # no snapshot wanted: the state is throwaway
        proc.wait()
        log.close()


def _table(client: Any, name: str) -> str:
    import dataclasses

    from ops import ddb
    from ops.stacks import load_stack
    from ops.table_spec import table_spec

    ddb.schema_load(client, dataclasses.replace(table_spec(load_stack("dev")), name=name))
    return name


def _messages(groups: int, big_group: int, first_group: int = 0) -> list[dict[str, Any]]:
    """Messages of ``groups`` conversations of 100 (and one of ``big_group``), as DynamoDB JSON."""
    from bench.data import SEED_START, person
    from ops.seed import DEFAULT_CONVERSATION, build, parse_conversation

    base = parse_conversation(DEFAULT_CONVERSATION)

    def conversation(n: int) -> Any:
        import dataclasses

        return dataclasses.replace(base, lines=tuple(base.lines[i % len(base.lines)] for i in range(n)))

    out = []
    for g in range(first_group, first_group + groups):
        out.extend(
            m.to_item() for m in build(conversation(PER_GROUP), person(2 * g), person(2 * g + 1), SEED_START).messages
        )
    if big_group:
        out.extend(
            m.to_item() for m in build(conversation(big_group), person(999_998), person(999_999), SEED_START).messages
        )
    return out


def _group_of(item: dict[str, Any]) -> str:
    return str(item["pk"]["S"])[len("MSG#") :]


class Meter:
    """Wall time, and the CPU seconds the server process and this client spent, over a block."""

    def __init__(self, server_pid: int) -> None:
        self.pid = server_pid
        self.wall = self.server = self.client = 0.0

    def __enter__(self) -> Meter:
        self._start = (time.perf_counter(), _cpu_s(self.pid), time.process_time())
        return self

    def __exit__(self, *_: Any) -> None:
        wall, server, client = self._start
        self.wall, self.server, self.client = (
            time.perf_counter() - wall,
            _cpu_s(self.pid) - server,
            time.process_time() - client,
        )


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _per_call(pid: int, call: Any, samples: int) -> dict[str, float]:
    """p50 wall time of ``call`` in ms, and the mean server and client CPU ms per call."""
    call()  # warm: connection open, index built
    times = []
    with Meter(pid) as m:
        for i in range(samples):
            started = time.perf_counter()
            call(i)
            times.append(time.perf_counter() - started)
    return {
        "p50_ms": statistics.median(times) * 1000,
        "server_cpu_ms": m.server * 1000 / samples,
        "client_cpu_ms": m.client * 1000 / samples,
    }


def _query(client: Any, table: str, groups: list[str]) -> Any:
    from ops.messages.read import get_conversation

    def newest_20(i: int = 0) -> None:
        page = get_conversation(client, table, groups[i * 7919 % len(groups)], 20)
        assert len(page.items) == 20

    return newest_20


def _page_all(client: Any, table: str, group: str) -> tuple[int, int]:
    from ops.messages.read import get_conversation

    n, pages, cursor = 0, 0, None
    while True:
        page = get_conversation(client, table, group, 100, cursor)
        n, pages, cursor = n + len(page.items), pages + 1, page.next_cursor
        if not cursor:
            return n, pages


def _txn_p50(client: Any, table: str, samples: int = 3) -> float:
    times = []
    for i in range(samples):
        items = [
            {"Put": {"TableName": table, "Item": {"pk": {"S": f"TXN#{i}"}, "sk": {"S": str(j)}}}} for j in range(2)
        ]
        started = time.perf_counter()
        client.transact_write_items(TransactItems=items)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def measure(mode: str, port: int, workdir: Path, progress: Any) -> dict[str, Any]:
    from ops import ddb

    out: dict[str, Any] = {"mode": mode}

    def record(name: str, m: Meter, note: str = "") -> None:
        out[f"{name}_s"], out[f"{name}_server_cpu_s"], out[f"{name}_client_cpu_s"] = m.wall, m.server, m.client
        progress(f"{mode}: {name} {m.wall:.2f} s (CPU: server {m.server:.2f} s, client {m.client:.2f} s){note}")

    with server(mode, port, workdir) as (client, proc):
        client = boto3.client(
            "dynamodb",
            endpoint_url=client.meta.endpoint_url,
            config=Config(max_pool_connections=16, read_timeout=900, retries={"max_attempts": 1}),
            **CREDENTIALS,
        )
        pid = proc.pid
        seed_items = _messages(200, 0, first_group=5_000)
        _table(client, "seed")
        with Meter(pid) as m:
            ddb.batch_write(client, "seed", iter(seed_items))
        record("seed_20k", m)
        out["txn_p50_ms_20k"] = _txn_p50(client, "seed")
        progress(f"{mode}: transaction p50 at 20,000 items {out['txn_p50_ms_20k']:.0f} ms")
        client.delete_table(TableName="seed")

        alone = _messages(0, BIG_GROUP)
        _table(client, "alone")
        ddb.batch_write(client, "alone", iter(alone))
        with Meter(pid) as m:
            n, pages = _page_all(client, "alone", _group_of(alone[0]))
        assert n == BIG_GROUP, n
        record("paging_alone", m, f": {n} messages in {pages} pages")
        client.delete_table(TableName="alone")

        small = _messages(100, 0)
        _table(client, "reads")
        ddb.batch_write(client, "reads", iter(small))
        groups = sorted({_group_of(i) for i in small})
        out["query_10k"] = _per_call(pid, _query(client, "reads", groups), 40)
        progress(f"{mode}: query at 10,000 items {out['query_10k']}")

        rest = _messages(100_000 // PER_GROUP - 100 - BIG_GROUP // PER_GROUP, BIG_GROUP, first_group=100)
        ddb.batch_write(client, "reads", iter(rest))
        groups = sorted({_group_of(i) for i in small + rest})
        total = len(small) + len(rest)
        assert total == 100_000, total
        out["query_100k"] = _per_call(pid, _query(client, "reads", groups), 40)
        out["list_tables"] = _per_call(pid, lambda i=0: client.list_tables(Limit=1), 40)
        progress(
            f"{mode}: query at 100,000 items {out['query_100k']}; ListTables, the cheapest request: "
            f"{out['list_tables']}"
        )

        with Meter(pid) as m:
            n, pages = _page_all(client, "reads", _group_of(rest[-1]))
        assert n == BIG_GROUP, n
        record("paging_in_100k", m, f": {n} messages in {pages} pages")

        with Meter(pid) as m:
            scanned = sum(1 for _ in ddb.scan(client, "reads"))
        assert scanned == total, scanned
        out["scan_items_per_s"] = scanned / m.wall
        record("scan_100k", m, f": {out['scan_items_per_s']:.0f} items/s")
        out["server_rss_mb"] = _rss_mb(pid)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _flat(result: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in result.items():
        if isinstance(value, dict):
            out.update({f"{key}_{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    plain = sub.add_parser("serve-plain")
    plain.add_argument("--port", type=int, required=True)
    parser.add_argument("--modes", default="plain,patched")
    parser.add_argument(
        "--port", type=int, default=0, help="first port of the servers (mode i on port+i); 0: free ports"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "serve-plain":
        serve_plain(args.port)
        return 0
    results = []
    with tempfile.TemporaryDirectory(prefix="moto-reads-") as tmp:
        for i, mode in enumerate(args.modes.split(",")):
            port = args.port + i if args.port else _free_port()
            results.append(measure(mode, port, Path(tmp), lambda line: print(line, file=sys.stderr, flush=True)))
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    flat = [_flat(r) for r in results]
    print(f"{'':30}" + "".join(f"{r['mode']:>14}" for r in flat))
    for k in (k for k in flat[0] if k != "mode"):
        print(f"{k:30}" + "".join(f"{r[k]:>14.2f}" for r in flat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
