"""Stacks that can share an account: every physical name AWS wants unique is derived per stack."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ops.plan import PlannedResource, StackPlan, physical_names, plan_stack
from ops.plan import name_collisions as collisions
from ops.stacks import PROJECT_ROOT, list_stacks, load_stack
from tests.support.plans import planned

TABLE = "aws:dynamodb/table:Table"


def test_no_two_stack_files_declare_the_same_physical_name_in_one_region() -> None:
    plans = [planned(stack) for stack in list_stacks()]
    assert len(plans) >= 2
    assert collisions(plans) == []


def test_every_named_resource_type_is_compared() -> None:
    # The check above is only as good as what it compares: the names AWS refuses twice in a region/account.
    types = {type_ for _, type_, _ in physical_names(planned("dev"))}
    assert {
        TABLE,
        "aws:lambda/function:Function",
        "aws:sqs/queue:Queue",
        "aws:iam/role:Role",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:cognito/userPool:UserPool",
    } <= types
    scopes = {(scope, type_) for scope, type_, _ in physical_names(planned("dev"))}
    assert ("global", "aws:iam/role:Role") in scopes, "IAM names are account-wide"
    assert ("us-east-1", TABLE) in scopes


def test_prod_keeps_the_table_the_application_reads_and_dev_gets_its_own() -> None:
    assert planned("prod").one(TABLE).inputs["name"] == "cruddur-messages"
    assert planned("dev").one(TABLE).inputs["name"] == "cruddur-messages-dev"
    assert load_stack("dev").table_name == "cruddur-messages-dev"  # what every task of the dev stack reads


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    for name in ["Pulumi.yaml", *(f"Pulumi.{s}.yaml" for s in list_stacks())]:
        shutil.copyfile(PROJECT_ROOT / name, tmp_path / name)
    return tmp_path


def _add_stack(root: Path, name: str, *lines: str) -> None:
    ports = (
        '  cruddur:localAwsPort: "8002"',
        '  cruddur:localDynamoPort: "8012"',
        '  cruddur:localPostgresPort: "5444"',
    )
    (root / f"Pulumi.{name}.yaml").write_text("\n".join(["config:", *ports, *lines]) + "\n")


def test_a_new_stack_gets_names_of_its_own(project_copy: Path) -> None:
    _add_stack(project_copy, "staging")
    staging = plan_stack("staging", root=project_copy)
    assert staging.one(TABLE).inputs["name"] == "cruddur-messages-staging"
    assert collisions([planned("dev"), planned("prod"), staging]) == []


def test_a_stack_that_pins_another_stacks_table_is_named(project_copy: Path) -> None:
    _add_stack(project_copy, "staging", "  cruddur:tableName: cruddur-messages")
    found = collisions([planned("dev"), planned("prod"), plan_stack("staging", root=project_copy)])
    assert f"{TABLE} 'cruddur-messages' (us-east-1) is declared by stack prod and stack staging" in found
    # and what is named after the table (the export path's catalog and workgroup) collides with it, named too
    assert all(line.endswith("is declared by stack prod and stack staging") for line in found) and len(found) == 4


def test_the_same_table_name_in_another_region_is_no_collision(project_copy: Path) -> None:
    _add_stack(project_copy, "eu", "  aws:region: eu-central-1", "  cruddur:tableName: cruddur-messages")
    assert collisions([planned("prod"), plan_stack("eu", root=project_copy)]) == []


def test_iam_names_collide_across_regions() -> None:
    def plan(stack: str, region: str) -> StackPlan:
        provider = PlannedResource("pulumi:providers:aws", "aws", True, inputs={"region": region})
        role = PlannedResource("aws:iam/role:Role", "role", True, provider="aws", inputs={"name": "shared-role"})
        return StackPlan(stack, (provider, role), {})

    assert collisions([plan("a", "us-east-1"), plan("b", "eu-central-1")]) == [
        "aws:iam/role:Role 'shared-role' (global) is declared by stack a and stack b"
    ]
