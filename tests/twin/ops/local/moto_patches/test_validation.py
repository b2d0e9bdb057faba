"""The moto twin refuses what DynamoDB refuses: the same generated requests, the same outcome on moto and on MiniStack.

GIVEN the twin on MiniStack, whose AWS endpoint is the twin's moto server (with ops.local.moto_patches,
``validation`` included) and whose DynamoDB endpoint is MiniStack (which answers as DynamoDB on these
limits), and one table of the project's spec plus one with a number key on each WHEN the same request,
generated around each limit, goes to both THEN both accept it or both refuse it with the same error class,
and what a write stored reads back the same (numbers in DynamoDB's canonical form).
"""

from __future__ import annotations

import os
import random
import sys
import uuid
from collections.abc import Iterator
from decimal import Context, Decimal
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from ops.local import ministack
from ops.local.moto_patches import VALIDATION_ENV
from ops.target import LOCAL_CREDENTIALS, Target
from tests.twin.ops.local.moto_patches.conftest import free_port, start_server, stop

pytestmark = pytest.mark.engines(ministack.ENGINE)

SEED = 20_20


class Both:
    """One request to the moto twin and to MiniStack; the outcomes side by side."""

    def __init__(self, moto: Any, other: Any) -> None:
        self.clients = {"moto": moto, "ministack": other}

    def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        outcomes = {}
        for name, client in self.clients.items():
            try:
                answer = getattr(client, operation)(**kwargs)
                outcomes[name] = ("ok", _comparable(operation, answer))
            except ClientError as err:
                outcomes[name] = (err.response["Error"]["Code"], err.response["Error"].get("Message", ""))
        return outcomes

    def same(self, operation: str, **kwargs: Any) -> str:
        """Send it to both; assert the same outcome (error class, or the same items read); the outcome."""
        outcomes = self.call(operation, **kwargs)
        moto, other = outcomes["moto"], outcomes["ministack"]
        if moto[0] == "ok" or other[0] == "ok":
            assert moto == other, f"{operation} answered differently: {outcomes}"
        else:
            assert moto[0] == other[0], f"{operation} refused with another error class: {outcomes}"
            assert moto[0] != "InternalServerError" and "Traceback" not in moto[1], outcomes
        return str(moto[0])


def _comparable(operation: str, answer: dict[str, Any]) -> Any:
    if operation in ("get_item",):
        return answer.get("Item")
    if operation in ("query", "scan"):
        return sorted(map(repr, answer.get("Items", [])))
    if operation == "batch_get_item":
        return {t: sorted(map(repr, items)) for t, items in answer.get("Responses", {}).items()}
    return None  # writes: accepted is what counts; what they stored is read back by the test


def _client(endpoint: str) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        # a retry would reach one engine twice; botocore's own checks (Limit ≥ 1, a map's length) would stop the
        # very requests this test is about before they leave
        config=Config(retries={"max_attempts": 1}, parameter_validation=False),
        **LOCAL_CREDENTIALS,
    )


