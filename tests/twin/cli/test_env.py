"""`invoke local.env`: outside programs (the AWS CLI, boto3 with no arguments, psql) use the twin with its exports.

GIVEN the session twin (each DynamoDB engine the run selects) and a shell that has nothing but PATH, HOME and the
two variables that find the suite's twin, plus a parent environment that points elsewhere (another region, an AWS
profile, a PostgreSQL password), WHEN the shell runs ``eval "$(invoke local.env)"`` and then the client, THEN the
client reads the stack's table, stream, user pool and users table. The AWS CLI is ``awscli`` v1 from PyPI, in the
virtualenv ``bin/bootstrap`` gives it (.tools/awscli, from requirements-awscli.txt; it carries its own botocore).

A twin whose DynamoDB has its own endpoint (a second engine) is also played by this module's own twin: its
twin.json names an in-process moto server as the DynamoDB endpoint, its AWS endpoint still holds the stack's
table from before, and that endpoint refuses DynamoDB calls instead of answering from the old copy.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from ops import db as dbops
from ops.local import twin as twinops
from ops.messages.model import GSI_NAME
from ops.stacks import load_stack
from ops.table_spec import create_table_kwargs, table_spec
from ops.target import LOCAL_CREDENTIALS, Target, read_twin, resolve_target, twin_file
from tests.support.helpers import REPO, assert_one_line_error, run_invoke, threaded_moto

AWS_CLI = REPO / ".tools" / "awscli" / "bin" / "aws"
# what finds the suite's twin; everything else of the test's environment stays out of the shell
TWIN_FINDERS = ("CRUDDUR_STATE_DIR", "CRUDDUR_LOCAL_PORT_OFFSET")
# a developer's shell set up for another place: the exports must win over all of it
ELSEWHERE = {
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_REGION": "eu-west-1",
    "AWS_PROFILE": "someone-elses-profile",
    "PGPASSWORD": "not-the-twins",
}
OWN_OFFSET = int(os.environ["CRUDDUR_LOCAL_PORT_OFFSET"]) + 600  # this module's own twin


def _need(tool: Path | str | None, why: str) -> str:
    if tool and Path(tool).exists():
        return str(tool)
    if os.environ.get("CI"):
        pytest.fail(f"{why} is missing: bin/bootstrap installs it")
    pytest.skip(f"{why} is not installed here: run bin/bootstrap")


@pytest.fixture(scope="module")
def aws_cli() -> str:
    return _need(AWS_CLI, "the AWS CLI (.tools/awscli)")


@pytest.fixture
def shell(tmp_path: Path) -> Any:
    """Run a bash script in a clean environment after `eval "$(invoke local.env …)"`; returns the finished process."""
    home = tmp_path / "home"
    home.mkdir()

    def run(
        script: str, *env_args: str, env: dict[str, str] | None = None, interpreter: str = "bash"
    ) -> subprocess.CompletedProcess[str]:
        clean = {"PATH": f"{AWS_CLI.parent}:/usr/bin:/bin", "HOME": str(home)} | ELSEWHERE
        clean |= {k: os.environ[k] for k in TWIN_FINDERS} | (env or {})
        invoke = " ".join([sys.executable, "-m", "invoke", "local.env", *env_args])
        return subprocess.run(
            [interpreter, "-c", f'set -e\neval "$({invoke})"\n{script}'],
            cwd=REPO,
            env=clean,
            capture_output=True,
            text=True,
            timeout=180,
            stdin=subprocess.DEVNULL,
        )

    return run


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def group_row(twin: Target, ddb: Any, stack_table: str) -> Iterator[dict[str, Any]]:
    """A group row in the stack's table (the stream consumer's filter passes MSG# rows only: no race with it)."""
    group = str(uuid.uuid4())
    item = {
        "pk": {"S": f"GRP#{uuid.uuid4()}"},
        "sk": {"S": datetime.now(UTC).isoformat(timespec="microseconds")},
        "message_group_uuid": {"S": group},
        "message": {"S": "read by the AWS CLI"},
    }
    ddb.put_item(TableName=stack_table, Item=item)
    yield item
    ddb.delete_item(TableName=stack_table, Key={"pk": item["pk"], "sk": item["sk"]})


