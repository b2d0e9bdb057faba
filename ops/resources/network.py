"""``aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule``: one ingress rule of a security group.

The program leaves the rule's address to ``rds.update-sg-rule`` (``ignore_changes: cidrIpv4``),
so a different address is reported as expected movement, never as drift, and a twin's
reconcile never moves it back.
"""

from __future__ import annotations

from typing import Any

from ops.aws import call
from ops.errors import NotFoundError
from ops.plan import PlannedResource
from ops.resources.base import Adapter, Context, Field, Live, tags_dict


def _protocol(value: Any) -> Any:
    return None if value is None else str(value).lower()


class IngressRuleAdapter(Adapter):
    type = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
    label = "security group ingress rule"
    service = "ec2"
    fields = (
        Field("securityGroupId", "GroupId", in_place=False),
        Field("ipProtocol", "IpProtocol", normalize=_protocol),
        Field("fromPort", "FromPort"),
        Field("toPort", "ToPort"),
        Field("cidrIpv4", "CidrIpv4"),
        Field("cidrIpv6", "CidrIpv6"),
        Field("prefixListId", "PrefixListId"),
        Field("referencedSecurityGroupId", "ReferencedGroupInfo.GroupId"),
        Field("description", "Description"),
        Field("tags", "Tags", to_api=tags_dict, normalize=tags_dict),
    )

    def physical_name(self, planned: PlannedResource) -> str:
        return planned.name  # a rule has no name of its own; its id is what AWS shows

    def locate(self, planned: PlannedResource, ctx: Context) -> Live | None:
        ec2 = ctx.client("ec2")
        rule_id = ctx.known_id(planned)
        if rule_id:
            try:
                rules = call(
                    ec2.describe_security_group_rules,
                    f"DescribeSecurityGroupRules {rule_id}",
                    SecurityGroupRuleIds=[rule_id],
                )["SecurityGroupRules"]
                if rules:
                    return self._live(rules[0], ctx)
            except NotFoundError:
                pass
        # nothing recorded (or it is gone): the group's ingress rule on the same protocol and ports is this one
        want = self.expected(planned, ctx)
        group = want.get("GroupId")
        if not group or str(group).startswith("<"):
            return None
        try:
            rules = call(
                ec2.describe_security_group_rules,
                f"DescribeSecurityGroupRules of {group}",
                Filters=[{"Name": "group-id", "Values": [group]}],
            )["SecurityGroupRules"]
        except NotFoundError:
            return None
        for rule in rules:
            if not rule.get("IsEgress") and all(
                _protocol(rule.get(k)) == _protocol(want.get(k)) for k in ("IpProtocol", "FromPort", "ToPort")
            ):
                return self._live(rule, ctx)
        return None

    @staticmethod
    def _live(rule: dict[str, Any], ctx: Context) -> Live:
        rule_id = rule["SecurityGroupRuleId"]
        view = {**rule, "Tags": tags_dict(rule.get("Tags") or [])}
        identity = {"id": rule_id, "securityGroupRuleId": rule_id, "arn": rule.get("SecurityGroupRuleArn", "")}
        return Live(f"{rule_id} in {rule['GroupId']}", identity, view)

    def create(self, planned: PlannedResource, want: dict[str, Any], ctx: Context) -> Live:
        ec2 = ctx.client("ec2")
        permission: dict[str, Any] = {
            "IpProtocol": want.get("IpProtocol"),
            "FromPort": want.get("FromPort"),
            "ToPort": want.get("ToPort"),
        }
        description = {"Description": want["Description"]} if want.get("Description") else {}
        if want.get("CidrIpv4"):
            permission["IpRanges"] = [{"CidrIp": want["CidrIpv4"], **description}]
        if want.get("CidrIpv6"):
            permission["Ipv6Ranges"] = [{"CidrIpv6": want["CidrIpv6"], **description}]
        if want.get("PrefixListId"):
            permission["PrefixListIds"] = [{"PrefixListId": want["PrefixListId"], **description}]
        if want.get("ReferencedGroupInfo.GroupId"):
            permission["UserIdGroupPairs"] = [{"GroupId": want["ReferencedGroupInfo.GroupId"], **description}]
        request: dict[str, Any] = {"GroupId": want["GroupId"], "IpPermissions": [permission]}
        if want.get("Tags"):
            request["TagSpecifications"] = [
                {
                    "ResourceType": "security-group-rule",
                    "Tags": [{"Key": k, "Value": v} for k, v in want["Tags"].items()],
                }
            ]
        rule = call(
            ec2.authorize_security_group_ingress, f"AuthorizeSecurityGroupIngress {want['GroupId']}", **request
        )["SecurityGroupRules"][0]
        return self._live(rule, ctx)

    def update(
        self, planned: PlannedResource, want: dict[str, Any], live: Live, changed: set[str], ctx: Context
    ) -> None:
        ec2 = ctx.client("ec2")
        rule_id = live.identity["id"]
        moved = set(planned.ignore_changes)
        if changed - {"Tags", "GroupId"}:
            rule: dict[str, Any] = {}
            for f in self.fields:
                if f.api in ("Tags", "GroupId") or "." in f.api:
                    continue
                # what the program leaves to others (the address) stays as it is now
                value = live.view.get(f.api) if f.input in moved else want.get(f.api, live.view.get(f.api))
                if value is not None:
                    rule[f.api] = value
            referenced = want.get("ReferencedGroupInfo.GroupId")
            if referenced:
                rule["ReferencedGroupId"] = referenced
            call(
                ec2.modify_security_group_rules,
                f"ModifySecurityGroupRules {rule_id}",
                GroupId=live.view["GroupId"],
                SecurityGroupRules=[{"SecurityGroupRuleId": rule_id, "SecurityGroupRule": rule}],
            )
        if "Tags" in changed:
            declared, have = want.get("Tags", {}), live.view.get("Tags", {})
            stale = [{"Key": k} for k in have if k not in declared]
            if stale:
                call(ec2.delete_tags, f"DeleteTags {rule_id}", Resources=[rule_id], Tags=stale)
            fresh = [{"Key": k, "Value": v} for k, v in declared.items() if have.get(k) != v]
            if fresh:
                call(ec2.create_tags, f"CreateTags {rule_id}", Resources=[rule_id], Tags=fresh)
