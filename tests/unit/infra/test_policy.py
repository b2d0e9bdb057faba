"""Policies as code: ops.policy's rules hold on every stack's plan, catch what they are for, and are the pack's
rules."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from invoke import Context, Exit

from ops.plan import PlannedResource, StackPlan, check_policies, evaluate, plan_stack
from ops.policy import RULES, Resource, check, context_for
from ops.stacks import PROJECT_ROOT, list_stacks
from tests.support.plans import planned

INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
TABLE = "aws:dynamodb/table:Table"
POLICY = "aws:iam/rolePolicy:RolePolicy"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"


def _world_open_plan() -> StackPlan:
    """A program that opens PostgreSQL to 0.0.0.0/0 (bypassing infra/rds_access.py's own check)."""
    import pulumi_aws as aws

    return evaluate(
        lambda: aws.vpc.SecurityGroupIngressRule(
            "wide-open",
            security_group_id="sg-1",
            ip_protocol="tcp",
            from_port=5432,
            to_port=5432,
            cidr_ipv4="0.0.0.0/0",
        ),
        stack="dev",
        project="cruddur",
    )


def _with_inputs(plan: StackPlan, type_: str, **changes: Any) -> StackPlan:
    """The plan with one resource's inputs changed (a key set to None is removed)."""
    resources = []
    for r in plan.resources:
        if r.type == type_:
            inputs = {k: v for k, v in (r.inputs | changes).items() if v is not None}
            r = dataclasses.replace(r, inputs=inputs)
        resources.append(r)
    return dataclasses.replace(plan, resources=tuple(resources))


def _broken(plan: StackPlan, type_: str, **changes: Any) -> list[tuple[str, bool, str]]:
    return [(v.rule, v.mandatory, v.resource) for v in check_policies(_with_inputs(plan, type_, **changes))]


# ---------------------------------------------------------------- the stacks as declared


@pytest.mark.parametrize("stack", list_stacks())
def test_every_stack_holds_every_policy(stack: str) -> None:
    assert check_policies(planned(stack)) == []


# ---------------------------------------------------------------- each rule catches what it is for


def test_a_plan_that_opens_postgres_to_the_world_fails_the_offline_plan() -> None:
    [violation] = check_policies(_world_open_plan())
    assert (violation.rule, violation.mandatory, violation.resource) == ("single-host-ingress", True, "wide-open")
    assert "open to the whole internet" in violation.message


def test_infra_plan_exits_non_zero_on_a_mandatory_violation(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import ops.plan
    from cli.infra import plan as plan_task

    monkeypatch.setattr(ops.plan, "plan_stack", lambda stack: _world_open_plan())
    with pytest.raises(Exit) as err:
        plan_task(Context(), stack="dev")
    assert (
        err.value.code == 1
        and "1 mandatory policy violation" in str(err.value.message)
        and "wide-open" in str(err.value.message)
    )
    assert "mandatory single-host-ingress: wide-open" in capsys.readouterr().out
    with pytest.raises(Exit):
        plan_task(Context(), stack="dev", json=True)
    assert json.loads(capsys.readouterr().out)["violations"][0]["rule"] == "single-host-ingress"


@pytest.mark.parametrize("cidr", ["10.0.0.0/8", "192.0.2.0/31", "::/0", "2001:db8::/64", "not-a-cidr"])
def test_only_one_host_may_come_in(cidr: str) -> None:
    assert _broken(planned("dev"), INGRESS, cidrIpv4=cidr) == [("single-host-ingress", True, "rds-postgres-ingress")]


@pytest.mark.parametrize(
    ("statement", "says"),
    [
        ({"Action": "dynamodb:*", "Resource": "arn:aws:dynamodb:us-east-1:1:table/t"}, "wildcard action"),
        ({"Action": "dynamodb:GetItem", "Resource": "*"}, "every resource"),
        ({"NotAction": "iam:*", "Resource": "arn:aws:dynamodb:us-east-1:1:table/t"}, "NotAction"),
    ],
)
def test_iam_grants_name_their_actions_and_resources(statement: dict[str, Any], says: str) -> None:
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", **statement}]})
    [violation] = check_policies(_with_inputs(planned("dev"), POLICY, policy=policy))
    assert (violation.rule, violation.resource) == (
        "iam-without-wildcards",
        "stream-consumer-policy",
    ) and says in violation.message


def test_a_role_anyone_may_assume_is_refused() -> None:
    trust = json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})
    assert _broken(planned("dev"), "aws:iam/role:Role", assumeRolePolicy=trust) == [
        ("iam-without-wildcards", True, "stream-consumer-role")
    ]


