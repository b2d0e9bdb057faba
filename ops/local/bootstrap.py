"""The cloud side of a twin: what ``pulumi up`` creates in the cloud, created in the embedded server.

``local.up`` calls ``ensure_cloud_side`` so every ``cognito.*`` and ``rds.*`` task works on a
twin exactly as in the cloud (and, on a stack that encrypts messages, its KMS key exists): same
output names, read back the same way. Idempotent: ids that
were recorded and still exist are kept (the twin's state survives restarts).
"""

from __future__ import annotations

from typing import Any

from ops import outputs as out
from ops.aws import items
from ops.stacks import StackSettings
from ops.target import Target

RDS_PORT = 5432
TWIN_ACCOUNT = "123456789012"  # moto's account id: the key policy's root and role ARNs name it


def _pool_exists(cognito: Any, pool_id: str | None) -> bool:
    if not pool_id:
        return False
    try:
        cognito.describe_user_pool(UserPoolId=pool_id)
        return True
    except cognito.exceptions.ResourceNotFoundException:
        return False


def ensure_user_pool(cognito: Any, stack: str, recorded: dict[str, Any]) -> dict[str, str]:
    pool_id = recorded.get(out.USER_POOL_ID)
    if _pool_exists(cognito, pool_id) and recorded.get(out.USER_POOL_CLIENT_ID):
        return {out.USER_POOL_ID: pool_id, out.USER_POOL_CLIENT_ID: recorded[out.USER_POOL_CLIENT_ID]}  # type: ignore[dict-item]
    # outputs.json lost but the twin's state kept: find the pool by name rather than make a second one
    name = f"cruddur-{stack}"
    for pool in items(cognito, "list_user_pools", "Cognito ListUserPools", "UserPools", MaxResults=60):
        if pool["Name"] == name:
            clients = list(items(cognito, "list_user_pool_clients", f"Cognito ListUserPoolClients {pool['Id']}", "UserPoolClients", UserPoolId=pool["Id"], MaxResults=60))
            if clients:
                return {out.USER_POOL_ID: pool["Id"], out.USER_POOL_CLIENT_ID: clients[0]["ClientId"]}
    # the same shape as infra/identity.py: email sign-in, preferred_username as the handle
    pool = cognito.create_user_pool(
        PoolName=name,
        UsernameAttributes=["email"],
        AutoVerifiedAttributes=["email"],
        Schema=[{"Name": "preferred_username", "AttributeDataType": "String", "Mutable": True, "Required": False}],
        Policies={"PasswordPolicy": {"MinimumLength": 12, "RequireLowercase": True, "RequireUppercase": True, "RequireNumbers": True, "RequireSymbols": False}},
    )["UserPool"]
    client = cognito.create_user_pool_client(UserPoolId=pool["Id"], ClientName=f"cruddur-{stack}-web", GenerateSecret=False)["UserPoolClient"]
    return {out.USER_POOL_ID: pool["Id"], out.USER_POOL_CLIENT_ID: client["ClientId"]}


def ensure_rds_rule(ec2: Any, stack: str, initial_ip: str, description: str, recorded: dict[str, Any]) -> dict[str, str]:
    sg_id = recorded.get(out.RDS_SECURITY_GROUP_ID)
    rule_id = recorded.get(out.RDS_RULE_ID)
    if sg_id and rule_id:
        rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [sg_id]}])["SecurityGroupRules"]
        if any(r["SecurityGroupRuleId"] == rule_id for r in rules):
            return {out.RDS_SECURITY_GROUP_ID: sg_id, out.RDS_RULE_ID: rule_id}
    group_name = f"cruddur-{stack}-rds"
    found = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [group_name]}])["SecurityGroups"]
    if found:  # outputs.json lost but the twin's state kept: reuse the group and its 5432 rule
        sg_id = found[0]["GroupId"]
        rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [sg_id]}])["SecurityGroupRules"]
        for rule in rules:
            if not rule.get("IsEgress") and rule.get("FromPort") == RDS_PORT:
                return {out.RDS_SECURITY_GROUP_ID: sg_id, out.RDS_RULE_ID: rule["SecurityGroupRuleId"]}
    else:
        # stands in for the RDS instance's existing security group (the cloud stack only adds the rule)
        sg_id = ec2.create_security_group(GroupName=group_name, Description="RDS instance of the twin")["GroupId"]
    resp = ec2.authorize_security_group_ingress(
        GroupId=sg_id,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": RDS_PORT, "ToPort": RDS_PORT, "IpRanges": [{"CidrIp": f"{initial_ip}/32", "Description": description}]}],
    )
    rule_id = resp["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    return {out.RDS_SECURITY_GROUP_ID: sg_id, out.RDS_RULE_ID: rule_id}


def ensure_dead_letter_queue(sqs: Any, stack: Any) -> dict[str, str]:
    """The stream consumer's on-failure destination (CreateQueue is idempotent for the same attributes)."""
    from ops.stream_mapping import DLQ_RETENTION_SECONDS, dead_letter_queue_name

    url = sqs.create_queue(QueueName=dead_letter_queue_name(stack), Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)})["QueueUrl"]
    return {out.STREAM_DLQ_URL: url}


def ensure_messages_key(kms: Any, stack: StackSettings) -> dict[str, str]:
    """The stack's messages key (``ops.key_spec``), found by its alias or created: empty outputs where bodies are plain text.

    The same spec as ``infra/keys.py``: description, usage, key spec, yearly rotation and the key
    policy (moto stores it without enforcing it; the cloud does). moto's account is the mocks'.
    """
    from ops.key_spec import key_policy, key_spec

    spec = key_spec(stack)
    if spec is None:
        return {out.MESSAGES_KEY_ARN: "", out.MESSAGES_KEY_ALIAS: ""}
    try:
        arn = kms.describe_key(KeyId=spec.alias)["KeyMetadata"]["Arn"]  # the twin's state kept it (or outputs.json was lost)
    except kms.exceptions.NotFoundException:
        meta = kms.create_key(Description=spec.description, KeyUsage=spec.key_usage, KeySpec=spec.key_spec, Policy=key_policy(spec, TWIN_ACCOUNT))["KeyMetadata"]
        kms.enable_key_rotation(KeyId=meta["KeyId"], RotationPeriodInDays=spec.rotation_days)
        kms.create_alias(AliasName=spec.alias, TargetKeyId=meta["KeyId"])
        arn = meta["Arn"]
    return {out.MESSAGES_KEY_ARN: arn, out.MESSAGES_KEY_ALIAS: spec.alias}


def ensure_cloud_side(target: Target, recorded: dict[str, Any]) -> dict[str, Any]:
    stack = target.stack
    outputs: dict[str, Any] = dict(recorded)
    outputs[out.TABLE_NAME] = stack.table_name
    outputs.update(ensure_messages_key(target.client("kms"), stack))
    outputs.update(ensure_dead_letter_queue(target.client("sqs"), stack))
    outputs.update(ensure_user_pool(target.client("cognito-idp"), stack.name, recorded))
    outputs.update(ensure_rds_rule(target.client("ec2"), stack.name, stack.rds_initial_ip, stack.rds_rule_description, recorded))
    return outputs
