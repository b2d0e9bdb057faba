"""Invoke tasks: thin shells over ``ops``.

Each task resolves its target, builds a client, calls one ``ops`` function and renders the
result. Imports of ``ops`` (and through it boto3/psycopg) happen inside the tasks so that
``invoke --list`` stays fast; nothing here imports the Pulumi SDK.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable

from invoke import Collection, Exit, task

STACK_HELP = "stack name, one Pulumi.<stack>.yaml each (default: dev)"
CLOUD_HELP = "talk to the stack's cloud resources instead of its local twin"
CONFIRM_HELP = "required with --cloud to write to or delete from a protected stack"
JSON_HELP = "print JSON lines instead of a table"


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the ops layer's named errors into one line on stderr and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ops.errors import OpsError

        try:
            return fn(*args, **kwargs)
        except OpsError as err:
            raise Exit(f"error: {err}", code=err.exit_code) from None
        except KeyboardInterrupt:
            raise Exit("interrupted", code=130) from None

    return wrapper


def say(text: str = "") -> None:
    print(text, flush=True)


def note(text: str) -> None:
    """Progress and target lines go to stderr, so --json output stays pipeable."""
    print(text, file=sys.stderr, flush=True)


def target_for(stack: str, cloud: bool = False, writes: bool = False, confirm_protected: bool = False) -> Any:
    from ops.target import resolve_target

    target = resolve_target(stack, cloud=cloud, writes=writes, confirm_protected=confirm_protected)
    if writes:
        note(target.describe())
    return target


# ---------------------------------------------------------------- local (twin lifecycle)
# (section owned by ops/local; filled below)

# ---------------------------------------------------------------- db (PostgreSQL)

# ---------------------------------------------------------------- ddb (DynamoDB)

# ---------------------------------------------------------------- cognito / rds

# ---------------------------------------------------------------- infra (Pulumi)

# ---------------------------------------------------------------- bench

# ---------------------------------------------------------------- namespace
ns = Collection()
