"""infra.*: the Pulumi program's stacks: offline plan and diagram, and the Pulumi CLI's preview, up and outputs.

Only ``infra.plan``, ``infra.diagram`` and ``infra.drift`` (when the program changed since its plan
was cached) import the Pulumi SDK (inside the task); every other module of cli/ stays free of it.
preview, up and ``outputs --cloud`` run the ``pulumi`` CLI with the whole environment (so ``PULUMI_BACKEND_URL``,
``PULUMI_ACCESS_TOKEN`` and AWS credentials reach it) and say on stderr which state backend that means.
"""

from __future__ import annotations

from invoke import Collection, Context, Exit

from cli.shell import helps, note, one_line_errors, say, task


@task(name="preview", help=helps("diff", stack="pulumi_stack"))
@one_line_errors
def preview(c: Context, stack: str = "dev", diff: bool = False) -> None:
    """Preview what `up` would change (needs the Pulumi CLI, `pulumi login` and AWS credentials)."""
    from ops.outputs import policy_pack, pulumi_cli, run_pulumi, state_backend
    from ops.stacks import PROJECT_ROOT, load_stack

    load_stack(stack)  # a typo is one line here, not Pulumi offering to create a new stack
    pulumi_cli()  # no CLI: that is the one error line, before anything else is said
    note(state_backend())
    code = run_pulumi("preview", "--stack", stack, *policy_pack(), *(["--diff"] if diff else []), cwd=PROJECT_ROOT)
    if code:
        raise Exit(code=code)  # Pulumi has said why, on the terminal


@task(name="up", help=helps("yes", stack="pulumi_stack", confirm_protected="confirm_protected_up"))
@one_line_errors
def up(c: Context, stack: str = "dev", yes: bool = False, confirm_protected: bool = False) -> None:
    """Create or update the stack's cloud resources with `pulumi up`."""
    from ops.errors import RefusedError
    from ops.outputs import policy_pack, pulumi_cli, run_pulumi, state_backend
    from ops.stacks import PROJECT_ROOT, load_stack

    if load_stack(stack).protected and yes and not confirm_protected:
        raise RefusedError(f"stack {stack!r} is protected: --yes also needs --confirm-protected")
    pulumi_cli()  # no CLI: that is the one error line, before anything else is said
    note(state_backend())
    code = run_pulumi("up", "--stack", stack, *policy_pack(), *(["--yes"] if yes else []), cwd=PROJECT_ROOT)
    if code:
        raise Exit(code=code)  # Pulumi has said why, on the terminal


@task(name="outputs", help=helps(stack="pulumi_stack", json="outputs_json", cloud="outputs_cloud"))
@one_line_errors
def outputs(c: Context, stack: str = "dev", json: bool = False, cloud: bool = False) -> None:
    """Show the stack's outputs (table, stream, user pool, RDS rule id…): the twin's, or `pulumi stack output`'s."""
    from ops.outputs import outputs_for, pulumi_cli, state_backend
    from ops.render import dump_json
    from ops.target import resolve_target

    target = resolve_target(stack, cloud=cloud)
    if cloud:
        pulumi_cli()  # no CLI: that is the one error line, before anything else is said
        note(state_backend())
    values = outputs_for(target)
    say(dump_json(values) if json else "\n".join(f"{k} = {v}" for k, v in sorted(values.items())))


@task(name="plan", help=helps("stack", json="plan_json"))
@one_line_errors
def plan(c: Context, stack: str = "dev", json: bool = False) -> None:
    """List every resource the program declares for a stack, offline, and check the policies on it;
    exit 1 on a mandatory violation."""
    import json as jsonlib
    from dataclasses import asdict

    from ops.plan import check_policies, describe, describe_policies, plan_stack

    stack_plan = plan_stack(stack)
    violations = check_policies(stack_plan)
    if json:
        say(
            jsonlib.dumps(
                stack_plan.to_dict() | {"violations": [asdict(v) for v in violations]},
                indent=2,
                sort_keys=True,
                default=str,
            )
        )
    else:
        say("\n".join(describe(stack_plan) + describe_policies(violations)))
    mandatory = [v for v in violations if v.mandatory]
    if mandatory:
        raise Exit(
            f"error: stack {stack}: {len(mandatory)} mandatory policy violation(s), first: {mandatory[0].line()}",
            code=1,
        )


@task(name="diagram", help=helps("stack", "output", "dependencies"))
@one_line_errors
def diagram(c: Context, stack: str = "dev", output: str | None = None, dependencies: bool = False) -> None:
    """Draw the stack's data flow (or, with --dependencies, what depends on what) from its offline plan into a PNG
    (needs Graphviz's `dot`)."""
    from pathlib import Path

    from ops.diagram import draw
    from ops.plan import plan_stack

    view = "dependencies" if dependencies else "flow"
    say(f"wrote {draw(plan_stack(stack), Path(output or f'architecture-{stack}.png'), view)}")


@task(name="drift", help=helps("stack", cloud="drift_cloud", json="drift_json"))
@one_line_errors
def drift(c: Context, stack: str = "dev", cloud: bool = False, json: bool = False) -> None:
    """Compare what the program declares with what the twin (or, with --cloud, AWS) has; exits 2 on drift."""
    from ops import drift as driftops
    from ops.local.twin import plan_file
    from ops.plan_cache import cached_plan
    from ops.render import dump_json
    from ops.target import resolve_target

    target = resolve_target(stack, cloud=cloud)
    target.client(
        "dynamodb"
    )  # no credentials, or no twin running: the one-line error now, before the program is planned
    report = driftops.check(cached_plan(stack, plan_file(stack))[0], target)
    say(dump_json(report.to_dict()) if json else "\n".join(driftops.lines(report)))
    if report.drift:
        raise Exit(code=driftops.EXIT_DRIFT)


@task(
    name="plan-diff",
    positional=["base", "head"],
    help=helps("markdown", base="plan_base", head="plan_head", json="plan_diff_json"),
)
@one_line_errors
def plan_diff(c: Context, base: str, head: str, json: bool = False, markdown: bool = False) -> None:
    """What changes between two offline plans of a stack: resources added, changed (which inputs), removed;
    policy results."""
    from pathlib import Path

    from ops import plan_diff as diffops
    from ops.render import dump_json

    diff = diffops.diff_plans(diffops.load_plan(Path(base)), diffops.load_plan(Path(head)))
    if json:
        say(dump_json(diff.to_dict()))
    else:
        say(diffops.markdown(diff) if markdown else "\n".join(diffops.lines(diff)))


ns = Collection("infra", preview, up, outputs, plan, diagram, drift, plan_diff)
