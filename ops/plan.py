"""What a stack's Pulumi program declares, evaluated offline.

``plan_stack`` runs ``infra/__main__.py`` exactly as Pulumi would, but under
``pulumi.runtime.set_mocks``: no CLI, no credentials, no network. Every resource the program
registers comes back as a ``PlannedResource`` with its inputs (camelCase, as the engine gets
them), the options the mocks cannot see (``protect``, ``ignore_changes``, via a stack
transformation) and the tags it ends up with (its own plus the provider's default tags).

This is the only ops module that imports the Pulumi SDK, and it does so inside functions,
so the data tasks never load it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import runpy
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ops.errors import ConfigError
from ops.policy import RULES, Resource, Violation, context_for
from ops.policy import evaluate as evaluate_rules
from ops.stacks import PROJECT_ROOT, load_stack, stack_config

PROGRAM_DIR = PROJECT_ROOT / "infra"
# A fixed fake account keeps every planned ARN, and so `plan --json`, stable between runs.
MOCK_ACCOUNT = "123456789012"
PROVIDER_PREFIX = "pulumi:providers:"
TABLE_TYPE = "aws:dynamodb/table:Table"
# How a secret input shows in the plan: its value stays out of every line and JSON `infra.plan` prints.
SECRET_MASK = "[secret]"
# The engine marks a secret value with this signature (pulumi.runtime.rpc); the mocks see it as is.
_SIG_KEY, _SECRET_SIG = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"
KMS_KEY_TYPE = "aws:kms/key:Key"

# Per resource type, the inputs worth a glance in `invoke infra.plan` (--json shows all of them).
KEY_INPUTS: dict[str, tuple[str, ...]] = {
    "pulumi:providers:aws": ("region", "defaultTags"),
    TABLE_TYPE: (
        "name",
        "billingMode",
        "hashKey",
        "rangeKey",
        "streamViewType",
        "deletionProtectionEnabled",
        "pointInTimeRecovery",
    ),
    "aws:lambda/function:Function": ("name", "runtime", "handler", "environment", "code"),
    "aws:lambda/eventSourceMapping:EventSourceMapping": (
        "startingPosition",
        "batchSize",
        "maximumRetryAttempts",
        "maximumRecordAgeInSeconds",
        "destinationConfig",
    ),
    "aws:cloudwatch/logGroup:LogGroup": ("name", "retentionInDays"),
    "aws:sqs/queue:Queue": ("name", "messageRetentionSeconds"),
    "aws:iam/role:Role": ("name",),
    "aws:iam/rolePolicy:RolePolicy": ("policy",),
    "aws:cognito/userPool:UserPool": ("name", "usernameAttributes", "deletionProtection"),
    "aws:cognito/userPoolClient:UserPoolClient": ("name", "generateSecret", "explicitAuthFlows"),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": (
        "securityGroupId",
        "ipProtocol",
        "fromPort",
        "toPort",
        "cidrIpv4",
        "description",
    ),
    KMS_KEY_TYPE: (
        "description",
        "customerMasterKeySpec",
        "enableKeyRotation",
        "rotationPeriodInDays",
        "deletionWindowInDays",
        "policy",
    ),
    "aws:kms/alias:Alias": ("name",),
}


@dataclass(frozen=True)
class PlannedResource:
    """One resource the program registers, as the engine would receive it."""

    type: str
    name: str
    custom: bool
    id: str = ""  # the mocked id (a physical name, a URL or a generated id, as AWS would answer)
    parent: str | None = None  # logical name of the component it belongs to
    provider: str | None = None  # logical name of its explicit provider, None for the default one
    inputs: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)  # inputs plus the mocked outputs (arn, id…)
    protect: bool = False
    ignore_changes: tuple[str, ...] = ()
    taggable: bool = False
    tags: dict[str, str] = field(default_factory=dict)  # effective: provider default tags + own tags

    def key_inputs(self) -> dict[str, Any]:
        wanted = KEY_INPUTS.get(self.type)
        if wanted is None:
            return {k: v for k, v in self.inputs.items() if v is not None and not isinstance(v, (dict, list))}
        return {k: self.inputs[k] for k in wanted if self.inputs.get(k) is not None}


@dataclass(frozen=True)
class StackPlan:
    stack: str
    resources: tuple[PlannedResource, ...]
    outputs: dict[str, Any]

    def of_type(self, type_: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str) -> PlannedResource:
        found = self.of_type(type_)
        if len(found) != 1:
            raise LookupError(f"expected one {type_} in stack {self.stack!r}, found {len(found)}")
        return found[0]

    def to_dict(self) -> dict[str, Any]:
        return {"stack": self.stack, "resources": [asdict(r) for r in self.resources], "outputs": self.outputs}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StackPlan:
        """The inverse of ``to_dict`` (a plan read back from its JSON, e.g. the cached one)."""
        resources = tuple(
            PlannedResource(**{**r, "ignore_changes": tuple(r.get("ignore_changes") or ())}) for r in data["resources"]
        )
        return cls(stack=data["stack"], resources=resources, outputs=dict(data.get("outputs") or {}))

    def by_name(self, name: str) -> PlannedResource | None:
        return next((r for r in self.resources if r.name == name), None)


def shape_of_table_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """``ops.table_spec.shape`` of an ``aws.dynamodb.Table`` as the program declares it."""

    def index_keys(index: dict[str, Any]) -> list[tuple[str, str]]:
        if index.get("keySchemas"):
            return [(k["attributeName"], k["keyType"]) for k in index["keySchemas"]]
        legacy = [(index.get("hashKey"), "HASH"), (index.get("rangeKey"), "RANGE")]
        return [(n, t) for n, t in legacy if n]

    keys = [(inputs.get("hashKey"), "HASH"), (inputs.get("rangeKey"), "RANGE")]
    return {
        "name": inputs.get("name"),
        "keys": [(n, t) for n, t in keys if n],
        "attributes": {a["name"]: a["type"] for a in sorted(inputs.get("attributes") or [], key=lambda a: a["name"])},
        "indexes": {
            i["name"]: {"keys": index_keys(i), "projection": i.get("projectionType")}
            for i in inputs.get("globalSecondaryIndexes") or []
        },
        "stream": inputs.get("streamViewType") if inputs.get("streamEnabled") else None,
        "billing": inputs.get("billingMode") or "PROVISIONED",
    }


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


# ---------------------------------------------------------------- physical names across stacks

# Types whose `name` need only be unique inside another resource: a pool's clients, a role's inline policies.
NAMES_SCOPED_TO_A_PARENT = frozenset({"aws:cognito/userPoolClient:UserPoolClient", "aws:iam/rolePolicy:RolePolicy"})
# IAM names are unique in the whole account, whatever the region.
GLOBAL_TYPE_PREFIXES = ("aws:iam/",)


def physical_names(plan: StackPlan) -> dict[tuple[str, str, str], str]:
    """Every physical name the plan asks AWS for: (region or "global", type, name) -> logical name.

    A resource without a ``name`` input gets one from Pulumi with a random suffix, so it cannot
    collide; the names that can are the ones the program sets.
    """
    regions = {r.name: str(r.inputs.get("region") or "") for r in plan.resources if r.type.startswith(PROVIDER_PREFIX)}
    names: dict[tuple[str, str, str], str] = {}
    for r in plan.resources:
        name = r.inputs.get("name")
        if (
            not r.custom
            or r.type.startswith(PROVIDER_PREFIX)
            or r.type in NAMES_SCOPED_TO_A_PARENT
            or not isinstance(name, str)
            or not name
        ):
            continue
        scope = (
            "global"
            if r.type.startswith(GLOBAL_TYPE_PREFIXES)
            else regions.get(r.provider or "", "") or "default region"
        )
        names[(scope, r.type, name)] = r.name
    return names


def name_collisions(plans: list[StackPlan]) -> list[str]:
    """The physical names two stacks would both ask for, in one region (or account-wide for IAM)."""
    claimed: dict[tuple[str, str, str], str] = {}
    found = []
    for plan in plans:
        for key, logical in physical_names(plan).items():
            other = claimed.setdefault(key, f"{plan.stack}:{logical}")
            if not other.startswith(f"{plan.stack}:"):
                scope, type_, name = key
                found.append(
                    f"{type_} {name!r} ({scope}) is declared by stack {other.split(':')[0]} and stack {plan.stack}"
                )
    return found


# ---------------------------------------------------------------- policies over the plan


def check_policies(plan: StackPlan, root: Path | None = None) -> list[Violation]:
    """``ops.policy``'s rules over every resource of the plan: the same functions the policy pack runs."""
    resources = [Resource(r.type, r.name, r.inputs, r.protect) for r in plan.resources if r.custom]
    return evaluate_rules(resources, context_for(plan.stack, root))


