"""PostgreSQL access: one ingress rule on the RDS instance's existing security group."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ops.errors import ConfigError

POSTGRES_PORT = 5432


@dataclass(frozen=True)
class RdsAccessArgs:
    security_group_id: str
    initial_ip: str
    description: str


def _single_host_cidr(address: str) -> str:
    """``<address>/32``; anything that is not one IPv4 host is refused before AWS sees it."""
    try:
        ip = ipaddress.IPv4Address(address.strip())
    except ValueError:
        raise ConfigError(f"rdsInitialIp must be one IPv4 address, not {address!r}") from None
    if ip.is_unspecified:
        raise ConfigError("rdsInitialIp 0.0.0.0 would open PostgreSQL to everyone")
    return f"{ip}/32"


def create_rds_access(name: str, args: RdsAccessArgs, opts: pulumi.ResourceOptions | None = None) -> aws.vpc.SecurityGroupIngressRule | None:
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
