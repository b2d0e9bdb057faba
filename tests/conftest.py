"""Session-wide fixtures: one local twin for the whole run, started through local.up's code path.

The environment is set at import time so every subprocess a test starts (invoke tasks)
talks to the same twin: a private state directory and ports shifted by 100, so a
developer's own twin on the default ports is never touched.

Engines: every test that talks to DynamoDB (its fixtures include ``ddb`` or ``streams``, or it
is marked ``dynamodb``) runs once per DynamoDB engine of the twin, moto and MiniStack
(``--engine moto|ministack|both``, default both; ``CRUDDUR_TEST_ENGINE`` sets the
default). The other twin-backed tests run once, on the first engine. Tests are grouped by
engine, so the session twin is started once per engine.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
# on tmpfs when there is one: the engines journal every write, and the suite's twins are thrown away
# at the end anyway
SHM = Path("/dev/shm")
STATE_DIR = tempfile.mkdtemp(prefix="cruddur-tests-", dir=SHM if SHM.is_dir() and os.access(SHM, os.W_OK) else None)
os.chmod(
    STATE_DIR, 0o711
)  # each engine's twin has its state root inside: as root, PostgreSQL's own user must pass through
os.environ["CRUDDUR_STATE_DIR"] = STATE_DIR
# pytest-xdist (`-n 2`): every worker is a suite of its own, with its own state directory (above) and
# its own ports: the suite's lie between 5,442 and 8,910 above its base, so 4,000 apart per worker,
# below the kernel's ephemeral ports (32,768 up) for up to six workers
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1, ... in a worker; empty otherwise
WORKER_SHIFT = 4_000 * int(WORKER[2:]) if WORKER.startswith("gw") else 0
if WORKER_SHIFT > 20_000:
    raise pytest.UsageError("the suite's twins have ports for six xdist workers at most: use -n 6 or fewer")
# CRUDDUR_TEST_PORT_OFFSET moves the suite's twins when something else already sits on +100
TEST_PORT_BASE = int(os.environ.get("CRUDDUR_TEST_PORT_OFFSET", "100")) + WORKER_SHIFT
os.environ["CRUDDUR_LOCAL_PORT_OFFSET"] = str(TEST_PORT_BASE)
# the suite's other twins sit at fixed distances from the base, so two checkouts can test at once;
# a worker sets them anew (it inherits the values the controlling process set for itself)
for _name, _distance in (
    ("CRUDDUR_TEST_README_PORT_OFFSET", 100),
    ("CRUDDUR_TEST_IDENTITY_PORT_OFFSET", 200),
    ("CRUDDUR_BENCH_PORT_OFFSET", 400),
    ("CRUDDUR_TEST_DURABILITY_PORT_OFFSET", 500),
):
    if WORKER or _name not in os.environ:
        os.environ[_name] = str(TEST_PORT_BASE + _distance)
os.environ.pop("DATABASE_URL", None)  # the twin's own embedded PostgreSQL, never a developer's server
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

ENGINES = ("moto", "ministack")
DYNAMODB_FIXTURES = {"ddb", "streams", "isolated_moto"}  # a test whose fixtures include one of these talks to DynamoDB

from ops import db as dbops  # noqa: E402
from ops import ddb as ddbops  # noqa: E402
from ops.local import ministack  # noqa: E402
from ops.local import twin as twinops  # noqa: E402
from ops.stacks import load_stack  # noqa: E402
from ops.table_spec import table_spec  # noqa: E402
from ops.target import Target, resolve_target  # noqa: E402


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--engine",
        choices=(*ENGINES, "both"),
        default=os.environ.get("CRUDDUR_TEST_ENGINE") or "both",
        help="DynamoDB engine(s) for the tests that talk to DynamoDB (default: both); the other tests run on the first",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "dynamodb: talks to DynamoDB through tasks only: run it on every selected engine, like the tests using `ddb`",
    )
    config.addinivalue_line(
        "markers", "engines(*names): run only on these DynamoDB engines (a behaviour of one engine's own)"
    )
    config.addinivalue_line(
        "markers",
        "spread: the module's fixtures are cheap to make twice: under -n its tests may run on different workers",
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The session twin is down by now (its fixture's teardown): give its state directory back (tmpfs is memory)."""
    if not any(Path(STATE_DIR).glob("**/twin.json")):  # a twin left running (a crash) keeps its files for a look
        shutil.rmtree(STATE_DIR, ignore_errors=True)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ``-n``, keep together what shares a twin: a second engine's tests, a package's own twin, a module's."""
    if config.pluginmanager.hasplugin("xdist") and config.getoption("dist", "no") == "loadgroup":
        for item in items:
            item.add_marker(pytest.mark.xdist_group(_twin_group(item)))


