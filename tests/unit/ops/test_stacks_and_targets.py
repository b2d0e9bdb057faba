"""Stack settings come from the Pulumi files; the target gate refuses before any request."""

from __future__ import annotations

import shutil
import socket
import threading
from pathlib import Path

import pytest

from ops.errors import ConfigError, RefusedError
from ops.stacks import PROJECT_ROOT, list_stacks, load_stack
from ops.target import resolve_target
from tests.support.helpers import assert_one_line_error, run_invoke


def test_stacks_are_the_pulumi_stack_files() -> None:
    assert list_stacks() == ["dev", "prod"]


def test_stack_file_overrides_project_defaults_and_nothing_else() -> None:
    dev, prod = load_stack("dev"), load_stack("prod")
    assert prod.table_name == "cruddur-messages"  # pinned: the name the existing application reads
    assert dev.table_name == "cruddur-messages-dev"  # derived: Pulumi.yaml's default is empty
    assert (dev.billing_mode, prod.billing_mode) == ("PROVISIONED", "PAY_PER_REQUEST")
    assert (dev.protected, prod.protected) == (False, True)
    assert prod.database_url_env == "PROD_CONNECTION_URL" and dev.database_url_env == "CONNECTION_URL"


def test_each_stack_has_its_own_local_ports() -> None:
    dev, prod = load_stack("dev"), load_stack("prod")
    dev_ports = {dev.local_aws_port, dev.local_dynamo_port, dev.local_postgres_port}
    prod_ports = {prod.local_aws_port, prod.local_dynamo_port, prod.local_postgres_port}
    assert len(dev_ports) == 3 and len(prod_ports) == 3 and not dev_ports & prod_ports


def test_unknown_stack_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown stack 'nosuch': the stacks are dev, prod"):
        load_stack("nosuch")


def test_protected_cloud_write_needs_the_confirmation_flag() -> None:
    with pytest.raises(RefusedError, match="--confirm-protected"):
        resolve_target("prod", cloud=True, writes=True)
    assert resolve_target("prod", cloud=True, writes=True, confirm_protected=True).cloud
    assert resolve_target("prod", cloud=True, writes=False).cloud  # reads are not gated
    assert not resolve_target("prod", writes=True).cloud  # the twin is the default, even of prod


def test_wrong_stack_name_is_one_line_error() -> None:
    assert_one_line_error(run_invoke("db.setup", "--stack", "nosuch"), "unknown stack 'nosuch'", "dev, prod")


@pytest.mark.parametrize("task", [["ddb.drop"], ["ddb.seed"], ["db.setup"]])
def test_destructive_task_on_protected_cloud_is_refused_before_any_request(task: list[str]) -> None:
    # Every AWS request and the database URL point at a listener we own: a refused task must not connect to it.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    connections: list[object] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connections.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "PROD_CONNECTION_URL": f"postgresql://u:secretpw@127.0.0.1:{port}/cruddur",
    }
    try:
        proc = run_invoke(*task, "--stack", "prod", "--cloud", env=env)
    finally:
        stop.set()
        thread.join()
        listener.close()
    assert_one_line_error(proc, "protected", "--confirm-protected")
    assert connections == [], "a refused task must not send anything"
    assert "secretpw" not in proc.stdout + proc.stderr


def test_cloud_without_aws_credentials_is_one_line_not_a_traceback(tmp_path: object) -> None:
    env = {
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_SHARED_CREDENTIALS_FILE": f"{tmp_path}/none",
        "AWS_CONFIG_FILE": f"{tmp_path}/none",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    assert_one_line_error(
        run_invoke("ddb.scan", "--stack", "prod", "--cloud", "--limit", "1", env=env),
        "--cloud needs AWS credentials",
        "AWS_PROFILE",
    )


def _project(tmp_path: Path, dev: str) -> Path:
    shutil.copyfile(PROJECT_ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copyfile(PROJECT_ROOT / "Pulumi.prod.yaml", tmp_path / "Pulumi.prod.yaml")
    (tmp_path / "Pulumi.dev.yaml").write_text(dev)
    return tmp_path


DEV_PORTS = (
    'config:\n  cruddur:localAwsPort: "8000"\n  cruddur:localDynamoPort: "8010"\n  cruddur:localPostgresPort: "5442"\n'
)


@pytest.mark.parametrize(
    ("dev", "needle"),
    [
        ("config: [1, 2]\n", "Pulumi.dev.yaml: config must be a mapping of key: value, not a list"),
        ("- just\n- a list\n", "Pulumi.dev.yaml must be a YAML mapping"),
        (
            "config:\n  cruddur:tableName: [a, b]\n",
            "Pulumi.dev.yaml: config cruddur:tableName must be a single value, not a list",
        ),
        ("config:\n  cruddur:localAwsPort: 8000\n   bad: indent\n", "Pulumi.dev.yaml is not valid YAML at line 3"),
        (
            DEV_PORTS.replace('"8000"', '"99999"'),
            "Pulumi.dev.yaml: config cruddur:localAwsPort must be a whole number from 1 to 65535, not '99999'",
        ),
        (DEV_PORTS.replace('"8000"', '"0"'), "from 1 to 65535, not '0'"),
        (DEV_PORTS.replace('"8000"', '"80.5"'), "cruddur:localAwsPort must be a whole number"),
        (DEV_PORTS.replace('"8000"', "true"), "cruddur:localAwsPort must be a whole number"),
        (DEV_PORTS + '  cruddur:tableName: "a b"\n', "cruddur:tableName must be 3 to 255 letters"),
        (
            DEV_PORTS + '  cruddur:streamBatchSize: "0"\n',
            "cruddur:streamBatchSize must be a whole number from 1 to 10000",
        ),
        (DEV_PORTS + '  cruddur:databaseUrlEnv: "X=1"\n', "databaseUrlEnv must name an environment variable"),
        (DEV_PORTS + '  aws:region: "mars"\n', "aws:region must be an AWS region"),
        (
            DEV_PORTS + '  cruddur:protected: "maybe"\n',
            "Pulumi.dev.yaml: config cruddur:protected must be true or false",
        ),
    ],
)
def test_a_bad_stack_file_is_one_line_naming_the_file_and_the_other_stack_still_loads(
    tmp_path: Path, dev: str, needle: str
) -> None:
    root = _project(tmp_path, dev)
    with pytest.raises(ConfigError) as caught:
        load_stack("dev", root)
    assert needle in str(caught.value) and "\n" not in str(caught.value), str(caught.value)
    assert load_stack("prod", root).name == "prod", "one broken file is an error for its own stack only"


def test_a_port_pushed_past_65535_by_the_offset_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _project(tmp_path, DEV_PORTS)
    monkeypatch.setenv("CRUDDUR_LOCAL_PORT_OFFSET", "60000")
    with pytest.raises(ConfigError, match="becomes 68000: a port is 1 to 65535"):
        load_stack("dev", root)
