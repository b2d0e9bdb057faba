"""ops.aws: every page of a listing, throttled pages retried, and AWS errors named once."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber

from ops import aws
from ops.errors import CloudError, NotFoundError


def _client(service: str) -> Any:
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def test_pages_follow_the_token_botocore_names_for_the_listing() -> None:
    ddb = _client("dynamodb")
    with Stubber(ddb) as stub:
        stub.add_response("list_tables", {"TableNames": ["aaa", "bbb"], "LastEvaluatedTableName": "bbb"}, {})
        stub.add_response(
            "list_tables", {"TableNames": ["ccc"], "LastEvaluatedTableName": "ccc"}, {"ExclusiveStartTableName": "bbb"}
        )
        stub.add_response("list_tables", {"TableNames": []}, {"ExclusiveStartTableName": "ccc"})
        assert list(aws.items(ddb, "list_tables", "ListTables", "TableNames")) == ["aaa", "bbb", "ccc"]
        stub.assert_no_pending_responses()


def test_pages_of_a_listing_botocore_has_no_paginator_for() -> None:
    streams = _client("dynamodbstreams")
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000"

    one, two = "shardId-00000001700000000000-0001", "shardId-00000001700000000000-0002"

    def page(shards: list[str], last: str | None) -> dict[str, Any]:
        desc: dict[str, Any] = {
            "StreamArn": arn,
            "Shards": [{"ShardId": s, "SequenceNumberRange": {"StartingSequenceNumber": "1" * 21}} for s in shards],
        }
        return {"StreamDescription": desc | ({"LastEvaluatedShardId": last} if last else {})}

    with Stubber(streams) as stub:
        stub.add_response("describe_stream", page([one], one), {"StreamArn": arn})
        stub.add_response("describe_stream", page([two], None), {"StreamArn": arn, "ExclusiveStartShardId": one})
        got = [
            s["ShardId"]
            for p in aws.pages(streams, "describe_stream", "DescribeStream", StreamArn=arn)
            for s in p["StreamDescription"]["Shards"]
        ]
    assert got == [one, two]


def test_a_throttled_page_is_asked_again_and_the_listing_goes_on() -> None:
    cognito = _client("cognito-idp")
    sleeps: list[float] = []
    with Stubber(cognito) as stub:
        stub.add_response(
            "list_users", {"Users": [{"Username": "u1"}], "PaginationToken": "t1"}, {"UserPoolId": "p", "Limit": 60}
        )
        stub.add_client_error("list_users", "TooManyRequestsException", "slow down")
        stub.add_response(
            "list_users", {"Users": [{"Username": "u2"}]}, {"UserPoolId": "p", "Limit": 60, "PaginationToken": "t1"}
        )
        users = [
            u["Username"]
            for u in aws.items(
                cognito, "list_users", "ListUsers", "Users", sleep=sleeps.append, UserPoolId="p", Limit=60
            )
        ]
    assert users == ["u1", "u2"] and len(sleeps) == 1


def test_a_listing_that_is_not_paginated_is_a_programming_error() -> None:
    with pytest.raises(AssertionError, match="not a paginated"):
        next(aws.pages(_client("dynamodb"), "describe_table", "DescribeTable", TableName="t"))


@pytest.mark.parametrize(
    ("code", "kind", "text"),
    [
        ("ResourceNotFoundException", NotFoundError, "run `invoke ddb.schema-load`"),
        ("ThrottlingException", CloudError, "still throttled"),
        ("ValidationException", CloudError, "Scan t: ValidationException: bad"),
    ],
)
def test_aws_errors_become_one_named_error_that_keeps_the_code(code: str, kind: type[Exception], text: str) -> None:
    err = ClientError({"Error": {"Code": code, "Message": "bad"}}, "Scan")
    named = aws.translate(err, "Scan t", not_found="table 't' does not exist: run `invoke ddb.schema-load`")
    assert isinstance(named, kind) and text in str(named)
    assert aws.error_code(named) == code  # logs still say what AWS answered


def test_a_connection_failure_inside_the_block_is_a_cloud_error() -> None:
    with pytest.raises(CloudError, match="DescribeTable t: Could not connect"):
        with aws.aws_errors("DescribeTable t"):
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")


def test_a_non_aws_error_passes_through_unchanged() -> None:
    with pytest.raises(KeyError):
        with aws.aws_errors("anything"):
            raise KeyError("ours")
