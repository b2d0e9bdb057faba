"""One adapter per resource type of the Pulumi program: the plan's inputs and the live resource in one shape.

``infra.drift`` compares every planned resource that has an adapter with its live counterpart
(the cloud's, or a twin's); ``local.up`` creates or updates the twin's from the same adapters,
so the twin is built from the program's own declarations. Types without an adapter (the Lambda
function, IAM, log groups) are listed as not compared.

No Pulumi import here: the adapters read a plan (``ops.plan.StackPlan``), cached as JSON.
"""

from __future__ import annotations

from ops.resources.base import Adapter, Change, Comparison, Context, Field, Live
from ops.resources.cognito import UserPoolAdapter, UserPoolClientAdapter
from ops.resources.kms import AliasAdapter, KeyAdapter
from ops.resources.mapping import MappingAdapter
from ops.resources.network import IngressRuleAdapter
from ops.resources.queue import QueueAdapter
from ops.resources.table import TableAdapter

__all__ = ["ADAPTERS", "Adapter", "Change", "Comparison", "Context", "Field", "Live", "adapter_for", "label_of"]

ADAPTERS: dict[str, Adapter] = {
    a.type: a
    for a in (
        TableAdapter(),
        UserPoolAdapter(),
        UserPoolClientAdapter(),
        IngressRuleAdapter(),
        QueueAdapter(),
        KeyAdapter(),
        AliasAdapter(),
        MappingAdapter(),
    )
}

# What a person calls the types nothing here compares (local.status lists them as not on the twin).
OTHER_LABELS = {
    "aws:lambda/function:Function": "Lambda function",
    "aws:iam/role:Role": "IAM role",
    "aws:iam/rolePolicy:RolePolicy": "IAM role policy",
    "aws:iam/policy:Policy": "IAM policy",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "IAM policy attachment",
    "aws:cloudwatch/logGroup:LogGroup": "log group",
    "pulumi:providers:aws": "AWS provider",
}


def adapter_for(type_: str) -> Adapter | None:
    return ADAPTERS.get(type_)


def label_of(type_: str) -> str:
    adapter = ADAPTERS.get(type_)
    if adapter is not None:
        return adapter.label
    return OTHER_LABELS.get(type_) or type_.rsplit(":", 1)[-1]
