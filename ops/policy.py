"""Policies as code: what every stack's resources must hold, each rule written once.

A rule is plain Python over one resource (its type, its inputs as the engine has them, in
camelCase, and its ``protect`` option) and the stack's context (its name, whether it is
protected, the table names the other stack files declare). Two runners call the same functions:

- ``ops.plan.check_policies`` over the offline plan: ``invoke infra.plan`` and the test suite,
  with no Pulumi CLI, credentials or network;
- the policy pack in ``policy/`` (``pulumi preview --policy-pack policy``, and the CI preview),
  through the ``pulumi-policy`` SDK.

During a real preview some inputs are not known yet (an ARN of a resource still to be created);
``pulumi-policy`` raises when a rule reads one, and reports that rule as not checkable for that
resource. So rules read only the values they need, test for a key's presence without reading its
value (``_has``), and accept any ``Mapping``/``Sequence`` (the SDK hands over read-only proxies).
This module imports no Pulumi SDK.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.stacks import list_stacks, load_stack

TABLE = "aws:dynamodb/table:Table"
USER_POOL = "aws:cognito/userPool:UserPool"
USER_POOL_CLIENT = "aws:cognito/userPoolClient:UserPoolClient"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
QUEUE = "aws:sqs/queue:Queue"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ROLE = "aws:iam/role:Role"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
# Identity policies: documents attached to a principal, where `*` really means every action or resource.
# (A KMS key policy or a queue policy is a resource policy: there `Resource: *` means "this key".)
IDENTITY_POLICY_TYPES = frozenset(
    {
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/policy:Policy",
        "aws:iam/userPolicy:UserPolicy",
        "aws:iam/groupPolicy:GroupPolicy",
    }
)
# Retries past this keep a poisoned record at the head of its shard for too long (AWS allows up to 10,000).
MAX_STREAM_RETRIES = 10


@dataclass(frozen=True)
class Resource:
    """What a rule sees of one resource."""

    type: str
    name: str  # logical name, as in the plan and in `pulumi preview`
    props: Mapping[str, Any]  # inputs, camelCase (numbers may arrive as floats)
    protect: bool = False


@dataclass(frozen=True)
class PolicyContext:
    """What a rule may know about the stack beyond the resource itself."""

    stack: str
    protected: bool
    region: str
    other_tables: Mapping[str, tuple[str, str]]  # other stack -> (region, table name), from its stack file


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    mandatory: bool  # a mandatory violation fails `infra.plan` and the preview; an advisory one is reported
    types: frozenset[str]
    check: Callable[[Resource, PolicyContext], Iterator[str]]


@dataclass(frozen=True)
class Violation:
    rule: str
    mandatory: bool
    resource: str
    type: str
    message: str

    def line(self) -> str:
        level = "mandatory" if self.mandatory else "advisory"
        return f"{level} {self.rule}: {self.resource} ({self.type}): {self.message}"


def context_for(stack: str, root: Path | None = None) -> PolicyContext:
    """The context of ``stack`` from the stack files: the same files every task and the program read."""
    settings = load_stack(stack, root)
    others = {}
    for other in list_stacks(root):
        if other != stack:
            theirs = load_stack(other, root)
            others[other] = (theirs.region, theirs.table_name)
    return PolicyContext(stack=stack, protected=settings.protected, region=settings.region, other_tables=others)


# ---------------------------------------------------------------- helpers that never read more than they need


def _has(mapping: Any, key: str) -> bool:
    """Whether ``key`` is set, without reading its value (which may not be known during a preview)."""
    return isinstance(mapping, Mapping) and key in list(mapping)


def _get(mapping: Any, key: str, default: Any = None) -> Any:
    return mapping[key] if _has(mapping, key) else default


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        return [value]
    return list(value)


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


# ---------------------------------------------------------------- the rules


def _ingress_cidrs(resource: Resource) -> Iterator[str]:
    props = resource.props
    if resource.type == INGRESS_RULE:
        yield from (c for c in (_get(props, "cidrIpv4"), _get(props, "cidrIpv6")) if c)
    elif resource.type == SG_RULE:
        if _get(props, "type") == "ingress":
            yield from _items(_get(props, "cidrBlocks")) + _items(_get(props, "ipv6CidrBlocks"))
    elif resource.type == SECURITY_GROUP:
        for rule in _items(_get(props, "ingress")):
            yield from _items(_get(rule, "cidrBlocks")) + _items(_get(rule, "ipv6CidrBlocks"))


def single_host_ingress(resource: Resource, context: PolicyContext) -> Iterator[str]:
    """Ingress admits one host at a time (a developer's address); never a range, never the internet."""
    for cidr in _ingress_cidrs(resource):
        try:
            network = ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            yield f"ingress from {cidr!r}, which is no address"
            continue
        if network.prefixlen == 0:
            yield f"ingress from {cidr}: open to the whole internet"
        elif network.num_addresses > 1:
            yield f"ingress from {cidr} admits {network.num_addresses} addresses: allow one host (a.b.c.d/32)"


def _documents(resource: Resource) -> Iterator[tuple[str, Any]]:
    props = resource.props
    if resource.type in IDENTITY_POLICY_TYPES:
        yield "policy", _get(props, "policy")
    elif resource.type == ROLE:
        yield "assumeRolePolicy", _get(props, "assumeRolePolicy")
        for inline in _items(_get(props, "inlinePolicies")):
            yield f"inline policy {_get(inline, 'name', '?')}", _get(inline, "policy")


def iam_without_wildcards(resource: Resource, context: PolicyContext) -> Iterator[str]:
    """Every IAM grant names its actions and resources: no `*`, no NotAction/NotResource, no `*` principal."""
    for where, document in _documents(resource):
        if document is None:
            continue
        try:
            parsed = json.loads(document) if isinstance(document, str) else document
        except ValueError:
            yield f"{where} is not a JSON document"
            continue
        for i, statement in enumerate(_items(_get(parsed, "Statement"))):
            label = f"{where} statement {_get(statement, 'Sid') or i + 1}"
            allow = _get(statement, "Effect") == "Allow"
            for negated in ("NotAction", "NotResource", "NotPrincipal"):
                if allow and _has(statement, negated):
                    yield f"{label} allows with {negated}: everything except a list is granted"
            for action in _items(_get(statement, "Action")):
                if allow and "*" in str(action):
                    yield f"{label} allows the wildcard action {action!r}"
            for resource_arn in _items(_get(statement, "Resource")):
                if allow and str(resource_arn) == "*":
                    yield f"{label} allows on every resource ('*')"
            principal = _get(statement, "Principal")
            if isinstance(principal, Mapping):  # {"Service": [...], "AWS": "..."}
                principals = [p for value in principal.values() for p in _items(value)]
            else:
                principals = _items(principal)
            if allow and "*" in principals:
                yield f"{label} trusts every principal ('*')"


def protected_stack_keeps_data(resource: Resource, context: PolicyContext) -> Iterator[str]:
    """A protected stack (prod) keeps its data: recovery, deletion protection and Pulumi's `protect`."""
    if not context.protected:
        return
    props = resource.props
    if resource.type == TABLE:
        if not _truthy(_get(_get(props, "pointInTimeRecovery"), "enabled")):
            yield f"stack {context.stack} is protected: the table needs point-in-time recovery"
        if not _truthy(_get(props, "deletionProtectionEnabled")):
            yield f"stack {context.stack} is protected: the table needs deletion protection"
    elif resource.type == USER_POOL and _get(props, "deletionProtection") != "ACTIVE":
        yield f"stack {context.stack} is protected: the user pool needs deletion protection (ACTIVE)"
    if not resource.protect:
        yield f"stack {context.stack} is protected: `pulumi destroy` must not delete it (the `protect` option)"


def stream_failures_are_kept(resource: Resource, context: PolicyContext) -> Iterator[str]:
    """A stream consumer retries a bounded number of times and records what it gave up on."""
    props = resource.props
    if not _has(props, "startingPosition"):
        return  # a queue mapping: its queue's own redrive policy applies
    on_failure = _get(_get(props, "destinationConfig"), "onFailure")
    if not _has(on_failure, "destinationArn"):
        yield "no on-failure destination: a batch that keeps failing is dropped without a trace"
    retries = _get(props, "maximumRetryAttempts")
    if retries is None or not 0 <= float(retries) <= MAX_STREAM_RETRIES:
        yield (
            f"maximumRetryAttempts is {retries}: set 0 to {MAX_STREAM_RETRIES}, or a poisoned record blocks its shard "
            "(unset means retry forever)"
        )
    age = _get(props, "maximumRecordAgeInSeconds")
    if age is None or float(age) < 0:
        yield (
            f"maximumRecordAgeInSeconds is {age}: set a limit, or a failing record is retried until the stream drops it"
        )


def table_name_is_the_stacks_own(resource: Resource, context: PolicyContext) -> Iterator[str]:
    """No two stack files declare one table in one region: the second `pulumi up` would fail, or share data."""
    name = _get(resource.props, "name")
    for other, (region, table) in sorted(context.other_tables.items()):
        if name == table and region == context.region:
            yield f"table {name!r} is also stack {other}'s (region {region}): derive the name per stack or pin another"


def table_is_encrypted(resource: Resource, context: PolicyContext) -> Iterator[str]:
    """Conversations are encrypted at rest with a KMS key (AWS-managed or the stack's own)."""
    if not _truthy(_get(_get(resource.props, "serverSideEncryption"), "enabled")):
        yield "server-side encryption with KMS is off"


def queue_is_encrypted(resource: Resource, context: PolicyContext) -> Iterator[str]:
    """Dead-letter pointers name tables and shards; keep them encrypted at rest too."""
    props = resource.props
    if not (_truthy(_get(props, "sqsManagedSseEnabled")) or _has(props, "kmsMasterKeyId")):
        yield "neither SQS-managed nor KMS encryption is on"


def logs_expire(resource: Resource, context: PolicyContext) -> Iterator[str]:
    """Log groups have a retention: CloudWatch keeps logs forever (and bills for them) otherwise."""
    days = _get(resource.props, "retentionInDays")
    if days is None or float(days) <= 0:
        yield "no retention: logs are kept (and billed) forever"


def bucket_is_private(resource: Resource, context: PolicyContext) -> Iterator[str]:
    """A bucket that holds table exports (every message) blocks every way of making it public."""
    for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
        if not _truthy(_get(resource.props, flag)):
            yield f"{flag} is off: the exports could be made public"


def browser_client_has_no_secret(resource: Resource, context: PolicyContext) -> Iterator[str]:
    """The web client runs in a browser: no client secret, no password sent in the clear (SRP only)."""
    props = resource.props
    if _truthy(_get(props, "generateSecret")):
        yield "a browser cannot keep a client secret"
    flows = {str(f) for f in _items(_get(props, "explicitAuthFlows"))}
    for flow in sorted(flows & {"ALLOW_USER_PASSWORD_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH"}):
        yield f"{flow} sends the password itself; use ALLOW_USER_SRP_AUTH"


RULES: tuple[Rule, ...] = (
    Rule(
        "single-host-ingress",
        "Ingress admits one host at a time: never a range, never 0.0.0.0/0 or ::/0",
        True,
        frozenset({INGRESS_RULE, SG_RULE, SECURITY_GROUP}),
        single_host_ingress,
    ),
    Rule(
        "iam-without-wildcards",
        "IAM grants name their actions, resources and principals: no '*', no NotAction/NotResource",
        True,
        IDENTITY_POLICY_TYPES | {ROLE},
        iam_without_wildcards,
    ),
    Rule(
        "protected-stack-keeps-data",
        "A protected stack's table and user pool have recovery, deletion protection and `protect`",
        True,
        frozenset({TABLE, USER_POOL}),
        protected_stack_keeps_data,
    ),
    Rule(
        "stream-failures-are-kept",
        "A stream consumer's mapping has an on-failure destination and bounded retries and age",
        True,
        frozenset({MAPPING}),
        stream_failures_are_kept,
    ),
    Rule(
        "table-name-is-the-stacks-own",
        "No two stack files declare the same table in one region",
        True,
        frozenset({TABLE}),
        table_name_is_the_stacks_own,
    ),
    Rule(
        "table-is-encrypted",
        "The messages table is encrypted at rest with KMS",
        True,
        frozenset({TABLE}),
        table_is_encrypted,
    ),
    Rule(
        "bucket-is-private",
        "The export bucket's public access block is fully on",
        True,
        frozenset({PUBLIC_ACCESS_BLOCK}),
        bucket_is_private,
    ),
    Rule("queue-is-encrypted", "Queues are encrypted at rest", False, frozenset({QUEUE}), queue_is_encrypted),
    Rule("logs-expire", "Log groups have a retention period", False, frozenset({LOG_GROUP}), logs_expire),
    Rule(
        "browser-client-has-no-secret",
        "The browser's user pool client has no secret and uses SRP",
        False,
        frozenset({USER_POOL_CLIENT}),
        browser_client_has_no_secret,
    ),
)


def check(rule: Rule, resource: Resource, context: PolicyContext) -> list[str]:
    """One rule over one resource: its violation messages (none when the type is not the rule's)."""
    return list(rule.check(resource, context)) if resource.type in rule.types else []


def evaluate(resources: Iterable[Resource], context: PolicyContext, rules: Iterable[Rule] = RULES) -> list[Violation]:
    """Every rule over every resource, in rule order."""
    found = []
    for rule in rules:
        for resource in resources:
            found.extend(
                Violation(rule.name, rule.mandatory, resource.name, resource.type, message)
                for message in check(rule, resource, context)
            )
    return found