def describe_policies(violations: list[Violation]) -> list[str]:
    """The policy check as lines for a terminal, after the plan."""
    mandatory = sum(v.mandatory for v in violations)
    head = f"policies: {len(RULES)} rules, " + (
        f"{len(violations)} violation(s), {mandatory} mandatory" if violations else "no violations"
    )
    return [head, *(f"  {v.line()}" for v in violations)]


def _condition_text(condition: dict[str, Any] | None) -> str:
    """A policy condition in one phrase:
    ``if kms:EncryptionContext:table = t and kms:EncryptionContext:group is set``."""
    parts = []
    for operator, pairs in (condition or {}).items():
        for key, value in pairs.items():
            if operator == "Null":
                parts.append(f"{key} is {'missing' if str(value).lower() == 'true' else 'set'}")
            else:
                parts.append(f"{key} {'=' if operator.startswith('String') else operator} {', '.join(_as_list(value))}")
    return f" if {' and '.join(parts)}" if parts else ""


def statement_line(statement: dict[str, Any]) -> str:
    """One policy statement: who (a resource policy's principals) may do what, on what, under which condition."""
    verb = "allow" if statement.get("Effect", "Allow") == "Allow" else "deny"
    actions = ", ".join(_as_list(statement.get("Action")))
    condition = _condition_text(statement.get("Condition"))
    principal = statement.get("Principal")
    if principal is not None:  # a key policy: the resource is the key itself, the point is who
        who = ", ".join(
            p for v in (principal.values() if isinstance(principal, dict) else [principal]) for p in _as_list(v)
        )
        return f"{verb} {who}: {actions}{condition}"
    return f"{verb} {actions} on {', '.join(_as_list(statement.get('Resource')))}{condition}"


