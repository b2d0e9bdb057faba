"""ddb.send-message and ddb.stream-process run as a user runs them, against the twin's stack table."""

from __future__ import annotations

import os
import signal
import time
import uuid
from typing import Any

from ops.db import User
from ops.messages.model import group_uuid_for
from ops.messages.pairs import find_group
from ops.messages.read import list_conversations
from ops.messages.send import send_message
from ops.target import Target
from tests.support.streams import error_line, run_task


def _unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:6]}"


def test_send_message_creates_the_group_then_appends_and_the_list_shows_it_on_top(
    ddb: Any, stack_table: str, users: dict[str, User]
) -> None:
    chidi, dana = users["chidi"], users["dana"]
    group = group_uuid_for(chidi.uuid, dana.uuid)
    existed = find_group(ddb, stack_table, chidi.person(), dana.person()).group_uuid is not None
    hello = _unique("hello Dana")

    proc = run_task("ddb.send-message", "--from", "chidi", "--to", "dana", hello)

    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("target: stack dev · local twin")
    assert f"group {group} " + ("(existing)" if existed else "created by this first message") in proc.stdout
    top = list_conversations(ddb, stack_table, dana.uuid).items[0]
    assert (top.message_group_uuid, top.message, top.user_handle) == (group, hello, "chidi")

    reply = _unique("hi Chidi")
    proc = run_task("ddb.send-message", "--from", "dana", "--group", group, reply)
    assert proc.returncode == 0, proc.stderr
    assert f"group {group} (existing" in proc.stdout and "group rows moved by the twin's stream consumer" in proc.stdout
    for owner, other in ((chidi, "dana"), (dana, "chidi")):
        top = list_conversations(ddb, stack_table, owner.uuid).items[0]
        assert (top.message_group_uuid, top.message, top.user_handle) == (group, reply, other)


def test_without_the_stream_worker_no_process_leaves_the_rows_for_stream_process(
    twin: Target, ddb: Any, stack_table: str, users: dict[str, User]
) -> None:
    from ops.local import twin as twinops

    worker = twinops.status(twin.stack).components[-1]
    assert worker.name == "stream consumer" and worker.running
    os.kill(worker.pid, signal.SIGTERM)  # a developer stopped it (or it died): sends fall back to one pass of their own
    deadline = time.monotonic() + 60  # it ends after the batch in hand: wait for that, however slow the machine
    while twinops.stream_worker_running("dev"):
        assert time.monotonic() < deadline, f"the stream worker (pid {worker.pid}) did not stop"
        twinops._reap(worker.pid)  # the session started the twin in this process: its child
        time.sleep(0.05)
    try:
        ada, bram = users["ada"], users["bram"]
        first = send_message(ddb, stack_table, ada.person(), _unique("first"), receiver=bram.person())
        assert run_task("ddb.stream-process").returncode == 0  # the group rows now carry `first`
        later = _unique("later")

        proc = run_task("ddb.send-message", "--from", "bram", "--to", "ada", "--no-process", later)
        assert proc.returncode == 0, proc.stderr
        assert "stream:" not in proc.stdout and "moved" not in proc.stdout
        assert list_conversations(ddb, stack_table, ada.uuid).items[0].message == first.message.message

        proc = run_task("ddb.stream-process")
        assert proc.returncode == 0, proc.stderr
        assert "0 failed, 2 group rows moved" in proc.stdout
        assert list_conversations(ddb, stack_table, ada.uuid).items[0].message == later

        proc = run_task("ddb.send-message", "--from", "ada", "--to", "bram", _unique("inline"))
        assert (
            proc.returncode == 0 and "0 failed, 2 group rows moved" in proc.stdout
        )  # no worker: one pass right after the send
    finally:
        up = run_task("local.up")  # only the consumer is started again; the servers and their data stay
    assert up.returncode == 0 and "already running" in up.stdout, up.stdout + up.stderr
    assert twinops.stream_worker_running("dev")


def test_the_tasks_refuse_bad_requests_in_one_line(ddb: Any, stack_table: str, users: dict[str, User]) -> None:
    group = send_message(
        ddb, stack_table, users["chidi"].person(), _unique("private"), receiver=users["dana"].person()
    ).group_uuid

    assert "ada is not a participant" in error_line(
        run_task("ddb.send-message", "--from", "ada", "--group", group, "let me in")
    )
    assert "--from HANDLE" in error_line(run_task("ddb.send-message", "--to", "bram", "who am I"))
    assert "exactly one of --to HANDLE or --group UUID" in error_line(
        run_task("ddb.send-message", "--from", "ada", "--to", "bram", "--group", group, "both")
    )
    assert "no user with handle 'nobody'" in error_line(
        run_task("ddb.send-message", "--from", "ada", "--to", "nobody", "hello?")
    )
    assert "stream consumer Lambda" in error_line(run_task("ddb.stream-process", "--cloud"))
