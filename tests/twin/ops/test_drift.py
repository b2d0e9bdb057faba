"""Plan against twin, resource by resource, on the session twin (moto server, started through local.up's code).

GIVEN the twin right after local.up, THEN every resource of the plan the engine serves is there as
declared and infra.drift exits 0. WHEN infra/ changes a setting (an edited copy of the program,
evaluated for real), THEN the twin differs until the next local.up, which brings it there. WHEN a
setting changes behind the program's back, infra.drift names resource and field and exits non-zero,
and local.up puts it back. The RDS rule's address moving is reported, never flagged.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops import outputs as out
from ops.drift import EXIT_DRIFT, IN_LINE, check
from ops.local import twin as twinops
from ops.plan import StackPlan, plan_stack
from ops.resources import ADAPTERS
from ops.resources.mapping import MappingAdapter
from ops.stacks import PROJECT_ROOT
from ops.target import Target, read_twin
from tests.support.helpers import run_invoke

pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning:pulumi_aws"
)  # an edited program is planned in-process

MAPPING = MappingAdapter.type
SERVED = {
    "aws:dynamodb/table:Table",
    "aws:cognito/userPool:UserPool",
    "aws:cognito/userPoolClient:UserPoolClient",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "aws:sqs/queue:Queue",
    MAPPING,
}


@pytest.fixture
def plan(twin: Target) -> Iterator[StackPlan]:
    """The stack's own plan, with the twin brought to it first (earlier tests drop and re-create its table); and
    again after."""
    stack_plan, _ = twinops.load_plan(twin.stack)
    twinops.up(twin.stack)
    yield stack_plan
    twinops.up(twin.stack)


def _outputs(twin: Target) -> dict[str, Any]:
    return out.outputs_for(twin)


def test_every_served_resource_of_the_plan_is_on_the_twin_as_declared(twin: Target, plan: StackPlan) -> None:
    report = check(plan, twin)
    assert {r.type for r in report.resources} == SERVED, "every type the engine serves is compared"
    for resource in report.resources:
        assert resource.status == IN_LINE, (
            f"{resource.label} {resource.name}: {resource.status} {resource.differences} {resource.note}"
        )
    assert "Lambda function stream-consumer-function" in report.not_compared
    proc = run_invoke("infra.drift")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith("no drift: 6 resources as the program declares them")


def _edited_program(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of infra/ with one edit, beside the real library (a symlink), planned like the real one."""
    shutil.copytree(PROJECT_ROOT / "infra", tmp_path / "infra", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "ops").symlink_to(PROJECT_ROOT / "ops")
    identity = tmp_path / "infra" / "identity.py"
    source = identity.read_text()
    assert source.count(old) == 1, f"{old!r} is no longer in infra/identity.py: update this test's edit"
    identity.write_text(source.replace(old, new))
    return tmp_path / "infra"


@pytest.fixture
def edited_plan(tmp_path: Path) -> Iterator[StackPlan]:
    program = _edited_program(tmp_path, "minimum_length=12,", "minimum_length=14,")
    try:
        yield plan_stack("dev", program_dir=program)
    finally:
        # the copy put itself first on sys.path to import its own infra.*; the real program must win again
        while str(tmp_path) in sys.path:
            sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == "infra" or m.startswith("infra.")]:
            del sys.modules[name]


def test_a_pool_setting_changed_in_infra_reaches_the_twin_at_the_next_up(
    twin: Target, plan: StackPlan, edited_plan: StackPlan
) -> None:
    # the twin does not follow by itself: the edited program and the twin now differ in that one field
    before = check(edited_plan, twin)
    changed = {(r.name, c.field, c.declared, c.actual) for r in before.resources for c in r.differences}
    assert changed == {("identity-users", "passwordPolicy.minimumLength", 14, 12)}

    result = twinops.up(twin.stack, plan=edited_plan)
    assert result.cloud_side is not None and any(
        "identity-users" in u and "passwordPolicy.minimumLength" in u for u in result.cloud_side.updated
    )
    pool = twin.client("cognito-idp").describe_user_pool(UserPoolId=_outputs(twin)[out.USER_POOL_ID])["UserPool"]
    assert pool["Policies"]["PasswordPolicy"]["MinimumLength"] == 14, "updated in place"
    assert pool["UsernameAttributes"] == ["email"], "and users still sign in by email"
    assert not check(edited_plan, twin).drift
    assert check(plan, twin).drift, "the real program now differs from the twin, until local.up"


