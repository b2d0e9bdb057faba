"""The PostgreSQL ingress rule on the RDS security group: move it to a developer's address.

Replaces the seeds' ``bin/rds/update-sg-rule`` (``aws ec2 modify-security-group-rules`` with
``$GITPOD_IP/32``), which sent whatever the variable held. Here the address is checked first:
only one IPv4 host is accepted, so a typo can never open the database to a network or to the
whole internet, and the refusal happens before any request is made.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from ops import aws
from ops.errors import ConfigError, NotFoundError, RefusedError
from ops.outputs import RDS_RULE_ID, RDS_SECURITY_GROUP_ID, outputs_for, require
from ops.target import Target

# Where the address comes from when --ip is not given, in this order: Gitpod sets GITPOD_IP
# in its workspaces (the seeds' source); anywhere else a developer exports CRUDDUR_MY_IP.
IP_ENV_VARS = ("GITPOD_IP", "CRUDDUR_MY_IP")
HOST_FORMS = "one IPv4 host address (a.b.c.d or a.b.c.d/32)"


def validate_host_address(text: str) -> str:
    """The IPv4 host in ``text`` (``a.b.c.d`` or ``a.b.c.d/32``); anything else is a RefusedError naming why."""
    raw = (text or "").strip()
    if not raw:
        raise RefusedError(f"no address given: the rule needs {HOST_FORMS}")
    address, slash, prefix = raw.partition("/")
    if slash:
        if not prefix.isdigit():
            raise RefusedError(f"{raw!r} is not {HOST_FORMS}: the part after / must be 32")
        if int(prefix) == 0:
            raise RefusedError(f"{raw!r} would open the database to every address on the internet: give {HOST_FORMS}")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise RefusedError(f"{raw!r} is not {HOST_FORMS}") from None
    if ip.version == 6:
        # the rule is an IPv4 rule (CidrIpv4); a v6 address would need a second, different rule
        raise RefusedError(f"{raw!r} is an IPv6 address: the RDS rule takes {HOST_FORMS}")
    if slash and int(prefix) != 32:
        size = 2 ** (32 - int(prefix)) if int(prefix) < 32 else 0
        detail = f"names {size} addresses" if size else "is not a valid IPv4 prefix"
        raise RefusedError(f"{raw!r} {detail}: give {HOST_FORMS}")
    if ip.is_unspecified or ip.is_loopback or ip.is_multicast or ip.is_reserved:
        raise RefusedError(
            f"{raw!r} is not an address a client connects from (unspecified, loopback, multicast or reserved)"
        )
    return str(ip)


def resolve_ip(explicit: str | None, env: Mapping[str, str]) -> tuple[str, str]:
    """The validated address and where it came from: ``--ip``, else $GITPOD_IP, else $CRUDDUR_MY_IP."""
    if explicit is not None:
        return validate_host_address(explicit), "--ip"
    for name in IP_ENV_VARS:
        value = env.get(name, "").strip()
        if value:
            try:
                return validate_host_address(value), f"${name}"
            except RefusedError as err:
                raise RefusedError(f"${name}: {err}") from None
    raise ConfigError(f"no address to allow: pass --ip ADDR or set {' or '.join('$' + n for n in IP_ENV_VARS)}")


def describe_rule(ec2: Any, sg_id: str, rule_id: str) -> dict[str, Any]:
    """The ingress rule ``rule_id`` of ``sg_id``; refuses a rule that is not an IPv4 ingress rule of that group."""
    rules = aws.call(
        ec2.describe_security_group_rules, f"EC2 DescribeSecurityGroupRules {rule_id}", SecurityGroupRuleIds=[rule_id]
    )["SecurityGroupRules"]
    if not rules:
        raise NotFoundError(f"security group rule {rule_id} does not exist")
    rule: dict[str, Any] = rules[0]
    if rule.get("GroupId") != sg_id:
        raise ConfigError(
            f"rule {rule_id} belongs to security group {rule.get('GroupId')}, not {sg_id}: check the stack outputs"
        )
    if rule.get("IsEgress"):
        raise RefusedError(f"rule {rule_id} is an egress rule, not the database's ingress rule (nothing was changed)")
    if not rule.get("CidrIpv4"):
        raise RefusedError(
            f"rule {rule_id} does not allow an IPv4 range (it references a group or prefix list): nothing was changed"
        )
    return rule


def move_rule(ec2: Any, sg_id: str, rule_id: str, new_ip: str) -> tuple[str, str]:
    """Point the rule at ``new_ip``/32, keeping protocol, ports and description; returns (old, new) CIDRs."""
    new_cidr = f"{validate_host_address(new_ip)}/32"  # again here: no caller can skip the check
    rule = describe_rule(ec2, sg_id, rule_id)
    old_cidr = str(rule["CidrIpv4"])
    if old_cidr == new_cidr:
        return old_cidr, new_cidr
    spec: dict[str, Any] = {
        "IpProtocol": rule["IpProtocol"],
        "FromPort": rule["FromPort"],
        "ToPort": rule["ToPort"],
        "CidrIpv4": new_cidr,
    }
    if rule.get("Description"):
        spec["Description"] = rule["Description"]
    aws.call(
        ec2.modify_security_group_rules,
        f"EC2 ModifySecurityGroupRules {rule_id}",
        GroupId=sg_id,
        SecurityGroupRules=[{"SecurityGroupRuleId": rule_id, "SecurityGroupRule": spec}],
    )
    return old_cidr, new_cidr


def update_target_rule(target: Target, ip: str) -> tuple[str, str]:
    """Move the stack's RDS rule (ids from the stack outputs) to ``ip``."""
    outs = outputs_for(target)
    sg_id = require(outs, RDS_SECURITY_GROUP_ID, target.stack.name)
    rule_id = require(outs, RDS_RULE_ID, target.stack.name)
    return move_rule(target.client("ec2"), sg_id, rule_id, ip)
