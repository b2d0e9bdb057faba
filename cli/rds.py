"""rds.*: developer access to the stack's RDS PostgreSQL through its security group."""

from __future__ import annotations

from invoke import Collection, Context

from cli.shell import helps, one_line_errors, say, target_for, task


@task(name="update-sg-rule", help=helps("stack", "cloud", "confirm_protected", "ip"))
@one_line_errors
def update_sg_rule(
    c: Context, stack: str = "dev", cloud: bool = False, confirm_protected: bool = False, ip: str | None = None
) -> None:
    """Move the PostgreSQL ingress rule of the RDS security group to one IPv4 host; prints old → new."""
    import os

    from ops.rds import resolve_ip, update_target_rule

    address, source = resolve_ip(ip, os.environ)  # refused here, before any target or request
    old, new = update_target_rule(
        target_for(stack, cloud, writes=True, confirm_protected=confirm_protected, service="ec2"), address
    )
    say(f"{old} → {new}" + ("  (already there)" if old == new else "") + f"  (address from {source})")


ns = Collection("rds", update_sg_rule)
