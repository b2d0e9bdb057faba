"""The hostile-but-fair matrix, the cases no server is needed for: each bad input is one line, a non-zero exit, no
traceback, and nothing happens: no connection to the twin's ports or the cloud's endpoints, no file in the state dir.

Every task runs as a user runs it (a subprocess), with the stack's twin ports, the AWS endpoint and the database
URLs pointed at listeners of this module that count every connection made to them. The cases that need a
running twin (a group that does not exist, a sender who is no participant…) are in tests/twin/cli/test_hostile.py.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ops.stacks import load_stack
from tests.support.helpers import assert_one_line_error, run_invoke
from tests.support.repo_copy import repo_copy

GROUP = "5f0c4a1e-9d2b-4c3a-8e7f-1a2b3c4d5e6f"
OFFSET = (
    int(os.environ.get("CRUDDUR_LOCAL_PORT_OFFSET") or 0) + 600
)  # this module's own ports: nothing else listens there


@dataclass
class Trap:
    """Listeners on every address a task could reach; a refused input must leave ``connections`` at 0."""

    ports: list[int]
    env: dict[str, str]
    state: Path
    connections: list[int] = field(default_factory=list)


@pytest.fixture(scope="module")
def trap() -> Iterator[Trap]:
    shift = OFFSET - int(
        os.environ.get("CRUDDUR_LOCAL_PORT_OFFSET") or 0
    )  # the stacks' ports as the tasks will compute them
    ports = sorted(
        {
            p + shift
            for s in (load_stack("dev"), load_stack("prod"))
            for p in (s.local_aws_port, s.local_dynamo_port, s.local_postgres_port)
        }
    )
    listeners = []
    for port in ports:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(16)
        listener.settimeout(0.1)
        listeners.append(listener)
    cloud = ports[0]
    state = Path(tempfile.mkdtemp(prefix="cruddur-hostile-"))
    env = {
        "CRUDDUR_STATE_DIR": str(state),
        "CRUDDUR_LOCAL_PORT_OFFSET": str(OFFSET),
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{cloud}",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
        "CONNECTION_URL": f"postgresql://u:hostile-pw-1@127.0.0.1:{cloud}/cruddur",
        "PROD_CONNECTION_URL": f"postgresql://u:hostile-pw-2@127.0.0.1:{cloud}/cruddur",
    }
    found = Trap(ports, env, state)
    stop = threading.Event()

    def accept(listener: socket.socket) -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                found.connections.append(listener.getsockname()[1])
                conn.close()
            except TimeoutError:
                continue

    threads = [threading.Thread(target=accept, args=(lst,), daemon=True) for lst in listeners]
    for t in threads:
        t.start()
    try:
        yield found
    finally:
        stop.set()
        for t in threads:
            t.join()
        for lst in listeners:
            lst.close()
        shutil.rmtree(state, ignore_errors=True)


def _assert_refused(trap: Trap, proc: object, *needles: str) -> None:
    assert_one_line_error(proc, *needles)  # type: ignore[arg-type]
    assert trap.connections == [], f"a refused input connected to {trap.connections}"
    assert list(trap.state.iterdir()) == [], "a refused input wrote to the state directory"
    out = proc.stdout + proc.stderr  # type: ignore[attr-defined]
    assert "hostile-pw" not in out


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(repr(value).encode()).decode().rstrip("=")


# (task and flags, what the one line says)
FLAGS = [
    # numbers and their ranges
    (["ddb.scan", "--limit", "-1"], "--limit must be a whole number of at least 1, not '-1'"),
    (["ddb.scan", "--limit", "0"], "--limit must be a whole number of at least 1, not '0'"),
    (["ddb.scan", "--limit", "abc"], "--limit must be a whole number"),
    (["ddb.scan", "--limit", "inf"], "--limit must be a whole number"),
    (["ddb.scan", "--limit", "1e300"], "--limit must be a whole number"),
    (["ddb.scan", "--limit"], "Flag --limit needed value and was not given one!"),
    (["ddb.scan", "--segments", "0"], "--segments must be a whole number from 1 to 64, not '0'"),
    (["ddb.scan", "--segments", "65"], "--segments must be a whole number from 1 to 64"),
    (["ddb.doctor", "--segments", "-4"], "--segments must be a whole number from 1 to 64"),
    (["ddb.migrate", "--segments", "1000"], "--segments must be a whole number from 1 to 64"),
    (
        ["ddb.patterns.list-conversations", "--handle", "ada", "--page-size", "abc"],
        "--page-size must be a whole number from 1 to 1000",
    ),
    (
        ["ddb.patterns.get-conversation", "--handle", "ada,bram", "--page-size", "1001"],
        "--page-size must be a whole number from 1 to 1000",
    ),
    (
        ["ddb.patterns.get-conversation", "--handle", "ada,bram", "--page-size", "nan"],
        "--page-size must be a whole number from 1 to 1000",
    ),
    # times, with zones
    (
        ["ddb.patterns.get-conversation", "--group", GROUP, "--before", "garbage"],
        "--before must be an ISO-8601 time with a zone",
    ),
    (
        ["ddb.patterns.get-conversation", "--group", GROUP, "--before", "2026-01-01T10:00"],
        "--before '2026-01-01T10:00' has no time zone: add Z for UTC",
    ),
    (
        ["ddb.patterns.list-conversations", "--handle", "ada", "--before", "2026-13-01T00:00Z"],
        "--before must be an ISO-8601 time with a zone",
    ),
    (
        ["ddb.patterns.list-conversations", "--handle", "ada", "--before", "1e300"],
        "--before must be an ISO-8601 time with a zone",
    ),
    (["ddb.seed", "--start", "garbage"], "--start must be an ISO-8601 time with a zone"),
    (["ddb.seed", "--start", "2026-01-05"], "--start '2026-01-05' has no time zone"),
    (["ddb.seed", "--start", "9999-12-31T23:59:59Z"], "leaves no room for 13 messages"),
    (["ddb.seed", "--start", "0001-01-01T00:00:00+01:00"], "--start '0001-01-01T00:00:00+01:00' is out of range"),
    # ids shaped like ids
    (["ddb.patterns.get-conversation", "--group", "nope"], "--group must be a message group uuid"),
    (["ddb.patterns.get-conversation", "--group", GROUP[:-1]], "--group must be a message group uuid"),
    (["ddb.patterns.get-conversation", "--group", GROUP + "; DROP"], "--group must be a message group uuid"),
    (["ddb.send-message", "--from", "ada", "--group", "not-a-uuid", "hi"], "--group must be a message group uuid"),
    (["ddb.patterns.get-conversation", "--handle", "ada,bram", "--cursor", "zzz"], "invalid --cursor"),
    (["ddb.patterns.get-conversation", "--handle", "ada,bram", "--cursor", _cursor([1, 2])], "invalid --cursor"),
    (["ddb.send-message", "--from", "a b", "--to", "bram", "hi"], "--from must be a user's handle"),
    (["ddb.patterns.get-conversation", "--handle", "ada", "--handle", ""], "--handle must be a user's handle"),
    (["ddb.patterns.list-conversations", "--handle", "ada\x1b[31m"], "--handle must be a user's handle"),
    (["ddb.seed", "--my-handle", "ad\ra", "--other-handle", "bram"], "--my-handle must be a user's handle"),
    # words from a fixed set
    (["local.up", "--engine", "podman"], "--engine must be one of auto, moto, ministack, docker, external"),
    (["ddb.migrate", "--name", "nope"], "--name must be one of pair-index"),
    (["bench", "--size", "huge"], "--size must be one of smoke, full"),
    (["bench", "--only", "nope"], "unknown workload 'nope'"),
    # the message text
    (["ddb.send-message", "--from", "ada", "--to", "bram", ""], "a message needs some text"),
    (
        ["ddb.send-message", "--from", "ada", "--to", "bram", "--text", "x" * 4001],
        "a message holds at most 4000 characters",
    ),
    (["ddb.send-message", "--from", "ada", "hi"], "give exactly one of --to HANDLE or --group UUID"),
    (
        ["ddb.send-message", "--from", "ada", "--to", "bram", "--group", GROUP, "hi"],
        "give exactly one of --to HANDLE or --group UUID",
    ),
    (["ddb.send-message", "--to", "bram", "hi"], "say who sends the message"),
    (["ddb.send-message", "--from", "ada", "--to", "bram"], "did not receive required positional arguments: 'text'"),
    # stacks, targets and protection
    (["ddb.scan", "--stack", "nosuch"], "unknown stack 'nosuch'"),
    (["ddb.scan", "--stack", "../prod"], "unknown stack '../prod'"),
    (["local.down", "--stack", "nosuch"], "unknown stack 'nosuch'"),
    (["ddb.drop", "--stack", "prod", "--cloud"], "add --confirm-protected"),
    (["db.setup", "--stack", "prod", "--cloud"], "add --confirm-protected"),
    (["ddb.stream-process", "--cloud"], "the stream consumer Lambda processes the stream"),
    (["cognito.create-users", "--cloud"], "No idea what '--cloud' is!"),
    (["rds.update-sg-rule", "--ip", "0.0.0.0/0"], "0.0.0.0"),
    (["rds.update-sg-rule", "--ip", "10.0.0.0/8"], "/8"),
    (["rds.update-sg-rule", "--ip", "::1"], "::1"),
    (["ddb.scan", "--nope"], "No idea what '--nope' is!"),
]


@pytest.mark.parametrize(("args", "line"), FLAGS, ids=[" ".join(a)[:60] for a, _ in FLAGS])
def test_a_bad_flag_is_one_line_and_nothing_happens(trap: Trap, args: list[str], line: str) -> None:
    _assert_refused(trap, run_invoke(*args, env=trap.env, timeout=60), line)


def _seed_file(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "conversation.txt"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


SEED_FILES = [
    ("# spacing_seconds: 0\nPerson 1: a\nPerson 2: b\n", ":1: spacing_seconds must be a finite number greater than 0"),
    (
        "# spacing_seconds: -60\nPerson 1: a\nPerson 2: b\n",
        ":1: spacing_seconds must be a finite number greater than 0",
    ),
    (
        "# spacing_seconds: inf\nPerson 1: a\nPerson 2: b\n",
        ":1: spacing_seconds must be a finite number greater than 0",
    ),
    (
        "# spacing_seconds: nan\nPerson 1: a\nPerson 2: b\n",
        ":1: spacing_seconds must be a finite number greater than 0",
    ),
    ("# spacing_seconds: 1e300\nPerson 1: a\nPerson 2: b\n", ":1: spacing_seconds '1e300' is too large"),
    ("# spacing_seconds: 1e-9\nPerson 1: a\nPerson 2: b\n", ":1: spacing_seconds must be at least 0.000001"),
    ("# spacing_seconds: soon\nPerson 1: a\nPerson 2: b\n", ":1: spacing_seconds must be a number, not 'soon'"),
    (
        "# spacing_seconds: 1e9\n# start: 9000-01-01T00:00:00Z\n" + "Person 1: a\n" * 40,
        ":2: start 9000-01-01T00:00:00.000000+00:00 leaves no room for 40 messages",
    ),
    ("# start: 9999-12-31T23:59:00Z\nPerson 1: a\nPerson 2: b\n", "leaves no room for 2 messages 60 s apart"),
    ("# start: yesterday\nPerson 1: a\n", ":1: start 'yesterday' is not an ISO-8601 time"),
    ("# start: 2026-01-05T09:00:00\nPerson 1: a\n", ":1: start '2026-01-05T09:00:00' needs a timezone"),
    ("Person 1: hello\nPerson 3: who?\n", ":2: expected 'Person 1: …' or 'Person 2: …'"),
    ("Person 1: hello\nPerson 2:   \n", ":2: the message after 'Person 2:' is empty"),
    ("# only a comment\n", "no 'Person 1:' / 'Person 2:' lines"),
    ("Person 1: " + "x" * 4001 + "\n", ":1: message longer than 4000 characters"),
    (b"Person 1: caf\xe9\n", "not UTF-8 text"),
]


@pytest.mark.parametrize(("text", "line"), SEED_FILES, ids=[line[:40] for _, line in SEED_FILES])
def test_a_bad_seed_file_is_one_line_naming_file_and_line_and_nothing_happens(
    trap: Trap, tmp_path: Path, text: str | bytes, line: str
) -> None:
    path = _seed_file(tmp_path, text)
    _assert_refused(trap, run_invoke("ddb.seed", "--conversation", path, env=trap.env, timeout=60), path, line)


def test_a_seed_file_that_is_missing_a_directory_or_a_fifo_is_one_line_saying_which(trap: Trap, tmp_path: Path) -> None:
    _assert_refused(
        trap,
        run_invoke("ddb.seed", "--conversation", str(tmp_path / "none.txt"), env=trap.env, timeout=60),
        "does not exist",
    )
    _assert_refused(
        trap, run_invoke("ddb.seed", "--conversation", str(tmp_path), env=trap.env, timeout=60), "is a directory"
    )
    os.mkfifo(tmp_path / "fifo")  # reading it would block forever: it is refused before any read
    _assert_refused(
        trap,
        run_invoke("ddb.seed", "--conversation", str(tmp_path / "fifo"), env=trap.env, timeout=60),
        "is a FIFO (named pipe)",
    )


ENVIRONMENTS = [
    ({"CRUDDUR_LOCAL_PORT_OFFSET": "abc"}, ["ddb.scan"], "CRUDDUR_LOCAL_PORT_OFFSET must be a whole number"),
    ({"CRUDDUR_LOCAL_PORT_OFFSET": "70000"}, ["ddb.scan"], "a port is 1 to 65535"),
    (
        {"DATABASE_URL": "postgresql://u:hostile-pw-3%zz@127.0.0.1/cruddur"},
        ["local.up"],
        "is not one libpq accepts: invalid percent-encoded token",
    ),
    ({"DATABASE_URL": "host=127.0.0.1 password='hostile-pw-4"}, ["local.up"], "unterminated quoted string"),
    (
        {"CONNECTION_URL": "postgresql://u:hostile-pw-5%2@127.0.0.1/cruddur"},
        ["db.sessions", "--cloud"],
        "is not one libpq accepts",
    ),
    (
        {"CONNECTION_URL": "postgresql://u:hostile-pw-6@[::1/cruddur"},
        ["db.connect", "--cloud"],
        "is not one libpq accepts",
    ),
    (
        {"CONNECTION_URL": ""},
        ["db.sessions", "--cloud"],
        "reads its database URL from $CONNECTION_URL, which is not set",
    ),
]


@pytest.mark.parametrize(("env", "args", "line"), ENVIRONMENTS, ids=[line[:40] for _, _, line in ENVIRONMENTS])
def test_a_bad_environment_is_one_line_without_the_password_and_nothing_happens(
    trap: Trap, env: dict[str, str], args: list[str], line: str
) -> None:
    _assert_refused(trap, run_invoke(*args, env=trap.env | env, timeout=60), line)


@pytest.fixture(scope="module")
def copy() -> Iterator[Path]:
    where = Path(tempfile.mkdtemp(prefix="cruddur-hostile-copy-"))
    try:
        yield repo_copy(where)
    finally:
        shutil.rmtree(where, ignore_errors=True)


STACK_FILES = [
    ("config: [1, 2]\n", "Pulumi.dev.yaml: config must be a mapping of key: value, not a list"),
    (
        'config:\n  cruddur:localAwsPort: "99999"\n',
        "Pulumi.dev.yaml: config cruddur:localAwsPort must be a whole number from 1 to 65535, not '99999'",
    ),
    ("config:\n  cruddur:localAwsPort: [8000\n", "Pulumi.dev.yaml is not valid YAML at line 3"),
    (
        "config:\n  cruddur:tableName: {a: 1}\n",
        "Pulumi.dev.yaml: config cruddur:tableName must be a single value, not a dict",
    ),
    ("config:\n  cruddur:billingMode: FREE\n", "must be PAY_PER_REQUEST or PROVISIONED"),
    ("\x00\x01", "Pulumi.dev.yaml"),
]


@pytest.mark.parametrize(("text", "line"), STACK_FILES, ids=[line[:40] for _, line in STACK_FILES])
def test_a_broken_stack_file_is_one_line_naming_it(trap: Trap, copy: Path, text: str, line: str) -> None:
    original = (copy / "Pulumi.dev.yaml").read_text()
    (copy / "Pulumi.dev.yaml").write_text(text)
    try:
        for args in (["ddb.scan"], ["db.setup"], ["local.up"], ["infra.plan"]):
            _assert_refused(trap, run_invoke(*args, env=trap.env, timeout=60, cwd=copy), line)
        # and prod does not mind dev's file
        assert_one_line_error(
            run_invoke("ddb.scan", "--stack", "prod", env=trap.env, timeout=60, cwd=copy), "local.up --stack prod"
        )
    finally:
        (copy / "Pulumi.dev.yaml").write_text(original)
