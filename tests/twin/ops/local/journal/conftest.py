"""Fixtures of the durability tests: a twin of their own, which they crash and start again.

These tests kill -9 the twin's AWS server, so they run on a separate twin of the dev stack
(a private state directory, ports shifted by CRUDDUR_TEST_DURABILITY_PORT_OFFSET) started
through the same code path as ``invoke local.up``; the session twin is never touched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from ops.local import twin as twinops
from ops.stacks import load_stack
from tests.support.durable import DurableTwin

PORT_OFFSET = os.environ["CRUDDUR_TEST_DURABILITY_PORT_OFFSET"]  # set by tests/conftest.py


@pytest.fixture(scope="package")
def durable() -> Iterator[DurableTwin]:
    state = tempfile.mkdtemp(prefix="cruddur-durability-")
    with pytest.MonkeyPatch.context() as mp:
        # for the package only: the server and tasks inherit them, other packages get theirs back
        mp.setenv("CRUDDUR_STATE_DIR", state)
        mp.setenv("CRUDDUR_LOCAL_PORT_OFFSET", PORT_OFFSET)
        mp.delenv("DATABASE_URL", raising=False)
        for name in (
            "GITPOD_IP",
            "CRUDDUR_MY_IP",
            "CRUDDUR_TWIN_JOURNAL",
            "CRUDDUR_TWIN_JOURNAL_MAX_BYTES",
            "CRUDDUR_TWIN_JOURNAL_MAX_ENTRIES",
            "CRUDDUR_TWIN_JOURNAL_FSYNC",
        ):
            mp.delenv(name, raising=False)
        stack = load_stack("dev")
        twin = DurableTwin(stack)
        try:
            twin.up()
            twin.setup_database()
            yield twin
        finally:
            twinops.down(stack)
            shutil.rmtree(state, ignore_errors=True)
