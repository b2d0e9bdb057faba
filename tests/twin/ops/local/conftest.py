"""Fixtures of the twin's own tests: a second stack's twin, from an empty state directory each time."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from ops.local import twin as twinops
from ops.stacks import StackSettings, load_stack
from ops.target import stack_state_dir


def _clear(stack: StackSettings) -> None:
    twinops.down(stack)
    shutil.rmtree(stack_state_dir(stack.name), ignore_errors=True)


@pytest.fixture
def prod_stack() -> Iterator[StackSettings]:
    """The prod stack with no twin and no state, before and after: tests that restart it count what it kept."""
    stack = load_stack("prod")
    _clear(stack)
    try:
        yield stack
    finally:
        _clear(stack)
