"""The messages table (single-table design), built from ``ops.table_spec``."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ops.table_spec import TableSpec


@dataclass(frozen=True)
class MessagesTableArgs:
    spec: TableSpec
    # Protected stacks (prod) hold customer conversations: recovery and deletion guards on.
    protected: bool


class MessagesTable(pulumi.ComponentResource):
    """The DynamoDB table that holds message groups and messages, with its stream."""

    table: aws.dynamodb.Table
    name: pulumi.Output[str]
    arn: pulumi.Output[str]
    stream_arn: pulumi.Output[str]

    def __init__(self, name: str, args: MessagesTableArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("cruddur:messages:MessagesTable", name, None, opts)
        spec = args.spec
        provisioned = spec.billing_mode == "PROVISIONED"
        read = spec.read_capacity if provisioned else None
        write = spec.write_capacity if provisioned else None

        # The one table of the messaging feature; its stream feeds the consumer that moves group rows.
        self.table = aws.dynamodb.Table(
            name,
            name=spec.name,
            hash_key=spec.hash_key,
            range_key=spec.range_key,
            attributes=[aws.dynamodb.TableAttributeArgs(name=n, type=t) for n, t in spec.attributes.items()],
            global_secondary_indexes=[
                aws.dynamodb.TableGlobalSecondaryIndexArgs(
                    name=index.name,
                    key_schemas=[
                        aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(attribute_name=k.name, key_type=k.key_type)
                        for k in index.keys
                    ],
                    projection_type=index.projection,
                    read_capacity=read,
                    write_capacity=write,
                )
                for index in spec.indexes
            ],
            billing_mode=spec.billing_mode,
            read_capacity=read,
            write_capacity=write,
            stream_enabled=True,
            stream_view_type=spec.stream_view_type,
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(enabled=True),
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=args.protected),
            deletion_protection_enabled=args.protected,
            tags=dict(spec.tags),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protected),
        )
        self.name = self.table.name
        self.arn = self.table.arn
        self.stream_arn = self.table.stream_arn
        self.register_outputs({"name": self.name, "arn": self.arn, "streamArn": self.stream_arn})
