"""The difference between two offline plans of one stack (``invoke infra.plan --json``): what a change does.

CI plans each stack at a pull request's base and at its head, without credentials (the plan runs the
program under mocks), and this module says what differs: resources added and removed, resources
whose inputs or options changed (each changed input by its path, before and after), changed
outputs, and the policy results (violations the change brings and those it resolves). Resources are
matched by type and logical name, as Pulumi matches them in a preview.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ops.errors import ConfigError, NotFoundError
from ops.files import read_text_file

# What identifies a resource across the two plans (its URN's parts that the plan records).
Key = tuple[str, str]
# Compared besides the inputs: what `pulumi preview` would also report as a change of the resource.
OPTIONS = ("protect", "ignore_changes", "parent", "provider")
# A value shown in a line is cut here: a policy document or an asset list is not read in a comment.
SHOWN_CHARS = 120
MARKER = "<!-- cruddur-plan-diff -->"


@dataclass(frozen=True)
class FieldChange:
    path: str  # e.g. "billingMode", "globalSecondaryIndexes[0].readCapacity", "(protect)"
    before: Any
    after: Any


@dataclass(frozen=True)
class ResourceChange:
    type: str
    name: str
    changes: tuple[FieldChange, ...]


@dataclass(frozen=True)
class PlannedRef:
    type: str
    name: str
    inputs: dict[str, Any]


@dataclass(frozen=True)
class PlanDiff:
    stack: str
    added: tuple[PlannedRef, ...] = ()
    removed: tuple[PlannedRef, ...] = ()
    changed: tuple[ResourceChange, ...] = ()
    outputs: tuple[FieldChange, ...] = ()
    new_violations: tuple[dict[str, Any], ...] = ()
    resolved_violations: tuple[dict[str, Any], ...] = ()
    head_violations: tuple[dict[str, Any], ...] = field(default=())

    @property
    def empty(self) -> bool:
        """No resource, output or policy result differs."""
        return not (
            self.added
            or self.removed
            or self.changed
            or self.outputs
            or self.new_violations
            or self.resolved_violations
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"empty": self.empty}


def load_plan(path: Path) -> dict[str, Any]:
    """A plan file as ``infra.plan --json`` writes it; anything else is one line naming the file."""
    try:
        data = json.loads(read_text_file(path, "plan file"))
    except NotFoundError as err:
        raise NotFoundError(f"{err} (write one with `invoke infra.plan --stack S --json`)") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"plan file {path} is not JSON: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("resources"), list) or "stack" not in data:
        raise ConfigError(f"plan file {path} is not a plan of `invoke infra.plan --json` (no stack or resources)")
    return data


def diff_plans(base: dict[str, Any], head: dict[str, Any]) -> PlanDiff:
    """What changes from ``base`` to ``head``, two plans of one stack."""
    if base["stack"] != head["stack"]:
        raise ConfigError(f"the plans are of two stacks ({base['stack']} and {head['stack']}): compare one stack's")
    before, after = _by_key(base), _by_key(head)
    changed = []
    for key in sorted(before.keys() & after.keys()):
        changes = _changes(before[key], after[key])
        if changes:
            changed.append(ResourceChange(type=key[0], name=key[1], changes=tuple(changes)))
    old_violations, new_violations = _violations(base), _violations(head)
    return PlanDiff(
        stack=str(head["stack"]),
        added=tuple(_ref(after[key]) for key in sorted(after.keys() - before.keys())),
        removed=tuple(_ref(before[key]) for key in sorted(before.keys() - after.keys())),
        changed=tuple(changed),
        outputs=tuple(_flat_changes(base.get("outputs") or {}, head.get("outputs") or {}, "")),
        new_violations=tuple(v for v in new_violations if v not in old_violations),
        resolved_violations=tuple(v for v in old_violations if v not in new_violations),
        head_violations=tuple(new_violations),
    )


def _by_key(plan: dict[str, Any]) -> dict[Key, dict[str, Any]]:
    found: dict[Key, dict[str, Any]] = {}
    for resource in plan["resources"]:
        key = (str(resource.get("type")), str(resource.get("name")))
        if key in found:
            # Pulumi would refuse the program (duplicate URN) unless the parents differ; keep them apart by parent
            key = (key[0], f"{resource.get('parent')}/{key[1]}")
        found[key] = resource
    return found


def _ref(resource: dict[str, Any]) -> PlannedRef:
    return PlannedRef(type=str(resource["type"]), name=str(resource["name"]), inputs=dict(resource.get("inputs") or {}))


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[FieldChange]:
    changes = _flat_changes(before.get("inputs") or {}, after.get("inputs") or {}, "")
    for option in OPTIONS:
        if before.get(option) != after.get(option):
            changes.append(FieldChange(f"({option})", before.get(option), after.get(option)))
    return changes


def _flat_changes(before: Any, after: Any, path: str) -> list[FieldChange]:
    """Every leaf that differs, by its path; a JSON document held in a string (a policy) is compared as JSON."""
    before, after = _decoded(before), _decoded(after)
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[FieldChange] = []
        for key in sorted(before.keys() | after.keys(), key=str):
            sub = f"{path}.{key}" if path else str(key)
            out += _flat_changes(before.get(key), after.get(key), sub)
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [
            c for i, (b, a) in enumerate(zip(before, after, strict=True)) for c in _flat_changes(b, a, f"{path}[{i}]")
        ]
    return [] if before == after else [FieldChange(path or "(value)", before, after)]


def _decoded(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _violations(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(v) for v in plan.get("violations") or [] if isinstance(v, dict)]


# ---------------------------------------------------------------------------------------------- rendering


def shown(value: Any) -> str:
    """A value in one short line: JSON, cut at SHOWN_CHARS."""
    text = "(absent)" if value is None else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def _violation_line(v: dict[str, Any]) -> str:
    level = "mandatory" if v.get("mandatory") else "advisory"
    return f"{level} {v.get('rule')}: {v.get('resource')} ({v.get('type')}): {v.get('message')}"


def lines(diff: PlanDiff) -> list[str]:
    """The diff as text, for a terminal."""
    out = [f"stack {diff.stack}: " + summary(diff)]
    out += [f"  + {r.type}  {r.name}" for r in diff.added]
    out += [f"  - {r.type}  {r.name}" for r in diff.removed]
    for r in diff.changed:
        out.append(f"  ~ {r.type}  {r.name}")
        out += [f"      {c.path}: {shown(c.before)} → {shown(c.after)}" for c in r.changes]
    out += [f"  output {c.path}: {shown(c.before)} → {shown(c.after)}" for c in diff.outputs]
    out += [f"  policy, new: {_violation_line(v)}" for v in diff.new_violations]
    out += [f"  policy, resolved: {_violation_line(v)}" for v in diff.resolved_violations]
    return out


def summary(diff: PlanDiff) -> str:
    if diff.empty:
        return "no change"
    parts = [
        f"{len(diff.added)} added" if diff.added else "",
        f"{len(diff.changed)} changed" if diff.changed else "",
        f"{len(diff.removed)} removed" if diff.removed else "",
        f"{len(diff.outputs)} output(s) changed" if diff.outputs else "",
        f"{len(diff.new_violations)} new policy violation(s)" if diff.new_violations else "",
        f"{len(diff.resolved_violations)} resolved" if diff.resolved_violations else "",
    ]
    return ", ".join(p for p in parts if p)


def _cell(text: str) -> str:
    # a table cell: no pipe or newline may end it early (values come from the pull request's code)
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    # a code span that no backtick in the value can close early
    return "`" + _cell(text).replace("`", "'") + "`"


def markdown(diff: PlanDiff) -> str:
    """The diff as a section of the pull request's comment."""
    mandatory = sum(1 for v in diff.head_violations if v.get("mandatory"))
    out = [f"### {diff.stack}: {summary(diff)}", ""]
    rows = [("+", r.type, r.name, "") for r in diff.added] + [("-", r.type, r.name, "") for r in diff.removed]
    rows += [
        (
            "~",
            r.type,
            r.name,
            "<br>".join(f"{_code(c.path)}: {_code(shown(c.before))} → {_code(shown(c.after))}" for c in r.changes),
        )
        for r in diff.changed
    ]
    if rows:
        out += ["| | type | resource | changed inputs |", "|---|---|---|---|"]
        out += [f"| {sign} | {_code(t)} | {_code(n)} | {what} |" for sign, t, n, what in rows]
        out.append("")
    out += [f"- output {_code(c.path)}: {_code(shown(c.before))} → {_code(shown(c.after))}" for c in diff.outputs]
    out += [f"- policy, **new**: {_cell(_violation_line(v))}" for v in diff.new_violations]
    out += [f"- policy, resolved: {_cell(_violation_line(v))}" for v in diff.resolved_violations]
    out.append(
        f"- policy at the head: {mandatory} mandatory, {len(diff.head_violations) - mandatory} advisory violation(s)"
    )
    return "\n".join(out) + "\n"
