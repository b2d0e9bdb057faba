"""The stream consumer's IAM policy is exactly what it does, derived by recording its calls against the twin.

GIVEN a table with a conversation (replies to move, an extra row left by an older writer), a named group of three (whose
moves check its membership) and a message the consumer cannot handle, WHEN the twin's mapping (ops.local.streams, what
Lambda's poller does) feeds the stream to the consumer with botocore recording every operation, THEN the IAM actions
those operations need, per resource, are the policy's statements: no more, no fewer.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.stream_consumer import LAMBDA_STREAM_POLLER_ACTIONS, LOG_ACTIONS, NOT_GRANTED
from ops import dead_letters
from ops.local.streams import RetryPolicy, process_once
from ops.messages.membership import create_group
from ops.messages.model import GRP_PREFIX, GSI_NAME, MSG_PREFIX
from ops.messages.send import send_message
from ops.stream_mapping import matches_filter
from ops.target import Target
from tests.support.helpers import s_item
from tests.support.plans import planned
from tests.support.streams import person

ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
# TransactWriteItems is authorised per item, with the action of each item's kind.
TRANSACT_ITEM_ACTIONS = {
    "Put": "PutItem",
    "Delete": "DeleteItem",
    "Update": "UpdateItem",
    "ConditionCheck": "ConditionCheckItem",
}
STREAM_OPERATIONS = {"DescribeStream", "GetShardIterator", "GetRecords", "ListStreams"}


@dataclass(frozen=True)
class Call:
    prefix: str  # the IAM service prefix (the client's signing name: dynamodbstreams signs as dynamodb)
    operation: str
    params: dict[str, Any]


def _recorded(client: Any, calls: list[Call]) -> Any:
    """The client, with every operation it sends appended to ``calls`` (botocore's event hook, before the request is
    built)."""

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append(Call(model.service_model.signing_name, model.name, json.loads(json.dumps(params, default=str))))

    client.meta.events.register("before-parameter-build", record)
    return client


def _grants(call: Call, table: str, queue_url: str) -> Iterator[tuple[str, str]]:
    """(IAM action, resource kind) that one operation needs; the kinds stand for the plan's ARNs."""
    if call.operation == "TransactWriteItems":
        for item in call.params["TransactItems"]:
            [(kind, body)] = item.items()
            assert body["TableName"] == table
            yield f"dynamodb:{TRANSACT_ITEM_ACTIONS[kind]}", "table"
    elif call.operation in STREAM_OPERATIONS:
        yield f"dynamodb:{call.operation}", "stream"
    elif call.operation == "SendMessage":
        assert call.params["QueueUrl"] == queue_url
        yield "sqs:SendMessage", "queue"
    else:
        assert call.params.get("TableName") == table, call
        index = call.params.get("IndexName")
        yield f"{call.prefix}:{call.operation}", f"index/{index}" if index else "table"


def _policy_statements() -> dict[str, tuple[set[str], set[str]]]:
    """The planned policy's statements: Sid -> (actions, resource kinds)."""
    plan = planned("dev")
    table = plan.one("aws:dynamodb/table:Table").state
    log_group = plan.one("aws:cloudwatch/logGroup:LogGroup").state["arn"]
    kinds = {
        table["arn"]: "table",
        f"{table['arn']}/index/{GSI_NAME}": f"index/{GSI_NAME}",
        table["streamArn"]: "stream",
        plan.one("aws:sqs/queue:Queue").state["arn"]: "queue",
        log_group: "logs",
        f"{log_group}:log-stream:*": "logs",
    }
    statements = {}
    for st in json.loads(plan.one(ROLE_POLICY).inputs["policy"])["Statement"]:
        assert st["Effect"] == "Allow"
        statements[st["Sid"]] = (set(st["Action"]), {kinds[r] for r in st["Resource"]})
    return statements


