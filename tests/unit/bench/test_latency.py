"""The simulated-distance proxy: every request waits the delay once, requests in flight wait it side by side."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from bench.latency import delay_proxy, endpoint
from ops.target import LOCAL_CREDENTIALS
from tests.support.helpers import threaded_moto

DELAY = 0.1


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with threaded_moto() as url:
        yield url


def _client(url: str) -> Any:
    return boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1", **LOCAL_CREDENTIALS)


def test_each_request_waits_the_delay_and_the_answer_comes_through_unchanged(moto_url: str) -> None:
    direct = _client(moto_url)
    direct.create_table(
        TableName="far-away",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with delay_proxy(moto_url, DELAY) as proxy:
        far = _client(endpoint(proxy))
        far.list_tables()  # connection opened
        started = time.perf_counter()
        for i in range(4):
            far.put_item(TableName="far-away", Item={"pk": {"S": f"k{i}"}})
        took = time.perf_counter() - started
        assert far.get_item(TableName="far-away", Key={"pk": {"S": "k3"}})["Item"] == {"pk": {"S": "k3"}}
        assert proxy.requests == 6
    assert took >= 4 * DELAY
    assert direct.scan(TableName="far-away")["Count"] == 4


def test_requests_in_flight_wait_side_by_side(moto_url: str) -> None:
    with delay_proxy(moto_url, DELAY) as proxy:
        clients = [_client(endpoint(proxy)) for _ in range(4)]
        for c in clients:
            c.list_tables()
        barrier = threading.Barrier(4)

        def call(c: Any) -> None:
            barrier.wait()
            c.list_tables()

        threads = [threading.Thread(target=call, args=(c,)) for c in clients]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        took = time.perf_counter() - started
    assert DELAY <= took < 3 * DELAY, "four requests at once pay the distance about once, not four times"
