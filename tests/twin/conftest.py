"""Fixtures of the twin-backed tests, on top of the session twin of tests/conftest.py."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from ops import db as dbops
from ops import ddb as ddbops
from ops.db import User
from ops.messages.model import GSI_NAME
from ops.table_spec import create_table_kwargs, table_spec
from ops.target import LOCAL_CREDENTIALS, Target
from tests.support import leftovers
from tests.support.helpers import stream_worker_stopped, threaded_moto

leftovers.mark_this_process()  # before any twin starts: every process a test starts inherits it
SESSION_STATE = Path(os.environ["CRUDDUR_STATE_DIR"])  # tests/conftest.py's state root (its twins live under it)


@pytest.fixture(scope="module", autouse=True)
def no_twin_process_left() -> Iterator[None]:
    """A module ends with no twin process of its own left running that no lasting twin records.

    A server or worker nobody records is stopped by no ``local.down``: it outlives the run (a stream
    worker retries a vanished twin forever). Only this test process's own are looked at (see
    ``tests.support.leftovers``); what leaked is killed and named, and the module fails.
    """
    before = leftovers.own_twin_processes()
    yield
    left = leftovers.leftovers(before, SESSION_STATE)
    if left:
        leftovers.stop(left)
        pytest.fail(
            "twin process(es) left running by this module, recorded by no twin that outlives it (now killed): "
            + "; ".join(map(str, left)),
            pytrace=False,
        )


@pytest.fixture
def stream_worker_paused(twin: Target) -> Iterator[None]:
    """The twin's stream worker stopped for the test (started again after it): use it in a test that plants
    data the worker would touch in the stack's own table (group rows, messages) and reads it back."""
    with stream_worker_stopped(twin.stack.name):
        yield


@pytest.fixture(scope="session")
def streams(twin: Target) -> Any:
    return twin.client("dynamodbstreams")


@pytest.fixture
def lambda_env(twin: Target, table: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The environment the Lambda gets from infra/stream_consumer.py, pointed at the twin."""
    monkeypatch.setenv("TABLE_NAME", table)
    monkeypatch.setenv("GSI_NAME", GSI_NAME)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", str(twin.endpoint("dynamodb")))
    monkeypatch.setenv("AWS_REGION", twin.region)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", LOCAL_CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", LOCAL_CREDENTIALS["aws_secret_access_key"])
    return table


@dataclass(frozen=True)
class IsolatedMoto:
    endpoint: str  # DynamoDB's (and, for the in-process moto server, every other service's)
    others: Target | None = None  # where the other services are when DynamoDB is MiniStack

    def client(self, service: str) -> Any:
        if self.others is not None and service not in ("dynamodb", "dynamodbstreams"):
            return self.others.client(service)
        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1", **LOCAL_CREDENTIALS)


@pytest.fixture(scope="session")
def isolated_moto(engine: str, twin: Target) -> Iterator[IsolatedMoto]:
    """A DynamoDB with DynamoDB's transaction isolation, for the concurrency tests.

    On moto: an in-process moto server with ``ops.local.moto_patches.isolation`` installed (plain moto
    lets two concurrent transactions both pass a condition that DynamoDB lets only one pass).
    On MiniStack: the twin's own engine, which isolates transactions itself.
    """
    if engine != "moto":
        yield IsolatedMoto(str(twin.endpoint("dynamodb")), others=twin)
        return
    from ops.local.moto_patches.isolation import serialise_dynamodb

    serialise_dynamodb()
    with threaded_moto() as url:
        yield IsolatedMoto(url)


@pytest.fixture
def isolated_table(isolated_moto: IsolatedMoto, twin: Target) -> Iterator[str]:
    spec = dataclasses.replace(table_spec(twin.stack), name=f"test-{uuid.uuid4().hex[:10]}")
    client = isolated_moto.client("dynamodb")
    client.create_table(**create_table_kwargs(spec))
    try:
        yield spec.name
    finally:
        client.delete_table(TableName=spec.name)


@pytest.fixture
def stack_table(twin: Target, ddb: Any) -> Iterator[str]:
    """The stack's own table (the tasks take no table name), created when missing and then removed."""
    result = ddbops.schema_load(ddb, table_spec(twin.stack))
    yield result.table
    if result.created:
        ddb.delete_table(TableName=result.table)


@pytest.fixture
def users(database: Target) -> dict[str, User]:
    with dbops.connect(database) as conn:
        return dbops.users_by_handle(conn, ["ada", "bram", "chidi", "dana"])