def test_a_protected_stack_keeps_recovery_deletion_protection_and_protect() -> None:
    prod = planned("prod")
    assert _broken(prod, TABLE, pointInTimeRecovery={"enabled": False}) == [
        ("protected-stack-keeps-data", True, "messages")
    ]
    assert _broken(prod, TABLE, deletionProtectionEnabled=False) == [("protected-stack-keeps-data", True, "messages")]
    unprotected = tuple(dataclasses.replace(r, protect=False) if r.type == TABLE else r for r in prod.resources)
    assert [v.message for v in check_policies(dataclasses.replace(prod, resources=unprotected))] == [
        "stack prod is protected: `pulumi destroy` must not delete it (the `protect` option)"
    ]
    assert _broken(prod, "aws:cognito/userPool:UserPool", deletionProtection="INACTIVE") == [
        ("protected-stack-keeps-data", True, "identity-users")
    ]
    assert _broken(planned("dev"), TABLE, pointInTimeRecovery={"enabled": False}) == [], "dev is not protected"


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"destinationConfig": None}, "no on-failure destination"),
        ({"maximumRetryAttempts": -1}, "maximumRetryAttempts is -1"),
        ({"maximumRecordAgeInSeconds": None}, "maximumRecordAgeInSeconds is None"),
    ],
)
def test_the_stream_consumer_keeps_what_it_gives_up_on(changes: dict[str, Any], says: str) -> None:
    [violation] = check_policies(_with_inputs(planned("dev"), MAPPING, **changes))
    assert (violation.rule, violation.mandatory) == ("stream-failures-are-kept", True) and says in violation.message


def test_a_stack_that_declares_another_stacks_table_is_refused(tmp_path: Path) -> None:
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        shutil.copyfile(PROJECT_ROOT / name, tmp_path / name)
    ports = '  cruddur:localAwsPort: "8002"\n  cruddur:localDynamoPort: "8012"\n  cruddur:localPostgresPort: "5444"\n'
    (tmp_path / "Pulumi.staging.yaml").write_text(f"config:\n{ports}  cruddur:tableName: cruddur-messages\n")
    [violation] = check_policies(plan_stack("staging", root=tmp_path), root=tmp_path)
    assert (violation.rule, violation.resource) == ("table-name-is-the-stacks-own", "messages")
    assert (
        violation.message
        == "table 'cruddur-messages' is also stack prod's (region us-east-1): derive the name per stack or pin another"
    )


def test_the_table_stays_encrypted() -> None:
    assert _broken(planned("dev"), TABLE, serverSideEncryption={"enabled": False}) == [
        ("table-is-encrypted", True, "messages")
    ]


