"""What every resource adapter shares: the field mapping, the live view, the comparison and the context.

An adapter knows one resource type of the Pulumi program (``aws:dynamodb/table:Table`` …). Its
``fields`` are the one mapping from the program's input names (camelCase, as the plan holds
them) to the API's names; everything else follows from it:

- ``expected``: the plan's inputs in the API's names and forms (``{"Policies.PasswordPolicy.MinimumLength": 12}``);
- ``actual``: the live resource, read with Describe/Get calls into the same flat shape;
- ``compare``: the two, field by field, reported under the program's names;
- on a twin, ``create`` and ``update`` send the expected values back as requests.

Only what the program declares is compared: an input the program leaves out is AWS's default
and no business of a drift check.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ops.plan import PlannedResource, StackPlan
from ops.target import Target

# What a field reads as when the engine has no API for it (an engine gap, listed, never drift).
NOT_SERVED = "(not served by this engine)"


def identity(value: Any) -> Any:
    return value


def as_sorted(value: Any) -> Any:
    """An order-free list (auth flows, verified attributes) in one order."""
    return sorted(value) if isinstance(value, list) else value


def as_str(value: Any) -> Any:
    """SQS and Cognito's schema carry numbers and booleans as strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return None if value is None else str(value)


def as_json(value: Any) -> Any:
    """A JSON document (a filter pattern, a policy) in one spelling, so key order and spaces never differ."""
    if isinstance(value, str):
        try:
            return json.dumps(json.loads(value), sort_keys=True, separators=(",", ":"))
        except ValueError:
            return value
    return value


def tags_dict(value: Any) -> dict[str, str]:
    """Tags as a dict, from a dict or AWS's ``[{"Key": …, "Value": …}]``; AWS's own ``aws:`` tags left out."""
    if isinstance(value, list):
        pairs = {str(t.get("Key", t.get("TagKey"))): str(t.get("Value", t.get("TagValue"))) for t in value}
    else:
        pairs = {str(k): str(v) for k, v in (value or {}).items()}
    return {k: v for k, v in sorted(pairs.items()) if not k.startswith("aws:")}


@dataclass(frozen=True)
class Field:
    """One setting: its name in the program (``input``) and in the API (``api``), both dotted paths."""

    input: str
    api: str
    to_api: Callable[[Any], Any] = identity  # the plan's value in the API's form (a number as SQS's string)
    normalize: Callable[[Any], Any] = identity  # both sides, before comparing (an order-free list sorted)
    subset: bool = False  # a dict compared on the keys the program declares (Cognito lists every standard attribute)
    in_place: bool = True  # False: AWS cannot change it without replacing the resource


def nested(pairs: list[tuple[str, str]], input_prefix: str, api_prefix: str, **options: Any) -> tuple[Field, ...]:
    """Fields of one nested block (``passwordPolicy.*`` → ``Policies.PasswordPolicy.*``), one per setting."""
    return tuple(Field(f"{input_prefix}.{i}", f"{api_prefix}.{a}", **options) for i, a in pairs)


def get_path(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[last] = value


def nest(flat: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"A.B": 1, "C": 2}`` → ``{"A": {"B": 1}, "C": 2}`` (only keys under ``prefix``, which is dropped)."""
    out: dict[str, Any] = {}
    for path, value in flat.items():
        if prefix and not path.startswith(prefix + "."):
            continue
        set_path(out, path[len(prefix) + 1 :] if prefix else path, value)
    return out


@dataclass
class Live:
    """A resource as the target has it."""

    physical: str  # the name or id a person recognises (table name, pool id, rule id)
    identity: dict[str, str]  # the same keys as the plan's mocked state (id, arn, streamArn, url…)
    view: dict[str, Any]  # its settings under the API's names, nested as the API nests them


@dataclass(frozen=True)
class Change:
    """One field that differs: under the program's name (and the API's), declared and actual in the API's form."""

    field: str
    api: str
    declared: Any
    actual: Any


@dataclass
class Comparison:
    differences: list[Change] = field(default_factory=list)
    moved: list[Change] = field(default_factory=list)  # fields the program leaves to others (ignore_changes)
    not_compared: list[str] = field(default_factory=list)  # fields the target cannot show

    def fields_not_in_place(self, adapter: Adapter) -> list[str]:
        fixed = {f.input for f in adapter.fields if not f.in_place}
        return [c.field for c in self.differences if c.field in fixed]


