"""The cloud side of a twin, built from the stack's plan: what ``pulumi up`` creates, created on the twin.

``local.up`` walks the plan of the Pulumi program (``ops.plan``) and, for every resource the
engine can serve (table, user pool and client, ingress rule, queue, KMS key and alias), creates it
with the plan's settings or brings an existing one to them in place, through the same adapters
that ``infra.drift`` compares with (``ops.resources``). Nothing here declares a resource: change
``infra/`` and the next ``local.up`` follows.

Existing resources are found again by the ids recorded last time (``resources.json``,
``outputs.json``) or by their physical names, so ids survive. What cannot change in place
(a table's keys, a pool's schema) is reported, never destroyed: a twin's data is a developer's.
The event source mapping is played by the stream worker, which ``local.up`` starts with the
mapping's settings; the rest (Lambda, IAM, log group) is listed as not on the twin.

One twin-only resource is not in the plan: the RDS instance's security group, which the cloud
stack does not create either (it adds a rule to an existing group); the twin stands one in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops.aws import call
from ops.files import write_atomic
from ops.plan import PlannedResource, StackPlan
from ops.resources import ADAPTERS, Adapter, Context, Live, label_of
from ops.resources.mapping import MappingAdapter
from ops.resources.network import IngressRuleAdapter
from ops.stacks import StackSettings
from ops.target import Target, stack_state_dir


@dataclass
class CloudSide:
    """What one reconcile did, resource by resource (each entry "<label> <logical name> (<physical>)…")."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)  # differs where the twin cannot change it in place
    not_served: list[str] = field(default_factory=list)  # in the plan, not on the twin
    played: list[str] = field(default_factory=list)  # in the plan, played by a twin process
    outputs: dict[str, Any] = field(default_factory=dict)
    ids: dict[str, dict[str, str]] = field(default_factory=dict)  # logical name -> live identity
    worker: dict[str, Any] | None = None  # the stream worker's settings, from the plan's mapping


def ids_file(stack: str) -> Path:
    return stack_state_dir(stack) / "resources.json"


def read_ids(stack: str) -> dict[str, dict[str, str]]:
    path = ids_file(stack)
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def stand_in_group_name(stack: StackSettings) -> str:
    return f"{stack.project}-{stack.name}-rds"


def ensure_stand_in_group(ctx: Context, recorded_id: str | None) -> str:
    """The twin's stand-in for the RDS instance's existing security group: the recorded one, or by name, or new."""
    ec2 = ctx.client("ec2")
    stack = ctx.target.stack
    if recorded_id:
        found = call(
            ec2.describe_security_groups,
            "DescribeSecurityGroups",
            Filters=[{"Name": "group-id", "Values": [recorded_id]}],
        )["SecurityGroups"]
        if found:
            return recorded_id
    name = stand_in_group_name(stack)
    found = call(
        ec2.describe_security_groups,
        f"DescribeSecurityGroups {name}",
        Filters=[{"Name": "group-name", "Values": [name]}],
    )["SecurityGroups"]
    if found:
        return str(found[0]["GroupId"])
    created = call(
        ec2.create_security_group,
        f"CreateSecurityGroup {name}",
        GroupName=name,
        Description=f"Stands in for the RDS instance's group of stack {stack.name}",
    )
    return str(created["GroupId"])


def in_order(plan: StackPlan) -> list[tuple[PlannedResource, Adapter | None]]:
    """The plan's resources (components left out), those others refer to first."""
    custom = [(i, r) for i, r in enumerate(plan.resources) if r.custom]
    ranked = sorted(custom, key=lambda ir: (ADAPTERS[ir[1].type].order if ir[1].type in ADAPTERS else 9, ir[0]))
    return [(r, ADAPTERS.get(r.type)) for _, r in ranked]


def describe(adapter: Adapter | None, planned: PlannedResource, live: Live | None = None) -> str:
    where = f" ({live.physical})" if live is not None else ""
    return f"{label_of(planned.type) if adapter is None else adapter.label} {planned.name}{where}"


def reconcile(
    target: Target,
    plan: StackPlan,
    outputs: dict[str, Any] | None = None,
    ids: dict[str, dict[str, str]] | None = None,
    only: tuple[str, ...] | None = None,
) -> CloudSide:
    """Create or update every resource of ``plan`` the twin serves (``only``: these types alone)."""
    from ops import outputs as out

    recorded_outputs = dict(outputs or {})
    ctx = Context(target, plan, recorded=ids, outputs=recorded_outputs)
    result = CloudSide()
    rules = plan.of_type(IngressRuleAdapter.type)
    if ctx.twin and rules and (only is None or IngressRuleAdapter.type in only):
        group = ensure_stand_in_group(ctx, recorded_outputs.get(out.RDS_SECURITY_GROUP_ID))
        for rule in rules:  # the rule the cloud adds to an existing group goes to the stand-in
            ctx.subst[str(rule.inputs.get("securityGroupId"))] = group

    for planned, adapter in in_order(plan):
        if only is not None and planned.type not in only:
            continue
        if adapter is None:
            result.not_served.append(describe(adapter, planned))
            continue
        if isinstance(adapter, MappingAdapter):
            result.worker = adapter.worker_settings(planned, ctx)
            result.played.append(f"{adapter.label} {planned.name} (by the stream worker)")
            continue
        live = _reconcile_one(adapter, planned, ctx, result)
        ctx.learn(planned, live)
        result.ids[planned.name] = live.identity

    # The twin's outputs are the plan's, with every mocked id replaced by the twin's own.
    result.outputs = {**recorded_outputs, **{name: ctx.resolve(value) for name, value in plan.outputs.items()}}
    return result


def _reconcile_one(adapter: Adapter, planned: PlannedResource, ctx: Context, result: CloudSide) -> Live:
    want = adapter.expected(planned, ctx)
    live = adapter.locate(planned, ctx)
    if live is not None and adapter.replace_on:
        first = adapter.compare(planned, live, ctx)
        if any(c.field in adapter.replace_on for c in first.differences):
            # another name is another resource: the recorded one stays (it may hold users), the declared one is used
            old = live.physical
            live = adapter.find_by_name(adapter.physical_name(planned), ctx)
            result.replaced.append(
                f"{describe(adapter, planned)}: now {adapter.physical_name(planned)}, {old} left in place"
            )
    if live is None:
        live = adapter.create(planned, want, ctx)
        result.created.append(describe(adapter, planned, live))
        return live
    differences = adapter.compare(planned, live, ctx).differences
    if not differences:
        result.unchanged.append(describe(adapter, planned, live))
        return live
    adapter.update(planned, want, live, {c.api for c in differences}, ctx)
    live = adapter.locate(planned, ctx) or live
    left = adapter.compare(planned, live, ctx).differences
    fixed = [c.field for c in differences if c.field not in {d.field for d in left}]
    if fixed:
        result.updated.append(f"{describe(adapter, planned, live)}: {', '.join(fixed)}")
    if left:
        result.stuck.append(
            f"{describe(adapter, planned, live)}: {', '.join(c.field for c in left)} cannot change in place on the twin"
        )
    return live


def save(stack: str, result: CloudSide) -> None:
    """Record outputs (what the tasks read) and ids (how the next local.up finds each resource again)."""
    from ops.target import outputs_file

    write_atomic(outputs_file(stack), json.dumps(result.outputs, indent=2, sort_keys=True))
    write_atomic(ids_file(stack), json.dumps(result.ids, indent=2, sort_keys=True))
