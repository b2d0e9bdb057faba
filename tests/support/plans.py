"""Each stack's plan, evaluated once per test session (both stacks in the same process)."""

from __future__ import annotations

from ops.plan import StackPlan, plan_stack

_plans: dict[str, StackPlan] = {}


def planned(stack: str) -> StackPlan:
    if stack not in _plans:
        _plans[stack] = plan_stack(stack)
    return _plans[stack]