def _by_kind(grants: set[tuple[str, str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for action, kind in grants:
        out.setdefault(kind, set()).add(action)
    return out


def test_the_policy_grants_exactly_what_the_consumer_and_its_mapping_call(
    twin: Target, table: str, tmp_path: Path
) -> None:
    # GIVEN: a conversation with replies whose group rows have not moved, a stale extra row, and a message with no text
    writer = twin.client("dynamodb")
    ada, bram = person("ada"), person("bram")
    group = send_message(writer, table, ada, "hello", receiver=bram).group_uuid
    send_message(writer, table, bram, "a reply", group_uuid=group)
    send_message(writer, table, ada, "another", group_uuid=group)
    stale = {
        "pk": GRP_PREFIX + ada.uuid,
        "sk": "2020-01-01T00:00:00.000000+00:00",
        "message_group_uuid": group,
        "message": "old",
        "user_uuid": bram.uuid,
        "user_display_name": bram.display_name,
        "user_handle": bram.handle,
    }
    writer.put_item(TableName=table, Item=s_item(stale))  # what an older, non-atomic writer left behind
    trio = create_group(writer, table, ada, "trio", [bram, person("chidi")]).group_uuid
    send_message(writer, table, bram, "to the trio", group_uuid=trio)
    writer.put_item(
        TableName=table, Item=s_item({"pk": f"{MSG_PREFIX}{uuid.uuid4()}", "sk": "2026-01-01T00:00:00.000000+00:00"})
    )  # no text: fails
    sqs = twin.client("sqs")
    queue_url = sqs.create_queue(QueueName=f"test-dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]

    # WHEN: the twin's mapping runs the consumer once over the stream, every call recorded
    calls: list[Call] = []
    streams, ddb, dlq = (_recorded(twin.client(name), calls) for name in ("dynamodbstreams", "dynamodb", "sqs"))

    def park(stream: str, shard: str, records: list[dict[str, Any]], condition: str, attempts: int) -> None:
        dead_letters.send(
            dlq,
            queue_url,
            dead_letters.pointer_message(stream, shard, records, condition, attempts, "cruddur-dev-stream-consumer"),
        )

    policy = RetryPolicy(
        max_retry_attempts=0, max_record_age_seconds=3600, dead_letter=park, record_filter=matches_filter
    )
    counts = process_once(streams, ddb, table, GSI_NAME, tmp_path / "checkpoints.json", 25, policy)
    try:
        # THEN: every path ran (moves, the stale row removed, a failure parked)...
        assert counts.rows_moved >= 5 and counts.dead_lettered == 1, counts
        operations = {c.operation for c in calls}
        assert {"TransactWriteItems", "DeleteItem", "Query", "SendMessage", "GetRecords"} <= operations, operations
        # ...DescribeTable is only how the twin finds the stream (Lambda's mapping is given its ARN)...
        used = {g for c in calls if c.operation != "DescribeTable" for g in _grants(c, table, queue_url)}
        # ...the poller called nothing Lambda's poller does not, and each action it needs is granted or left out for a
        # stated reason...
        poller = {a for a, kind in used if kind == "stream"}
        assert poller <= set(LAMBDA_STREAM_POLLER_ACTIONS)
        statements = _policy_statements()
        logs = statements.pop("WriteOwnLogs")  # the runtime writes them; nothing here can record it
        assert logs == (set(LOG_ACTIONS), {"logs"})
        granted = _by_kind({(a, kind) for actions, kinds in statements.values() for a in actions for kind in kinds})
        expected = _by_kind(used) | {"stream": set(LAMBDA_STREAM_POLLER_ACTIONS) - set(NOT_GRANTED)}
        assert granted == expected
        assert statements["ReadThisTableStream"][0] == poller, "the stream statement is what the poller reads with"
        assert len({frozenset(kinds) for _, kinds in statements.values()}) == len(statements), (
            "one statement per resource"
        )
    finally:
        sqs.delete_queue(QueueUrl=queue_url)
