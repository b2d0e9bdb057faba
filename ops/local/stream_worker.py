"""The twin's event source mapping: ``python -m ops.local.stream_worker --stack S``, started by ``local.up``.

In the cloud, Lambda polls the table's stream and invokes the consumer for every batch, whoever
wrote the message (the application backend, a script, the console). On a twin nothing would,
so this process does: it polls every shard a few times a second, hands the records to the same
consumer code, keeps its checkpoints in the stack's state directory (so it resumes where it was
after ``local.down``/``local.up``) and, like the mapping, retries a failing record a few times
before it parks a pointer to it in the twin's dead-letter queue and moves on.

It writes one JSON log line per record (the consumer's own) and one per pass that did anything,
to ``<state>/<stack>/stream-worker.log``. SIGTERM ends it after the batch in hand (checkpointed),
however large the backlog: the rest is processed after the next ``local.up``. It also ends on its
own once its twin's record (``twin.json``, what ``local.down`` stops by) is gone or names another
worker: no ``local.down`` could stop it any more, and it would poll a vanished twin forever.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from ops.errors import ConfigError, OpsError

POLL_SECONDS = 0.2  # a message moves its group rows within about this long, as Lambda's polling does
IDLE_SECONDS = 1.0  # while the table or the twin is not there yet
READ_LIMIT = 1000  # records per GetRecords (the API's maximum); the consumer still gets them a batch at a time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stack", required=True)
    # local.up passes the settings of the plan's event source mapping (ops.local.twin.worker_argv)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument(
        "--max-retry-attempts", type=int, required=True, help="-1: until the record expires, as Lambda's -1"
    )
    parser.add_argument("--max-record-age", type=int, required=True, help="seconds; -1: any age, as Lambda's -1")
    parser.add_argument(
        "--function-name", required=True, help="named in the dead-letter pointers, as Lambda names its function"
    )
    parser.add_argument(
        "--filters",
        default=None,
        help="the mapping's filter patterns, a JSON list of JSON documents (default: ops.stream_mapping's)",
    )
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    log = logging.getLogger("stream-worker")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    from ops import dead_letters
    from ops.local.streams import RetryPolicy, checkpoint_file, process_once
    from ops.messages.model import GSI_NAME
    from ops.outputs import STREAM_DLQ_URL, output
    from ops.stream_mapping import matches_filter
    from ops.target import resolve_target, twin_file

    target = resolve_target(args.stack)
    retries = None if args.max_retry_attempts < 0 else args.max_retry_attempts
    max_age = None if args.max_record_age < 0 else args.max_record_age
    record_filter = (
        matches_filter if args.filters is None else any_pattern([json.loads(p) for p in json.loads(args.filters)])
    )
    clients: dict[str, Any] = {}
    waiting_since: str | None = None
    log.info("polling the stream of table %s (stack %s) every %.1fs", target.stack.table_name, args.stack, POLL_SECONDS)
    record = twin_file(args.stack)
    recorded = False  # twin.json named this process once: local.up writes it just after starting us
    while not stop.is_set():
        owner = _recorded_worker(args.stack)
        recorded = recorded or owner == os.getpid()
        if owner is None or (recorded and owner != os.getpid()):
            # no local.down can stop a worker its twin does not record: its twin was stopped or removed
            # without it (a lost record, a deleted state directory), or another worker replaced it
            why = "is gone" if owner is None else f"names worker {owner}" if owner else "names no worker"
            log.info("stopping: the twin no longer records this worker (%s %s)", record, why)
            break
        try:
            if not clients:
                clients = {name: target.client(name) for name in ("dynamodb", "dynamodbstreams", "sqs")}
                queue = str(output(target, STREAM_DLQ_URL))

            def park(
                stream: str,
                shard: str,
                records: list[dict[str, Any]],
                condition: str,
                attempts: int,
                queue: str = queue,
                sqs: Any = clients["sqs"],
            ) -> None:
                dead_letters.send(
                    sqs,
                    queue,
                    dead_letters.pointer_message(stream, shard, records, condition, attempts, args.function_name),
                )
                log.warning("dead-lettered %d record(s) of shard %s (%s)", len(records), shard, condition)

            policy = RetryPolicy(retries, max_age, park, record_filter=record_filter, read_limit=READ_LIMIT)
            counts = process_once(
                clients["dynamodbstreams"],
                clients["dynamodb"],
                target.stack.table_name,
                GSI_NAME,
                checkpoint_file(args.stack),
                args.batch_size,
                policy,
                should_stop=stop.is_set,  # SIGTERM: finish the batch in hand, checkpoint it, leave the rest
            )
            if waiting_since:
                log.info("the stream is back (waited since %s)", waiting_since)
                waiting_since = None
            for warning in counts.warnings:
                log.warning(warning)
            if counts.records or counts.dead_lettered:
                log.info(
                    "pass%s: %d records, %d processed, %d failed, %d rows moved, %d dead-lettered",
                    " (stopped after a batch; the rest waits for the next start)" if counts.interrupted else "",
                    counts.records,
                    counts.processed,
                    counts.failed,
                    counts.rows_moved,
                    counts.dead_lettered,
                )
            stop.wait(POLL_SECONDS)
        except OpsError as err:  # no table yet, twin restarting: wait for it, say so once
            if waiting_since is None:
                waiting_since = time.strftime("%H:%M:%S")
                log.info("waiting: %s", err)
            clients = {}
            stop.wait(IDLE_SECONDS)
        except Exception:  # a bug must not end the twin's consumer: log it whole, try again
            log.exception("pass failed")
            clients = {}
            stop.wait(IDLE_SECONDS)
    log.info("stopped")
    return 0


def _recorded_worker(stack: str) -> int | None:
    """The worker pid the twin's record names: 0 when it names none, None when the record is gone.

    A record being rewritten is never missing (it is replaced atomically); one that cannot be read
    counts as present, so only a twin that is really gone ends the worker.
    """
    from ops.target import read_twin

    try:
        twin = read_twin(stack)
    except ConfigError:
        return 0
    if twin is None:
        return None
    pid = (twin.get("stream_worker") or {}).get("pid")
    return pid if isinstance(pid, int) else 0


def any_pattern(patterns: list[dict[str, Any]]) -> Callable[[dict[str, Any]], bool]:
    """Lambda's filter criteria: a record goes through when any pattern matches it; no pattern lets all through."""
    from ops.stream_mapping import matches_filter

    if not patterns:
        return lambda record: True
    return lambda record: any(matches_filter(record, pattern) for pattern in patterns)


if __name__ == "__main__":
    sys.exit(main())