class Context:
    """What adapters share while they walk one plan on one target: clients, ids learnt so far, recorded ids."""

    def __init__(
        self,
        target: Target,
        plan: StackPlan,
        recorded: dict[str, dict[str, str]] | None = None,
        outputs: dict[str, Any] | None = None,
    ) -> None:
        self.target = target
        self.plan = plan
        self.twin = not target.cloud
        self.recorded = dict(recorded or {})  # logical name -> identity, from a previous local.up
        self.outputs = dict(outputs or {})  # the stack's live outputs, when known
        self.subst: dict[str, str] = {}  # a mocked id/ARN of the plan -> the live one
        self.live: dict[str, Live | None] = {}  # logical name -> what was found
        self._clients: dict[str, Any] = {}
        self._cache: dict[str, Any] = {}
        for name, mocked in plan.outputs.items():
            have = self.outputs.get(name)
            if isinstance(mocked, str) and mocked and isinstance(have, str) and have:
                self.subst.setdefault(mocked, have)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.target.client(service)
        return self._clients[service]

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def resolve(self, value: Any) -> Any:
        """``value`` with every mocked id or ARN of the plan replaced by the live one learnt so far."""
        if isinstance(value, str):
            if value in self.subst:
                return self.subst[value]
            for mocked, live in self.subst.items():
                if (
                    mocked.startswith("arn:")
                    and value.startswith(mocked)
                    and value[len(mocked) : len(mocked) + 1] in ("/", ":")
                ):
                    return live + value[len(mocked) :]  # an index ARN under the table's, a log stream under its group
            return value
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def known_id(self, planned: PlannedResource) -> str | None:
        """The live id of ``planned`` when something recorded it (the twin's last local.up, the stack's outputs)."""
        recorded = self.recorded.get(planned.name, {}).get("id")
        if recorded:
            return recorded
        resolved = self.resolve(planned.id) if planned.id else None
        return resolved if resolved and resolved != planned.id else None

    def learn(self, planned: PlannedResource, live: Live | None) -> None:
        """Remember where ``planned`` lives, so what refers to it (its ARN, its id) compares with the live value."""
        self.live[planned.name] = live
        # only what the mocks made up (ids, ARNs, URLs): the inputs are the program's own words
        mocked = {
            "id": planned.id,
            **{k: v for k, v in planned.state.items() if k not in planned.inputs and isinstance(v, str)},
        }
        for key, value in mocked.items():
            if not value:
                continue
            if live is None:
                self.subst.setdefault(value, f"<{planned.name}: missing>")
            elif key in live.identity and live.identity[key]:
                self.subst[value] = live.identity[key]


class Adapter:
    """One resource type: the field mapping, how to find and read it, and (twin) how to create and update it."""

    type: ClassVar[str]
    label: ClassVar[str]  # what a person calls it ("DynamoDB table")
    service: ClassVar[str]  # the boto3 client it needs
    fields: ClassVar[tuple[Field, ...]]
    order: ClassVar[int] = 1  # resources others refer to go first (a key before its table, a pool before its client)
    on_twin: ClassVar[bool] = True  # False: the twin's engine cannot serve it
    replace_on: ClassVar[tuple[str, ...]] = ()  # inputs whose change makes it another resource (Pulumi replaces it)

    # --------------------------------------------------------------- the plan's side
    def declared(self, planned: PlannedResource, ctx: Context) -> dict[str, Any]:
        """The inputs, references resolved to live ids, tags as the provider's defaults make them."""
        inputs = dict(planned.inputs)
        if planned.taggable:
            inputs["tags"] = dict(planned.tags)
        return ctx.resolve(inputs)  # type: ignore[no-any-return]

    def expected(self, planned: PlannedResource, ctx: Context) -> dict[str, Any]:
        inputs = self.declared(planned, ctx)
        out: dict[str, Any] = {}
        for f in self.fields:
            value = get_path(inputs, f.input)
            if value is None:
                continue
            converted = f.to_api(value)
            if converted is not None:
                out[f.api] = f.normalize(converted)
        return out

    def physical_name(self, planned: PlannedResource) -> str:
        return str(planned.inputs.get("name") or planned.name)

    # --------------------------------------------------------------- the target's side
    def locate(self, planned: PlannedResource, ctx: Context) -> Live | None:
        """The live resource, found by its recorded id or its physical name; None when it does not exist."""
        raise NotImplementedError

    def find_by_name(self, name: str, ctx: Context) -> Live | None:
        """The live resource of this physical name, whatever was recorded (for ``replace_on`` types)."""
        raise NotImplementedError

    def actual(self, live: Live) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in self.fields:
            value = get_path(live.view, f.api)
            out[f.api] = value if value == NOT_SERVED else f.normalize(value)
        return out

    def compare(
        self, planned: PlannedResource, live: Live, ctx: Context, only: tuple[str, ...] | None = None
    ) -> Comparison:
        want = self.expected(planned, ctx)
        have = self.actual(live)
        moved_inputs = set(planned.ignore_changes)
        result = Comparison()
        for f in self.fields:
            if f.api not in want or (only is not None and f.api not in only):
                continue
            declared, actual = want[f.api], have.get(f.api)
            if actual == NOT_SERVED:
                result.not_compared.append(f.input)
                continue
            if f.subset:
                actual = _project(actual, declared)
            if declared == actual:
                continue
            change = Change(f.input, f.api, declared, actual)
            (result.moved if f.input.split(".")[0] in moved_inputs else result.differences).append(change)
        return result

    # --------------------------------------------------------------- a twin's reconcile
    def create(self, planned: PlannedResource, want: dict[str, Any], ctx: Context) -> Live:
        raise NotImplementedError(f"the twin cannot create a {self.label}")

    def update(
        self, planned: PlannedResource, want: dict[str, Any], live: Live, changed: set[str], ctx: Context
    ) -> None:
        """Send what AWS lets change in place; ``changed`` holds the API paths that differ."""
        raise NotImplementedError(f"the twin cannot update a {self.label}")


def _project(actual: Any, declared: Any) -> Any:
    """``actual`` cut down to the keys ``declared`` has, at every depth."""
    if isinstance(declared, dict) and isinstance(actual, dict):
        return {k: _project(actual.get(k), v) for k, v in declared.items()}
    return actual
