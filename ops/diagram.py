"""The architecture of a stack, drawn from its offline plan with the ``diagrams`` package.

Two views. The default, ``flow``, is the picture people look at: who writes the table (the
application and the ops tasks), the table's stream to the consumer and back, failed batches to
the dead-letter queue, sign-in through the user pool and its link to PostgreSQL, the developer's
address to the RDS rule; each resource labelled with what the plan says of it (names, batch
size, retries, retention) and the stack's protections marked on what they protect.
``dependencies`` is the engineer's view: every resource, grouped by component, an edge where
one's inputs carry another's ARN, URL or id. Drawing from the plan means neither picture can
show a resource the program does not declare.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.errors import ConfigError, ToolMissingError
from ops.plan import PROVIDER_PREFIX, PlannedResource, StackPlan

GRAPHVIZ_HINT = (
    "Graphviz is not installed (no `dot` on PATH): apt-get install graphviz (brew install graphviz on macOS)"
)

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
    "aws:s3/bucket:Bucket": "diagrams.aws.storage:SimpleStorageServiceS3Bucket",
    "aws:glue/catalogDatabase:CatalogDatabase": "diagrams.aws.analytics:GlueDataCatalog",
    "aws:glue/catalogTable:CatalogTable": "diagrams.aws.analytics:GlueDataCatalog",
    "aws:athena/workgroup:Workgroup": "diagrams.aws.analytics:Athena",
    "aws:iam/policy:Policy": "diagrams.aws.security:IAMPermissions",
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
            embedded = [
                v for k, v in source.state.items() if k in ("arn", "streamArn", "url") and isinstance(v, str) and v
            ]
            whole = [source.id] if source.id else []
            if any(e in value for e in embedded for value in values) or any(
                w == value for w in whole for value in values
            ):
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


VIEWS = ("flow", "dependencies")


def draw(plan: StackPlan, output: Path, view: str = "flow") -> Path:
    """Write the stack's architecture to ``output`` (PNG) and return its path."""
    if view not in VIEWS:
        raise ConfigError(f"unknown diagram view {view!r}: {', '.join(VIEWS)}")
    output = output.resolve()
    if output.suffix.lower() != ".png":
        raise ConfigError(f"the diagram is a PNG: give --output a name ending in .png, not {output.name!r}")
    if shutil.which("dot") is None:
        raise ToolMissingError(GRAPHVIZ_HINT)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot write the diagram to {output}: {err.strerror}") from None
    return draw_flow(plan, output) if view == "flow" else draw_dependencies(plan, output)


def draw_dependencies(plan: StackPlan, output: Path) -> Path:
    """Every resource by component, an edge for each reference: what depends on what."""
    from diagrams import Cluster, Diagram
    from diagrams import Edge as DiagramEdge

    nodes = drawn_resources(plan)
    drawn: dict[str, Any] = {}
    title = f"cruddur messaging: stack {plan.stack} (dependencies)"
    with Diagram(
        title,
        filename=str(output.with_suffix("")),
        outformat="png",
        show=False,
        direction="LR",
        graph_attr={"nodesep": "0.6"},  # the export path's resources made 0.8 taller than a screen
    ):
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


# ---------------------------------------------------------------- the data-flow view

PROTECTED_COLOUR = "#b3261e"
FLOW_COLOUR = "#2f5d8a"
FAILURE_COLOUR = "#b3261e"
QUIET_COLOUR = "#6b7785"


def _one(plan: StackPlan, type_: str) -> PlannedResource | None:
    found = [r for r in plan.resources if r.type == type_ and r.custom]
    return found[0] if found else None


def protections(resource: PlannedResource | None) -> list[str]:
    """What keeps a resource's data from being lost, as the plan declares it."""
    if resource is None:
        return []
    marks = []
    if (resource.inputs.get("pointInTimeRecovery") or {}).get("enabled"):
        marks.append("point-in-time recovery")
    if (
        resource.inputs.get("deletionProtectionEnabled") is True
        or resource.inputs.get("deletionProtection") == "ACTIVE"
    ):
        marks.append("deletion protection")
    if resource.protect:
        marks.append("Pulumi protect")
    return marks


def _retention(days: Any) -> str:
    return f"{days} days" if days else "kept forever"


