"""A target's stack outputs, read back the same way for the cloud and for a twin.

The cloud's come from ``pulumi stack output``; a twin's from the file ``local.up`` writes
(``ops.local.bootstrap`` creates the same resources in the embedded server under the same
output names), so a task never needs to know which one it is talking to.
"""

from __future__ import annotations

from typing import Any

from ops.outputs import read_cloud_outputs, read_local_outputs, require
from ops.stacks import PROJECT_ROOT
from ops.target import Target, outputs_file


def outputs_for(target: Target) -> dict[str, Any]:
    """Every output of the target's stack: cloud (Pulumi) or twin (``outputs.json``)."""
    if target.cloud:
        return read_cloud_outputs(target.stack.name, PROJECT_ROOT)
    return read_local_outputs(outputs_file(target.stack.name))


def output(target: Target, name: str) -> Any:
    """One output by its constant from ``ops.outputs``; missing is a NotFoundError saying what to run."""
    return require(outputs_for(target), name, target.stack.name)
