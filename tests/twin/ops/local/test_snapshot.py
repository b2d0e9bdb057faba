"""Named snapshots of a whole twin: saved, restored exactly, exported and imported; bad archives change nothing.

The prod stack's twin (it encrypts messages: a KMS key, group keys and sealed bodies) is set up
with users in PostgreSQL and Cognito, a seeded conversation and its stream processed, then
compared item by item, row by row, sub by sub, record by record with what comes back.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import signal
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops import accounts, seed
from ops import db as dbops
from ops import ddb as ddbops
from ops.cognito import list_target_users
from ops.crypto import cipher_for
from ops.errors import ConfigError, RefusedError
from ops.local import snapshot
from ops.local import twin as twinops
from ops.local.streams import checkpoint_file, list_shards, process_target_stream
from ops.messages.send import send_message
from ops.stacks import StackSettings
from ops.table_spec import table_spec
from ops.target import outputs_file, read_twin, resolve_target, stack_state_dir
from tests.support.helpers import assert_one_line_error, run_invoke


@pytest.fixture(autouse=True)
def no_snapshots() -> Iterator[None]:
    """Each test starts and ends with no snapshot of prod or dev (they outlive a stack's state directory)."""
    for stack in ("prod", "dev"):
        shutil.rmtree(snapshot.snapshots_root(stack), ignore_errors=True)
    yield
    for stack in ("prod", "dev"):
        shutil.rmtree(snapshot.snapshots_root(stack), ignore_errors=True)


def _picture(stack: str) -> dict[str, Any]:
    """Everything a developer could see of the twin: items, users, Cognito users with their subs, ids, stream."""
    target = resolve_target(stack)
    client = target.client("dynamodb")
    items = sorted(json.dumps(i, sort_keys=True, default=str) for i in ddbops.scan(client, target.stack.table_name))
    with dbops.connect(target) as conn:
        users = [(u.uuid, u.handle, u.display_name, u.email, u.cognito_user_id) for u in dbops.list_users(conn)]
    streams = target.client("dynamodbstreams")
    arn = client.describe_table(TableName=target.stack.table_name)["Table"]["LatestStreamArn"]
    records = []
    for shard in list_shards(streams, arn):
        it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
        got = streams.get_records(ShardIterator=it["ShardIterator"], Limit=1000)
        records += [(r["eventID"], r["dynamodb"]["SequenceNumber"]) for r in got["Records"]]
    return {
        "items": items,
        "users": users,
        "cognito": sorted((u.username, u.sub) for u in list_target_users(target)),
        "outputs": json.loads(outputs_file(stack).read_text()),
        "checkpoints": checkpoint_file(stack).read_text(),
        "stream": (arn, records),
    }


def _set_up(stack: StackSettings, engine: str) -> None:
    twinops.up(stack, engine=engine, stream_worker=False)  # the stream is processed by hand: checkpoints hold still
    target = resolve_target(stack.name)
    accounts.setup(target, cognito_users=True, on_step=lambda *_: None)
    ddbops.schema_load(target.client("dynamodb"), table_spec(stack))
    seed.seed_target(target, seed.parse_conversation(seed.DEFAULT_CONVERSATION))
    process_target_stream(target)


def _send(stack: str) -> None:
    target = resolve_target(stack)
    with dbops.connect(target) as conn:
        a, b = dbops.first_users(conn)
    send_message(
        target.client("dynamodb"),
        target.stack.table_name,
        a.person(),
        "after the snapshot",
        receiver=b.person(),
        cipher=cipher_for(target),
    )
    process_target_stream(target)


@pytest.mark.dynamodb
def test_save_send_restore_gives_back_the_twin_exactly_and_an_export_imports_elsewhere(
    engine: str, prod_stack: StackSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set_up(prod_stack, engine)
    before = _picture("prod")
    saved = snapshot.save("prod", "before")
    assert saved.restarted and twinops.status(prod_stack).running, "a running twin is started again after the copy"
    assert _picture("prod") == before, "saving changes nothing"

    _send("prod")
    assert len(_picture("prod")["items"]) == len(before["items"]) + 1

    proc = run_invoke("local.snapshot.restore", "before", "--stack", "prod")
    assert proc.returncode == 0, proc.stderr
    assert _picture("prod") == before, "the send is gone, everything else identical"
    assert [i.name for i in snapshot.list_snapshots("prod")] == ["before"]

    archive = tmp_path / "before.tar.gz"
    assert run_invoke("local.snapshot.export", "before", str(archive), "--stack", "prod").returncode == 0
    assert archive.stat().st_mode & 0o077 == 0, "the archive holds the twin's PostgreSQL password: private"
    twinops.down(prod_stack)

    # a fresh state directory: another developer's machine
    fresh = Path(os.environ["CRUDDUR_STATE_DIR"]) / "fresh"
    fresh.mkdir(mode=0o711)
    monkeypatch.setenv("CRUDDUR_STATE_DIR", str(fresh))
    try:
        assert run_invoke("local.snapshot.import", str(archive), "--stack", "prod").returncode == 0
        snapshot.restore("prod", "before")
        twinops.up(prod_stack, stream_worker=False)
        assert _picture("prod") == before
    finally:
        twinops.down(prod_stack)


@pytest.mark.dynamodb
def test_restore_after_kill_9(engine: str, prod_stack: StackSettings) -> None:
    _set_up(prod_stack, engine)
    before = _picture("prod")
    snapshot.save("prod", "base")
    _send("prod")
    record = read_twin("prod") or {}
    for pid in [record["aws"]["pid"], (record.get("dynamodb") or {}).get("pid")]:
        if pid:
            os.kill(pid, signal.SIGKILL)
    pgpid = int((stack_state_dir("prod") / "pgdata" / "postmaster.pid").read_text().split()[0])
    os.kill(pgpid, signal.SIGKILL)

    snapshot.restore("prod", "base")  # the dead twin is cleared, the snapshot put in its place
    twinops.up(prod_stack, stream_worker=False)
    assert _picture("prod") == before


def _rewrite(archive: Path, out: Path, change: Any) -> None:
    """A copy of ``archive`` whose members pass through ``change(name, bytes) -> bytes``."""
    with tarfile.open(archive, "r:gz") as src, tarfile.open(out, "w:gz") as dst:
        for member in src:
            data = src.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
            if data is not None:
                data = change(member.name, data)
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data) if data is not None else None)