@pytest.mark.parametrize(
    ("type_", "changes", "rule"),
    [
        ("aws:sqs/queue:Queue", {"sqsManagedSseEnabled": False}, "queue-is-encrypted"),
        ("aws:cloudwatch/logGroup:LogGroup", {"retentionInDays": None}, "logs-expire"),
        (
            "aws:cognito/userPoolClient:UserPoolClient",
            {"explicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH"]},
            "browser-client-has-no-secret",
        ),
    ],
)
def test_advisory_rules_report_without_failing(
    type_: str, changes: dict[str, Any], rule: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import ops.plan
    from cli.infra import plan as plan_task

    bad = _with_inputs(planned("dev"), type_, **changes)
    assert [(v.rule, v.mandatory) for v in check_policies(bad)] == [(rule, False)]
    monkeypatch.setattr(ops.plan, "plan_stack", lambda stack: bad)
    plan_task(Context(), stack="dev")  # no Exit: advisory only
    assert f"advisory {rule}" in capsys.readouterr().out


# ---------------------------------------------------------------- the policy pack runs the same functions


def _pack() -> ModuleType:
    """policy/__main__.py imported as a module (not as __main__, so it does not start serving)."""
    spec = importlib.util.spec_from_file_location("cruddur_policy_pack", PROJECT_ROOT / "policy" / "__main__.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules.pop("cruddur_policy_pack", None)
    return module


def test_the_pack_registers_every_rule_with_its_level_and_function() -> None:
    from pulumi_policy import EnforcementLevel, ResourceValidationPolicy

    policies = _pack().POLICIES
    assert [p.name for p in policies] == [r.name for r in RULES]
    for policy, rule in zip(policies, RULES, strict=True):
        assert isinstance(policy, ResourceValidationPolicy)
        assert policy.enforcement_level == (EnforcementLevel.MANDATORY if rule.mandatory else EnforcementLevel.ADVISORY)
        assert policy._ResourceValidationPolicy__validate.rule is rule  # type: ignore[attr-defined]  # the very function, not a copy


def _validate(
    policy: Any, resource: PlannedResource, stack: str, monkeypatch: pytest.MonkeyPatch, protect: bool | None = None
) -> list[str]:
    """Run one pack policy as the analyzer would: the engine's stack in PULUMI_STACK, inputs behind the SDK's proxy."""
    from pulumi_policy import PolicyResourceOptions, ResourceValidationArgs
    from pulumi_policy.proxy import unknown_checking_proxy

    monkeypatch.setenv("PULUMI_STACK", f"acme/{stack}")
    opts = PolicyResourceOptions(resource.protect if protect is None else protect, [], False, [], None, [], None)
    args = ResourceValidationArgs(
        resource.type,
        unknown_checking_proxy(json.loads(json.dumps(resource.inputs))),
        f"urn:{resource.name}",
        resource.name,
        opts,
        None,
    )
    reported: list[str] = []
    policy.validate(args, lambda message, urn=None: reported.append(message))
    return reported


def test_the_pack_reports_what_the_rule_function_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    pack = _pack()
    by_name = {p.name: p for p in pack.POLICIES}
    wide = _world_open_plan().one(INGRESS)
    assert _validate(by_name["single-host-ingress"], wide, "dev", monkeypatch) == check(
        RULES[0], Resource(wide.type, wide.name, wide.inputs), context_for("dev")
    )
    assert _validate(by_name["single-host-ingress"], wide, "dev", monkeypatch) == [
        "ingress from 0.0.0.0/0: open to the whole internet"
    ]
    table = planned("prod").one(TABLE)
    pack.stack_context.cache_clear()
    assert _validate(by_name["protected-stack-keeps-data"], table, "prod", monkeypatch) == []
    assert _validate(by_name["protected-stack-keeps-data"], table, "prod", monkeypatch, protect=False) == [
        "stack prod is protected: `pulumi destroy` must not delete it (the `protect` option)"
    ]


def test_the_pack_checks_a_mapping_whose_arns_are_not_known_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    # In a first preview the queue's ARN is unknown; the rule must still see that a destination is set.
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

    mapping = planned("dev").one(MAPPING)
    unknown = dataclasses.replace(
        mapping,
        inputs=mapping.inputs
        | {
            "eventSourceArn": UNKNOWN_STRING_VALUE,
            "destinationConfig": {"onFailure": {"destinationArn": UNKNOWN_STRING_VALUE}},
        },
    )
    policy = {p.name: p for p in _pack().POLICIES}["stream-failures-are-kept"]
    assert _validate(policy, unknown, "dev", monkeypatch) == []
    assert _validate(
        policy,
        dataclasses.replace(mapping, inputs={k: v for k, v in mapping.inputs.items() if k != "destinationConfig"}),
        "dev",
        monkeypatch,
    ) == ["no on-failure destination: a batch that keeps failing is dropped without a trace"]