def test_the_aws_cli_reads_the_twin_with_the_exports_alone(
    aws_cli: str, shell: Any, twin: Target, ddb: Any, group_row: dict[str, Any], stack_table: str
) -> None:
    listed = json.loads(_ok(shell("aws dynamodb list-tables --output json")))
    assert stack_table in listed["TableNames"], "the region and endpoint are the twin's, whatever the parent said"

    group = group_row["message_group_uuid"]["S"]
    query = shell(
        'aws dynamodb query --output json --table-name "$CRUDDUR_TABLE_NAME" --index-name "$CRUDDUR_GSI_NAME" '
        "--key-condition-expression 'message_group_uuid = :g' "
        f'--expression-attribute-values \'{{":g": {{"S": "{group}"}}}}\''
    )
    assert [i["pk"] for i in json.loads(_ok(query))["Items"]] == [group_row["pk"]]

    streams = shell('aws dynamodbstreams list-streams --output json --table-name "$CRUDDUR_TABLE_NAME"')
    listed_arns = {st["StreamArn"] for st in json.loads(_ok(streams))["Streams"]}
    # DynamoDB Local keeps a deleted table's stream (DISABLED) beside the new one: compare with what boto3 sees
    seen = twin.client("dynamodbstreams").list_streams(TableName=stack_table)["Streams"]
    assert listed_arns == {st["StreamArn"] for st in seen}
    assert ddb.describe_table(TableName=stack_table)["Table"]["LatestStreamArn"] in listed_arns

    users = json.loads(_ok(shell('aws cognito-idp list-users --output json --user-pool-id "$CRUDDUR_USER_POOL_ID"')))
    ours = twin.client("cognito-idp").list_users(UserPoolId=_outputs(twin)["userPoolId"])
    assert sorted(u["Username"] for u in users["Users"]) == sorted(u["Username"] for u in ours["Users"])


def test_zsh_evals_the_same_exports(aws_cli: str, shell: Any, stack_table: str) -> None:
    zsh = _need(shutil.which("zsh"), "zsh")
    listed = json.loads(_ok(shell("aws dynamodb list-tables --output json", interpreter=zsh)))
    assert stack_table in listed["TableNames"]
    region = _ok(shell('printf "%s %s" "$AWS_REGION" "$AWS_DEFAULT_REGION"', interpreter=zsh))
    assert region == "us-east-1 us-east-1"


@pytest.fixture
def worker_paused(twin: Target) -> Iterator[None]:
    """The twin's stream worker stopped (SIGSTOP) for a test that compares two reads: nothing moves in between."""
    pid = ((read_twin("dev") or {}).get("stream_worker") or {}).get("pid")
    running = bool(pid) and twinops.stream_worker_running("dev")
    if running:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        if running:
            os.kill(pid, signal.SIGCONT)


def test_the_exports_read_the_same_items_as_ddb_scan(
    aws_cli: str, shell: Any, group_row: dict[str, Any], worker_paused: None
) -> None:
    ours = run_invoke("ddb.scan", "--json")
    assert ours.returncode == 0, ours.stderr
    scanned = json.loads(_ok(shell('aws dynamodb scan --output json --table-name "$CRUDDUR_TABLE_NAME"')))["Items"]
    keys = {(i["pk"]["S"], i["sk"]["S"]) for i in scanned}
    assert keys == {(row["pk"], row["sk"]) for row in map(json.loads, ours.stdout.splitlines())}
    assert (group_row["pk"]["S"], group_row["sk"]["S"]) in keys


def test_boto3_with_nothing_but_a_service_name_lists_the_table(shell: Any, stack_table: str) -> None:
    one_liner = 'import boto3; print(boto3.client("dynamodb").list_tables()["TableNames"])'
    printed = _ok(shell(f"{sys.executable} -c '{one_liner}'"))
    assert stack_table in printed


def test_psql_counts_the_users_with_the_exports_alone(shell: Any, database: Target) -> None:
    psql = _need(shutil.which("psql"), "psql (postgresql-client)")
    with dbops.connect(database) as conn:
        expected = conn.execute("SELECT count(*) FROM users").fetchone()[0]
    counted = _ok(shell(f"{psql} -tAc 'select count(*) from users'"))
    assert counted.strip() == str(expected) and expected > 0
    via_url = _ok(shell(f'{psql} "$DATABASE_URL" -tAc "select current_user"'))
    assert via_url.strip() == "postgres"


