"""The stream consumer: a Lambda that moves both group rows to each new message.

The handler (``ops/messages/consumer.py``) lives in the library so it shares the access
patterns with the tasks; the package is ``ops/messages`` plus what it imports (``LAMBDA_FILES``,
derived from the imports by ``ops.lambda_package``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from ops.errors import ConfigError
from ops.lambda_package import package_files
from ops.stream_mapping import DLQ_RETENTION_SECONDS, MAX_RECORD_AGE_SECONDS, MAX_RETRY_ATTEMPTS, STREAM_FILTER

REPO_ROOT = Path(__file__).resolve().parent.parent

HANDLER = "ops.messages.consumer.handler"
# The handler's package and everything it imports, relative to the repository root; nothing else
# is uploaded (no yaml, psycopg or Pulumi in the Lambda: boto3 comes with the runtime).
LAMBDA_FILES: tuple[str, ...] = package_files(HANDLER)
RUNTIME = "python3.12"

# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_CHOICES = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)

# What Lambda's poller calls with the function's role to read a DynamoDB stream (AWS documents these four).
LAMBDA_STREAM_POLLER_ACTIONS = (
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
)
# Actions left out on purpose, with the reason (tests/twin/infra/test_consumer_iam.py reads this).
NOT_GRANTED = {
    # ListStreams takes no resource: only `Resource: "*"` would allow it (a grant on the stream ARN
    # does nothing), and the mapping hands the poller the stream's ARN, so it never lists streams.
    "dynamodb:ListStreams": "takes no resource; the mapping names the stream",
}
STREAM_ACTIONS = [a for a in LAMBDA_STREAM_POLLER_ACTIONS if a not in NOT_GRANTED]
INDEX_ACTIONS = ["dynamodb:Query"]
# TransactWriteItems is authorised per item: the move is a Delete and a Put, plus, for a named group's
# row, a ConditionCheck of the group's membership item (the owner is still a member); extra rows are
# removed with DeleteItem. Nothing reads an item by key (the image has it all).
TABLE_ACTIONS = ["dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"]
# Lambda's runtime writes the function's logs with its role; the group itself is declared here.
LOG_ACTIONS = ["logs:CreateLogStream", "logs:PutLogEvents"]
# The mapping sends the on-failure pointer to the queue with the function's role.
DLQ_ACTIONS = ["sqs:SendMessage"]


def lambda_archive(root: Path = REPO_ROOT) -> pulumi.AssetArchive:
    """The deployment package: only ``LAMBDA_FILES``, at the same paths as in the repository."""
    return pulumi.AssetArchive({path: pulumi.FileAsset(str(root / path)) for path in LAMBDA_FILES})


def consumer_policy(table_arn: str, stream_arn: str, index_name: str, log_group_arn: str, queue_arn: str) -> str:
    """Least-privilege policy of the consumer: this table, its stream and index, its logs, its queue."""
    statements = [
        ("ReadThisTableStream", STREAM_ACTIONS, [stream_arn]),
        ("QueryGroupIndex", INDEX_ACTIONS, [f"{table_arn}/index/{index_name}"]),
        ("MoveGroupRows", TABLE_ACTIONS, [table_arn]),
        ("WriteOwnLogs", LOG_ACTIONS, [log_group_arn, f"{log_group_arn}:log-stream:*"]),
        ("ParkFailedBatches", DLQ_ACTIONS, [queue_arn]),
    ]
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}
                for sid, actions, resources in statements
            ],
        }
    )


LAMBDA_ASSUME_ROLE = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


@dataclass(frozen=True)
class StreamConsumerArgs:
    function_name: str
    queue_name: str
    table_name: pulumi.Input[str]
    table_arn: pulumi.Input[str]
    stream_arn: pulumi.Input[str]
    index_name: str
    batch_size: int
    log_retention_days: int


class StreamConsumer(pulumi.ComponentResource):
    """Lambda + event source mapping + dead-letter queue + log group for the table's stream."""

    function: aws.lambda_.Function
    queue: aws.sqs.Queue
    log_group: aws.cloudwatch.LogGroup
    mapping: aws.lambda_.EventSourceMapping

    def __init__(self, name: str, args: StreamConsumerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("cruddur:messages:StreamConsumer", name, None, opts)
        if args.log_retention_days not in LOG_RETENTION_CHOICES:
            raise ConfigError(
                f"logRetentionDays must be one of {', '.join(map(str, LOG_RETENTION_CHOICES))}, not "
                f"{args.log_retention_days}"
            )
        if not 1 <= args.batch_size <= 10000:
            raise ConfigError(f"streamBatchSize must be between 1 and 10000, not {args.batch_size}")
        child = pulumi.ResourceOptions(parent=self)

        # Declared (not left to Lambda to create) so its retention is ours and the policy can name it.
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/lambda/{args.function_name}",
            retention_in_days=args.log_retention_days,
            opts=child,
        )

        # Batches that still fail after retries are recorded here instead of blocking the shard.
        self.queue = aws.sqs.Queue(
            f"{name}-dlq",
            name=args.queue_name,
            message_retention_seconds=DLQ_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            opts=child,
        )

        # The identity the function runs as; only Lambda may assume it.
        role = aws.iam.Role(
            f"{name}-role",
            name=f"{args.function_name}-role",
            assume_role_policy=LAMBDA_ASSUME_ROLE,
            opts=child,
        )

        # Exactly what the consumer does, on exactly this stack's resources: no wildcard action or resource.
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=pulumi.Output.all(args.table_arn, args.stream_arn, self.log_group.arn, self.queue.arn).apply(
                lambda arns: consumer_policy(arns[0], arns[1], args.index_name, arns[2], arns[3])
            ),
            opts=child,
        )

        # The handler that moves both group rows of a conversation to its newest message.
        self.function = aws.lambda_.Function(
            f"{name}-function",
            name=args.function_name,
            role=role.arn,
            runtime=RUNTIME,
            handler=HANDLER,
            code=lambda_archive(),
            architectures=["arm64"],
            memory_size=256,
            timeout=30,
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={"TABLE_NAME": args.table_name, "GSI_NAME": args.index_name}
            ),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(log_format="Text", log_group=self.log_group.name),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )

        # Feeds the stream to the function; failed records are bisected, retried, then parked in the queue.
        self.mapping = aws.lambda_.EventSourceMapping(
            f"{name}-mapping",
            event_source_arn=args.stream_arn,
            function_name=self.function.arn,
            starting_position="LATEST",
            batch_size=args.batch_size,
            bisect_batch_on_function_error=True,
            maximum_retry_attempts=MAX_RETRY_ATTEMPTS,
            maximum_record_age_in_seconds=MAX_RECORD_AGE_SECONDS,
            function_response_types=["ReportBatchItemFailures"],
            filter_criteria=aws.lambda_.EventSourceMappingFilterCriteriaArgs(
                filters=[aws.lambda_.EventSourceMappingFilterCriteriaFilterArgs(pattern=json.dumps(STREAM_FILTER))]
            ),
            destination_config=aws.lambda_.EventSourceMappingDestinationConfigArgs(
                on_failure=aws.lambda_.EventSourceMappingDestinationConfigOnFailureArgs(destination_arn=self.queue.arn)
            ),
            # Creating the mapping checks that the role can read the stream, so the policy goes first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )

        self.register_outputs({"functionName": self.function.name, "queueUrl": self.queue.url})
