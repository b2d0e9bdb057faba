"""Fixtures of the identity tests: a twin of their own, a scratch database, fresh pools and groups.

These tests move the stack's RDS rule, fill Cognito pools and drop the stack's database (through
``db.setup``), so they run on a separate twin of the dev stack (ports shifted by 300, a private
state directory) started through the same code path as ``invoke local.up``; the session twin of
``tests/conftest.py`` is never touched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from ops import db as dbops
from ops.local import twin as twinops
from ops.stacks import load_stack
from ops.target import Target, resolve_target

PORT_OFFSET = os.environ["CRUDDUR_TEST_IDENTITY_PORT_OFFSET"]  # set by tests/conftest.py
SCRATCH_DB = "identity_ops"


@pytest.fixture(scope="package")
def identity_twin() -> Iterator[Target]:
    """A dev-stack twin (moto server + embedded PostgreSQL) only for this package."""
    state = tempfile.mkdtemp(prefix="cruddur-identity-")
    with pytest.MonkeyPatch.context() as mp:
        # set for the package only: subprocesses (invoke) inherit them, and other packages get theirs back
        mp.setenv("CRUDDUR_STATE_DIR", state)
        mp.setenv("CRUDDUR_LOCAL_PORT_OFFSET", PORT_OFFSET)
        mp.delenv("DATABASE_URL", raising=False)
        for name in ("GITPOD_IP", "CRUDDUR_MY_IP"):
            mp.delenv(name, raising=False)
        stack = load_stack("dev")
        try:
            twinops.up(stack, engine="moto")  # a failed start stops what it started, then raises
            yield resolve_target("dev")
        finally:
            twinops.down(stack)
            shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="package")
def scratch_url(identity_twin: Target) -> str:
    """A database of its own on the twin's server, so ops tests never race the stack's database."""
    url = identity_twin.database_url()
    with psycopg.connect(dbops.with_database(url, "postgres"), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {SCRATCH_DB}")
    scratch = dbops.with_database(url, SCRATCH_DB)
    with psycopg.connect(scratch) as conn:
        dbops.load_schema(conn)
    return scratch


@pytest.fixture
def conn(scratch_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to an empty users table (triggers from earlier tests removed)."""
    with psycopg.connect(scratch_url, autocommit=True) as c:
        for (name,) in c.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'users'::regclass AND NOT tgisinternal"
        ).fetchall():
            c.execute(f'DROP TRIGGER "{name}" ON users')
        c.execute("TRUNCATE users CASCADE")
        yield c


@pytest.fixture(scope="package")
def cognito(identity_twin: Target) -> Any:
    return identity_twin.client("cognito-idp")


@pytest.fixture(scope="package")
def ec2(identity_twin: Target) -> Any:
    return identity_twin.client("ec2")


@pytest.fixture
def pool(cognito: Any) -> str:
    """A fresh pool shaped like the stack's (email sign-in), so each test starts with no users."""
    return str(
        cognito.create_user_pool(
            PoolName=f"test-{uuid.uuid4().hex[:8]}", UsernameAttributes=["email"], AutoVerifiedAttributes=["email"]
        )["UserPool"]["Id"]
    )