def test_the_password_file_is_private_and_the_output_says_so(database: Target) -> None:
    proc = run_invoke("local.env")
    assert proc.returncode == 0, proc.stderr
    exports = _parse_sh(proc.stdout)
    passfile = Path(exports["PGPASSFILE"])
    assert passfile.stat().st_mode & 0o777 == 0o600
    assert "mode 0600" in proc.stdout and "PGPASSFILE" in proc.stdout
    password = Path((read_twin("dev") or {})["postgres"]["password_file"]).read_text().strip()
    assert f":{password}@" in exports["DATABASE_URL"], "the twin's own password: the one secret local.env prints"
    assert passfile.read_text().splitlines()[0] == f"127.0.0.1:{exports['PGPORT']}:*:postgres:{password}"


def test_the_three_forms_carry_the_same_variables(twin: Target) -> None:
    forms = {form: run_invoke("local.env", "--format", form) for form in ("sh", "dotenv", "json")}
    assert all(p.returncode == 0 for p in forms.values()), [p.stderr for p in forms.values()]
    as_json = json.loads(forms["json"].stdout)
    assert _parse_sh(forms["sh"].stdout) == as_json
    dotenv = dict(
        line.split("=", 1) for line in forms["dotenv"].stdout.splitlines() if line and not line.startswith("#")
    )
    assert {k: v.strip("'") for k, v in dotenv.items()} == as_json
    assert as_json["AWS_REGION"] == as_json["AWS_DEFAULT_REGION"] == twin.region
    assert as_json["AWS_ENDPOINT_URL_DYNAMODB"] == twin.endpoint("dynamodb")
    assert as_json["AWS_ENDPOINT_URL_DYNAMODB_STREAMS"] == twin.endpoint("dynamodbstreams")
    assert as_json["CRUDDUR_GSI_NAME"] == GSI_NAME


def test_infra_outputs_on_the_twin_reads_its_recorded_outputs(twin: Target) -> None:
    shown = run_invoke("infra.outputs", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == _outputs(twin)
    assert json.loads(shown.stdout)["userPoolId"]
    plain = run_invoke("infra.outputs")
    assert f"userPoolId = {_outputs(twin)['userPoolId']}" in plain.stdout.splitlines()


def test_local_status_takes_a_stack_and_prints_one_json_document(twin: Target) -> None:
    proc = run_invoke("local.status", "--stack", "dev", "--json")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)  # one document: a list with one object per stack shown
    assert [s["stack"] for s in document] == ["dev"] and document[0]["running"] is True
    unknown = run_invoke("local.status", "--stack", "nope")
    assert_one_line_error(unknown, "unknown stack 'nope'")


def test_a_twin_that_is_not_running_is_one_line(tmp_path: Path) -> None:
    proc = run_invoke("local.env", "--stack", "prod", env={"CRUDDUR_STATE_DIR": str(tmp_path)})
    assert_one_line_error(proc, "the local twin of stack 'prod' is not running", "invoke local.up --stack prod")
    assert proc.returncode == 1 and proc.stdout == ""


def _outputs(twin: Target) -> dict[str, Any]:
    from ops.outputs import outputs_for

    return outputs_for(twin)


def _parse_sh(text: str) -> dict[str, str]:
    """The values a POSIX shell gets from the sh form, read back by the shell itself."""
    names = [line.split()[1].split("=", 1)[0] for line in text.splitlines() if line.startswith("export ")]
    script = text + "\n" + "".join(f'printf "%s\\0%s\\0" {n} "${n}"\n' for n in names)
    raw = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True, timeout=30).stdout
    parts = raw.split("\0")[:-1]
    return dict(zip(parts[::2], parts[1::2], strict=True))


# ---------------------------------------------------------------- a twin whose DynamoDB is served elsewhere