def flow_labels(plan: StackPlan) -> dict[str, str]:
    """Every node's label in the flow view, from the plan (what the tests read, and what the picture shows)."""
    table = _one(plan, "aws:dynamodb/table:Table")
    mapping = _one(plan, "aws:lambda/eventSourceMapping:EventSourceMapping")
    function = _one(plan, "aws:lambda/function:Function")
    queue = _one(plan, "aws:sqs/queue:Queue")
    logs = _one(plan, "aws:cloudwatch/logGroup:LogGroup")
    pool = _one(plan, "aws:cognito/userPool:UserPool")
    client = _one(plan, "aws:cognito/userPoolClient:UserPoolClient")
    rule = _one(plan, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")

    def marked(lines: list[str], resource: PlannedResource | None) -> str:
        marks = protections(resource)
        return "\n".join(lines + (["PROTECTED:", ", ".join(marks)] if marks else []))

    labels = {
        "writers": "application backend\n+ ops tasks (invoke ddb.*)",
        "people": "people signing in\n(web and mobile clients)",
        "developer": "developer's address\n(invoke rds.update-sg-rule)",
        "postgres": "RDS PostgreSQL\nusers table",
    }
    if table:
        labels["table"] = marked(
            ["messages table", str(table.inputs.get("name", "")), f"stream: {table.inputs.get('streamViewType', '')}"],
            table,
        )
    if mapping:
        retries = mapping.inputs.get("maximumRetryAttempts")
        labels["mapping"] = f"event source mapping\nbatches of {mapping.inputs.get('batchSize')}" + (
            f", {retries} retries" if retries is not None else ""
        )
    if function:
        labels["function"] = f"stream consumer (Lambda)\n{function.inputs.get('name', '')}"
    if queue:
        seconds = queue.inputs.get("messageRetentionSeconds")
        labels["queue"] = f"dead-letter queue (SQS)\n{queue.inputs.get('name', '')}" + (
            f"\nkept {int(seconds) // 86400} days" if seconds else ""
        )
    if logs:
        labels["logs"] = f"log group\n{_retention(logs.inputs.get('retentionInDays'))}"
    if pool:
        labels["pool"] = marked(["Cognito user pool", str(pool.inputs.get("name", ""))], pool)
    if client:
        labels["client"] = f"app client '{client.inputs.get('name', '')}'\n(SRP, no secret)"
    if rule:
        labels["rule"] = (
            f"security group rule\n{rule.inputs.get('cidrIpv4', '')} → tcp {rule.inputs.get('fromPort', '')}"
        )
        labels["postgres"] += f"\n{rule.inputs.get('securityGroupId', '')}"
    return labels


def draw_flow(plan: StackPlan, output: Path) -> Path:
    """Where the data goes, left to right; red marks what protects it and where failures go."""
    from diagrams import Cluster, Diagram
    from diagrams import Edge as DiagramEdge

    labels = flow_labels(plan)
    marks = protections(_one(plan, "aws:dynamodb/table:Table")) + protections(
        _one(plan, "aws:cognito/userPool:UserPool")
    )
    title = f"cruddur messaging · stack {plan.stack} · data flow\n" + (
        "red: protected resources (their data survives a mistaken delete)"
        if marks
        else "no protections on this stack: a delete removes the data"
    )
    graph = {
        "fontsize": "22",
        "fontname": "Helvetica",
        "pad": "0.6",
        "nodesep": "1.1",
        "ranksep": "1.8",
        "splines": "spline",
        "labelloc": "t",
        "newrank": "true",
    }
    node_attr = {"fontsize": "15", "fontname": "Helvetica"}
    edge_attr = {"fontsize": "14", "fontname": "Helvetica", "penwidth": "2"}

    def node(key: str, cls: str) -> Any:
        protected = "PROTECTED" in labels.get(key, "")
        # the icon sits above its label: leave each line of a 15 pt label its room, or the text runs into the icon
        height = 2.0 + 0.5 * labels[key].count("\n")
        return _load(cls)(labels[key], fontcolor=PROTECTED_COLOUR if protected else "#1f2328", height=f"{height:.1f}")

    def edge(label: str, colour: str = FLOW_COLOUR, style: str = "solid") -> Any:
        return DiagramEdge(label=label, color=colour, fontcolor=colour, style=style)

    with Diagram(
        title,
        filename=str(output.with_suffix("")),
        outformat="png",
        show=False,
        direction="LR",
        graph_attr=graph,
        node_attr=node_attr,
        edge_attr=edge_attr,
    ):
        writers = node("writers", "diagrams.onprem.compute:Server")
        people = node("people", "diagrams.onprem.client:Users")
        developer = node("developer", "diagrams.onprem.client:User")
        postgres = node("postgres", "diagrams.aws.database:RDS")
        with Cluster(
            "messages: one DynamoDB table, its stream and the consumer",
            graph_attr={"fontsize": "17", "bgcolor": "#eef4fa"},
        ):
            table = node("table", "diagrams.aws.database:Dynamodb") if "table" in labels else None
            mapping = node("mapping", "diagrams.aws.integration:Eventbridge") if "mapping" in labels else None
            queue = node("queue", "diagrams.aws.integration:SQS") if "queue" in labels else None
            function = node("function", "diagrams.aws.compute:Lambda") if "function" in labels else None
            logs = node("logs", "diagrams.aws.management:CloudwatchLogs") if "logs" in labels else None
        with Cluster("identity", graph_attr={"fontsize": "17", "bgcolor": "#f3f0fa"}):
            client = node("client", "diagrams.aws.general:Client") if "client" in labels else None
            pool = node("pool", "diagrams.aws.security:Cognito") if "pool" in labels else None
        rule = node("rule", "diagrams.aws.network:Nacl") if "rule" in labels else None

        if table is not None:
            writers >> edge("send: TransactWriteItems, PutItem\nread: Query") >> table
            if mapping is not None:
                table >> edge("stream of new items") >> mapping
        if mapping is not None and function is not None:
            mapping >> edge("each batch") >> function
            if table is not None:
                # drawn against the flow (constraint off): the rows go back into the same table
                (
                    function
                    >> DiagramEdge(
                        label="moves every member's group row\nto the newest message",
                        color=FLOW_COLOUR,
                        fontcolor=FLOW_COLOUR,
                        constraint="false",
                    )
                    >> table
                )
        if mapping is not None and queue is not None:
            mapping >> edge("batch still failing\nafter its retries", FAILURE_COLOUR, "dashed") >> queue
        if function is not None and logs is not None:
            function >> edge("a JSON line per record", QUIET_COLOUR, "dotted") >> logs
        writers >> edge("users by handle") >> postgres
        if client is not None and pool is not None:
            people >> edge("sign-in") >> client >> edge("SRP") >> pool
            pool >> edge("sub → cognito_user_id\n(cognito.sync-ids)", QUIET_COLOUR, "dashed") >> postgres
        if rule is not None:
            developer >> edge("one IPv4 host") >> rule >> edge("tcp 5432") >> postgres
    return output.with_suffix(".png")