def _twin_group(item: pytest.Item) -> str:
    callspec = getattr(item, "callspec", None)
    engine = callspec.params.get("engine") if callspec else None
    if engine and engine != ENGINES[0]:
        return engine  # its session twin (MiniStack beside moto) starts once, on one worker
    info = getattr(item, "_fixtureinfo", None)
    scopes = {defs[-1].scope: defs[-1].baseid for defs in (info.name2fixturedefs.values() if info else ()) if defs}
    if "package" in scopes:
        return scopes["package"] or item.nodeid.split("::")[0]  # a package's own twin (identity, journal)
    if "module" in scopes and item.get_closest_marker("spread") is None:
        return item.nodeid.split("::")[0]  # a module's own twin or data
    return item.nodeid  # on any worker: each has its session twins


def selected_engines(config: pytest.Config) -> list[str]:
    choice = config.getoption("--engine")
    return list(ENGINES) if choice == "both" else [choice]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Give every test of the session twin its engine(s): all selected for DynamoDB tests, the first for the rest."""
    if "engine" not in metafunc.fixturenames:
        return
    engines = selected_engines(metafunc.config)
    facing = (
        bool(DYNAMODB_FIXTURES & set(metafunc.fixturenames))
        or metafunc.definition.get_closest_marker("dynamodb") is not None
    )
    params: list[Any] = engines if facing else engines[:1]
    only = metafunc.definition.get_closest_marker("engines")
    if only:
        params = [e for e in engines if e in only.args] or [
            pytest.param(
                only.args[0],
                marks=pytest.mark.skip(reason=f"runs on {', '.join(only.args)} only, not selected by --engine"),
            )
        ]
    # session scope: pytest orders the tests by engine, so each engine's twin starts once
    metafunc.parametrize("engine", params, indirect=True, scope="session")


@pytest.fixture(scope="session")
def engine(request: pytest.FixtureRequest) -> str:
    """The DynamoDB engine of the session twin for this test."""
    name: str = getattr(request, "param", ENGINES[0])
    if name == ministack.ENGINE and not ministack.installed():
        message = f"MiniStack is not installed in {ministack.install_dir()}: run {ministack.INSTALL_COMMAND}"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it (bin/bootstrap): a missing engine there is a failure, not a skip
        pytest.skip(message)
    return name


@pytest.fixture(scope="session")
def twin(engine: str) -> Iterator[Target]:
    """The dev stack's twin (moto server or MiniStack for DynamoDB + embedded PostgreSQL), exactly as
    `invoke local.up --engine E` starts it."""
    # a state directory per engine: nothing of one engine's run (moto's queues, PostgreSQL, checkpoints) leaks into the
    # other's
    os.environ["CRUDDUR_STATE_DIR"] = str(Path(STATE_DIR) / engine)
    stack = load_stack("dev")
    try:
        twinops.up(stack, engine=engine)
        try:
            yield resolve_target("dev")
        finally:
            twinops.down(stack)
    finally:
        os.environ["CRUDDUR_STATE_DIR"] = STATE_DIR


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
