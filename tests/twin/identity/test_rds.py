"""The RDS ingress rule: only one IPv4 host is ever allowed, refused before any request, moved in place."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from ops.errors import ConfigError, NotFoundError, RefusedError
from ops.rds import move_rule, resolve_ip, validate_host_address
from ops.target import Target
from tests.support.cognito import raw_client, record_requests

PORT = 5432
DESCRIPTION = "cruddur developer access"


@pytest.fixture
def rule(ec2: Any) -> tuple[str, str]:
    """A fresh security group with one tcp/5432 rule, like the one local.up creates for the stack."""
    sg = ec2.create_security_group(GroupName=f"test-rds-{uuid.uuid4().hex[:8]}", Description="test")["GroupId"]
    resp = ec2.authorize_security_group_ingress(
        GroupId=sg,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": PORT,
                "ToPort": PORT,
                "IpRanges": [{"CidrIp": "192.0.2.10/32", "Description": DESCRIPTION}],
            }
        ],
    )
    return sg, resp["SecurityGroupRules"][0]["SecurityGroupRuleId"]


def described(ec2: Any, rule_id: str) -> dict[str, Any]:
    return ec2.describe_security_group_rules(SecurityGroupRuleIds=[rule_id])["SecurityGroupRules"][0]


@pytest.mark.parametrize(
    "text, expected", [("203.0.113.7", "203.0.113.7"), (" 203.0.113.7/32 ", "203.0.113.7"), ("10.1.2.3", "10.1.2.3")]
)
def test_one_ipv4_host_is_accepted_private_ones_too(text: str, expected: str) -> None:
    assert validate_host_address(text) == expected


REFUSED = {
    "0.0.0.0/0": "every address",
    "10.0.0.0/8": "16777216 addresses",
    "1.2.3.4/24": "256 addresses",
    "::/0": "every address",
    "2001:db8::1": "IPv6",
    "300.1.1.1": "not one IPv4 host",
    "1.2.3.4-1.2.3.9": "not one IPv4 host",
    "1.2.3.4/33": "not a valid IPv4 prefix",
    "1.2.3.4/abc": "must be 32",
    "abc": "not one IPv4 host",
    "": "no address given",
    "0.0.0.0": "unspecified",
    "127.0.0.1": "loopback",
}


@pytest.mark.parametrize("text", list(REFUSED))
def test_the_rds_rule_never_opens_more_than_one_host_and_refuses_before_any_request(
    identity_twin: Target, rule: tuple[str, str], text: str
) -> None:
    ec2 = raw_client(identity_twin, "ec2")
    sent = record_requests(ec2)
    sg, rule_id = rule

    with pytest.raises(RefusedError, match=REFUSED[text]):
        move_rule(ec2, sg, rule_id, text)

    assert sent == []  # not even the describe
    assert described(ec2, rule_id)["CidrIpv4"] == "192.0.2.10/32"
    assert sent == ["DescribeSecurityGroupRules"]  # the recorder does see requests


def test_moving_the_rule_keeps_protocol_ports_and_description(ec2: Any, rule: tuple[str, str]) -> None:
    sg, rule_id = rule

    assert move_rule(ec2, sg, rule_id, "203.0.113.7") == ("192.0.2.10/32", "203.0.113.7/32")

    after = described(ec2, rule_id)
    assert (
        after["CidrIpv4"],
        after["IpProtocol"],
        after["FromPort"],
        after["ToPort"],
        after["Description"],
        after["GroupId"],
    ) == (
        "203.0.113.7/32",
        "tcp",
        PORT,
        PORT,
        DESCRIPTION,
        sg,
    )
    ingress = [
        r
        for r in ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [sg]}])["SecurityGroupRules"]
        if not r["IsEgress"]
    ]
    assert [r["SecurityGroupRuleId"] for r in ingress] == [rule_id]  # moved, not added beside the old one


def test_moving_to_the_current_address_sends_no_change(identity_twin: Target, rule: tuple[str, str]) -> None:
    ec2 = raw_client(identity_twin, "ec2")
    sent = record_requests(ec2)
    sg, rule_id = rule

    assert move_rule(ec2, sg, rule_id, "192.0.2.10/32") == ("192.0.2.10/32", "192.0.2.10/32")
    assert sent == ["DescribeSecurityGroupRules"]


def test_a_rule_of_another_group_is_refused(ec2: Any, rule: tuple[str, str]) -> None:
    sg, rule_id = rule
    other = ec2.create_security_group(GroupName=f"test-other-{uuid.uuid4().hex[:8]}", Description="test")["GroupId"]

    with pytest.raises(ConfigError, match=f"belongs to security group {sg}"):
        move_rule(ec2, other, rule_id, "203.0.113.7")
    assert described(ec2, rule_id)["CidrIpv4"] == "192.0.2.10/32"


def test_an_unknown_rule_is_not_found(ec2: Any, rule: tuple[str, str]) -> None:
    with pytest.raises(NotFoundError, match="sgr-00000000000000000"):
        move_rule(ec2, rule[0], "sgr-00000000000000000", "203.0.113.7")


def test_the_address_comes_from_ip_then_gitpod_ip_then_cruddur_my_ip() -> None:
    both = {"GITPOD_IP": "198.51.100.1", "CRUDDUR_MY_IP": "198.51.100.2"}
    assert resolve_ip("203.0.113.7", both) == ("203.0.113.7", "--ip")
    assert resolve_ip(None, both) == ("198.51.100.1", "$GITPOD_IP")
    assert resolve_ip(None, {"GITPOD_IP": "", "CRUDDUR_MY_IP": "198.51.100.2"}) == ("198.51.100.2", "$CRUDDUR_MY_IP")
    with pytest.raises(RefusedError, match=r"\$GITPOD_IP: '0.0.0.0/0'"):
        resolve_ip(None, {"GITPOD_IP": "0.0.0.0/0"})
    with pytest.raises(RefusedError, match="no address given"):
        resolve_ip("", both)  # an explicit empty --ip is refused, never replaced by the environment
    with pytest.raises(ConfigError, match="--ip ADDR"):
        resolve_ip(None, {})