@pytest.mark.dynamodb
def test_a_damaged_archive_one_of_another_stack_or_format_changes_nothing(
    engine: str, prod_stack: StackSettings, tmp_path: Path
) -> None:
    twinops.up(prod_stack, engine=engine, stream_worker=False)
    snapshot.save("prod", "s1")
    archive = tmp_path / "s1.tar.gz"
    snapshot.export("prod", "s1", archive)
    snapshot.delete("prod", "s1")
    twinops.down(prod_stack)

    def flip(name: str, data: bytes) -> bytes:
        return data[:-1] + bytes([data[-1] ^ 1]) if name == "state/outputs.json" else data

    def other_format(name: str, data: bytes) -> bytes:
        return json.dumps(json.loads(data) | {"format": 99}).encode() if name == "manifest.json" else data

    corrupted, future = tmp_path / "corrupted.tar.gz", tmp_path / "future.tar.gz"
    _rewrite(archive, corrupted, flip)
    _rewrite(archive, future, other_format)
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    not_gzip = tmp_path / "text.tar.gz"
    not_gzip.write_bytes(gzip.compress(b"hello") + b"x")

    for bad, needle in [
        (corrupted, "outputs.json does not match its checksum"),
        (future, "format 99"),
        (truncated, "damaged or not a .tar.gz"),
        (not_gzip, "cannot be read"),
    ]:
        assert_one_line_error(run_invoke("local.snapshot.import", str(bad), "--stack", "prod"), needle)
    assert_one_line_error(run_invoke("local.snapshot.import", str(archive), "--stack", "dev"), "of stack 'prod'")
    assert snapshot.list_snapshots("prod") == [] and snapshot.list_snapshots("dev") == []
    leftovers = [
        p for p in (snapshot.snapshots_root("prod"), snapshot.snapshots_root("dev")) if p.exists() and any(p.iterdir())
    ]
    assert leftovers == [], "a refused import leaves nothing behind"
    with pytest.raises(ConfigError, match="not allowed"):
        snapshot.save("prod", "../escape")
    with pytest.raises(RefusedError, match="of stack 'prod', not 'dev'"):
        snapshot.import_archive("dev", archive)
