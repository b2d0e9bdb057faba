"""The messages table, declared once.

``ddb.schema-load`` creates the local table from ``create_table_kwargs`` and the Pulumi
program builds ``aws.dynamodb.Table`` from the same ``TableSpec``; a test compares the two.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ops.messages.model import GSI_NAME
from ops.stacks import StackSettings

__all__ = [
    "GSI_NAME",
    "STREAM_VIEW_TYPE",
    "Protections",
    "TableSpec",
    "create_table_kwargs",
    "protections",
    "table_spec",
]
STREAM_VIEW_TYPE = "NEW_IMAGE"


@dataclass(frozen=True)
class KeyAttr:
    name: str
    key_type: str  # HASH or RANGE


@dataclass(frozen=True)
class IndexSpec:
    name: str
    keys: tuple[KeyAttr, ...]
    projection: str = "ALL"


@dataclass(frozen=True)
class TableSpec:
    name: str
    keys: tuple[KeyAttr, ...]
    attributes: dict[str, str]  # attribute name -> S/N/B, only the ones used in keys
    indexes: tuple[IndexSpec, ...]
    stream_view_type: str
    billing_mode: str
    read_capacity: int
    write_capacity: int
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def hash_key(self) -> str:
        return next(k.name for k in self.keys if k.key_type == "HASH")

    @property
    def range_key(self) -> str:
        return next(k.name for k in self.keys if k.key_type == "RANGE")


def table_spec(stack: StackSettings) -> TableSpec:
    """The one declaration of the messages table for a stack."""
    return TableSpec(
        name=stack.table_name,
        keys=(KeyAttr("pk", "HASH"), KeyAttr("sk", "RANGE")),
        attributes={"pk": "S", "sk": "S", "message_group_uuid": "S"},
        indexes=(IndexSpec(GSI_NAME, (KeyAttr("message_group_uuid", "HASH"), KeyAttr("sk", "RANGE"))),),
        stream_view_type=STREAM_VIEW_TYPE,
        billing_mode=stack.billing_mode,
        read_capacity=stack.read_capacity,
        write_capacity=stack.write_capacity,
        tags={"project": stack.project, "stack": stack.name},
    )


@dataclass(frozen=True)
class Protections:
    """What the program declares on a stack's table beyond its shape (infra/messages.py; a test keeps them equal).

    ``ddb.schema-load --cloud`` compares a live table with these too: a table made outside Pulumi
    lacks them.
    """

    point_in_time_recovery: bool
    deletion_protection: bool
    encryption: str  # "KMS": a KMS key, AWS-managed or the stack's own; "DEFAULT": DynamoDB's AWS-owned key


def protections(stack: StackSettings) -> Protections:
    """A protected stack (prod) keeps its data; every stack encrypts its conversations with KMS."""
    return Protections(point_in_time_recovery=stack.protected, deletion_protection=stack.protected, encryption="KMS")


def _throughput(spec: TableSpec) -> dict[str, int]:
    return {"ReadCapacityUnits": spec.read_capacity, "WriteCapacityUnits": spec.write_capacity}


def create_table_kwargs(spec: TableSpec) -> dict[str, Any]:
    """Arguments for DynamoDB ``CreateTable``."""
    provisioned = spec.billing_mode == "PROVISIONED"
    gsis: list[dict[str, Any]] = []
    for index in spec.indexes:
        gsi: dict[str, Any] = {
            "IndexName": index.name,
            "KeySchema": [{"AttributeName": k.name, "KeyType": k.key_type} for k in index.keys],
            "Projection": {"ProjectionType": index.projection},
        }
        if provisioned:
            gsi["ProvisionedThroughput"] = _throughput(spec)
        gsis.append(gsi)
    kwargs: dict[str, Any] = {
        "TableName": spec.name,
        "KeySchema": [{"AttributeName": k.name, "KeyType": k.key_type} for k in spec.keys],
        "AttributeDefinitions": [{"AttributeName": n, "AttributeType": t} for n, t in spec.attributes.items()],
        "BillingMode": spec.billing_mode,
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": spec.stream_view_type},
        "Tags": [{"Key": k, "Value": v} for k, v in spec.tags.items()],
    }
    if gsis:  # CreateTable rejects an empty list
        kwargs["GlobalSecondaryIndexes"] = gsis
    if provisioned:
        kwargs["ProvisionedThroughput"] = _throughput(spec)
    return kwargs


def shape(spec: TableSpec) -> dict[str, Any]:
    """The parts of a table that must match, in a form both sides can be reduced to."""
    return {
        "name": spec.name,
        "keys": [(k.name, k.key_type) for k in spec.keys],
        "attributes": dict(sorted(spec.attributes.items())),
        "indexes": {
            i.name: {"keys": [(k.name, k.key_type) for k in i.keys], "projection": i.projection} for i in spec.indexes
        },
        "stream": spec.stream_view_type,
        "billing": spec.billing_mode,
    }


def shape_of_description(desc: dict[str, Any]) -> dict[str, Any]:
    """``shape`` of a live table, from DescribeTable's ``Table``."""
    stream = desc.get("StreamSpecification") or {}
    billing = (desc.get("BillingModeSummary") or {}).get("BillingMode") or "PROVISIONED"
    return {
        "name": desc["TableName"],
        "keys": [(k["AttributeName"], k["KeyType"]) for k in desc["KeySchema"]],
        "attributes": {
            a["AttributeName"]: a["AttributeType"]
            for a in sorted(desc.get("AttributeDefinitions", []), key=lambda a: a["AttributeName"])
        },
        "indexes": {
            i["IndexName"]: {
                "keys": [(k["AttributeName"], k["KeyType"]) for k in i["KeySchema"]],
                "projection": i["Projection"]["ProjectionType"],
            }
            for i in desc.get("GlobalSecondaryIndexes") or []
        },
        "stream": stream.get("StreamViewType") if stream.get("StreamEnabled") else None,
        "billing": billing,
    }


def differences(want: dict[str, Any], have: dict[str, Any]) -> list[str]:
    """Human-readable differences between two shapes, one per part."""
    labels = {
        "keys": "key schema",
        "attributes": "attribute definitions",
        "indexes": "indexes",
        "stream": "stream view type",
        "billing": "billing mode",
    }
    out = []
    for part, label in labels.items():
        if want.get(part) != have.get(part):
            out.append(f"{label}: expected {want.get(part)}, found {have.get(part)}")
    return out
