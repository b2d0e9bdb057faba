"""Stack settings come from the Pulumi files; the target gate refuses before any request."""

from __future__ import annotations

import socket
import threading

import pytest

from ops.errors import ConfigError, RefusedError
from ops.stacks import list_stacks, load_stack
from ops.target import resolve_target
from tests.support.helpers import assert_one_line_error, run_invoke


def test_stacks_are_the_pulumi_stack_files() -> None:
    assert list_stacks() == ["dev", "prod"]


def test_stack_file_overrides_project_defaults_and_nothing_else() -> None:
    dev, prod = load_stack("dev"), load_stack("prod")
    assert dev.table_name == prod.table_name == "cruddur-messages"  # the default from Pulumi.yaml
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


@pytest.mark.parametrize("task", [["ddb.drop"], ["ddb.seed"], ["db.setup"], ["ddb.schema-load"]])
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
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
           "PROD_CONNECTION_URL": f"postgresql://u:secretpw@127.0.0.1:{port}/cruddur"}
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
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SHARED_CREDENTIALS_FILE": f"{tmp_path}/none",
           "AWS_CONFIG_FILE": f"{tmp_path}/none", "AWS_EC2_METADATA_DISABLED": "true"}
    assert_one_line_error(run_invoke("ddb.scan", "--stack", "prod", "--cloud", "--limit", "1", env=env), "--cloud needs AWS credentials", "AWS_PROFILE")