@pytest.fixture(scope="module")
def patched_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The twin's moto server (every patch, ``validation`` included) of its own: while MiniStack serves the
    twin's DynamoDB, the twin's moto endpoint refuses DynamoDB calls (it would answer from a stale copy)."""
    workdir = tmp_path_factory.mktemp("moto-validation")
    port = free_port()
    cmd = [sys.executable, "-m", "ops.local.motoserver", "--port", str(port), "--snapshot", str(workdir / "snapshot")]
    proc = start_server(cmd, workdir / "moto.log", port, os.environ | {VALIDATION_ENV: "1"})
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def both(twin: Target, patched_moto: str) -> Iterator[tuple[Both, str, str]]:
    pair = Both(_client(patched_moto), _client(str(twin.endpoint("dynamodb"))))
    strings, numbers = f"val-s-{uuid.uuid4().hex[:8]}", f"val-n-{uuid.uuid4().hex[:8]}"
    for client in pair.clients.values():
        client.create_table(
            TableName=strings,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        client.create_table(
            TableName=numbers,
            KeySchema=[{"AttributeName": "n", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "n", "AttributeType": "N"}],
            BillingMode="PAY_PER_REQUEST",
        )
    try:
        yield pair, strings, numbers
    finally:
        for client in pair.clients.values():
            for name in (strings, numbers):
                client.delete_table(TableName=name)


def _item(r: random.Random, i: int) -> dict[str, Any]:
    return {
        "pk": {"S": f"P{r.randint(0, 3)}"},
        "sk": {"S": f"{i:05d}-{r.random():.6f}"},
        "v": {"S": "x" * r.randint(1, 50)},
    }


@pytest.mark.parametrize("size", [1, 24, 25, 26, 40])
def test_batch_write_sizes(both: tuple[Both, str, str], size: int) -> None:
    pair, table, _ = both
    r = random.Random(SEED + size)
    requests = [{"PutRequest": {"Item": _item(r, i)}} for i in range(size)]
    outcome = pair.same("batch_write_item", RequestItems={table: requests})
    assert (outcome == "ok") == (size <= 25)


def test_empty_batches_are_refused(both: tuple[Both, str, str]) -> None:
    pair, table, _ = both
    assert pair.same("batch_write_item", RequestItems={}) == "ValidationException"
    assert pair.same("batch_get_item", RequestItems={}) == "ValidationException"
    assert pair.same("batch_get_item", RequestItems={table: {"Keys": []}}) == "ValidationException"


@pytest.mark.parametrize("seed", range(4))
def test_a_batch_naming_one_key_twice_is_refused_whatever_the_request_kinds(
    both: tuple[Both, str, str], seed: int
) -> None:
    pair, table, _ = both
    r = random.Random(SEED * 10 + seed)
    items = [_item(r, i) for i in range(r.randint(2, 20))]
    twin_of = r.choice(items)
    key = {"pk": twin_of["pk"], "sk": twin_of["sk"]}
    again = r.choice([{"PutRequest": {"Item": key | {"other": {"S": "attrs"}}}}, {"DeleteRequest": {"Key": key}}])
    requests = [{"PutRequest": {"Item": i}} for i in items]
    requests.insert(r.randint(0, len(requests)), again)
    assert pair.same("batch_write_item", RequestItems={table: requests}) == "ValidationException"
    keys = [{"pk": i["pk"], "sk": i["sk"]} for i in items]
    keys.insert(r.randint(0, len(keys)), key)
    assert pair.same("batch_get_item", RequestItems={table: {"Keys": keys}}) == "ValidationException"


@pytest.mark.parametrize("size", [1, 99, 100, 101])
def test_batch_get_sizes(both: tuple[Both, str, str], size: int) -> None:
    pair, table, _ = both
    keys = [{"pk": {"S": "P0"}, "sk": {"S": f"{i:05d}"}} for i in range(size)]
    assert (pair.same("batch_get_item", RequestItems={table: {"Keys": keys}}) == "ok") == (size <= 100)


@pytest.mark.parametrize("limit", [-1, 0, 1, 2])
def test_query_and_scan_limits(both: tuple[Both, str, str], limit: int) -> None:
    pair, table, _ = both
    query = pair.same(
        "query",
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "nobody"}},
        Limit=limit,
    )
    scan = pair.same(
        "scan",
        TableName=table,
        Limit=limit,
        FilterExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "nobody"}},
    )
    assert query == scan == ("ok" if limit >= 1 else "ValidationException")


NUMBERS = [
    "00042",
    "-0",
    "0.0",
    "1.50",
    "1e3",
    "-1E-3",
    "12345678901234567890123456789012345678",  # 38 digits
    "123456789012345678901234567890123456789",  # 39
    "1234567890123456789012345678901234567800000",  # 38 significant, trailing zeros
    "9.9999999999999999999999999999999999999E+125",
    "1E+126",
    "1E-130",
    "1E-131",
    "1.",
    ".5",
    "abc",
    "1e",
]


@pytest.mark.parametrize("text", NUMBERS)
def test_numbers_are_stored_canonical_and_within_dynamodbs_range(both: tuple[Both, str, str], text: str) -> None:
    pair, table, numbers = both
    key = {"pk": {"S": "num"}, "sk": {"S": text}}
    stored = pair.same("put_item", TableName=table, Item=key | {"v": {"N": text}, "s": {"NS": [text, "7"]}})
    if stored == "ok":
        pair.same("get_item", TableName=table, Key=key)  # the same canonical text read back
    as_key = pair.same("put_item", TableName=numbers, Item={"n": {"N": text}})
    if as_key == "ok":
        # read back by its canonical text: MiniStack finds a number key only by that (DynamoDB by any spelling)
        pair.same("get_item", TableName=numbers, Key={"n": {"N": canonical(text)}})


def canonical(text: str) -> str:
    value = Context(prec=200).normalize(Decimal(text))
    return "0" if value.is_zero() else format(value, "f")


def _transaction(table: str, count: int, size: int, tag: str) -> list[dict[str, Any]]:
    return [
        {"Put": {"TableName": table, "Item": {"pk": {"S": f"T{tag}"}, "sk": {"S": f"{i:04d}"}, "v": {"S": "y" * size}}}}
        for i in range(count)
    ]


@pytest.mark.parametrize(("count", "size"), [(100, 10), (101, 10), (10, 390_000), (11, 390_000)])
def test_transaction_item_count_and_size(both: tuple[Both, str, str], count: int, size: int) -> None:
    pair, table, _ = both
    outcome = pair.same("transact_write_items", TransactItems=_transaction(table, count, size, f"{count}-{size}"))
    assert (outcome == "ok") == (count <= 100 and count * size < 4_000_000)


def test_a_reused_client_request_token_with_another_payload_is_refused(both: tuple[Both, str, str]) -> None:
    pair, table, _ = both
    token = uuid.uuid4().hex
    first = _transaction(table, 2, 10, "tok")
    assert pair.same("transact_write_items", TransactItems=first, ClientRequestToken=token) == "ok"
    assert pair.same("transact_write_items", TransactItems=first, ClientRequestToken=token) == "ok"  # a retry
    other = _transaction(table, 3, 10, "tok")
    assert (
        pair.same("transact_write_items", TransactItems=other, ClientRequestToken=token)
        == "IdempotentParameterMismatchException"
    )


def test_a_validation_error_inside_a_transaction_is_a_validation_exception(both: tuple[Both, str, str]) -> None:
    """DynamoDB refuses two SET clauses in one UpdateExpression; MiniStack 1.5.33 takes them, so moto is checked
    alone there."""
    pair, table, _ = both
    key = {"pk": {"S": "txv"}, "sk": {"S": "1"}}
    two_sets = [
        {
            "Update": {
                "TableName": table,
                "Key": key,
                "UpdateExpression": "SET a = :v SET b = :v",
                "ExpressionAttributeValues": {":v": {"S": "x"}},
            }
        }
    ]
    refused = pair.call("transact_write_items", TransactItems=two_sets)["moto"]
    assert refused[0] == "ValidationException" and '"SET" section can only be used once' in refused[1], refused
    too_big = [{"Put": {"TableName": table, "Item": key | {"v": {"S": "z" * 410_000}}}}]
    assert pair.same("transact_write_items", TransactItems=too_big) == "ValidationException"


UNDEFINED = [
    ("scan", {"FilterExpression": "#n = :v", "ExpressionAttributeValues": {":v": {"S": "a"}}}),
    ("scan", {"FilterExpression": "pk = :v"}),
    ("scan", {"ProjectionExpression": "#n"}),
    ("query", {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":q": {"S": "a"}}}),
    ("query", {"KeyConditionExpression": "#k = :p", "ExpressionAttributeValues": {":p": {"S": "a"}}}),
    ("put_item", {"Item": {"pk": {"S": "u"}, "sk": {"S": "1"}}, "ConditionExpression": "attribute_not_exists(#k)"}),
    ("update_item", {"Key": {"pk": {"S": "u"}, "sk": {"S": "1"}}, "UpdateExpression": "SET #a = :v"}),
    ("update_item", {"Key": {"pk": {"S": "u"}, "sk": {"S": "1"}}, "UpdateExpression": "SET a = :v"}),
    ("delete_item", {"Key": {"pk": {"S": "u"}, "sk": {"S": "1"}}, "ConditionExpression": "a = :v"}),
]


@pytest.mark.parametrize(("operation", "kwargs"), UNDEFINED, ids=[f"{o}-{i}" for i, (o, _) in enumerate(UNDEFINED)])
def test_an_undefined_name_or_value_in_any_expression_is_a_validation_exception(
    both: tuple[Both, str, str], operation: str, kwargs: dict[str, Any]
) -> None:
    pair, table, _ = both
    assert pair.same(operation, TableName=table, **kwargs) == "ValidationException"
