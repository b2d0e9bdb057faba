"""The patched MiniStack answers every Query exactly as plain MiniStack 1.5.33 does, only faster.

GIVEN two MiniStack servers over HTTP from MiniStack's own virtualenv, the twin's (with
ops.local.ministack_patches) and a plain one (``CRUDDUR_MINISTACK_PATCHES=0``), fed the same random
partitions WHEN the same random Queries (key conditions of every shape, both directions, limits,
filters, projections, start keys) go to both, page by page along LastEvaluatedKey, THEN the answers
are equal.
"""

from __future__ import annotations

import os
import random
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from ops.local import ministack
from ops.local.ministack_patches import DISABLE_ENV
from ops.stacks import PROJECT_ROOT
from ops.target import LOCAL_CREDENTIALS
from tests.twin.ops.local.moto_patches.conftest import free_port, start_server, stop

pytestmark = pytest.mark.engines(ministack.ENGINE)  # needs MiniStack's virtualenv, as that engine's tests do

TABLE = "patched-query"
ALPHABET = "abcAB09_-é😀"


def _client(port: int) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
        **LOCAL_CREDENTIALS,
    )


@pytest.fixture(scope="module")
def servers(engine: str) -> Iterator[tuple[Any, Any]]:
    python = str(ministack.python())
    work = Path(tempfile.mkdtemp(prefix="ministack-pair-"))
    started = []
    clients = []
    try:
        for name, patches in (("patched", "1"), ("plain", "0")):
            port = free_port()
            cmd = [python, "-m", ministack.SERVER_MODULE, "--port", str(port), "--data", str(work / name)]
            env = os.environ | {"PYTHONPATH": str(PROJECT_ROOT), DISABLE_ENV: patches}
            started.append(start_server(cmd, work / f"{name}.log", port, env))
            clients.append(_client(port))
        for client in clients:
            client.create_table(
                TableName=TABLE,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        yield clients[0], clients[1]
    finally:
        for proc in started:
            stop(proc)
        subprocess.run(["rm", "-rf", str(work)], check=False)


def _word(r: random.Random, short: bool = False) -> str:
    return "".join(r.choice(ALPHABET) for _ in range(r.randint(1, 3 if short else 8)))


def _answer(client: Any, kwargs: dict[str, Any]) -> Any:
    try:
        resp = client.query(**kwargs)
    except client.exceptions.ClientError as err:
        return ("error", err.response["Error"]["Code"], err.response["Error"].get("Message"))
    resp.pop("ResponseMetadata", None)
    return resp


def _condition(r: random.Random, words: list[str]) -> tuple[str, dict[str, Any]]:
    a, b = sorted([r.choice(words + [_word(r)]), r.choice(words + [_word(r)])])
    shape = r.choice(["none", "=", "<", "<=", ">", ">=", "between", "begins", "reversed"])
    if shape == "none":
        return "", {}
    if shape == "between":
        return " AND #s BETWEEN :a AND :b", {":a": {"S": a}, ":b": {"S": b}}
    if shape == "reversed":  # a BETWEEN whose bounds are the wrong way round: MiniStack's own error
        return " AND #s BETWEEN :a AND :b", {":a": {"S": b + "z"}, ":b": {"S": a}}
    if shape == "begins":
        return " AND begins_with(#s, :a)", {":a": {"S": a[: r.randint(1, len(a))]}}
    return f" AND #s {shape} :a", {":a": {"S": a}}


@pytest.mark.parametrize("seed", range(3))
def test_random_queries_answer_the_same_page_by_page(servers: tuple[Any, Any], seed: int) -> None:
    patched, plain = servers
    r = random.Random(7700 + seed)
    partitions = {f"P{seed}-{p}": sorted({_word(r) for _ in range(r.randint(25, 90))}) for p in range(3)}
    for pk, words in partitions.items():
        for start in range(0, len(words), 25):
            batch = [
                {"PutRequest": {"Item": {"pk": {"S": pk}, "sk": {"S": w}, "n": {"N": str(r.randint(0, 9))}}}}
                for w in words[start : start + 25]
            ]
            for client in servers:
                client.batch_write_item(RequestItems={TABLE: batch})
    for _ in range(60):
        pk = r.choice(list(partitions))
        extra, values = _condition(r, partitions[pk])
        kwargs: dict[str, Any] = {
            "TableName": TABLE,
            "KeyConditionExpression": "#p = :p" + extra,
            "ExpressionAttributeNames": {"#p": "pk"} | ({"#s": "sk"} if extra else {}),
            "ExpressionAttributeValues": {":p": {"S": pk}} | values,
            "Limit": r.randint(1, 12),
            "ScanIndexForward": r.random() < 0.5,
        }
        if r.random() < 0.3:
            kwargs["FilterExpression"] = "n > :f"
            kwargs["ExpressionAttributeValues"][":f"] = {"N": str(r.randint(0, 9))}
        if r.random() < 0.2:
            kwargs["ProjectionExpression"] = "sk"
            kwargs["ExpressionAttributeNames"].pop("#s", None) if not extra else None
        if r.random() < 0.1:
            kwargs["Select"] = "COUNT"
        for _page in range(40):  # along LastEvaluatedKey to the end
            ours, theirs = _answer(patched, kwargs), _answer(plain, kwargs)
            assert ours == theirs, f"query {kwargs} answered differently"
            if not isinstance(ours, dict) or "LastEvaluatedKey" not in ours:
                break
            kwargs["ExclusiveStartKey"] = ours["LastEvaluatedKey"]
