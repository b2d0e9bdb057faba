"""The ministack engine's own behaviour: loopback only, its own virtualenv, and no acknowledged write lost to a kill -9.

GIVEN a twin on MiniStack (the session's, or a prod-stack twin of the test's own) WHEN we look at
its socket and process, or kill -9 the MiniStack process after acknowledged writes and a send
THEN it listens on 127.0.0.1 only from .tools/ministack, and local.up brings back every item, with
the stream carrying on from its checkpoint so the send's group rows move.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from ops import ddb as ddbops
from ops.local import ministack
from ops.local import twin as twinops
from ops.local.streams import checkpoint_file, process_stream
from ops.messages.model import GSI_NAME
from ops.messages.send import send_message
from ops.proc import cmdline, running
from ops.stacks import StackSettings
from ops.table_spec import table_spec
from ops.target import Target, read_twin, resolve_target
from tests.support.helpers import s_item
from tests.support.streams import assert_one_row_each_at_newest, person

pytestmark = pytest.mark.engines(ministack.ENGINE)


def _listening(port: int) -> set[str]:
    """The local addresses with a listening TCP socket on ``port`` (from /proc, as ss reads them)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def _keys(client: Any, table: str) -> set[tuple[str, str]]:
    pages = client.get_paginator("scan").paginate(TableName=table, ProjectionExpression="pk, sk")
    return {(i["pk"]["S"], i["sk"]["S"]) for page in pages for i in page["Items"]}


def test_ministack_listens_on_loopback_only_and_runs_from_its_own_virtualenv(twin: Target, ddb: Any) -> None:
    record = (read_twin(twin.stack.name) or {})["dynamodb"]
    assert record["engine"] == ministack.ENGINE
    assert _listening(int(record["port"])) == {"0100007F"}  # 127.0.0.1, nothing on 0.0.0.0 or ::
    command = cmdline(int(record["pid"])) or ""
    assert command.startswith(str(ministack.install_dir() / "bin" / "python")) and ministack.SERVER_MODULE in command
    assert [c.engine for c in twinops.status(twin.stack).components if c.name.startswith("dynamodb")] == ["ministack"]


def test_a_kill_9_of_ministack_loses_no_acknowledged_write_and_the_stream_carries_on(
    twin: Target, prod_stack: StackSettings
) -> None:
    prod = prod_stack
    up = twinops.up(prod, engine=ministack.ENGINE, stream_worker=False)  # the stream is processed by hand below
    try:
        assert any(n.startswith("ministack: data new in") for n in up.notes), up.notes
        target = resolve_target("prod")
        client, streams = target.client("dynamodb"), target.client("dynamodbstreams")
        ddbops.schema_load(client, table_spec(prod))
        table = prod.table_name
        ada, bram = person("ada"), person("bram")
        group = send_message(client, table, ada, "first", receiver=bram).group_uuid
        checkpoints = checkpoint_file("prod")
        assert process_stream(streams, client, table, GSI_NAME, checkpoints).failed == 0  # a checkpoint to resume from
        for i in range(100):  # one acknowledged request each
            client.put_item(TableName=table, Item=s_item({"pk": f"MSG#kill{i % 7}", "sk": f"{i:04d}", "message": "m"}))
        sent = send_message(client, table, bram, "acknowledged just before the crash", receiver=ada)
        assert sent.group_uuid == group  # an append: only the stream consumer moves the group rows to it

        pid = int((read_twin("prod") or {})["dynamodb"]["pid"])
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while running(pid, ministack.PROCESS_NEEDLE) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not twinops.status(prod).running

        again = twinops.up(prod, stream_worker=False)  # auto: the engine of last time; the half-dead twin restarts
        assert any(
            n.startswith("ministack: data kept from the last run") and "journaled write(s) replayed" in n
            for n in again.notes
        ), again.notes
        target = resolve_target("prod")
        client, streams = target.client("dynamodb"), target.client("dynamodbstreams")
        keys = _keys(client, table)
        assert {(f"MSG#kill{i % 7}", f"{i:04d}") for i in range(100)} <= keys
        assert ("MSG#" + group, sent.message.created_at) in keys
        resumed = process_stream(streams, client, table, GSI_NAME, checkpoints)
        assert resumed.failed == 0
        assert_one_row_each_at_newest(client, table, group, (ada, bram))
        keys = _keys(client, table)  # the group rows at the newest message

        twinops.down(prod)  # a clean stop: the snapshot alone brings it all back
        third = twinops.up(prod, stream_worker=False)
        assert not any("replayed" in n for n in third.notes), third.notes
        client = resolve_target("prod").client("dynamodb")
        assert _keys(client, table) == keys
    finally:
        twinops.down(prod)
    assert not twinops.status(prod).components
