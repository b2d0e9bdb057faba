"""Fixtures of the moto_patches tests: a plain and a patched moto server, and the patches in this process."""

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

from ops.local.moto_patches import VALIDATION_ENV
from ops.target import LOCAL_CREDENTIALS
from tests.support import leftovers
from tests.twin.ops.local.moto_patches.pair import Pair

REPO = Path(__file__).resolve().parents[5]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def client(port: int) -> Any:
    # one attempt: a retried request would reach one server twice and the other once
    return boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
        **LOCAL_CREDENTIALS,
    )


def start_server(cmd: list[str], log: Path, port: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
    deadline = time.monotonic() + 60
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"{cmd} did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Servers:
    """moto 5.2.5 as it comes (``python -m moto.server``) and the twin's server with the patches."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.snapshot = workdir / "patched.snapshot"
        self.patched_log = workdir / "patched.log"
        self.plain_port, self.patched_port = free_port(), free_port()
        self.plain = start_server(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.plain_port)],
            workdir / "plain.log",
            self.plain_port,
        )
        self.patched = self.start_patched()

    def start_patched(self) -> subprocess.Popen[bytes]:
        cmd = [
            sys.executable,
            "-m",
            "ops.local.motoserver",
            "--port",
            str(self.patched_port),
            "--snapshot",
            str(self.snapshot),
        ]
        # the read patches only: validation changes answers on purpose (tests of its own compare it with MiniStack)
        env = os.environ | {VALIDATION_ENV: "0"}
        proc = start_server(cmd, self.patched_log, self.patched_port, env)
        leftovers.keep(proc.pid)  # the session's, stopped by the fixture: not a module's leftover
        return proc

    def restart_patched(self) -> None:
        """Stop the patched server (it snapshots its state) and start it again from the snapshot."""
        stop(self.patched)
        self.patched = self.start_patched()

    def pair(self) -> Pair:
        return Pair(client(self.plain_port), client(self.patched_port))

    def patched_warnings(self) -> list[str]:
        # the patches' own warnings; moto's 500s (tracebacks) happen on both servers and are compared as answers
        return [line for line in self.patched_log.read_text().splitlines() if "WARNING moto_patches:" in line]

    def close(self) -> None:
        stop(self.plain)
        stop(self.patched)


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    s = Servers(tmp_path_factory.mktemp("moto-pair"))
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def pair(servers: Servers) -> Iterator[Pair]:
    p = servers.pair()
    yield p
    p.drop_tables()
    assert servers.patched_warnings() == [], "the patched server found an index out of step with its table"


@pytest.fixture
def patched() -> Iterator[None]:
    """The patches installed in this process (for in-process mock_aws tests), and removed again."""
    from ops.local.moto_patches import install, uninstall

    install()
    try:
        yield
    finally:
        uninstall()