@pytest.mark.engines(
    "moto"
)  # stands in for AWS's point-in-time recovery, which an engine may lack (UnknownOperationException)
def test_drift_names_changes_made_behind_the_programs_back_and_up_puts_them_back(twin: Target, plan: StackPlan) -> None:
    outputs = _outputs(twin)
    ddb, cognito = twin.client("dynamodb"), twin.client("cognito-idp")
    ddb.update_continuous_backups(
        TableName=twin.stack.table_name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    policy = cognito.describe_user_pool(UserPoolId=outputs[out.USER_POOL_ID])["UserPool"]["Policies"]
    policy["PasswordPolicy"]["MinimumLength"] = 6
    cognito.update_user_pool(
        UserPoolId=outputs[out.USER_POOL_ID],
        Policies=policy,
        AutoVerifiedAttributes=["email"],
        DeletionProtection="INACTIVE",
        AccountRecoverySetting={"RecoveryMechanisms": [{"Name": "verified_email", "Priority": 1}]},
        UserPoolTags={"project": "cruddur", "stack": "dev"},
    )

    proc = run_invoke("infra.drift")
    assert proc.returncode == EXIT_DRIFT, proc.stdout + proc.stderr
    text = proc.stdout
    assert f"DynamoDB table messages → {twin.stack.table_name}: DIFFERS" in text
    assert "pointInTimeRecovery.enabled: declared false, actual true" in text
    assert "Cognito user pool identity-users" in text and "passwordPolicy.minimumLength: declared 12, actual 6" in text
    assert "DRIFT: 2 of 6 resources differ" in text
    as_json = json.loads(run_invoke("infra.drift", "--json").stdout)
    fields = {(r["name"], c["field"]) for r in as_json["resources"] for c in r["differences"]}
    assert as_json["drift"] is True and fields == {
        ("messages", "pointInTimeRecovery.enabled"),
        ("identity-users", "passwordPolicy.minimumLength"),
    }

    up = run_invoke("local.up")
    assert up.returncode == 0 and "2 updated" in up.stdout, up.stdout + up.stderr
    assert run_invoke("infra.drift").returncode == 0


def test_a_moved_rds_address_is_reported_not_drift(twin: Target, plan: StackPlan) -> None:
    outputs = _outputs(twin)
    ec2 = twin.client("ec2")
    declared = ADAPTERS["aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"].expected(
        plan.one("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"), _bare(twin, plan)
    )["CidrIpv4"]
    moved = run_invoke("rds.update-sg-rule", "--ip", "203.0.113.9")
    assert moved.returncode == 0, moved.stderr
    try:
        proc = run_invoke("infra.drift")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert (
            f"cidrIpv4 moved, as expected (the program leaves it to others): declared {declared}, now 203.0.113.9/32"
            in proc.stdout
        )
        twinops.up(twin.stack)
        rule = ec2.describe_security_group_rules(SecurityGroupRuleIds=[outputs[out.RDS_RULE_ID]])["SecurityGroupRules"][
            0
        ]
        assert rule["CidrIpv4"] == "203.0.113.9/32", "local.up never moves the address back"
    finally:
        run_invoke("rds.update-sg-rule", "--ip", declared.removesuffix("/32"))


def _bare(twin: Target, plan: StackPlan) -> Any:
    from ops.resources import Context

    return Context(twin, plan)


def test_a_missing_resource_is_drift_and_up_recreates_it(twin: Target, plan: StackPlan) -> None:
    twin.client("sqs").delete_queue(QueueUrl=_outputs(twin)[out.STREAM_DLQ_URL])
    proc = run_invoke("infra.drift")
    assert proc.returncode == EXIT_DRIFT and "SQS queue stream-consumer-dlq: MISSING" in proc.stdout, proc.stdout
    result = twinops.up(twin.stack)
    assert result.cloud_side is not None and any("stream-consumer-dlq" in c for c in result.cloud_side.created)
    assert not check(plan, twin).drift


def test_the_stream_worker_plays_the_plans_mapping_and_follows_a_change(twin: Target, plan: StackPlan) -> None:
    mapping = plan.one(MAPPING)
    worker = (read_twin("dev") or {})["stream_worker"]
    assert worker["mapping"]["BatchSize"] == mapping.inputs["batchSize"] == twin.stack.stream_batch_size
    with open(f"/proc/{worker['pid']}/cmdline", "rb") as f:
        argv = f.read().split(b"\0")
    assert argv[argv.index(b"--batch-size") + 1] == str(mapping.inputs["batchSize"]).encode(), (
        "the process runs with the plan's batch size"
    )

    smaller = dataclasses.replace(mapping, inputs={**mapping.inputs, "batchSize": 7})
    changed = dataclasses.replace(plan, resources=tuple(smaller if r is mapping else r for r in plan.resources))
    twinops.up(twin.stack, plan=changed)
    restarted = (read_twin("dev") or {})["stream_worker"]
    assert restarted["pid"] != worker["pid"] and restarted["mapping"]["BatchSize"] == 7
    drifted = next(r for r in check(plan, twin).resources if r.type == MAPPING)
    assert [(c.field, c.declared, c.actual) for c in drifted.differences] == [
        ("batchSize", mapping.inputs["batchSize"], 7)
    ]
    twinops.up(twin.stack)
    assert (read_twin("dev") or {})["stream_worker"]["mapping"]["BatchSize"] == mapping.inputs["batchSize"]


def test_local_status_lists_what_the_twin_does_not_serve(twin: Target, plan: StackPlan) -> None:
    proc = run_invoke("local.status")
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("stack dev: not on the twin: "))
    for expected in (
        "Lambda function stream-consumer-function",
        "IAM role stream-consumer-role",
        "log group stream-consumer-logs",
    ):
        assert expected in line
    assert "played by a twin process: event source mapping stream-consumer-mapping (by the stream worker)" in line
    status = {s["stack"]: s for s in json.loads(run_invoke("local.status", "--json").stdout)}
    assert "Lambda function stream-consumer-function" in status["dev"]["not_on_twin"]


def test_drift_on_a_twin_that_is_not_running_is_one_line() -> None:
    from tests.support.helpers import assert_one_line_error

    proc = run_invoke("infra.drift", "--stack", "prod", env={"CRUDDUR_STATE_DIR": os.environ["CRUDDUR_STATE_DIR"]})
    assert_one_line_error(proc, "invoke local.up --stack prod")
