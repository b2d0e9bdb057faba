"""MiniStack as the twin's second DynamoDB engine (``local.up --engine ministack``), from the twin's side.

MiniStack (PyPI ``ministack``, MIT licence, pure Python) serves DynamoDB and DynamoDB Streams;
the moto server beside it keeps Cognito, EC2, SQS and KMS. It pins a botocore of its own, so
``bin/bootstrap`` installs it into a virtualenv of its own (``.tools/ministack/``, or
``$CRUDDUR_MINISTACK_DIR``) from ``requirements-ministack.txt``, never into ``.venv``. The
process is ``ops.local.ministack_server`` run by that virtualenv's Python: loopback only, a
write-ahead journal and snapshots in ``<state>/<stack>/ministack/`` (why and how: that module).

``--engine docker`` runs MiniStack's own image instead (``IMAGE``), its state in a named volume.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import IO, Any

from ops.errors import ToolMissingError
from ops.proc import running
from ops.stacks import PROJECT_ROOT

ENGINE = "ministack"
VERSION = "1.5.33"  # the same pin as requirements-ministack.txt and ops.local.ministack_server.PINNED
REQUIREMENTS = PROJECT_ROOT / "requirements-ministack.txt"
INSTALL_COMMAND = "bin/bootstrap"
INSTALL_DIR_ENV = "CRUDDUR_MINISTACK_DIR"
SERVER_MODULE = "ops.local.ministack_server"
PROCESS_NEEDLE = SERVER_MODULE  # what the recorded pid's command line must contain before we signal it
DATA_DIR = "ministack"  # under the stack's state directory
IMAGE = f"ministackorg/ministack:{VERSION}"
IMAGE_PORT = 4566
IMAGE_STATE = "/tmp/ministack-state"  # where the image's PERSIST_STATE=1 keeps its files (a volume of ours)


def install_dir() -> Path:
    configured = os.environ.get(INSTALL_DIR_ENV)
    return Path(configured) if configured else PROJECT_ROOT / ".tools" / "ministack"


def data_dir(state: Path) -> Path:
    return state / DATA_DIR


def python() -> Path:
    """The Python of MiniStack's virtualenv, or one line saying how to make it."""
    exe = install_dir() / "bin" / "python"
    marker = install_dir() / "lib"
    if not exe.exists() or not any(marker.glob(f"python*/site-packages/ministack-{VERSION}.dist-info")):
        raise ToolMissingError(
            f"--engine {ENGINE} needs MiniStack {VERSION} in its own virtualenv {install_dir()}, which has none: "
            f"run {INSTALL_COMMAND}"
        )
    return exe


def installed() -> bool:
    """Whether ``local.up --engine ministack`` would find what it needs."""
    try:
        python()
    except ToolMissingError:
        return False
    return True


def start(data: Path, port: int, log: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start the server in its own session (``down`` stops it by pid); the caller waits for the port."""
    data.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [str(python()), "-m", SERVER_MODULE, "--port", str(port), "--data", str(data)],
        cwd=PROJECT_ROOT,  # `ops` is imported from the checkout; only the standard library and MiniStack are needed
        env=os.environ | {"PYTHONPATH": str(PROJECT_ROOT)},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def restore_report(data: Path) -> dict[str, Any]:
    """What the server's last start restored (written before it listens); empty when unknown."""
    path = data / "restore.json"
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def kept_data(data: Path) -> bool:
    return (data / "snapshot.json").exists() or bool(
        (data / "journal.log").exists() and (data / "journal.log").stat().st_size
    )


def stop(pid: int, seconds: float = 60) -> bool:
    """SIGTERM our server and wait until it is gone (it writes its snapshot first); False when it was not running.

    A SIGKILL after ``seconds`` loses nothing acknowledged: the journal holds every write.
    """
    if not running(pid, PROCESS_NEEDLE):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + seconds
    while running(pid, PROCESS_NEEDLE):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
        time.sleep(0.05)
        try:
            os.waitpid(pid, os.WNOHANG)  # reap it when we are its parent (tests)
        except ChildProcessError:
            pass
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    return True


def docker_command(name: str, volume: str, port: int) -> list[str]:
    """``--engine docker``: MiniStack's image, DynamoDB and Streams only, loopback only, its state in a volume."""
    return [
        "docker",
        "run",
        "-d",
        "--name",
        name,
        "-p",
        f"127.0.0.1:{port}:{IMAGE_PORT}",
        "-e",
        "SERVICES=dynamodb,dynamodbstreams",
        "-e",
        "PERSIST_STATE=1",
        "-e",
        f"STATE_DIR={IMAGE_STATE}",
        "-v",
        f"{volume}:{IMAGE_STATE}",
        IMAGE,
    ]
