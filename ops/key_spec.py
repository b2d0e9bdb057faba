"""The messages key (a customer-managed KMS key per stack that encrypts messages), declared once.

The Pulumi program (``infra/keys.py``) and the twin (``ops.resources.kms`` via ``ops.local.cloud_side``) build the key
from the same ``KeySpec``, and ``ops.crypto`` asks KMS for data keys under the same alias and
with the same encryption context, so its key names are written here only once. A stack
without ``encryptMessages`` has no key (``key_spec`` returns ``None``).

The key policy gives each principal only what it needs:
- the account root: key administration (describe, policy, rotation, tags, aliases, enable,
  disable, scheduled deletion), never encryption or decryption, and no ``kms:*``;
- the roles in ``messagesKeyUsers`` (the application backend, the operators): only
  ``kms:GenerateDataKey`` and ``kms:Decrypt``, and only for data keys whose encryption context
  names this stack's table and a group;
- nobody else, the stream consumer included: it copies ciphertext between items and never
  needs a key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ops.errors import ConfigError
from ops.stacks import StackSettings

# The encryption context of a group's data key: KMS binds the wrapped key to both, and the key
# policy only lets the roles use data keys made for this table.
CONTEXT_TABLE = "table"
CONTEXT_GROUP = "group"
DATA_KEY_SPEC = "AES_256"

# Everything the account root needs to keep the key manageable (and Pulumi to manage it through
# IAM principals of the account), written out: no wildcard, and nothing that uses the key.
ADMIN_ACTIONS = (
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:PutKeyPolicy",
    "kms:ListKeyPolicies",
    "kms:GetKeyRotationStatus",
    "kms:EnableKeyRotation",
    "kms:DisableKeyRotation",
    "kms:ListKeyRotations",
    "kms:RotateKeyOnDemand",
    "kms:ListResourceTags",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateKeyDescription",
    "kms:CreateAlias",
    "kms:UpdateAlias",
    "kms:DeleteAlias",
    "kms:EnableKey",
    "kms:DisableKey",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:ListGrants",
    "kms:RevokeGrant",
)
USE_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")


@dataclass(frozen=True)
class KeySpec:
    alias: str  # alias/<project>-<stack>-messages: what the tasks name the key by
    description: str
    table_name: str  # the only table whose data keys the users may generate or decrypt
    users: tuple[str, ...]  # IAM role names or ARNs
    key_usage: str = "ENCRYPT_DECRYPT"
    key_spec: str = "SYMMETRIC_DEFAULT"  # AES-256-GCM inside KMS
    rotation_days: int = 365  # KMS keeps every older key material: rotation never breaks a read
    deletion_window_days: int = 30  # the longest KMS allows: a deletion can still be cancelled for a month


def alias_name(stack: StackSettings) -> str:
    return f"alias/{stack.project}-{stack.name}-messages"


def key_spec(stack: StackSettings) -> KeySpec | None:
    """The stack's messages key, or ``None`` when the stack stores bodies as plain text."""
    if not stack.encrypt_messages:
        return None
    return KeySpec(
        alias=alias_name(stack),
        description=f"Encrypts the data keys of the message groups in table {stack.table_name} (stack {stack.name})",
        table_name=stack.table_name,
        users=stack.messages_key_users,
    )


def encryption_context(table: str, group: str) -> dict[str, str]:
    return {CONTEXT_TABLE: table, CONTEXT_GROUP: group}


def role_arn(account: str, role: str) -> str:
    return role if role.startswith("arn:") else f"arn:aws:iam::{account}:role/{role}"


def key_policy(spec: KeySpec, account: str) -> str:
    """The key policy as JSON: administration for the account root, data keys of this table for the users."""
    if not spec.users:
        raise ConfigError(
            "encryptMessages is on but messagesKeyUsers names no role: nobody could read or write messages "
            "(pulumi config set --path 'messagesKeyUsers[0]' <role name>)"
        )
    statements = [
        {
            "Sid": "KeyAdministrationByTheAccount",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
            "Action": list(ADMIN_ACTIONS),
            "Resource": "*",
        },
        {
            "Sid": "DataKeysOfThisTableOnly",
            "Effect": "Allow",
            "Principal": {"AWS": sorted(role_arn(account, u) for u in spec.users)},
            "Action": list(USE_ACTIONS),
            "Resource": "*",
            # a data key is made and opened only for a group of this table
            "Condition": {
                "StringEquals": {f"kms:EncryptionContext:{CONTEXT_TABLE}": spec.table_name},
                "Null": {f"kms:EncryptionContext:{CONTEXT_GROUP}": "false"},
            },
        },
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})
