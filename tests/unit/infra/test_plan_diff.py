"""The plan diff CI posts on a pull request, on the real program: a billing-mode change is that one change."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from ops import plan_diff
from ops.plan import check_policies, plan_stack
from ops.stacks import PROJECT_ROOT
from tests.support.helpers import run_invoke


def _plan_json(stack: str, root: Path | None = None) -> dict:
    """What `invoke infra.plan --stack S --json` writes (the plan and its policy results)."""
    plan = plan_stack(stack, root)
    return json.loads(
        json.dumps(plan.to_dict() | {"violations": [asdict(v) for v in check_policies(plan, root)]}, default=str)
    )


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_billing_mode_change_is_exactly_that_change_of_the_table(stack: str, tmp_path: Path) -> None:
    # GIVEN the stack files of a pull request that flips the table's billing mode
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    stack_file = tmp_path / f"Pulumi.{stack}.yaml"
    data = yaml.safe_load(stack_file.read_text())
    before = data["config"].get("cruddur:billingMode", "PAY_PER_REQUEST")
    after = "PAY_PER_REQUEST" if before == "PROVISIONED" else "PROVISIONED"
    data["config"]["cruddur:billingMode"] = after
    stack_file.write_text(yaml.safe_dump(data))
    # WHEN the base and the head are planned offline and compared
    base, head = _plan_json(stack), _plan_json(stack, tmp_path)
    diff = plan_diff.diff_plans(base, head)
    # THEN the one change is the table's billing mode (with the capacities that come and go with it)
    assert not diff.added and not diff.removed and not diff.outputs, plan_diff.lines(diff)
    assert not diff.new_violations and not diff.resolved_violations
    [table] = diff.changed
    assert (table.type, table.name) == ("aws:dynamodb/table:Table", "messages")
    paths = {c.path: c for c in table.changes}
    assert (paths["billingMode"].before, paths["billingMode"].after) == (before, after)
    assert set(paths) - {"billingMode"} <= {
        "readCapacity",
        "writeCapacity",
        "globalSecondaryIndexes[0].readCapacity",
        "globalSecondaryIndexes[0].writeCapacity",
    }
    # AND the task renders it as the row of the comment
    (tmp_path / "base.json").write_text(json.dumps(base))
    (tmp_path / "head.json").write_text(json.dumps(head))
    proc = run_invoke("infra.plan-diff", str(tmp_path / "base.json"), str(tmp_path / "head.json"), "--markdown")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"### {stack}: 1 changed\n")
    [row] = [line for line in proc.stdout.splitlines() if line.startswith("| ~")]
    assert f'`billingMode`: `"{before}"` → `"{after}"`' in row and "`messages`" in row
