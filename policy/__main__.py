"""The cruddur policy pack: every rule of ``ops.policy``, as ``pulumi-policy`` resource policies.

``pulumi preview --policy-pack policy`` runs this file; it adds no rule of its own. Each policy's
validation calls the rule function ``ops.plan.check_policies`` calls over the offline plan, so a
rule holds with and without the CLI. The stack being previewed comes from the engine
(``PULUMI_STACK``); its context (protected or not, the other stacks' tables) from the same stack
files every task reads.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Any

# The pack runs from policy/; the rules live in the repository's ops/.
REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from pulumi_policy import (  # noqa: E402
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from ops.errors import ConfigError  # noqa: E402
from ops.policy import RULES, PolicyContext, Resource, Rule, check, context_for  # noqa: E402

PACK_NAME = "cruddur"


def current_stack() -> str:
    """The stack under preview; `org/dev` (a Pulumi Cloud organisation's stack) is stack `dev`."""
    import pulumi

    stack = os.environ.get("PULUMI_STACK") or pulumi.get_stack()
    return stack.rsplit("/", 1)[-1]


@functools.cache
def stack_context() -> PolicyContext:
    return context_for(current_stack())


def validator(rule: Rule) -> Any:
    """A pulumi-policy validation that runs ``rule`` (kept on it as ``.rule``) and reports what it finds."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in rule.types:
            return
        try:
            context = stack_context()
        except ConfigError as err:  # no Pulumi.<stack>.yaml for this stack: say so rather than guess
            report_violation(f"cannot read the stack's settings: {err}", args.urn)
            return
        opts = args.opts
        resource = Resource(args.resource_type, args.name, args.props, protect=bool(opts and opts.protect))
        for message in check(rule, resource, context):
            report_violation(message, args.urn)

    validate.rule = rule  # type: ignore[attr-defined]  # lets a test see which rule function a policy runs
    return validate


POLICIES: list[ResourceValidationPolicy] = [
    ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        enforcement_level=EnforcementLevel.MANDATORY if rule.mandatory else EnforcementLevel.ADVISORY,
        validate=validator(rule),
    )
    for rule in RULES
]

if __name__ == "__main__":  # the CLI runs the pack as __main__; a test imports it under another name
    PolicyPack(name=PACK_NAME, policies=list(POLICIES))
