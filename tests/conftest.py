"""Session-wide fixtures: one local twin for the whole run, started through local.up's code path.

The environment is set at import time so every subprocess a test starts (invoke tasks)
talks to the same twin: a private state directory and ports shifted by 100, so a
developer's own twin on the default ports is never touched.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
STATE_DIR = tempfile.mkdtemp(prefix="cruddur-tests-")
os.environ["CRUDDUR_STATE_DIR"] = STATE_DIR
# CRUDDUR_TEST_PORT_OFFSET moves the suite's twins when something else already sits on +100
TEST_PORT_BASE = int(os.environ.get("CRUDDUR_TEST_PORT_OFFSET", "100"))
os.environ["CRUDDUR_LOCAL_PORT_OFFSET"] = str(TEST_PORT_BASE)
# the suite's other twins sit at fixed distances from the base, so two checkouts can test at once
os.environ.setdefault("CRUDDUR_TEST_README_PORT_OFFSET", str(TEST_PORT_BASE + 100))
os.environ.setdefault("CRUDDUR_TEST_IDENTITY_PORT_OFFSET", str(TEST_PORT_BASE + 200))
os.environ.setdefault("CRUDDUR_BENCH_PORT_OFFSET", str(TEST_PORT_BASE + 400))
os.environ.setdefault("CRUDDUR_TEST_DURABILITY_PORT_OFFSET", str(TEST_PORT_BASE + 500))
os.environ.pop("DATABASE_URL", None)  # the twin's own embedded PostgreSQL, never a developer's server
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from ops import db as dbops  # noqa: E402
from ops import ddb as ddbops  # noqa: E402
from ops.local import twin as twinops  # noqa: E402
from ops.stacks import load_stack  # noqa: E402
from ops.table_spec import table_spec  # noqa: E402
from ops.target import Target, resolve_target  # noqa: E402


@pytest.fixture(scope="session")
def twin() -> Iterator[Target]:
    """The dev stack's twin: moto server + embedded PostgreSQL, exactly as `invoke local.up` starts them."""
    stack = load_stack("dev")
    twinops.up(stack, engine="moto")
    try:
        yield resolve_target("dev")
    finally:
        twinops.down(stack)


@pytest.fixture(scope="session")
def ddb(twin: Target) -> Any:
    return twin.client("dynamodb", max_pool_connections=16)


@pytest.fixture(scope="session")
def database(twin: Target) -> Target:
    """The dev twin's application database, created, schema-loaded and seeded once."""
    dbops.drop_database(twin)
    dbops.create_database(twin)
    with dbops.connect(twin) as conn:
        dbops.load_schema(conn)
        dbops.seed_users(conn)
    return twin


@pytest.fixture
def conn(database: Target) -> Iterator[Any]:
    with dbops.connect(database) as c:
        yield c


@pytest.fixture
def table(twin: Target, ddb: Any) -> Iterator[str]:
    """A fresh messages table (the stack's spec under a unique name), deleted afterwards."""
    spec = dataclasses.replace(table_spec(twin.stack), name=f"test-{uuid.uuid4().hex[:10]}")
    ddbops.schema_load(ddb, spec)
    try:
        yield spec.name
    finally:
        if ddbops.describe(ddb, spec.name):
            ddb.delete_table(TableName=spec.name)
