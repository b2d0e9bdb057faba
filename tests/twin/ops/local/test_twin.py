"""The local twin: idempotent start, two stacks side by side, clean stop, data kept across restarts."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from ops import db as dbops
from ops import ddb as ddbops
from ops.errors import NotFoundError
from ops.local import twin as twinops
from ops.local.streams import checkpoint_file
from ops.messages.model import Person
from ops.messages.read import list_conversations
from ops.messages.send import send_message
from ops.stacks import StackSettings, load_stack
from ops.table_spec import table_spec
from ops.target import port_open, resolve_target
from tests.support.helpers import assert_one_line_error, run_invoke, s_item


def _pid_alive(pid: int) -> bool:
    """Running, not merely a zombie entry waiting for a parent (or a non-reaping PID 1) to collect it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_second_up_says_already_running(twin: Any) -> None:
    result = twinops.up(load_stack("dev"))
    assert result.already_running
    proc = run_invoke("local.up")
    assert proc.returncode == 0 and "already running" in proc.stdout


def test_status_shows_each_stack(twin: Any, engine: str) -> None:
    proc = run_invoke("local.status", "--json")
    assert proc.returncode == 0
    import json

    by_stack = {s["stack"]: s for s in json.loads(proc.stdout)}
    assert by_stack["dev"]["running"] is True
    assert {c["engine"] for c in by_stack["dev"]["components"]} == {"moto", "embedded", "twin process"} | (
        {engine} - {"moto"}
    )
    assert all(c["pid"] for c in by_stack["dev"]["components"]), "every process of the twin is ours, shown with its pid"


def test_data_task_with_twin_down_says_to_run_local_up(twin: Any) -> None:
    # the prod twin is not running in this session (dev is)
    assert_one_line_error(run_invoke("ddb.scan", "--stack", "prod"), "invoke local.up --stack prod")
    assert_one_line_error(run_invoke("db.seed", "--stack", "prod"), "invoke local.up --stack prod")


@pytest.mark.dynamodb
def test_second_stack_runs_beside_and_keeps_its_data_across_down_and_up(
    twin: Any, engine: str, prod_stack: StackSettings
) -> None:
    prod = prod_stack
    dev = load_stack("dev")
    up = twinops.up(prod, engine=engine)
    try:
        assert not up.already_running
        ports = {prod.local_aws_port, prod.local_postgres_port} | (
            {prod.local_dynamo_port} if engine != "moto" else set()
        )
        dev_ports = {dev.local_aws_port, dev.local_postgres_port} | (
            {dev.local_dynamo_port} if engine != "moto" else set()
        )
        assert not ports & dev_ports
        assert all(port_open("127.0.0.1", p) for p in ports | dev_ports)

        target = resolve_target("prod")
        client = target.client("dynamodb")
        ddbops.schema_load(client, table_spec(prod))
        ddbops.batch_write(
            client,
            prod.table_name,
            (
                s_item({"pk": f"MSG#g{i}", "sk": f"2026-01-01T00:00:{i:02d}.000000+00:00", "message": f"m{i}"})
                for i in range(40)
            ),
        )
        dbops.drop_database(target)
        dbops.create_database(target)
        with dbops.connect(target) as conn:
            dbops.load_schema(conn)
            dbops.seed_users(conn)
        outputs_before = twinops._read_outputs("prod")
        pids = [c.pid for c in up.status.components if c.pid]

        checkpoints = checkpoint_file("prod")
        _wait(checkpoints.exists)  # the worker has read the stream once (the 40 items, none of them a full message)
        stopped = twinops.down(prod)
        assert len(stopped) == len(up.status.components) and stopped[0].startswith("stream consumer")
        time.sleep(0.2)
        assert not any(port_open("127.0.0.1", p) for p in ports), "local.down must leave nothing listening"
        assert [p for p in pids if _pid_alive(p)] == [], "local.down must leave no process of ours"
        assert port_open("127.0.0.1", dev.local_aws_port), "stopping prod must not touch dev"

        again = twinops.up(prod)  # auto: the engine that holds the stack's data
        assert again.restored and not again.already_running
        assert {c.engine for c in again.status.components} == {c.engine for c in up.status.components}
        client = resolve_target("prod").client("dynamodb")
        assert sum(1 for _ in ddbops.scan(client, prod.table_name)) == 40
        with dbops.connect(resolve_target("prod")) as conn:
            assert [u.handle for u in dbops.list_users(conn)] == [u.handle for u in dbops.SEED_USERS]
        assert twinops._read_outputs("prod") == outputs_before, "pool, rule and key ids survive a restart"
        _assert_the_twins_key_is_the_declared_one(resolve_target("prod"), outputs_before)
        # the consumer is back, from its checkpoints: a new message moves its rows, the old records are not re-read
        assert twinops.stream_worker_running("prod") and checkpoints.exists()
        ada, bram = Person("a-1", "Ada", "ada"), Person("b-1", "Bram", "bram")
        group = send_message(client, prod.table_name, ada, "before", receiver=bram).group_uuid
        send_message(client, prod.table_name, bram, "after the restart", group_uuid=group)
        _wait(lambda: list_conversations(client, prod.table_name, ada.uuid).items[0].message == "after the restart")
    finally:
        twinops.down(prod)
    assert not twinops.status(prod).components


