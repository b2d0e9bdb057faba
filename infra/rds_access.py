"""PostgreSQL access: one ingress rule on the RDS instance's existing security group."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ops.errors import ConfigError, OpsError
from ops.rds import validate_host_address

POSTGRES_PORT = 5432


@dataclass(frozen=True)
class RdsAccessArgs:
    security_group_id: str
    initial_ip: str
    description: str


def _single_host_cidr(address: str) -> str:
    """``<address>/32``; the same check as ``rds.update-sg-rule``, so one rule decides what a host is."""
    try:
        return f"{validate_host_address(address)}/32"
    except OpsError as err:
        raise ConfigError(f"config rdsInitialIp: {err}") from None


def create_rds_access(
    name: str, args: RdsAccessArgs, opts: pulumi.ResourceOptions | None = None
) -> aws.vpc.SecurityGroupIngressRule | None:
    """The developer ingress rule, or None when the stack names no security group."""
    if not args.security_group_id.strip():
        return None
    cidr = _single_host_cidr(args.initial_ip)
    options = pulumi.ResourceOptions.merge(
        opts or pulumi.ResourceOptions(),
        # `invoke rds.update-sg-rule` moves the address to the developer's current one; `up` must not move it back.
        pulumi.ResourceOptions(ignore_changes=["cidrIpv4"]),
    )
    # Lets one developer address reach PostgreSQL on the RDS instance; everything else stays closed.
    return aws.vpc.SecurityGroupIngressRule(
        name,
        security_group_id=args.security_group_id,
        ip_protocol="tcp",
        from_port=POSTGRES_PORT,
        to_port=POSTGRES_PORT,
        cidr_ipv4=cidr,
        description=args.description,
        opts=options,
    )
