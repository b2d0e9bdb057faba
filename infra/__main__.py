"""Composition root: read the stack's settings once, build each resource group, export outputs.

Pulumi runs this file with ``main: infra/``; ``ops.plan`` runs it the same way under mocks.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Pulumi puts only infra/ on sys.path; the settings, table spec and output names live in ops/.
REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import pulumi  # noqa: E402

from infra.config import read_settings  # noqa: E402
from infra.exports import TableExports, TableExportsArgs  # noqa: E402
from infra.identity import Identity, IdentityArgs  # noqa: E402
from infra.keys import MessagesKey, MessagesKeyArgs  # noqa: E402
from infra.messages import MessagesTable, MessagesTableArgs  # noqa: E402
from infra.provider import create_provider  # noqa: E402
from infra.rds_access import RdsAccessArgs, create_rds_access  # noqa: E402
from infra.stream_consumer import StreamConsumer, StreamConsumerArgs  # noqa: E402
from ops import outputs, stream_mapping  # noqa: E402
from ops.key_spec import key_spec  # noqa: E402
from ops.table_spec import GSI_NAME, table_spec  # noqa: E402

# Through pulumi.Config (so `--secret` values arrive as secrets), parsed as the invoke tasks parse the files.
settings = read_settings()
provider = create_provider(settings)
in_stack = pulumi.ResourceOptions(providers=[provider])

messages = MessagesTable(
    "messages", MessagesTableArgs(spec=table_spec(settings), protected=settings.protected), in_stack
)

# Only where message bodies are stored encrypted (encryptMessages): the key that wraps each group's data key.
spec = key_spec(settings)
messages_key = (
    MessagesKey(
        "messages-key", MessagesKeyArgs(spec=spec, table_arn=messages.arn, protected=settings.protected), in_stack
    )
    if spec
    else None
)

consumer = StreamConsumer(
    "stream-consumer",
    StreamConsumerArgs(
        function_name=stream_mapping.function_name(settings),
        queue_name=stream_mapping.dead_letter_queue_name(settings),
        table_name=messages.name,
        table_arn=messages.arn,
        stream_arn=messages.stream_arn,
        index_name=GSI_NAME,
        batch_size=settings.stream_batch_size,
        log_retention_days=settings.log_retention_days,
    ),
    in_stack,
)

# The export path of the bulk jobs: the bucket DynamoDB exports into, Glue and Athena for the doctor's SQL.
exports = TableExports(
    "exports",
    TableExportsArgs(table_name=settings.table_name, table_arn=messages.arn, protected=settings.protected),
    in_stack,
)

identity = Identity(
    "identity", IdentityArgs(pool_name=settings.physical_name("users"), protected=settings.protected), in_stack
)

rds_rule = create_rds_access(
    "rds-postgres-ingress",
    RdsAccessArgs(
        security_group_id=settings.rds_security_group_id,
        initial_ip=settings.rds_initial_ip,
        description=settings.rds_rule_description,
    ),
    pulumi.ResourceOptions(provider=provider),
)

pulumi.export(outputs.TABLE_NAME, messages.name)
pulumi.export(outputs.TABLE_ARN, messages.arn)
pulumi.export(outputs.STREAM_ARN, messages.stream_arn)
pulumi.export(outputs.USER_POOL_ID, identity.user_pool.id)
pulumi.export(outputs.USER_POOL_CLIENT_ID, identity.client.id)
pulumi.export(outputs.STREAM_FUNCTION_NAME, consumer.function.name)
pulumi.export(outputs.STREAM_DLQ_URL, consumer.queue.url)
# Empty when the stack names no security group, so `require()` reports it as missing.
pulumi.export(outputs.RDS_SECURITY_GROUP_ID, rds_rule.security_group_id if rds_rule else "")
pulumi.export(outputs.RDS_RULE_ID, rds_rule.security_group_rule_id if rds_rule else "")
# Empty on a stack that stores plain text: the tasks then write bodies unencrypted.
pulumi.export(outputs.MESSAGES_KEY_ARN, messages_key.arn if messages_key else "")
pulumi.export(outputs.MESSAGES_KEY_ALIAS, messages_key.alias.name if messages_key else "")
pulumi.export(outputs.EXPORT_BUCKET, exports.bucket.bucket)
pulumi.export(outputs.DOCTOR_WORKGROUP, exports.workgroup.name)
