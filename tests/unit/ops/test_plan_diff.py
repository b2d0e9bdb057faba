"""ops.plan_diff: what differs between two offline plans of a stack, read the way CI reads it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ops import plan_diff
from ops.errors import ConfigError, InputError, NotFoundError


def _plan(*resources: dict, violations: list[dict] | None = None, outputs: dict | None = None) -> dict:
    return {"stack": "dev", "resources": list(resources), "outputs": outputs or {}, "violations": violations or []}


def _res(type_: str, name: str, **inputs: object) -> dict:
    return {"type": type_, "name": name, "inputs": inputs, "protect": False, "ignore_changes": [], "parent": None}


TABLE = "aws:dynamodb/table:Table"
QUEUE = "aws:sqs/queue:Queue"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def test_identical_plans_differ_in_nothing() -> None:
    base = _plan(_res(TABLE, "messages", billingMode="PAY_PER_REQUEST"))
    diff = plan_diff.diff_plans(base, json.loads(json.dumps(base)))
    assert diff.empty and plan_diff.summary(diff) == "no change"


def test_added_removed_and_changed_resources_each_with_the_changed_inputs_only() -> None:
    base = _plan(_res(TABLE, "messages", billingMode="PAY_PER_REQUEST", hashKey="pk"), _res(QUEUE, "old-dlq"))
    head = _plan(_res(TABLE, "messages", billingMode="PROVISIONED", hashKey="pk"), _res(QUEUE, "dlq"))
    diff = plan_diff.diff_plans(base, head)
    assert [(r.type, r.name) for r in diff.added] == [(QUEUE, "dlq")]
    assert [(r.type, r.name) for r in diff.removed] == [(QUEUE, "old-dlq")]
    [table] = diff.changed
    assert (table.name, table.changes) == (
        "messages",
        (plan_diff.FieldChange("billingMode", "PAY_PER_REQUEST", "PROVISIONED"),),
    )
    assert plan_diff.summary(diff) == "1 added, 1 changed, 1 removed"


def test_nested_inputs_and_json_documents_are_compared_leaf_by_leaf() -> None:
    policy = {"Statement": [{"Action": ["dynamodb:GetItem"], "Effect": "Allow"}]}
    wider = {"Statement": [{"Action": ["dynamodb:GetItem", "dynamodb:PutItem"], "Effect": "Allow"}]}
    base = _plan(
        _res(ROLE_POLICY, "p", policy=json.dumps(policy)), _res(TABLE, "t", pointInTimeRecovery={"enabled": False})
    )
    head = _plan(
        _res(ROLE_POLICY, "p", policy=json.dumps(wider)), _res(TABLE, "t", pointInTimeRecovery={"enabled": True})
    )
    changes = {r.name: [c.path for c in r.changes] for r in plan_diff.diff_plans(base, head).changed}
    # a list that changes length is shown whole; a dict is walked to the leaf that changed
    assert changes == {"p": ["policy.Statement[0].Action"], "t": ["pointInTimeRecovery.enabled"]}


def test_options_such_as_protect_are_changes_of_the_resource() -> None:
    base = _plan(_res(TABLE, "messages"))
    head = _plan(_res(TABLE, "messages") | {"protect": True})
    [table] = plan_diff.diff_plans(base, head).changed
    assert table.changes == (plan_diff.FieldChange("(protect)", False, True),)


def test_policy_results_new_resolved_and_the_heads_count() -> None:
    open_ingress = {"rule": "one-host", "mandatory": True, "resource": "rule", "type": "t", "message": "0.0.0.0/0"}
    retention = {"rule": "log-retention", "mandatory": False, "resource": "logs", "type": "t", "message": "none"}
    diff = plan_diff.diff_plans(_plan(violations=[retention]), _plan(violations=[open_ingress]))
    assert diff.new_violations == (open_ingress,) and diff.resolved_violations == (retention,)
    text = plan_diff.markdown(diff)
    assert "policy, **new**: mandatory one-host: rule (t): 0.0.0.0/0" in text
    assert "policy, resolved: advisory log-retention" in text
    assert "1 mandatory, 0 advisory" in text


def test_changed_outputs_are_listed() -> None:
    diff = plan_diff.diff_plans(_plan(outputs={"tableName": "a"}), _plan(outputs={"tableName": "b"}))
    assert diff.outputs == (plan_diff.FieldChange("tableName", "a", "b"),)


def test_markdown_keeps_a_table_cell_whole_whatever_the_value() -> None:
    base = _plan(_res(TABLE, "messages", description="a"))
    head = _plan(_res(TABLE, "messages", description="x|y`z\nw"))
    row = [line for line in plan_diff.markdown(plan_diff.diff_plans(base, head)).splitlines() if line.startswith("| ~")]
    assert len(row) == 1 and row[0].count(" | ") == 3, row
    assert "\\|" in row[0]


def test_long_values_are_cut_in_the_text() -> None:
    assert len(plan_diff.shown("x" * 1000)) == plan_diff.SHOWN_CHARS


def test_two_stacks_plans_are_refused() -> None:
    with pytest.raises(ConfigError, match="two stacks"):
        plan_diff.diff_plans(_plan(), _plan() | {"stack": "prod"})


def test_a_plan_file_that_is_not_one_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        plan_diff.load_plan(tmp_path / "missing.json")
    with pytest.raises(InputError, match="is a directory"):
        plan_diff.load_plan(tmp_path)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="is not JSON"):
        plan_diff.load_plan(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"a": 1}')
    with pytest.raises(ConfigError, match="not a plan"):
        plan_diff.load_plan(tmp_path / "other.json")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo")
        with pytest.raises(InputError, match="is a FIFO"):
            plan_diff.load_plan(tmp_path / "fifo")
