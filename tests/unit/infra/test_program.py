"""Invariants of the Pulumi program, for every stack, checked offline under mocks."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from typing import Any

import pytest

from ops import outputs
from ops.errors import ConfigError
from ops.key_spec import key_spec
from ops.plan import PlannedResource, StackPlan, describe, evaluate, plan_stack, shape_of_table_inputs
from ops.stacks import load_stack
from ops.table_spec import GSI_NAME, create_table_kwargs, protections, shape, shape_of_description, table_spec
from tests.support.plans import planned

TABLE = "aws:dynamodb/table:Table"
FUNCTION = "aws:lambda/function:Function"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
QUEUE = "aws:sqs/queue:Queue"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
USER_POOL = "aws:cognito/userPool:UserPool"
POOL_CLIENT = "aws:cognito/userPoolClient:UserPoolClient"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
KMS_KEY = "aws:kms/key:Key"
KMS_ALIAS = "aws:kms/alias:Alias"
# Every type that can open a port, so a future rule written another way is checked too.
INGRESS_TYPES = (INGRESS_RULE, "aws:ec2/securityGroupRule:SecurityGroupRule", "aws:ec2/securityGroup:SecurityGroup")


def _table(plan: StackPlan) -> PlannedResource:
    return plan.one(TABLE)


# ---------------------------------------------------------------- the table


def test_declared_table_equals_the_local_spec(plan: StackPlan) -> None:
    spec = table_spec(load_stack(plan.stack))
    declared = shape_of_table_inputs(_table(plan).inputs)
    assert declared == shape(spec), f"stack {plan.stack}: the Pulumi table differs from ops.table_spec"


def test_declared_table_equals_what_schema_load_creates(plan: StackPlan) -> None:
    kwargs = create_table_kwargs(table_spec(load_stack(plan.stack)))
    local = shape_of_description({**kwargs, "BillingModeSummary": {"BillingMode": kwargs["BillingMode"]}})
    assert shape_of_table_inputs(_table(plan).inputs) == local


def test_table_comparison_notices_a_changed_index(plan: StackPlan) -> None:
    # The equality above would be worthless if the reduction ignored the index keys.
    inputs = json.loads(json.dumps(_table(plan).inputs))
    inputs["globalSecondaryIndexes"][0]["keySchemas"][1]["attributeName"] = "created_at"
    assert shape_of_table_inputs(inputs) != shape(table_spec(load_stack(plan.stack)))


def test_provisioned_capacity_matches_the_stack(plan: StackPlan) -> None:
    settings = load_stack(plan.stack)
    table = _table(plan).inputs
    capacities = [(table.get("readCapacity"), table.get("writeCapacity"))]
    capacities += [(g.get("readCapacity"), g.get("writeCapacity")) for g in table["globalSecondaryIndexes"]]
    expected = (
        (settings.read_capacity, settings.write_capacity) if settings.billing_mode == "PROVISIONED" else (None, None)
    )
    assert capacities == [expected] * len(capacities)


def test_stream_is_on_with_new_images(plan: StackPlan) -> None:
    table = _table(plan).inputs
    assert table["streamEnabled"] is True and table["streamViewType"] == "NEW_IMAGE"


def test_gsi_uses_key_schemas_not_the_deprecated_keys(plan: StackPlan) -> None:
    for index in _table(plan).inputs["globalSecondaryIndexes"]:
        assert index.get("keySchemas") and not index.get("hashKey") and not index.get("rangeKey"), index["name"]


def test_table_is_encrypted_at_rest(plan: StackPlan) -> None:
    assert _table(plan).inputs["serverSideEncryption"] == {"enabled": True}


# ---------------------------------------------------------------- protection


def test_protected_stacks_keep_their_data_and_others_do_not(plan: StackPlan) -> None:
    protected = load_stack(plan.stack).protected
    table, pool = _table(plan), plan.one(USER_POOL)
    assert table.inputs["pointInTimeRecovery"] == {"enabled": protected}, f"{plan.stack}: point-in-time recovery"
    assert table.inputs["deletionProtectionEnabled"] is protected, f"{plan.stack}: table deletion protection"
    assert table.protect is protected, f"{plan.stack}: the table's `protect` option"
    assert pool.inputs["deletionProtection"] == ("ACTIVE" if protected else "INACTIVE"), (
        f"{plan.stack}: user pool deletion protection"
    )
    assert pool.protect is protected, f"{plan.stack}: the user pool's `protect` option"


def test_declared_protections_are_what_schema_load_cloud_expects(plan: StackPlan) -> None:
    want = protections(load_stack(plan.stack))
    table = _table(plan).inputs
    assert table["pointInTimeRecovery"] == {"enabled": want.point_in_time_recovery}
    assert table["deletionProtectionEnabled"] is want.deletion_protection
    assert table["serverSideEncryption"]["enabled"] is (want.encryption == "KMS")


def test_prod_is_the_protected_stack() -> None:
    # Guards the parametrised test above against both stacks silently becoming unprotected.
    assert planned("prod").one(TABLE).protect and not planned("dev").one(TABLE).protect


# ---------------------------------------------------------------- network access


def test_no_ingress_rule_opens_to_the_world(plan: StackPlan) -> None:
    for rule in (r for r in plan.resources if r.type in INGRESS_TYPES):
        text = json.dumps(rule.inputs)
        assert "0.0.0.0/0" not in text, f"{rule.name} opens 0.0.0.0/0"
        assert "::/0" not in text, f"{rule.name} opens ::/0"


def test_rds_rule_admits_one_address_to_postgres_only(plan: StackPlan) -> None:
    settings = load_stack(plan.stack)
    rule = plan.one(INGRESS_RULE)
    inputs = rule.inputs
    assert ipaddress.ip_network(inputs["cidrIpv4"]).num_addresses == 1, f"{rule.name} admits more than one address"
    assert (inputs["ipProtocol"], inputs["fromPort"], inputs["toPort"]) == ("tcp", 5432, 5432), (
        f"{rule.name} is not PostgreSQL only"
    )
    assert inputs["securityGroupId"] == settings.rds_security_group_id
    assert inputs["cidrIpv4"] == f"{settings.rds_initial_ip}/32"
    assert inputs["description"] == settings.rds_rule_description


def test_rds_rule_address_is_left_to_update_sg_rule(plan: StackPlan) -> None:
    rule = plan.one(INGRESS_RULE)
    assert "cidrIpv4" in rule.ignore_changes, f"{rule.name}: `pulumi up` would move the address back"


def test_no_rule_when_the_stack_names_no_security_group() -> None:
    from infra.rds_access import RdsAccessArgs, create_rds_access

    result = evaluate(
        lambda: create_rds_access("rds", RdsAccessArgs(security_group_id="", initial_ip="192.0.2.10", description="x")),
        stack="dev",
        project="cruddur",
    )
    assert [r for r in result.resources if r.type == INGRESS_RULE] == []


@pytest.mark.parametrize("address", ["0.0.0.0", "10.0.0.0/8", "not-an-ip", "2001:db8::1"])
def test_rds_rule_refuses_anything_but_one_ipv4_host(address: str) -> None:
    from infra.rds_access import RdsAccessArgs, create_rds_access

    with pytest.raises(ConfigError, match="rdsInitialIp"):
        evaluate(
            lambda: create_rds_access(
                "rds", RdsAccessArgs(security_group_id="sg-1", initial_ip=address, description="x")
            ),
            stack="dev",
            project="cruddur",
        )


# ---------------------------------------------------------------- tags and outputs


def test_every_taggable_resource_carries_project_and_stack_tags(plan: StackPlan) -> None:
    taggable = [r for r in plan.resources if r.taggable]
    assert {TABLE, FUNCTION, QUEUE, LOG_GROUP, ROLE, USER_POOL} <= {r.type for r in taggable}
    for resource in taggable:
        assert resource.tags.get("project") == "cruddur", f"{resource.name} has no project tag"
        assert resource.tags.get("stack") == plan.stack, f"{resource.name} has no stack tag"


def test_every_resource_goes_through_the_stack_provider(plan: StackPlan) -> None:
    region = load_stack(plan.stack).region
    provider = plan.one("pulumi:providers:aws")
    assert provider.inputs["region"] == region
    for resource in (r for r in plan.resources if r.custom and r is not provider):
        assert resource.provider == provider.name, (
            f"{resource.name} uses the default provider (no default tags, maybe another region)"
        )


def test_outputs_are_exported_under_the_shared_names(plan: StackPlan) -> None:
    assert set(outputs.ALL) <= set(plan.outputs), f"missing: {set(outputs.ALL) - set(plan.outputs)}"
    table = _table(plan)
    assert plan.outputs[outputs.TABLE_NAME] == table.inputs["name"]
    assert plan.outputs[outputs.TABLE_ARN] == table.state["arn"]
    assert plan.outputs[outputs.STREAM_ARN] == table.state["streamArn"]
    assert plan.outputs[outputs.USER_POOL_ID] == plan.one(USER_POOL).id
    assert plan.outputs[outputs.USER_POOL_CLIENT_ID] == plan.one(POOL_CLIENT).id
    assert plan.outputs[outputs.RDS_SECURITY_GROUP_ID] == load_stack(plan.stack).rds_security_group_id
    assert plan.outputs[outputs.RDS_RULE_ID] == plan.one(INGRESS_RULE).state["securityGroupRuleId"]
    assert plan.outputs[outputs.STREAM_FUNCTION_NAME] == plan.one(FUNCTION).inputs["name"]
    assert plan.outputs[outputs.STREAM_DLQ_URL] == plan.one(QUEUE).state["url"]
    if load_stack(plan.stack).encrypt_messages:
        assert plan.outputs[outputs.MESSAGES_KEY_ARN] == plan.one(KMS_KEY).state["arn"]
        assert plan.outputs[outputs.MESSAGES_KEY_ALIAS] == plan.one(KMS_ALIAS).inputs["name"]
    else:
        assert plan.outputs[outputs.MESSAGES_KEY_ARN] == plan.outputs[outputs.MESSAGES_KEY_ALIAS] == ""


# ---------------------------------------------------------------- identity


def test_users_sign_in_by_email_with_a_handle(plan: StackPlan) -> None:
    pool = plan.one(USER_POOL).inputs
    assert pool["usernameAttributes"] == ["email"] and pool["autoVerifiedAttributes"] == ["email"]
    schema = {s["name"]: s for s in pool["schemas"]}
    assert schema["preferred_username"]["required"] is True
    assert pool["passwordPolicy"]["minimumLength"] >= 8


def test_web_client_has_no_secret_and_uses_srp(plan: StackPlan) -> None:
    client = plan.one(POOL_CLIENT).inputs
    assert client["generateSecret"] is False
    assert "ALLOW_USER_SRP_AUTH" in client["explicitAuthFlows"]
    assert not {"ALLOW_USER_PASSWORD_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH"} & set(client["explicitAuthFlows"])


# ---------------------------------------------------------------- the stream consumer


def _policy_grants(plan: StackPlan) -> dict[str, set[str]]:
    grants: dict[str, set[str]] = {}
    for statement in json.loads(plan.one(ROLE_POLICY).inputs["policy"])["Statement"]:
        assert statement["Effect"] == "Allow" and "NotAction" not in statement and "NotResource" not in statement
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        resources = [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
        for action in actions:
            grants.setdefault(action, set()).update(resources)
    return grants


def test_consumer_policy_has_no_wildcard_action_or_resource(plan: StackPlan) -> None:
    grants = _policy_grants(plan)
    for action, resources in grants.items():
        assert "*" not in action, f"stream-consumer-policy grants the wildcard action {action}"
        assert "*" not in resources, f"stream-consumer-policy grants {action} on every resource"


def test_consumer_policy_is_exactly_what_the_consumer_does(plan: StackPlan) -> None:
    table = _table(plan).state
    log_group = plan.one(LOG_GROUP).state["arn"]
    queue = plan.one(QUEUE).state["arn"]
    # ListStreams takes no resource (a grant on the stream does nothing); ConditionCheckItem checks a named group's
    # members
    stream_read = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"}
    expected: dict[str, set[str]] = {action: {table["streamArn"]} for action in stream_read}
    expected["dynamodb:Query"] = {f"{table['arn']}/index/{GSI_NAME}"}
    for action in ("dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"):
        expected[action] = {table["arn"]}
    for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
        expected[action] = {log_group, f"{log_group}:log-stream:*"}
    expected["sqs:SendMessage"] = {queue}
    assert _policy_grants(plan) == expected


def test_consumer_policy_is_attached_to_the_role_only_lambda_assumes(plan: StackPlan) -> None:
    role = plan.one(ROLE)
    assert plan.one(ROLE_POLICY).inputs["role"] == role.id
    assert plan.one(FUNCTION).inputs["role"] == role.state["arn"]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "lambda.amazonaws.com"}]


def test_mapping_retries_bisects_and_parks_failures(plan: StackPlan) -> None:
    mapping = plan.one(MAPPING).inputs
    assert mapping["eventSourceArn"] == _table(plan).state["streamArn"]
    assert mapping["functionName"] == plan.one(FUNCTION).state["arn"]
    assert mapping["startingPosition"] == "LATEST"
    assert mapping["batchSize"] == load_stack(plan.stack).stream_batch_size
    assert mapping["bisectBatchOnFunctionError"] is True
    assert mapping["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 0 < mapping["maximumRetryAttempts"] <= 10, "retries must be bounded or a poisoned record blocks the shard"
    assert 60 <= mapping["maximumRecordAgeInSeconds"] <= 604800
    assert mapping["destinationConfig"] == {"onFailure": {"destinationArn": plan.one(QUEUE).state["arn"]}}


def test_mapping_only_delivers_new_messages(plan: StackPlan) -> None:
    [pattern] = [json.loads(f["pattern"]) for f in plan.one(MAPPING).inputs["filterCriteria"]["filters"]]
    assert pattern["eventName"] == ["INSERT"]
    assert pattern["dynamodb"]["Keys"]["pk"]["S"] == [{"prefix": "MSG#"}]


def test_consumer_logs_have_a_retention_and_are_its_own(plan: StackPlan) -> None:
    function = plan.one(FUNCTION).inputs
    log_group = plan.one(LOG_GROUP).inputs
    assert log_group["retentionInDays"] == load_stack(plan.stack).log_retention_days
    assert log_group["name"] == f"/aws/lambda/{function['name']}"
    assert function["loggingConfig"]["logGroup"] == log_group["name"]


def test_function_runs_the_library_handler_against_this_table(plan: StackPlan) -> None:
    from infra.stream_consumer import LAMBDA_FILES

    function = plan.one(FUNCTION).inputs
    assert function["runtime"] in ("python3.12", "python3.13")
    assert function["handler"] == "ops.messages.consumer.handler"
    assert function["environment"]["variables"] == {"TABLE_NAME": _table(plan).inputs["name"], "GSI_NAME": GSI_NAME}
    archive = function["code"]["assetArchive"]
    assert sorted(archive) == sorted(LAMBDA_FILES)
    assert all(archive[path] == {"file": path} for path in LAMBDA_FILES)


def test_each_stack_names_its_own_consumer(plan: StackPlan) -> None:
    other = planned("prod" if plan.stack == "dev" else "dev")
    for type_ in (FUNCTION, QUEUE, ROLE, LOG_GROUP):
        assert plan.one(type_).inputs["name"] != other.one(type_).inputs["name"], f"{type_} collides between stacks"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("log_retention_days", 13, "logRetentionDays"), ("batch_size", 0, "streamBatchSize")],
)
def test_impossible_consumer_settings_are_refused_before_aws(field: str, value: int, message: str) -> None:
    from infra.stream_consumer import StreamConsumer, StreamConsumerArgs

    args = StreamConsumerArgs(
        function_name="f",
        queue_name="f-dlq",
        table_name="t",
        table_arn="arn:t",
        stream_arn="arn:t/stream/x",
        index_name=GSI_NAME,
        batch_size=25,
        log_retention_days=14,
    )
    with pytest.raises(ConfigError, match=message):
        evaluate(
            lambda: StreamConsumer("c", dataclasses.replace(args, **{field: value})), stack="dev", project="cruddur"
        )


# ---------------------------------------------------------------- the plan itself


def test_plan_is_repeatable_in_one_process() -> None:
    again: dict[str, Any] = plan_stack("dev").to_dict()
    assert again == planned("dev").to_dict()


def test_plan_of_an_unknown_stack_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown stack 'staging'"):
        plan_stack("staging")


# ---------------------------------------------------------------- the messages key


def _key_statements(plan: StackPlan) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = json.loads(plan.one(KMS_KEY).inputs["policy"])["Statement"]
    for st in statements:
        assert st["Effect"] == "Allow" and not {"NotAction", "NotPrincipal", "NotResource"} & set(st), st
    return statements


def _principals(statement: dict[str, Any]) -> list[str]:
    value = statement["Principal"]["AWS"]
    return [value] if isinstance(value, str) else list(value)


def test_prod_encrypts_messages_and_dev_does_not() -> None:
    # guards the tests below against both stacks silently losing (or gaining) the key
    assert (load_stack("dev").encrypt_messages, load_stack("prod").encrypt_messages) == (False, True)
    assert planned("dev").of_type(KMS_KEY) == [] and planned("dev").of_type(KMS_ALIAS) == []


def test_prod_key_is_symmetric_rotates_yearly_and_cannot_vanish_at_once() -> None:
    plan = planned("prod")
    key, alias = plan.one(KMS_KEY), plan.one(KMS_ALIAS)
    spec = key_spec(load_stack("prod"))
    assert spec is not None
    assert (key.inputs["keyUsage"], key.inputs["customerMasterKeySpec"]) == ("ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT")
    assert key.inputs["enableKeyRotation"] is True and key.inputs["rotationPeriodInDays"] == 365 == spec.rotation_days
    assert key.inputs["deletionWindowInDays"] == 30 == spec.deletion_window_days
    assert key.protect, "messages-key: losing the key loses every encrypted message"
    assert alias.inputs["name"] == spec.alias == "alias/cruddur-prod-messages"
    assert alias.inputs["targetKeyId"] == key.state["keyId"]


def test_key_policy_has_no_wildcard_action_and_nothing_for_the_stream_consumer() -> None:
    plan = planned("prod")
    consumer_role = plan.one(ROLE).state["arn"]
    for st in _key_statements(plan):
        actions = [st["Action"]] if isinstance(st["Action"], str) else st["Action"]
        assert not [a for a in actions if "*" in a], (
            f"messages-key grants wildcard actions {actions} to {st['Principal']}"
        )
        assert consumer_role not in _principals(st) and "*" not in _principals(st), (
            f"messages-key names {st['Principal']}"
        )
    # nor does the consumer's own policy reach KMS: copying ciphertext needs no key
    assert not [a for a in _policy_grants(plan) if a.startswith("kms:")]


def test_key_users_may_only_make_and_open_data_keys_of_this_table_and_the_root_only_administers() -> None:
    plan = planned("prod")
    settings = load_stack("prod")
    account = _table(plan).state["arn"].split(":")[4]
    by_principal = {p: st for st in _key_statements(plan) for p in _principals(st)}
    users = {f"arn:aws:iam::{account}:role/{name}" for name in settings.messages_key_users}
    assert set(by_principal) == users | {f"arn:aws:iam::{account}:root"}
    for user in users:
        st = by_principal[user]
        assert sorted(st["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
        assert st["Condition"]["StringEquals"] == {"kms:EncryptionContext:table": settings.table_name}
        assert st["Condition"]["Null"] == {"kms:EncryptionContext:group": "false"}
    admin = by_principal[f"arn:aws:iam::{account}:root"]["Action"]
    assert "kms:PutKeyPolicy" in admin and not {
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "kms:ReEncryptFrom",
        "kms:CreateGrant",
    } & set(admin)


def test_the_plan_shows_who_may_use_the_key() -> None:
    lines = describe(planned("prod"))
    [use] = [line for line in lines if "kms:GenerateDataKey" in line]
    assert "role/cruddur-prod-backend" in use and "role/cruddur-prod-ops" in use
    assert "if kms:EncryptionContext:table = cruddur-messages" in use
    assert any("rotationPeriodInDays: 365" in line for line in lines)


def test_a_stack_that_encrypts_but_names_no_key_user_is_refused() -> None:
    from infra.keys import MessagesKey, MessagesKeyArgs

    spec = dataclasses.replace(key_spec(load_stack("prod")), users=())  # type: ignore[type-var]
    with pytest.raises(ConfigError, match="messagesKeyUsers names no role"):
        evaluate(
            lambda: MessagesKey(
                "k", MessagesKeyArgs(spec=spec, table_arn="arn:aws:dynamodb:us-east-1:1:table/t", protected=False)
            ),
            stack="prod",
            project="cruddur",
        )
