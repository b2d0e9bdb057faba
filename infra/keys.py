"""The messages key: the customer-managed KMS key that wraps every group's data key (``ops.key_spec``).

Declared only on stacks with ``encryptMessages``. Its policy names each principal and what it
may do (``ops.key_spec.key_policy``); the stream consumer is not among them: it copies
ciphertext from a message to the group rows and never holds a key.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ops.key_spec import KeySpec, key_policy


def account_of(arn: str) -> str:
    """The account field of an ARN (``arn:aws:dynamodb:<region>:<account>:table/…``)."""
    return arn.split(":")[4]


@dataclass(frozen=True)
class MessagesKeyArgs:
    spec: KeySpec
    # the key's account is the table's: read from its ARN, so no extra lookup is needed to write the policy
    table_arn: pulumi.Input[str]
    protected: bool


class MessagesKey(pulumi.ComponentResource):
    """The KMS key (rotated yearly) and its alias, which the tasks and the application name it by."""

    key: aws.kms.Key
    alias: aws.kms.Alias
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: MessagesKeyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("cruddur:messages:MessagesKey", name, None, opts)
        spec = args.spec
        key_policy(spec, "000000000000")  # refuses a stack that names no key user before anything is registered

        # Wraps the per-group data keys; losing it loses every encrypted message, hence protect on prod.
        self.key = aws.kms.Key(
            name,
            description=spec.description,
            key_usage=spec.key_usage,
            customer_master_key_spec=spec.key_spec,
            enable_key_rotation=True,
            rotation_period_in_days=spec.rotation_days,
            deletion_window_in_days=spec.deletion_window_days,
            policy=pulumi.Output.from_input(args.table_arn).apply(lambda arn: key_policy(spec, account_of(arn))),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protected),
        )

        # The stable name the tasks and the application use (GenerateDataKey by alias), whatever the key id.
        self.alias = aws.kms.Alias(
            f"{name}-alias", name=spec.alias, target_key_id=self.key.key_id, opts=pulumi.ResourceOptions(parent=self)
        )
        self.arn = self.key.arn
        self.register_outputs({"arn": self.key.arn, "alias": self.alias.name})
