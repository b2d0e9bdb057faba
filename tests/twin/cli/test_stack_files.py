"""Stack files are independent: a broken Pulumi.dev.yaml is dev's problem only, and dev's running twin can still be
stopped."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.target import port_open
from tests.support.helpers import assert_one_line_error, run_invoke
from tests.support.repo_copy import repo_copy

# a twin of this module's own: the copy's dev stack, far from the suite's other twins (base + 700)
OFFSET = int(os.environ["CRUDDUR_LOCAL_PORT_OFFSET"]) + 700


@pytest.fixture(scope="module")
def copy() -> Iterator[tuple[Path, dict[str, str]]]:
    where = Path(tempfile.mkdtemp(prefix="cruddur-stackfiles-"))
    state = tempfile.mkdtemp(
        prefix="cruddur-stackfiles-state-"
    )  # the state root is ours: as root, local.up opens it to cruddur_pg
    repo = repo_copy(where)
    env = {"CRUDDUR_STATE_DIR": state, "CRUDDUR_LOCAL_PORT_OFFSET": str(OFFSET)}
    try:
        yield repo, env
    finally:
        run_invoke("local.down", env=env, cwd=repo)
        shutil.rmtree(where, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)


def test_a_broken_stack_file_is_that_stacks_error_only_and_its_twin_can_still_be_stopped(
    copy: tuple[Path, dict[str, str]],
) -> None:
    repo, env = copy
    # GIVEN dev's twin running, then its stack file broken
    up = run_invoke("local.up", "--stack", "dev", "--engine", "moto", env=env, cwd=repo)
    assert up.returncode == 0, up.stderr
    twin = json.loads((Path(env["CRUDDUR_STATE_DIR"]) / "dev" / "twin.json").read_text())
    ports = [twin["aws"]["port"], twin["postgres"]["port"]]
    assert all(port_open("127.0.0.1", p) for p in ports)
    (repo / "Pulumi.dev.yaml").write_text("config: [1, 2]\n")

    # WHEN any task runs for dev: one line naming the file
    assert_one_line_error(
        run_invoke("ddb.scan", "--stack", "dev", env=env, cwd=repo), "Pulumi.dev.yaml: config must be a mapping"
    )
    # AND prod is untouched by dev's file: its own answer (its twin is not running)
    assert_one_line_error(
        run_invoke("ddb.list-tables", "--stack", "prod", env=env, cwd=repo), "invoke local.up --stack prod"
    )

    # THEN local.status shows every stack, marks dev's file as broken, and says so in one error line
    status = run_invoke("local.status", env=env, cwd=repo)
    assert status.returncode == 1 and "Traceback" not in status.stderr
    rows = status.stdout.splitlines()
    assert any(r.startswith("dev (stack file broken)") and "running" in r for r in rows), status.stdout
    assert any(r.startswith("prod ") and "stopped" in r for r in rows), status.stdout
    assert_one_line_error(status, "stack dev: Pulumi.dev.yaml: config must be a mapping", "local.down --stack dev")
    as_json = run_invoke("local.status", "--json", env=env, cwd=repo)
    by_stack = {s["stack"]: s for s in json.loads(as_json.stdout)}
    assert (
        by_stack["dev"]["problem"].startswith("Pulumi.dev.yaml")
        and by_stack["dev"]["running"]
        and by_stack["prod"]["problem"] == ""
    )

    # AND local.down --stack dev stops what local.up recorded
    down = run_invoke("local.down", "--stack", "dev", env=env, cwd=repo)
    assert down.returncode == 0, down.stderr
    assert "aws endpoint" in down.stdout and "postgres" in down.stdout
    assert not any(port_open("127.0.0.1", p) for p in ports)
    # and with nothing recorded any more, dev's broken file is the answer again
    assert_one_line_error(run_invoke("local.down", "--stack", "dev", env=env, cwd=repo), "Pulumi.dev.yaml")
