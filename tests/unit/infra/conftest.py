"""The Pulumi program, evaluated once per stack under mocks (no CLI, credentials or network)."""

from __future__ import annotations

import pytest

from ops.plan import StackPlan
from ops.stacks import list_stacks
from tests.support.plans import planned


@pytest.fixture(params=list_stacks())
def plan(request: pytest.FixtureRequest) -> StackPlan:
    return planned(request.param)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # pulumi_aws warns about its own deprecated modules at import, and Pulumi's mock monitor leaves
    # an event loop behind; neither is about this program.
    for item in items:
        if "tests/unit/infra/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws"))
            item.add_marker(pytest.mark.filterwarnings("ignore:unclosed event loop:ResourceWarning"))
