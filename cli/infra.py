"""infra.*: the Pulumi program's stacks: offline plan and diagram, and the Pulumi CLI's preview, up and outputs.

Only ``infra.plan`` and ``infra.diagram`` import the Pulumi SDK (inside the task); every other
module of cli/ stays free of it.
"""

from __future__ import annotations

from invoke import Collection, Context, Exit

from cli.shell import helps, one_line_errors, say, task


@task(name="preview", help=helps("diff", stack="pulumi_stack"))
@one_line_errors
def preview(c: Context, stack: str = "dev", diff: bool = False) -> None:
    """Preview what `up` would change (needs the Pulumi CLI, `pulumi login` and AWS credentials)."""
    from ops.outputs import run_pulumi
    from ops.stacks import PROJECT_ROOT, load_stack

    load_stack(stack)  # a typo is one line here, not Pulumi offering to create a new stack
    code = run_pulumi("preview", "--stack", stack, *(["--diff"] if diff else []), cwd=PROJECT_ROOT)
    if code:
        raise Exit(code=code)  # Pulumi has said why, on the terminal


@task(name="up", help=helps("yes", stack="pulumi_stack", confirm_protected="confirm_protected_up"))
@one_line_errors
def up(c: Context, stack: str = "dev", yes: bool = False, confirm_protected: bool = False) -> None:
    """Create or update the stack's cloud resources with `pulumi up`."""
    from ops.errors import RefusedError
    from ops.outputs import run_pulumi
    from ops.stacks import PROJECT_ROOT, load_stack

    if load_stack(stack).protected and yes and not confirm_protected:
        raise RefusedError(f"stack {stack!r} is protected: --yes also needs --confirm-protected")
    code = run_pulumi("up", "--stack", stack, *(["--yes"] if yes else []), cwd=PROJECT_ROOT)
    if code:
        raise Exit(code=code)  # Pulumi has said why, on the terminal


@task(name="outputs", help=helps(stack="pulumi_stack", json="outputs_json"))
@one_line_errors
def outputs(c: Context, stack: str = "dev", json: bool = False) -> None:
    """Show the stack's outputs (table name and ARNs, user pool, RDS rule id…) from `pulumi stack output`."""
    import json as jsonlib

    from ops.outputs import read_cloud_outputs
    from ops.stacks import PROJECT_ROOT, load_stack

    load_stack(stack)
    values = read_cloud_outputs(stack, PROJECT_ROOT)
    say(jsonlib.dumps(values, indent=2, sort_keys=True) if json else "\n".join(f"{k} = {v}" for k, v in sorted(values.items())))


@task(name="plan", help=helps("stack", json="plan_json"))
@one_line_errors
def plan(c: Context, stack: str = "dev", json: bool = False) -> None:
    """List every resource the program declares for a stack, evaluated offline (no CLI, credentials or network)."""
    from ops.plan import describe, plan_stack

    stack_plan = plan_stack(stack)
    say(stack_plan.to_json() if json else "\n".join(describe(stack_plan)))


@task(name="diagram", help=helps("stack", "output", "dependencies"))
@one_line_errors
def diagram(c: Context, stack: str = "dev", output: str | None = None, dependencies: bool = False) -> None:
    """Draw the stack's data flow (or, with --dependencies, what depends on what) from its offline plan into a PNG (needs Graphviz's `dot`)."""
    from pathlib import Path

    from ops.diagram import draw
    from ops.plan import plan_stack

    view = "dependencies" if dependencies else "flow"
    say(f"wrote {draw(plan_stack(stack), Path(output or f'architecture-{stack}.png'), view)}")


ns = Collection("infra", preview, up, outputs, plan, diagram)