@contextlib.contextmanager
def _pointed_at(env: dict[str, str]) -> Iterator[None]:
    """This process's environment pointed at another twin for a moment (the session twin's tests must not see it)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass(frozen=True)
class SecondEngine:
    env: dict[str, str]  # what finds this module's twin
    aws: str  # its AWS endpoint (moto), which still holds the stack's table from before
    dynamodb: str  # the endpoint recorded as its DynamoDB's


@pytest.fixture(scope="module")
def second_engine() -> Iterator[SecondEngine]:
    """This module's own twin (moto), its table filled once, then its DynamoDB recorded as served by another server.

    What local.up records for a second engine is its endpoint in twin.json; an in-process moto server plays
    that engine here (the same record the real engines leave), holding the stack's table with other items.
    """
    state = Path(tempfile.mkdtemp(prefix="cruddur-second-engine-"))  # under /tmp: PostgreSQL's own user reaches it
    env = {"CRUDDUR_STATE_DIR": str(state), "CRUDDUR_LOCAL_PORT_OFFSET": str(OWN_OFFSET)}
    with _pointed_at(env):
        stack = load_stack("dev")
        twinops.up(stack, engine="moto", stream_worker=False)
    try:
        with _pointed_at(env):
            aws = str(resolve_target("dev").endpoint("default"))
            record = json.loads(twin_file("dev").read_text())
        _client(aws, stack.region).put_item(
            TableName=stack.table_name, Item={"pk": {"S": "MSG#old"}, "sk": {"S": "the stale copy"}}
        )
        with threaded_moto() as url:
            new = _client(url, stack.region)
            new.create_table(**create_table_kwargs(table_spec(stack)))
            new.put_item(TableName=stack.table_name, Item={"pk": {"S": "GRP#new"}, "sk": {"S": "served now"}})
            record["dynamodb"] = {"engine": "second", "port": int(url.rsplit(":", 1)[1]), "endpoint": url}
            (state / "dev" / "twin.json").write_text(json.dumps(record))
            yield SecondEngine(env, aws, url)
    finally:
        with _pointed_at(env):
            twinops.down(stack)
        shutil.rmtree(state, ignore_errors=True)


def _client(url: str, region: str, service: str = "dynamodb") -> Any:
    return boto3.client(service, endpoint_url=url, region_name=region, **LOCAL_CREDENTIALS)


def test_the_exports_send_dynamodb_to_the_engine_that_serves_it(
    aws_cli: str, shell: Any, second_engine: SecondEngine
) -> None:
    shown = run_invoke("local.env", "--format", "json", env=second_engine.env)
    exports = json.loads(_ok(shown))
    assert (
        exports["AWS_ENDPOINT_URL_DYNAMODB"] == exports["AWS_ENDPOINT_URL_DYNAMODB_STREAMS"] == second_engine.dynamodb
    )
    assert exports["AWS_ENDPOINT_URL"] == second_engine.aws
    scan = shell('aws dynamodb scan --output json --table-name "$CRUDDUR_TABLE_NAME"', env=second_engine.env)
    ours = run_invoke("ddb.scan", "--json", env=second_engine.env)
    assert [(i["pk"]["S"], i["sk"]["S"]) for i in json.loads(_ok(scan))["Items"]] == [("GRP#new", "served now")]
    assert [(r["pk"], r["sk"]) for r in map(json.loads, _ok(ours).splitlines())] == [("GRP#new", "served now")]


def test_the_aws_endpoint_refuses_dynamodb_rather_than_serve_its_old_copy(
    aws_cli: str, shell: Any, second_engine: SecondEngine
) -> None:
    for command in ('aws dynamodb scan --table-name "$CRUDDUR_TABLE_NAME"', "aws dynamodbstreams list-streams"):
        proc = shell(
            f"unset AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL_DYNAMODB_STREAMS\n{command}", env=second_engine.env
        )
        assert proc.returncode != 0 and "stale copy" not in proc.stdout
        error = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(error) == 1 and "DynamoDBServedElsewhere" in error[0], proc.stderr
        assert second_engine.dynamodb in error[0] and 'eval "$(invoke local.env --stack dev)"' in error[0]
    # the endpoint's other services still answer
    assert _client(second_engine.aws, "us-east-1", "cognito-idp").list_user_pools(MaxResults=10)["UserPools"]
