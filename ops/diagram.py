"""The architecture of a stack, drawn from its offline plan with the ``diagrams`` package.

Nodes are the plan's resources (grouped by component), edges are the references between
them: a resource whose inputs carry another's ARN, URL or id depends on it. Drawing from the
plan means the picture can never show a resource the program does not declare.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.errors import ToolMissingError
from ops.plan import PROVIDER_PREFIX, PlannedResource, StackPlan

GRAPHVIZ_HINT = "Graphviz is not installed (no `dot` on PATH): apt-get install graphviz (brew install graphviz on macOS)"

# diagrams node class per resource type, as "module:Class" so nothing loads until drawing.
NODE_CLASSES: dict[str, str] = {
    "aws:dynamodb/table:Table": "diagrams.aws.database:Dynamodb",
    "aws:lambda/function:Function": "diagrams.aws.compute:Lambda",
    "aws:lambda/eventSourceMapping:EventSourceMapping": "diagrams.aws.integration:Eventbridge",
    "aws:sqs/queue:Queue": "diagrams.aws.integration:SQS",
    "aws:cloudwatch/logGroup:LogGroup": "diagrams.aws.management:CloudwatchLogs",
    "aws:iam/role:Role": "diagrams.aws.security:IAMRole",
    "aws:iam/rolePolicy:RolePolicy": "diagrams.aws.security:IAMPermissions",
    "aws:cognito/userPool:UserPool": "diagrams.aws.security:Cognito",
    "aws:cognito/userPoolClient:UserPoolClient": "diagrams.aws.general:Client",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "diagrams.aws.network:Nacl",
    "aws:kms/key:Key": "diagrams.aws.security:KMS",
    "aws:kms/alias:Alias": "diagrams.aws.general:GenericSamlToken",
}
FALLBACK_CLASS = "diagrams.aws.general:General"
# Inputs that name a resource the program does not own (drawn as an external node).
EXTERNAL_REFERENCES: dict[str, tuple[str, str]] = {
    "securityGroupId": ("diagrams.aws.database:RDS", "RDS PostgreSQL\n{value}"),
}


@dataclass(frozen=True)
class Edge:
    source: str  # the resource referred to
    target: str  # the resource whose inputs refer to it


def drawn_resources(plan: StackPlan) -> list[PlannedResource]:
    """What gets a node: every real resource; providers and components are not cloud objects."""
    return [r for r in plan.resources if r.custom and not r.type.startswith(PROVIDER_PREFIX)]


def _node_id(resource: PlannedResource) -> str:
    return f"{resource.type}::{resource.name}"


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def references(plan: StackPlan) -> list[Edge]:
    """Which drawn resource refers to which: ARNs and URLs may sit inside a larger string (a
    policy document), ids must be a whole input value (a name can be a prefix of another name)."""
    nodes = drawn_resources(plan)
    edges: list[Edge] = []
    for target in nodes:
        values = _strings(target.inputs)
        for source in nodes:
            if source is target:
                continue
            embedded = [v for k, v in source.state.items() if k in ("arn", "streamArn", "url") and isinstance(v, str) and v]
            whole = [source.id] if source.id else []
            if any(e in value for e in embedded for value in values) or any(w == value for w in whole for value in values):
                edges.append(Edge(_node_id(source), _node_id(target)))
    return edges


def _load(path: str) -> Any:
    import importlib

    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _label(resource: PlannedResource) -> str:
    # Logical names are short and stable (physical ones, like log group paths, overlap their
    # neighbours); inside a component's box its name prefix is already the box's title.
    prefix = f"{resource.parent}-" if resource.parent else ""
    return resource.name.removeprefix(prefix) if prefix and resource.name != resource.parent else resource.name


def draw(plan: StackPlan, output: Path) -> Path:
    """Write the stack's architecture to ``output`` (PNG) and return its path."""
    if shutil.which("dot") is None:
        raise ToolMissingError(GRAPHVIZ_HINT)
    from diagrams import Cluster, Diagram
    from diagrams import Edge as DiagramEdge

    output = output.resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    nodes = drawn_resources(plan)
    drawn: dict[str, Any] = {}
    title = f"cruddur messaging: stack {plan.stack}"
    with Diagram(title, filename=str(output.with_suffix("")), outformat="png", show=False, direction="LR", graph_attr={"nodesep": "0.8"}):
        groups: dict[str | None, list[PlannedResource]] = {}
        for resource in nodes:
            groups.setdefault(resource.parent, []).append(resource)
        for parent, members in groups.items():
            if parent is None:
                for resource in members:
                    drawn[_node_id(resource)] = _load(NODE_CLASSES.get(resource.type, FALLBACK_CLASS))(_label(resource))
                continue
            with Cluster(parent):
                for resource in members:
                    drawn[_node_id(resource)] = _load(NODE_CLASSES.get(resource.type, FALLBACK_CLASS))(_label(resource))
        for edge in references(plan):
            drawn[edge.source] >> DiagramEdge() >> drawn[edge.target]
        for resource in nodes:
            for key, (cls, label) in EXTERNAL_REFERENCES.items():
                value = resource.inputs.get(key)
                if isinstance(value, str) and value:
                    drawn[_node_id(resource)] >> DiagramEdge(style="dashed") >> _load(cls)(label.format(value=value))
    return output.with_suffix(".png")