def describe(plan: StackPlan) -> list[str]:
    """The plan as lines for a terminal: one per resource with its key inputs, then the outputs."""
    custom = [r for r in plan.resources if r.custom]
    lines = [f"stack {plan.stack}: {len(custom)} resources in {len(plan.resources) - len(custom)} components"]
    for r in custom:
        flags = [
            f
            for f, on in (
                ("protect", r.protect),
                (f"ignore_changes={','.join(r.ignore_changes)}", bool(r.ignore_changes)),
            )
            if on
        ]
        where = f" (in {r.parent})" if r.parent else ""
        lines.append(f"  {r.type}  {r.name}{where}{'  [' + ' '.join(flags) + ']' if flags else ''}")
        for key, value in r.key_inputs().items():
            if key == "policy" and isinstance(value, str):
                lines.extend(f"      {statement_line(st)}" for st in json.loads(value).get("Statement", []))
                continue
            shown = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            lines.append(f"      {key}: {shown}")
    lines.append("outputs:")
    lines.extend(f"  {name} = {value}" for name, value in sorted(plan.outputs.items()))
    return lines


# ---------------------------------------------------------------- running a program under mocks


def plan_stack(stack: str, root: Path | None = None, program_dir: Path = PROGRAM_DIR) -> StackPlan:
    """Evaluate ``infra/__main__.py`` for ``stack`` offline; an unknown stack is a ConfigError.

    The program gets the stack's configuration as the engine would hand it over (Pulumi.yaml's
    defaults under the stack file's values, as text; ``secure:`` values marked secret, with a
    placeholder since they cannot be decrypted here). ``root`` holds the stack files (default:
    this repository's); ``program_dir`` is another copy of the program (a test edits one to prove
    the twin follows it).
    """
    settings = load_stack(stack, root)
    config = stack_config(stack, root)
    if not (program_dir / "__main__.py").exists():
        raise ConfigError(f"no Pulumi program at {program_dir}/__main__.py")
    return evaluate(
        lambda: _run_program_dir(program_dir),
        stack=stack,
        project=settings.project,
        region=settings.region,
        config=config.values,
        secret_keys=config.secret_keys,
    )