def _assert_the_twins_key_is_the_declared_one(target: Any, outputs: dict[str, Any]) -> None:
    """prod encrypts messages: its twin has the key infra/keys.py declares, from the same ops.key_spec."""
    from ops import outputs as out
    from ops.key_spec import key_spec

    spec = key_spec(target.stack)
    assert spec is not None
    kms = target.client("kms")
    meta = kms.describe_key(KeyId=spec.alias)["KeyMetadata"]
    assert (outputs[out.MESSAGES_KEY_ARN], outputs[out.MESSAGES_KEY_ALIAS]) == (meta["Arn"], spec.alias)
    assert (meta["Description"], meta["KeyUsage"], meta["KeySpec"]) == (spec.description, spec.key_usage, spec.key_spec)
    assert kms.get_key_rotation_status(KeyId=meta["KeyId"])["KeyRotationEnabled"] is True
    assert "kms:GenerateDataKey" in kms.get_key_policy(KeyId=meta["KeyId"], PolicyName="default")["Policy"]


def test_a_stack_that_stores_plain_text_has_no_key_on_its_twin(twin: Any) -> None:
    from ops import outputs as out

    recorded = twinops._read_outputs("dev")
    assert (recorded[out.MESSAGES_KEY_ARN], recorded[out.MESSAGES_KEY_ALIAS]) == ("", "")


def _wait(check: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not within {seconds}s"
        time.sleep(0.05)


def test_missing_database_is_a_clear_error(twin: Any) -> None:
    target = resolve_target("dev")
    # a database that does not exist on the twin's server
    broken = type(target)(target.stack, cloud=False, endpoints=target.endpoints)
    url = target.database_url().rsplit("/", 1)[0] + "/nosuchdb"
    object.__setattr__(broken, "database_url", lambda: url)
    with pytest.raises(NotFoundError, match="database 'nosuchdb' does not exist.*invoke db.setup"):
        with dbops.connect(broken):
            pass


def test_lost_outputs_file_finds_the_twins_pool_and_rule_again(twin: Any) -> None:
    from ops.local import cloud_side
    from ops.target import outputs_file

    recorded = twinops._read_outputs("dev")
    assert outputs_file("dev").exists()
    plan, _ = twinops.load_plan(twin.stack)
    again = cloud_side.reconcile(resolve_target("dev"), plan, {}, {})  # neither outputs nor ids: found by name
    assert again.outputs == recorded, "no second pool, client, queue or security group"
    assert not again.created
