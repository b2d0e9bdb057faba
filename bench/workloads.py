"""The workloads: each prepares its data on the bench's twin, measures ours and the baselines' jobs, and returns rows.

``WORKLOADS`` is the registry, in the order ``invoke bench`` runs them and ``--only`` names them.
Adding a workload is one function here (plus its jobs in ``bench.ours`` / ``bench.baselines``)
and one line in the registry. A variant of an existing workload (another DynamoDB engine, a
simulated network latency, encryption on or off) is a row with its own ``engine`` or
``latency_ms`` (or a new dimension field on ``bench.model.Row``), not a new case text.
``DYNAMODB_WORKLOADS`` run once per engine (``invoke bench --engine``); the rest on the default.

  seed    one conversation of N messages with ``invoke ddb.seed`` (a subprocess: start-up, PostgreSQL
          lookup, writing and verifying)  [one put_item per item, as the seeds did]; the same items with
          ``ops.ddb.batch_write`` [boto3's ``Table.batch_writer()``], on the twin and through a proxy
          that adds 20 ms to every request (``bench.latency``)
  scan    every item to JSON lines, ``ops.ddb.scan`` + ``ops.render.json_lines``  [scan paginator +
          ``TypeDeserializer`` + ``json.dumps(default=str)``], peak memory at two table sizes
  query   the median latency of ``get_conversation``'s newest page (one Query) in the scan's tables
  paging  ``get_conversation`` from the newest page to the first message  [the seeds' one Query:
          Limit 20, current-year filter, no next page]
  encryption  the same read of a group whose bodies are sealed (``ops.crypto``)  [the same group in
          plain text]: what encryption costs a reader, and its KMS requests
  sync    ``ops.cognito.sync_ids`` for N users  [one UPDATE + COMMIT per user, as the seeds did]
  cli     ``invoke --list`` and one read-pattern task, end to end; and no Pulumi SDK import
  fanout  the stream consumer on one message of a named group of 50: every member's row moved, each
          in its own transaction, 8 at a time  [the seeds' consumer: a delete and a put per row, in turn]
  bulk    the doctor over a DynamoDB export (export to S3, then its files read)  [the doctor scanning
          the live table, metered]: time, requests and read capacity units (moto only: it serves export)
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.context import Bench, best, cpu_text, expect, runs_text
from bench.data import conversation_plan, person, plans, write_conversation
from bench.latency import delay_proxy, endpoint
from bench.model import BenchError, Row
from bench.twin import reset_dynamodb, reset_moto
from ops.messages.model import Message

Workload = Callable[[Bench], list[Row]]
DISTANCE_MS = 20  # what a client a few hundred kilometres from its region waits per request, roughly


def _seed_cli(b: Bench, conversation: Path) -> dict[str, Any]:
    """``invoke ddb.seed --conversation F`` as a user runs it, timed from start to exit (interpreter start-up
    included)."""
    from ops.stacks import PROJECT_ROOT

    b.fresh_table()  # the stack's own table, empty
    server = b.server_cpu()
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "ddb.seed", "--conversation", str(conversation)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - started
    after = b.server_cpu()
    if proc.returncode != 0:
        raise BenchError(f"`invoke ddb.seed` failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    batches = re.search(r" in (\d+) batches", proc.stdout)
    b.progress(f"  invoke ddb.seed: {seconds:.3f} s")
    return {
        "seconds": seconds,
        "requests": int(batches.group(1)) if batches else 0,
        "items": b.item_count(b.target.stack.table_name),
        "server_cpu_s": after - server if server is not None and after is not None else None,
    }


def bench_seed(b: Bench) -> list[Row]:
    from ops import db

    s = b.sizes
    target = b.target
    db.drop_database(target)
    db.create_database(target)
    with db.connect(target) as conn:  # ddb.seed reads the pair from PostgreSQL
        db.load_schema(conn)
        db.seed_users(conn)
    conversation = write_conversation(Path(os.environ["CRUDDUR_STATE_DIR"]) / "bench-seed.txt", s.seed_messages)
    n = s.seed_messages + 2  # the messages and the two group rows (ddb.seed adds the pair entry)
    params = {"conversation": str(conversation), "workers": s.seed_workers}
    attempts: dict[str, list[dict[str, Any]]] = {
        k: [] for k in ("cli", "ours", "batch_writer", "put_loop", "ours_far", "batch_writer_far")
    }

    def once(method: str, job: str, endpoint_url: str | None = None) -> None:
        table = b.fresh_table(f"bench-seed-{method.replace('_', '-')}")
        attempts[method].append(b.work(job, table=table, endpoint=endpoint_url, **params))
        expect(f"items in the table after {method}", b.item_count(table), n)

    for _ in range(s.repeats):  # interleaved: a slow spell of the machine hits each alike
        attempts["cli"].append(_seed_cli(b, conversation))
        expect("items in the table after invoke ddb.seed", attempts["cli"][-1]["items"], n + 1)
        once("ours", "seed_ours")
        once("batch_writer", "seed_batch_writer")
    once(
        "put_loop", "seed_put_loop"
    )  # ~1,000 requests a second at best: minutes at full size, and an order of magnitude away; once
    with delay_proxy(str(target.endpoint("dynamodb")), DISTANCE_MS / 1000) as proxy:
        for _ in range(s.repeats):
            once("ours_far", "seed_ours", endpoint(proxy))
            once("batch_writer_far", "seed_batch_writer", endpoint(proxy))
        proxied = proxy.requests
    runs = {method: best(results) for method, results in attempts.items()}
    cli, ours, far = runs["cli"], runs["ours"], runs["ours_far"]
    server = cpu_text  # of the engine's process: the moto server or MiniStack's
    return [
        b.row(
            "seed",
            "invoke ddb.seed (start-up included)",
            n,
            "items",
            cli,
            "put_item per item (seeds)",
            runs["put_loop"],
            "≥ 10× faster",
            cli["seconds"] * 10 <= runs["put_loop"]["seconds"],
            {"requests": cli["requests"], "baseline_requests": runs["put_loop"]["requests"]},
            f"one conversation of {s.seed_messages:,} messages and its 2 group rows (+ the pair entry for ddb.seed); "
            f"{cli['requests']:,} BatchWriteItem requests vs {runs['put_loop']['requests']:,} PutItem; the task's time "
            f"includes Python's start, PostgreSQL lookup and the count it verifies; ours {runs_text(cli)}, the loop "
            f"{runs_text(runs['put_loop'])}; engine CPU: {server(cli, 'server_cpu_s')} ours, "
            f"{server(runs['put_loop'], 'server_cpu_s')} the loop",
        ),
        b.row(
            "seed",
            f"ddb.batch_write, {s.seed_workers} in flight",
            n,
            "items",
            ours,
            "boto3 Table.batch_writer()",
            runs["batch_writer"],
            counts={"requests": ours["requests"], "baseline_requests": runs["batch_writer"]["requests"]},
            note="same items, both timed without start-up; batch_writer sends its batches of 25 one after another; "
            f"{runs_text(ours)} each; engine CPU: {server(ours, 'server_cpu_s')} ours, "
            f"{server(runs['batch_writer'], 'server_cpu_s')} batch_writer; client CPU: {cpu_text(ours, 'cpu_s')} ours, "
            f"{cpu_text(runs['batch_writer'], 'cpu_s')} batch_writer",
        ),
        b.row(
            "seed",
            f"ddb.batch_write, {s.seed_workers} in flight",
            n,
            "items",
            far,
            "boto3 Table.batch_writer()",
            runs["batch_writer_far"],
            "≥ 3× faster",
            far["seconds"] * 3 <= runs["batch_writer_far"]["seconds"],
            {"requests": far["requests"], "baseline_requests": runs["batch_writer_far"]["requests"]},
            f"every request held {DISTANCE_MS} ms by a proxy ({proxied:,} requests passed); {runs_text(far)} each; "
            f"engine CPU: {server(far, 'server_cpu_s')} ours, {server(runs['batch_writer_far'], 'server_cpu_s')} "
            "batch_writer",
            latency_ms=DISTANCE_MS,
        ),
    ]


def bench_scan(b: Bench) -> list[Row]:
    s = b.sizes
    rows: list[Row] = []
    smallest, largest = min(s.scan), max(s.scan)
    peaks: dict[int, tuple[float, float]] = {}  # size -> (ours, baseline)
    for size in sorted(s.scan):
        table = b.table_of(size)
        ours = b.work("scan_ours", table=table, segments=1)
        base = b.work("scan_baseline", table=table)
        extra = b.work("scan_ours", table=table, segments=s.scan_segments) if size == smallest else None
        for what, r in (("ours", ours), ("the baseline", base), ("ours with segments", extra)):
            if r is not None:
                expect(f"items written by {what} at {size:,}", r["items"], size)
        peaks[size] = (float(ours["peak_mb"]), float(base["peak_mb"]))
        target, met, note = (
            "",
            None,
            (
                f"Scan requests (pages of at most 1 MB): {ours['requests']} for either; "
                f"client CPU: ours {cpu_text(ours, 'cpu_s')}, baseline {cpu_text(base, 'cpu_s')}; "
                f"engine CPU: ours {cpu_text(ours, 'server_cpu_s')}, baseline {cpu_text(base, 'server_cpu_s')}"
            ),
        )
        if size == largest and size != smallest:
            growth = peaks[largest][0] - peaks[smallest][0]
            rate = size / ours["seconds"]
            target, met = f"≥ 10,000 items/s, peak ≤ {smallest:,}-item peak + 50 MB", rate >= 10_000 and growth <= 50
            note += (
                f"; peak vs the {smallest:,}-item scan: ours {growth:+.1f} MB, baseline "
                f"{peaks[largest][1] - peaks[smallest][1]:+.1f} MB"
            )
        rows.append(
            b.row(
                "scan",
                "ddb.scan → json_lines",
                size,
                "items",
                ours,
                "paginator + TypeDeserializer",
                base,
                target,
                met,
                {"requests": ours["requests"], "baseline_requests": base["requests"]},
                note,
            )
        )
        if extra is not None:
            rows.append(
                b.row(
                    "scan",
                    f"ddb.scan, {s.scan_segments} segments",
                    size,
                    "items",
                    extra,
                    "paginator + TypeDeserializer",
                    base,
                    counts={"requests": extra["requests"], "baseline_requests": base["requests"]},
                    note=f"Scan requests: {extra['requests']}",
                )
            )
    return rows


def bench_query(b: Bench) -> list[Row]:
    s = b.sizes
    rows: list[Row] = []
    for size in sorted(s.scan):
        table = b.table_of(size)  # the scan's tables: groups of 100 messages
        r = b.work("query_newest", table=table, groups=size // 100, queries=s.queries)
        expect(f"messages read by {s.queries} newest pages at {size:,}", r["items"], 20 * s.queries)
        p50 = r["p50_ms"] / 1000
        target, met = ("p50 ≤ 10 ms", p50 <= 0.010) if size == max(s.scan) else ("", None)
        row = b.row(
            "query",
            "get_conversation newest 20 (one Query), p50",
            size,
            "items in table",
            {"seconds": p50},
            "-",
            None,
            target,
            met,
            {"requests": r["requests"]},
            f"median of {s.queries} Query requests over {size // 100:,} groups in turn; p90 {r['p90_ms']:.1f} ms",
        )
        row.items_per_s = None  # a latency, not a rate
        rows.append(row)
    return rows


def bench_paging(b: Bench) -> list[Row]:
    from ops import seed

    s = b.sizes
    table = b.fresh_table("bench-paging")
    # the conversation ends an hour ago: its newest pages are in the current year, as a live one's are
    spacing = seed.parse_conversation(seed.DEFAULT_CONVERSATION).spacing
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1) - spacing * s.page_group
    p = plans(0, 0, s.page_group, start)[0]
    started = time.perf_counter()
    seeded = seed.seed(b.ddb, table, p)
    b.setup(
        f"paging: seeded one conversation of {seeded.messages_written:,} messages with ops.seed.seed (verified) in "
        f"{time.perf_counter() - started:.1f} s"
    )
    attempts: dict[str, list[dict[str, Any]]] = {"ours": [], "first": [], "seeds": []}
    for _ in range(s.repeats):  # read-only: the same table serves every run
        attempts["ours"].append(b.work("page_ours", table=table, group=p.group_uuid, page_size=s.page_size))
        attempts["first"].append(b.work("page_first", table=table, group=p.group_uuid, page_size=20))
        attempts["seeds"].append(b.work("page_seeds", table=table, group=p.group_uuid))
    ours, first, seeds = (best(attempts[k]) for k in ("ours", "first", "seeds"))
    expect("messages paged through", ours["items"], s.page_group)
    first_message: Message = p.messages[0]
    reached = ours["oldest"] == first_message.created_at
    return [
        b.row(
            "paging",
            f"get_conversation to the first message, {s.page_size}/page",
            s.page_group,
            "messages",
            ours,
            "seeds' Query (Limit 20, this year)",
            None,
            "reaches the first message in ≤ 1 s",
            reached and ours["seconds"] <= 1.0,
            {
                "requests": ours["requests"],
                "reached_first_message": int(reached),
                "baseline_items_reached": seeds["items"],
            },
            f"{ours['requests']} Query requests, first page {ours['first_page_ms']:.0f} ms; the seeds' query reaches "
            f"{seeds['items']} of {s.page_group:,} messages and has no next page; {runs_text(ours)}",
        ),
        b.row(
            "paging",
            "get_conversation, newest 20",
            20,
            "messages",
            first,
            "seeds' Query (Limit 20, this year)",
            seeds,
            counts={"requests": first["requests"], "baseline_requests": seeds["requests"]},
            note="one Query each (ours asks for 21 items to know whether an older page exists, and returns its "
            f"cursor); {runs_text(first)} each",
        ),
    ]


def bench_encryption(b: Bench) -> list[Row]:
    """Reading a group to its first message, sealed against plain: the same lines, the same table, interleaved runs."""
    from ops import seed
    from ops.crypto import MessageCipher

    s = b.sizes
    table = b.fresh_table("bench-encryption")  # the moto reset empties KMS too: the key comes after it
    kms = b.target.client("kms")
    key_id = kms.create_key(Description="bench messages key")["KeyMetadata"]["KeyId"]
    alias = "alias/bench-messages"
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    plain, sealed = conversation_plan(s.page_group, 0, 1, start), conversation_plan(s.page_group, 2, 3, start)
    started = time.perf_counter()
    seed.seed(b.ddb, table, plain)
    seed.seed(b.ddb, table, sealed, cipher=MessageCipher(kms, alias))
    b.setup(
        f"encryption: seeded two conversations of {s.page_group:,} messages, one sealed, with ops.seed.seed "
        f"(verified) in {time.perf_counter() - started:.1f} s"
    )
    attempts: dict[str, list[dict[str, Any]]] = {"sealed": [], "plain": []}
    for _ in range(s.repeats):  # interleaved: a slow spell of the machine hits both
        attempts["sealed"].append(
            b.work("page_sealed", table=table, group=sealed.group_uuid, page_size=s.page_size, key_alias=alias)
        )
        attempts["plain"].append(b.work("page_ours", table=table, group=plain.group_uuid, page_size=s.page_size))
    ours, base = best(attempts["sealed"]), best(attempts["plain"])
    expect("sealed messages read", (ours["items"], ours["oldest"]), (s.page_group, sealed.messages[0].created_at))
    expect("plain messages read", base["items"], s.page_group)
    overhead = ours["seconds"] / base["seconds"] - 1
    # judged on CPU (this client's and the moto server's): on a shared machine wall time mostly measures the neighbours
    cpu = [r["cpu_s"] + r["server_cpu_s"] if r.get("server_cpu_s") is not None else None for r in (ours, base)]
    cpu_overhead = cpu[0] / cpu[1] - 1 if cpu[0] is not None and cpu[1] else overhead
    return [
        b.row(
            "encryption",
            f"get_conversation to the first message, {s.page_size}/page, sealed bodies",
            s.page_group,
            "messages",
            ours,
            "the same read, plain text",
            base,
            "≤ 25% more CPU than plain text",
            cpu_overhead <= 0.25,
            {"requests": ours["requests"], "baseline_requests": base["requests"], "kms_decrypts": ours["kms_decrypts"]},
            f"{ours['requests']} Query requests for either; {ours['kms_decrypts']} KMS Decrypt for the whole read (the "
            f"data key cached); encryption costs {overhead:+.0%} in time, {cpu_overhead:+.0%} in CPU; client CPU: "
            f"sealed {cpu_text(ours, 'cpu_s')}, plain {cpu_text(base, 'cpu_s')}; moto server CPU: sealed "
            f"{cpu_text(ours, 'server_cpu_s')}, plain {cpu_text(base, 'server_cpu_s')}; {runs_text(ours)} each",
        ),
    ]


def bench_sync(b: Bench) -> list[Row]:
    from ops import cognito, db
    from ops.db import User
    from ops.local.cloud_side import reconcile
    from ops.local.twin import load_plan
    from ops.outputs import USER_POOL_CLIENT_ID, USER_POOL_ID
    from ops.resources.cognito import UserPoolAdapter, UserPoolClientAdapter
    from ops.target import outputs_file

    s = b.sizes
    target = b.target
    reset_moto(target.endpoint("cognito-idp"))  # a fresh pool: moto's user lookups walk every user of it
    client = target.client("cognito-idp")
    built = reconcile(
        target, load_plan(target.stack)[0], only=(UserPoolAdapter.type, UserPoolClientAdapter.type)
    )  # the stack's pool, as declared
    pool = {k: built.outputs[k] for k in (USER_POOL_ID, USER_POOL_CLIENT_ID)}
    path = outputs_file(target.stack.name)
    path.write_text(
        json.dumps(json.loads(path.read_text()) | pool, indent=2, sort_keys=True)
    )  # keep the twin's outputs true
    pool_id = pool[USER_POOL_ID]

    users = tuple(User(p.uuid, p.display_name, p.handle, f"{p.handle}@bench.test") for p in map(person, range(s.users)))
    db.drop_database(target)
    db.create_database(target)
    with db.connect(target) as conn:
        db.load_schema(conn)
        db.seed_users(conn, users)
    started = time.perf_counter()
    # one at a time: moto's user pool is not thread-safe (parallel creates fail with "OrderedDict
    # mutated during iteration" and, retried, were slower than this loop in a trial)
    created = cognito.create_users(client, pool_id, users)
    expect("Cognito users created", len(created.created), s.users)
    b.setup(
        f"sync: created {s.users:,} Cognito users with ops.cognito.create_users in "
        f"{time.perf_counter() - started:.1f} s (moto: each create walks the whole pool)"
    )

    def linked() -> int:
        with db.connect(target) as conn:
            row = conn.execute("SELECT count(*) FROM users WHERE cognito_user_id IS NOT NULL").fetchone()
        return int(row[0]) if row else 0

    attempts: dict[str, list[dict[str, Any]]] = {"ours": [], "base": []}
    for _ in range(s.repeats):  # every run starts from unlinked users (the job's preparation clears them)
        attempts["ours"].append(b.work("sync_ours", pool_id=pool_id))
        expect("users linked by sync_ids", (attempts["ours"][-1]["items"], linked()), (s.users, s.users))
        attempts["base"].append(b.work("sync_per_row", pool_id=pool_id))
        expect("users linked by the per-row updates", (attempts["base"][-1]["items"], linked()), (s.users, s.users))
    ours, base = best(attempts["ours"]), best(attempts["base"])
    met = ours["seconds"] * 5 <= base["seconds"] and ours["statements"] <= 3
    return [
        b.row(
            "sync",
            "cognito.sync_ids",
            s.users,
            "users",
            ours,
            "UPDATE + COMMIT per user (seeds)",
            base,
            "≥ 5× faster, ≤ 3 statements",
            met,
            {
                "statements": ours["statements"],
                "transactions": ours["transactions"],
                "baseline_statements": base["statements"],
                "baseline_transactions": base["transactions"],
            },
            f"{ours['statements']} statements in {ours['transactions']} transaction vs {base['statements']:,} in "
            f"{base['transactions']:,}; reading the pool ({s.users:,} users, not timed) took "
            f"{ours['list_ms'] / 1000:.1f} s for either; {runs_text(ours)} each",
        ),
    ]


def _timed(argv: list[str], runs: int) -> tuple[float, subprocess.CompletedProcess[str]]:
    from ops.stacks import PROJECT_ROOT

    times: list[float] = []
    proc: subprocess.CompletedProcess[str] | None = None
    for i in range(runs + 1):  # the first run only warms the disk cache and writes .pyc files
        started = time.perf_counter()
        proc = subprocess.run(argv, cwd=PROJECT_ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            raise BenchError(f"`{' '.join(argv[2:])}` failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
        if i:
            times.append(elapsed)
    assert proc is not None
    return statistics.median(times), proc


def imported_modules(importtime_stderr: str) -> set[str]:
    """Module names from ``python -X importtime`` output."""
    names = set()
    for line in importtime_stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name and name != "imported package":
                names.add(name)
    return names


def bench_cli(b: Bench) -> list[Row]:
    from ops import db, ddb, seed
    from ops.table_spec import table_spec

    target = b.target
    reset_dynamodb(target)
    db.create_database(target)
    with db.connect(target) as conn:
        db.load_schema(conn)
        db.seed_users(conn)
        me, other = seed.people(conn, "ada", "bram")
    ddb.schema_load(b.ddb, table_spec(target.stack))
    seed.seed(b.ddb, target.stack.table_name, seed.build(seed.parse_conversation(seed.DEFAULT_CONVERSATION), me, other))

    invoke = [sys.executable, "-m", "invoke"]
    runs = b.sizes.cli_runs
    list_s, listed = _timed([*invoke, "--list"], runs)
    task = ["ddb.patterns.get-conversation", "--handles", "ada,bram"]
    get_s, got = _timed([*invoke, *task], runs)
    if "ada" not in got.stdout:
        raise BenchError("`invoke ddb.patterns.get-conversation --handles ada,bram` printed no message of ada")
    from ops.stacks import PROJECT_ROOT

    trace = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "invoke", *task],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    modules = imported_modules(trace.stderr)
    pulumi = sorted(m for m in modules if m == "pulumi" or m.startswith(("pulumi.", "pulumi_")))
    tasks_listed = sum(
        1 for line in listed.stdout.splitlines() if re.match(r"^  \S", line)
    )  # wrapped docstrings are indented deeper
    b.progress(f"  cli: invoke --list {list_s:.3f} s, get-conversation {get_s:.3f} s, pulumi imported: {bool(pulumi)}")
    return [
        b.row(
            "cli",
            "invoke --list",
            runs,
            "runs",
            {"seconds": list_s},
            "-",
            None,
            "< 0.5 s",
            list_s < 0.5,
            {"tasks": tasks_listed},
            f"median of {runs} runs after a warm-up, interpreter start included; {tasks_listed} tasks listed",
        ),
        b.row(
            "cli",
            "invoke ddb.patterns.get-conversation",
            runs,
            "runs",
            {"seconds": get_s},
            "-",
            None,
            "no Pulumi SDK import",
            not pulumi,
            {"modules_imported": len(modules), "pulumi_modules": len(pulumi)},
            f"median of {runs} runs (PostgreSQL lookup + one Query + render); python -X importtime: {len(modules)} "
            "modules, " + (f"Pulumi modules: {', '.join(pulumi[:3])}" if pulumi else "none of them Pulumi's"),
        ),
    ]


def bench_fanout(b: Bench) -> list[Row]:
    """One message of a group of ``fanout_members`` through the consumer, against the seeds' way, interleaved."""
    from ops.messages.membership import create_group

    s = b.sizes
    table = b.fresh_table("bench-fanout")
    members = [person(i) for i in range(s.fanout_members)]
    started = time.perf_counter()
    group = create_group(b.ddb, table, members[0], "bench fan-out", members[1:]).group_uuid
    b.setup(
        f"fanout: a group of {s.fanout_members} members made with ops.messages.membership in "
        f"{time.perf_counter() - started:.1f} s"
    )
    sender = {"uuid": members[1].uuid, "name": members[1].display_name, "handle": members[1].handle}
    attempts: dict[str, list[dict[str, Any]]] = {"ours": [], "seeds": []}
    for _ in range(s.repeats):  # each run stores its own new message first (not timed), so every row moves
        attempts["ours"].append(b.work("fanout_ours", table=table, group=group, sender=sender))
        attempts["seeds"].append(b.work("fanout_seeds", table=table, group=group, sender=sender))
    ours, seeds = best(attempts["ours"]), best(attempts["seeds"])
    expect("rows moved by the consumer", ours["items"], s.fanout_members)
    expect("rows moved the seeds' way", seeds["items"], s.fanout_members)
    # the Lambda's budget: streamBatchSize (25) such records within its 30 s timeout
    budget = 30 / 25
    return [
        b.row(
            "fanout",
            f"consumer: one message to {s.fanout_members} members (a transaction per row, 8 at a time)",
            s.fanout_members,
            "rows",
            ours,
            "seeds' consumer (delete + put per row, in turn)",
            seeds,
            f"≤ {budget:.1f} s a record (25 a batch in the 30 s timeout)",
            ours["seconds"] <= budget,
            {"requests": ours["requests"], "baseline_requests": seeds["requests"], "retries": ours["retries"]},
            f"{ours['requests']} requests (1 Query of the group index, {ours['items']} TransactWriteItems of a Delete, "
            f"a Put and the membership check each); the seeds' way {seeds['requests']} requests, not atomic; "
            f"{runs_text(ours)} each",
        )
    ]