def evaluate(
    program: Callable[[], object],
    *,
    stack: str,
    project: str,
    region: str = "us-east-1",
    config: dict[str, str] | None = None,
    secret_keys: tuple[str, ...] = (),
) -> StackPlan:
    """Run ``program`` (anything that declares resources) under mocks and collect what it declared.

    ``config`` is what ``pulumi.Config`` answers inside (full key -> text), ``secret_keys`` the keys
    that arrive as secrets. Each evaluation runs in its own thread: Pulumi keeps its settings,
    configuration and root stack in context variables, and a new thread starts with none of
    them, so dev and prod can be planned one after the other in a single process (the test
    session does exactly that).
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"plan-{stack}") as pool:
        return pool.submit(
            _evaluate_here, program, stack, project, region, dict(config or {}), tuple(secret_keys)
        ).result()


def _run_program_dir(program_dir: Path = PROGRAM_DIR) -> None:
    # Fresh copies of infra.* each time: the program must not see a previous stack's modules.
    for name in [m for m in sys.modules if m == "infra" or m.startswith("infra.")]:
        del sys.modules[name]
    runpy.run_path(str(program_dir), run_name="__main__")


def _evaluate_here(
    program: Callable[[], object],
    stack: str,
    project: str,
    region: str,
    config: dict[str, str],
    secret_keys: tuple[str, ...],
) -> StackPlan:
    # Pulumi's futures need a loop on this (new) thread; it is closed with the evaluation.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return _evaluate_in_loop(program, stack, project, region, config, secret_keys)
    finally:
        # The mock monitor answered from the loop's executor threads; join them before closing.
        loop.run_until_complete(loop.shutdown_default_executor())
        asyncio.set_event_loop(None)
        loop.close()


def _evaluate_in_loop(
    program: Callable[[], object],
    stack: str,
    project: str,
    region: str,
    config: dict[str, str],
    secret_keys: tuple[str, ...],
) -> StackPlan:
    import pulumi
    from pulumi.runtime import (
        get_root_resource,
        register_stack_transformation,
        set_all_config,
        set_mocks,
    )

    mocks = _new_mocks(region)
    set_mocks(mocks, project=project, stack=stack, preview=False)
    # What the engine passes a program (PULUMI_CONFIG and PULUMI_CONFIG_SECRET_KEYS), for this thread only.
    set_all_config(config, list(secret_keys))
    options: dict[tuple[str, str], dict[str, Any]] = {}

    def record_options(args: pulumi.ResourceTransformationArgs) -> None:
        # The mock monitor never sees resource options; a stack transformation does.
        opts = args.opts or pulumi.ResourceOptions()
        parent = opts.parent
        options[(args.type_, args.name)] = {
            "parent": getattr(parent, "_name", None)
            if parent is not None and parent is not get_root_resource()
            else None,
            "protect": bool(opts.protect),
            "ignore_changes": tuple(opts.ignore_changes or ()),
            "taggable": isinstance(args.props, dict) and "tags" in args.props,
        }

    register_stack_transformation(record_options)
    outputs: dict[str, Any] = {}

    async def collect(exported: dict[str, Any]) -> None:
        for name, value in exported.items():
            out = pulumi.Output.from_input(value)
            # a secret output is named in the plan, never shown
            outputs[name] = SECRET_MASK if await out.is_secret() else await out.future()

    @pulumi.runtime.test
    def run() -> Any:
        program()
        root = get_root_resource()
        exported = dict(getattr(root, "outputs", {}) or {})
        return pulumi.Output.from_input(collect(exported)) if exported else None

    run()
    return _assemble(stack, mocks.registered, options, outputs)


def _assemble(
    stack: str,
    registered: list[dict[str, Any]],
    options: dict[tuple[str, str], dict[str, Any]],
    outputs: dict[str, Any],
) -> StackPlan:
    default_tags: dict[str, dict[str, str]] = {}
    for reg in registered:
        if reg["type"].startswith(PROVIDER_PREFIX):
            default_tags[reg["name"]] = _provider_default_tags(reg["inputs"])
    resources: list[PlannedResource] = []
    for reg in registered:
        opt = options.get((reg["type"], reg["name"]), {})
        taggable = bool(opt.get("taggable"))
        own = reg["inputs"].get("tags") or {}
        own = own if isinstance(own, dict) else {}  # secret tags are masked whole: only the defaults are known
        tags = {**default_tags.get(reg["provider"] or "", {}), **own} if taggable else {}
        resources.append(
            PlannedResource(
                type=reg["type"],
                name=reg["name"],
                custom=reg["custom"],
                id=reg["id"],
                parent=opt.get("parent"),
                provider=reg["provider"],
                inputs=reg["inputs"],
                state=reg["state"],
                protect=bool(opt.get("protect")),
                ignore_changes=tuple(opt.get("ignore_changes", ())),
                taggable=taggable,
                tags=tags,
            )
        )
    # Registration order depends on how futures resolve; grouping by component keeps output stable.
    resources.sort(key=lambda r: (r.parent or r.name, r.custom, r.type, r.name))
    return StackPlan(stack=stack, resources=tuple(resources), outputs=_plain(outputs))


def _provider_default_tags(inputs: dict[str, Any]) -> dict[str, str]:
    # Provider inputs reach the engine JSON-encoded when they are objects.
    value = inputs.get("defaultTags")
    if isinstance(value, str):
        value = json.loads(value or "{}")
    return dict((value or {}).get("tags") or {})


def _provider_name(ref: str | None) -> str | None:
    """``urn:…::pulumi:providers:aws::<name>::<id>`` → ``<name>``."""
    if not ref:
        return None
    urn = ref.rsplit("::", 1)[0]
    return urn.rsplit("::", 1)[-1]


def _plain(value: Any) -> Any:
    """Inputs as JSON-ready data: assets become their repository-relative paths."""
    import pulumi

    if isinstance(value, pulumi.AssetArchive):
        return {"assetArchive": {k: _plain(v) for k, v in sorted(value.assets.items())}}
    if isinstance(value, pulumi.FileAsset):
        path = Path(value.path)
        return {"file": str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)}
    if isinstance(value, pulumi.FileArchive):
        return {"archive": str(value.path)}
    if isinstance(value, dict) and value.get(_SIG_KEY) == _SECRET_SIG:
        return SECRET_MASK  # a secret input: the plan says there is one, never what it is
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the engine carries every number as a double
    return value


def _fake_id(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:17]


def uuid_from(seed: str) -> str:
    """A stable UUID-shaped id (KMS key ids look like this)."""
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _mock_outputs(type_: str, name: str, inputs: dict[str, Any], region: str) -> tuple[str, dict[str, Any]]:
    """Deterministic ids and ARNs shaped like AWS's, so policies and outputs can be checked."""
    physical = str(inputs.get("name") or name)
    acct = MOCK_ACCOUNT
    if type_ == TABLE_TYPE:
        arn = f"arn:aws:dynamodb:{region}:{acct}:table/{physical}"
        label = "2026-01-01T00:00:00.000"
        return physical, {"arn": arn, "streamArn": f"{arn}/stream/{label}", "streamLabel": label}
    if type_ == "aws:sqs/queue:Queue":
        url = f"https://sqs.{region}.amazonaws.com/{acct}/{physical}"
        return url, {"arn": f"arn:aws:sqs:{region}:{acct}:{physical}", "url": url}
    if type_ == "aws:iam/role:Role":
        return physical, {"arn": f"arn:aws:iam::{acct}:role/{physical}", "name": physical}
    if type_ == "aws:iam/rolePolicy:RolePolicy":
        return f"{inputs.get('role')}:{name}", {}
    if type_ == "aws:cloudwatch/logGroup:LogGroup":
        return physical, {"arn": f"arn:aws:logs:{region}:{acct}:log-group:{physical}"}
    if type_ == "aws:lambda/function:Function":
        arn = f"arn:aws:lambda:{region}:{acct}:function:{physical}"
        return physical, {
            "arn": arn,
            "qualifiedArn": f"{arn}:$LATEST",
            "invokeArn": f"arn:aws:apigateway:{region}:lambda:path/{arn}",
        }
    if type_ == "aws:lambda/eventSourceMapping:EventSourceMapping":
        uuid = _fake_id(type_, name)
        return uuid, {"uuid": uuid, "arn": f"arn:aws:lambda:{region}:{acct}:event-source-mapping:{uuid}"}
    if type_ == "aws:cognito/userPool:UserPool":
        pool_id = f"{region}_{_fake_id(type_, physical)[:9]}"
        return pool_id, {
            "arn": f"arn:aws:cognito-idp:{region}:{acct}:userpool/{pool_id}",
            "endpoint": f"cognito-idp.{region}.amazonaws.com/{pool_id}",
        }
    if type_ == "aws:cognito/userPoolClient:UserPoolClient":
        return _fake_id(type_, name)[:26], {}
    if type_ == "aws:kms/key:Key":
        key_id = str(uuid_from(_fake_id(type_, name)))
        return key_id, {"keyId": key_id, "arn": f"arn:aws:kms:{region}:{acct}:key/{key_id}"}
    if type_ == "aws:kms/alias:Alias":
        return physical, {
            "arn": f"arn:aws:kms:{region}:{acct}:{physical}",
            "targetKeyArn": f"arn:aws:kms:{region}:{acct}:key/{inputs.get('targetKeyId')}",
            "name": physical,
        }
    if type_ == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
        rule_id = f"sgr-{_fake_id(type_, name)}"
        return rule_id, {
            "securityGroupRuleId": rule_id,
            "arn": f"arn:aws:ec2:{region}:{acct}:security-group-rule/{rule_id}",
        }
    if type_ == "aws:s3/bucket:Bucket":
        bucket = str(inputs.get("bucket") or name)
        return bucket, {"arn": f"arn:aws:s3:::{bucket}", "bucket": bucket}
    if type_ == "aws:athena/workgroup:Workgroup":
        return physical, {"arn": f"arn:aws:athena:{region}:{acct}:workgroup/{physical}", "name": physical}
    if type_ == "aws:glue/catalogDatabase:CatalogDatabase":
        return f"{acct}:{physical}", {"arn": f"arn:aws:glue:{region}:{acct}:database/{physical}", "name": physical}
    return f"{name}-id", {}


class _Recorder:
    """Answers every registration with fake outputs and remembers what was registered."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.registered: list[dict[str, Any]] = []

    def new_resource(self, args: Any) -> tuple[str | None, dict[str, Any]]:
        inputs = _plain(dict(args.inputs))
        if args.typ.startswith(PROVIDER_PREFIX):
            id_, extra = f"{args.name}-provider", {}
        elif not args.custom:
            id_, extra = "", {}
        else:
            id_, extra = _mock_outputs(args.typ, args.name, inputs, self.region)
        self.registered.append(
            {
                "type": args.typ,
                "name": args.name,
                "custom": bool(args.custom),
                "id": id_,
                "provider": _provider_name(args.provider),
                "inputs": inputs,
                "state": {**inputs, **extra},
            }
        )
        return id_, {**dict(args.inputs), **extra}


def _new_mocks(region: str) -> Any:
    """A ``pulumi.runtime.Mocks`` around a ``_Recorder``; built here so the SDK loads only when planning."""
    import pulumi

    class PlanMocks(_Recorder, pulumi.runtime.Mocks):
        def call(self, args: Any) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
            # The program calls no data sources; an unexpected one answers empty instead of reaching AWS.
            return {}, None

    return PlanMocks(region)
