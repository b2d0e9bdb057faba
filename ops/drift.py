"""Drift: what the program declares (its offline plan) against what a target has (a twin or the cloud).

Every planned resource with an adapter (``ops.resources``) is found on the target (by its
recorded id or the stack's outputs, else its physical name), read with Describe/Get calls and
compared field by field. Only what the program declares is compared. A missing resource is
drift; a field the program leaves to others (``ignore_changes``, the RDS rule's address) is
reported as expected movement, never as drift.

``pulumi refresh --preview-only`` is the complement: it compares Pulumi's state with the cloud.
This compares the code with any target, a twin included, without the Pulumi CLI.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ops.errors import CloudError, OpsError, ToolMissingError
from ops.plan import StackPlan
from ops.resources import Change, Context, label_of
from ops.target import Target

IN_LINE, DIFFERS, MISSING = "in line", "differs", "missing"
# Drift is not an error of the task: 1 stays "could not check" (the one-line errors), 2 means "checked, and it differs".
EXIT_DRIFT = 2


@dataclass
class ResourceDrift:
    type: str
    name: str  # the program's logical name
    label: str
    physical: str  # where it lives on the target, empty when missing
    status: str  # in line | differs | missing
    differences: list[Change] = field(default_factory=list)
    moved: list[Change] = field(default_factory=list)
    not_compared: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class DriftReport:
    stack: str
    target: str  # "local twin" or "cloud"
    endpoint: str
    resources: list[ResourceDrift] = field(default_factory=list)
    not_compared: list[str] = field(default_factory=list)  # planned resources nothing here can read
    notes: list[str] = field(default_factory=list)

    @property
    def drift(self) -> bool:
        return any(r.status != IN_LINE for r in self.resources)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"drift": self.drift}


def target_outputs(target: Target) -> tuple[dict[str, Any], str]:
    """The stack's live outputs and a note when there are none (resources are then found by name)."""
    from ops.outputs import outputs_for

    try:
        return outputs_for(target), ""
    except (ToolMissingError, CloudError, OpsError) as err:
        return {}, f"no stack outputs ({err}); resources found by their physical names"


def check(plan: StackPlan, target: Target) -> DriftReport:
    """Compare ``plan`` with ``target``, resource by resource."""
    from ops.local.cloud_side import in_order, read_ids
    from ops.resources.mapping import MappingAdapter

    endpoint = "AWS" if target.cloud else str(target.endpoint("dynamodb"))
    report = DriftReport(plan.stack, target.where, endpoint)
    if target.cloud:
        target.client("dynamodb")  # no credentials: the one-line error, before the Pulumi CLI is asked anything
    outputs, note = target_outputs(target)
    if note:
        report.notes.append(note)
    ctx = Context(target, plan, recorded=None if target.cloud else read_ids(plan.stack), outputs=outputs)
    for planned, adapter in in_order(plan):
        if adapter is None:
            report.not_compared.append(f"{label_of(planned.type)} {planned.name}")
            continue
        live = adapter.locate(planned, ctx)
        ctx.learn(planned, live)
        entry = ResourceDrift(planned.type, planned.name, adapter.label, live.physical if live else "", MISSING)
        if ctx.twin and isinstance(adapter, MappingAdapter):
            entry.note = "played by the twin's stream worker"
        if live is None:
            entry.note = entry.note or f"not found on the {target.where}"
            if ctx.twin and isinstance(adapter, MappingAdapter):
                entry.note = "the twin's stream worker is not running (local.up starts it)"
        else:
            result = adapter.compare(planned, live, ctx)
            entry.differences, entry.moved, entry.not_compared = result.differences, result.moved, result.not_compared
            entry.status = DIFFERS if result.differences else IN_LINE
        report.resources.append(entry)
    return report


def show(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def lines(report: DriftReport) -> list[str]:
    """The report for a terminal: one line per resource, one per difference under it, then the verdict."""
    out = [f"drift of stack {report.stack} · {report.target} · {report.endpoint}"]
    out.extend(f"  note: {n}" for n in report.notes)
    for r in report.resources:
        where = f" → {r.physical}" if r.physical else ""
        status = r.status.upper() if r.status != IN_LINE else r.status
        out.append(f"  {r.label} {r.name}{where}: {status}" + (f" ({r.note})" if r.note else ""))
        out.extend(f"      {c.field}: declared {show(c.declared)}, actual {show(c.actual)}" for c in r.differences)
        out.extend(
            f"      {c.field} moved, as expected (the program leaves it to others): declared {show(c.declared)}, now "
            f"{show(c.actual)}"
            for c in r.moved
        )
        if r.not_compared:
            out.append(f"      not compared: {', '.join(r.not_compared)}")
    if report.not_compared:
        out.append(f"  not compared (nothing reads them here): {', '.join(report.not_compared)}")
    drifted = [r for r in report.resources if r.status != IN_LINE]
    if drifted:
        fields = sum(len(r.differences) for r in drifted)
        out.append(
            f"DRIFT: {len(drifted)} of {len(report.resources)} resources differ from the program ({fields} fields, "
            f"{sum(r.status == MISSING for r in drifted)} missing)"
        )
    else:
        out.append(f"no drift: {len(report.resources)} resources as the program declares them")
    return out
