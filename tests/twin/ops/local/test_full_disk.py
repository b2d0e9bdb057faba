"""A full disk under the twin's AWS server: a write it could not journal is never seen, and a failed snapshot says so.

Order of events, each test: the server starts on a small tmpfs of the test's own, a table is
made, the tmpfs is filled to its last byte, writes go on until one is refused (503), then reads,
``local.down`` and a restart (the disk freed) show what the twin holds.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from ops.local import twin as twinops
from ops.target import LOCAL_CREDENTIALS, port_open
from tests.support.disks import fill, small_tmpfs
from tests.support.helpers import REPO


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, state: Path, reserve: str) -> None:
        self.state, self.reserve, self.port = state, reserve, _free_port()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ops.local.motoserver", "--port", str(self.port), "--snapshot", str(self.snapshot)],
            cwd=REPO,
            env={**os.environ, "CRUDDUR_TWIN_JOURNAL_RESERVE_BYTES": self.reserve},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while not port_open("127.0.0.1", self.port, timeout=0.2):
            assert self.proc.poll() is None and time.monotonic() < deadline, "the AWS server did not start"
            time.sleep(0.1)
        # recorded as local.up records it, so local.down stops it and says what became of its state
        twinops._write_twin(
            "prod",
            {
                "stack": "prod",
                "aws": {
                    "engine": "moto",
                    "pid": self.proc.pid,
                    "started": int(Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]),
                    "port": self.port,
                    "endpoint": f"http://127.0.0.1:{self.port}",
                },
            },
        )

    @property
    def snapshot(self) -> Path:
        return self.state / "aws-state.pickle"

    def client(self) -> Any:
        return boto3.client(
            "dynamodb",
            endpoint_url=f"http://127.0.0.1:{self.port}",
            region_name="us-east-1",
            config=Config(retries={"total_max_attempts": 1}),
            **LOCAL_CREDENTIALS,
        )

    def visible(self, keys: list[str]) -> list[str]:
        seen = []
        for key in keys:
            try:
                if "Item" in self.client().get_item(TableName="t", Key={"pk": {"S": key}}):
                    seen.append(key)
            except ClientError as err:
                assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 503  # a twin that serves nothing more
        return seen


@pytest.fixture
def state(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    with small_tmpfs("8m") as disk:
        monkeypatch.setenv("CRUDDUR_STATE_DIR", str(disk))
        (disk / "prod").mkdir()
        yield disk / "prod"
        twinops.down("prod")


@pytest.mark.parametrize(
    "reserve",
    [
        "4096",  # space is taken ahead: a full disk refuses the write before it is applied
        "0",  # no space taken ahead: the write is applied, its journal append fails, the server serves nothing more
    ],
)
def test_a_write_refused_for_a_full_disk_is_never_read_back_and_a_failed_snapshot_says_so(
    state: Path, reserve: str
) -> None:
    server = Server(state, reserve)
    server.start()
    ddb = server.client()
    ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    fill(state.parent)
    acked, refused = [], []
    for i in range(2000):
        key = f"k{i}"
        try:
            ddb.put_item(TableName="t", Item={"pk": {"S": key}, "v": {"S": "x" * 200}})
            acked.append(key)
        except ClientError as err:
            assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 503
            refused.append(key)
            break
    assert refused, "the disk never filled"
    # THEN the refused write is not seen by reads
    assert server.visible(refused) == []
    # WHEN the twin is stopped with the disk still full: its snapshot cannot be written, and it says so
    stopped = twinops.down("prod")
    assert len(stopped) == 1 and "could NOT be written" in stopped[0] and "no space left" in stopped[0], stopped
    assert "state saved" not in stopped[0]
    # AND after a restart (the disk freed) it holds exactly the acknowledged writes
    for filler in state.parent.glob("filler*"):
        filler.unlink()
    server.start()
    assert server.visible(refused) == []
    assert server.visible(acked) == acked


def test_a_disk_too_small_for_initdb_is_one_line_naming_it_and_nothing_is_left() -> None:
    from tests.support.helpers import assert_one_line_error, run_invoke

    # GIVEN a state directory on a disk with room for the AWS server but not for a PostgreSQL cluster
    with small_tmpfs("12m") as disk:
        # WHEN the prod twin is started there
        proc = run_invoke("local.up", "--stack", "prod", "--engine", "moto", env={"CRUDDUR_STATE_DIR": str(disk)})
        # THEN one line names the directory and the cause, and no half-made cluster or process is left
        assert_one_line_error(proc, str(disk / "prod"), "no space left")
        assert not (disk / "prod" / "pgdata").exists() and not list((disk / "prod").glob(".pgdata-initdb-*"))
        assert not (disk / "prod" / "twin.json").exists()