def bench_bulk(b: Bench) -> list[Row]:
    rows: list[Row] = []
    for size in sorted(b.sizes.scan):
        table = b.table_of(size)
        ours = b.work("doctor_export", table=table)
        base = b.work("doctor_scanning", table=table, segments=b.sizes.scan_segments)
        for what, r in (("the export path", ours), ("the scanning doctor", base)):
            expect(f"items examined by {what} at {size:,}", r["items"], size)
        rows.append(
            b.row(
                "bulk",
                "ddb.doctor --from-export (export + files)",
                size,
                "items",
                ours,
                f"ddb.doctor scanning, {b.sizes.scan_segments} segments",
                base,
                counts={
                    "requests": ours["requests"],
                    "baseline_requests": base["requests"],
                    "read_units": ours["read_units"],
                    "baseline_read_units": base["read_units"],
                },
                note=(
                    f"requests: export path {ours['requests']} (DynamoDB export calls and S3 GETs), scanning "
                    f"{base['requests']} Scan pages; read capacity: export path 0 RCU, scanning "
                    f"{base['read_units']:,} RCU"
                ),
            )
        )
    return rows


WORKLOADS: dict[str, Workload] = {
    "seed": bench_seed,
    "scan": bench_scan,
    "query": bench_query,
    "paging": bench_paging,
    "encryption": bench_encryption,
    "sync": bench_sync,
    "cli": bench_cli,
    "fanout": bench_fanout,
    "bulk": bench_bulk,
}
DYNAMODB_WORKLOADS = (
    "seed",
    "scan",
    "query",
    "paging",
    "fanout",
)  # once per engine; sync and cli (Cognito, PostgreSQL, start-up) on the default one
