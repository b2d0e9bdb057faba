"""The resource adapters: the plan's inputs in the API's shape, a round trip through moto, and every kind of difference.

GIVEN the dev stack's real plan (evaluated once per session), WHEN its resources are created in an
in-process moto (``mock_aws``, the narrow unit case) and read back, THEN each reads as declared;
changed behind the program's back, each difference is named under the program's input name and a
reconcile puts it back. The values asserted come from the sources the program reads (stack file,
``ops.stream_mapping``, ``ops.table_spec``), not from the adapters, so a wrong mapping fails here.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ops import outputs as out
from ops import stream_mapping
from ops.drift import IN_LINE, MISSING, check
from ops.local import cloud_side
from ops.local.moto_patches import gaps as moto_gaps
from ops.plan import PlannedResource, StackPlan
from ops.resources import ADAPTERS, Context, Live
from ops.resources.kms import AliasAdapter, KeyAdapter
from ops.resources.mapping import WORKER_FIELDS, MappingAdapter
from ops.resources.table import AWS_MANAGED_KEY
from ops.stacks import load_stack
from ops.table_spec import GSI_NAME
from ops.target import Target
from tests.support.plans import planned

TABLE = "aws:dynamodb/table:Table"
POOL = "aws:cognito/userPool:UserPool"
CLIENT = "aws:cognito/userPoolClient:UserPoolClient"
RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
QUEUE = "aws:sqs/queue:Queue"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
REGION = "us-east-1"


@dataclass(frozen=True)
class InProcess(Target):
    """A target whose clients reach the in-process moto (``cloud`` says whether it plays a twin or the cloud)."""

    def client(self, service: str, **config: Any) -> Any:
        return boto3.client(service, region_name=REGION)


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws")  # the plan imports pulumi_aws


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[None]:
    monkeypatch.setenv("CRUDDUR_STATE_DIR", str(tmp_path))  # no ids recorded by some twin of the session
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # seconds of AMI data per test that no rule needs
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", REGION),
    ):
        monkeypatch.setenv(name, value)
    moto_gaps.install()
    with mock_aws():
        yield


@pytest.fixture
def plan() -> StackPlan:
    return planned("dev")


def _twin(plan: StackPlan) -> InProcess:
    return InProcess(load_stack(plan.stack), cloud=False, endpoints={"default": "in-process moto"})


def _build(plan: StackPlan, previous: cloud_side.CloudSide | None = None) -> cloud_side.CloudSide:
    """What local.up does to the cloud side: reconcile with what was recorded, then record."""
    built = cloud_side.reconcile(
        _twin(plan), plan, previous.outputs if previous else None, previous.ids if previous else None
    )
    cloud_side.save(plan.stack, built)
    return built


def _ctx(plan: StackPlan, target: Target | None = None, outputs: dict[str, Any] | None = None) -> Context:
    return Context(target or _twin(plan), plan, outputs=outputs)


# ---------------------------------------------------------------- the plan's side, no AWS at all


def test_table_inputs_in_the_apis_shape(plan: StackPlan) -> None:
    settings = load_stack("dev")
    want = ADAPTERS[TABLE].expected(plan.one(TABLE), _ctx(plan))
    assert want["TableName"] == settings.table_name
    assert (want["KeySchema.HASH"], want["KeySchema.RANGE"]) == ("pk", "sk")
    assert want["AttributeDefinitions"] == {"pk": "S", "sk": "S", "message_group_uuid": "S"}
    assert want["GlobalSecondaryIndexes"][GSI_NAME]["KeySchema"] == {"HASH": "message_group_uuid", "RANGE": "sk"}
    assert want["BillingMode"] == settings.billing_mode == "PROVISIONED"
    assert want["ProvisionedThroughput.ReadCapacityUnits"] == settings.read_capacity
    assert want["StreamSpecification.StreamViewType"] == "NEW_IMAGE"
    # encryption on with no key named is the AWS managed key; dev keeps neither recovery nor protection
    assert (want["SSESpecification.Enabled"], want["SSESpecification.KMSMasterKeyId"]) == (True, AWS_MANAGED_KEY)
    assert want["PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled"] is False
    assert want["DeletionProtectionEnabled"] is False
    assert want["Tags"] == {"project": "cruddur", "stack": "dev"}


def test_prod_table_and_pool_are_protected_in_the_apis_words() -> None:
    prod = planned("prod")
    table = ADAPTERS[TABLE].expected(prod.one(TABLE), _ctx(prod))
    pool = ADAPTERS[POOL].expected(prod.one(POOL), _ctx(prod))
    assert (
        table["PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled"] is True
        and table["DeletionProtectionEnabled"] is True
    )
    assert pool["DeletionProtection"] == "ACTIVE"


def test_pool_and_client_inputs_in_the_apis_shape(plan: StackPlan) -> None:
    pool = ADAPTERS[POOL].expected(plan.one(POOL), _ctx(plan))
    assert pool["PoolName"] == "cruddur-dev-users"
    assert pool["UsernameAttributes"] == ["email"] and pool["UsernameConfiguration.CaseSensitive"] is False
    assert pool["Policies.PasswordPolicy.MinimumLength"] == 12
    assert pool["Schema"]["preferred_username"]["Required"] is True
    assert pool["Schema"]["name"]["StringAttributeConstraints"] == {"MinLength": "0", "MaxLength": "2048"}
    assert pool["AccountRecoverySetting.RecoveryMechanisms"] == [{"Name": "verified_email", "Priority": 1}]
    client = ADAPTERS[CLIENT].expected(plan.one(CLIENT), _ctx(plan))
    assert client["ExplicitAuthFlows"] == ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH"]
    assert client["GenerateSecret"] is False and client["PreventUserExistenceErrors"] == "ENABLED"


def test_queue_rule_and_mapping_inputs_in_the_apis_shape(plan: StackPlan) -> None:
    settings = load_stack("dev")
    queue = ADAPTERS[QUEUE].expected(plan.one(QUEUE), _ctx(plan))
    assert queue["QueueName"] == stream_mapping.dead_letter_queue_name(settings)
    assert queue["Attributes.MessageRetentionPeriod"] == str(stream_mapping.DLQ_RETENTION_SECONDS)  # SQS speaks strings
    assert queue["Attributes.SqsManagedSseEnabled"] == "true"
    rule = ADAPTERS[RULE].expected(plan.one(RULE), _ctx(plan))
    assert (rule["GroupId"], rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == (
        settings.rds_security_group_id,
        "tcp",
        5432,
        5432,
    )
    assert rule["CidrIpv4"] == f"{settings.rds_initial_ip}/32"
    worker = MappingAdapter().worker_settings(plan.one(MAPPING), _ctx(plan))
    assert set(worker) == set(WORKER_FIELDS)
    assert worker["BatchSize"] == settings.stream_batch_size
    assert worker["MaximumRetryAttempts"] == stream_mapping.MAX_RETRY_ATTEMPTS
    assert worker["MaximumRecordAgeInSeconds"] == stream_mapping.MAX_RECORD_AGE_SECONDS
    assert worker["FunctionArn"] == stream_mapping.function_name(settings)  # compared by name: ARNs differ per account
    assert [json.loads(p) for p in worker["FilterCriteria.Filters"]] == [stream_mapping.STREAM_FILTER]


def test_references_resolve_to_the_live_ids_learnt(plan: StackPlan) -> None:
    ctx = _ctx(plan)
    pool = plan.one(POOL)
    ctx.learn(pool, Live("p", {"id": "us-east-1_live", "arn": "arn:live"}, {}))
    assert ADAPTERS[CLIENT].expected(plan.one(CLIENT), ctx)["UserPoolId"] == "us-east-1_live"
    table = plan.one(TABLE)
    ctx.learn(table, None)
    assert ADAPTERS[MAPPING].expected(plan.one(MAPPING), ctx)["EventSourceArn"] == "<messages: missing>"


# ---------------------------------------------------------------- a twin built in moto, read back


def test_reconcile_creates_every_served_resource_with_the_plans_settings(aws: None, plan: StackPlan) -> None:
    built = _build(plan)
    assert len(built.created) == 5 and not built.updated and not built.stuck
    assert any("Lambda function" in s for s in built.not_served) and any("IAM role" in s for s in built.not_served)
    assert built.worker is not None and built.worker["BatchSize"] == 25

    # read with plain boto3, not the adapters: a mapping wrong both ways would pass a round trip alone
    ddb, cognito, sqs, ec2 = (boto3.client(s, region_name=REGION) for s in ("dynamodb", "cognito-idp", "sqs", "ec2"))
    desc = ddb.describe_table(TableName=plan.one(TABLE).inputs["name"])["Table"]
    assert desc["SSEDescription"]["Status"] == "ENABLED" and desc["GlobalSecondaryIndexes"][0]["IndexName"] == GSI_NAME
    assert desc["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    pool = cognito.describe_user_pool(UserPoolId=built.outputs[out.USER_POOL_ID])["UserPool"]
    assert pool["Name"] == "cruddur-dev-users" and pool["Policies"]["PasswordPolicy"]["MinimumLength"] == 12
    assert {a["Name"]: a["Required"] for a in pool["SchemaAttributes"]}["preferred_username"] is True
    client = cognito.describe_user_pool_client(UserPoolId=pool["Id"], ClientId=built.outputs[out.USER_POOL_CLIENT_ID])[
        "UserPoolClient"
    ]
    assert set(client["ExplicitAuthFlows"]) == {"ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"}
    attrs = sqs.get_queue_attributes(QueueUrl=built.outputs[out.STREAM_DLQ_URL], AttributeNames=["All"])["Attributes"]
    assert attrs["MessageRetentionPeriod"] == "1209600"
    rule = ec2.describe_security_group_rules(SecurityGroupRuleIds=[built.outputs[out.RDS_RULE_ID]])[
        "SecurityGroupRules"
    ][0]
    assert (rule["GroupId"], rule["FromPort"], rule["CidrIpv4"]) == (
        built.outputs[out.RDS_SECURITY_GROUP_ID],
        5432,
        "192.0.2.10/32",
    )
    assert rule["GroupId"] != load_stack("dev").rds_security_group_id, "the rule goes to the twin's stand-in group"

    report = check(plan, _twin(plan))
    assert {r.name: r.status for r in report.resources if r.type != MAPPING} == {
        "messages": IN_LINE,
        "identity-users": IN_LINE,
        "identity-web-client": IN_LINE,
        "rds-postgres-ingress": IN_LINE,
        "stream-consumer-dlq": IN_LINE,
    }


def test_a_second_reconcile_finds_everything_again_and_changes_nothing(aws: None, plan: StackPlan) -> None:
    first = cloud_side.reconcile(_twin(plan), plan)
    again = cloud_side.reconcile(_twin(plan), plan, first.outputs, first.ids)
    lost = cloud_side.reconcile(_twin(plan), plan)  # no outputs, no ids: by physical name
    assert not again.created and not again.updated and len(again.unchanged) == 5
    assert again.outputs == first.outputs == lost.outputs and not lost.created


def _changes(plan: StackPlan, type_: str, outputs: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    ctx = _ctx(plan, outputs=outputs)
    for resource in plan.resources:  # learn every id first, as check() does
        if resource.type in ADAPTERS and resource.type != MAPPING:
            ctx.learn(resource, ADAPTERS[resource.type].locate(resource, ctx))
    adapter = ADAPTERS[type_]
    live = adapter.locate(plan.one(type_), ctx)
    assert live is not None
    return {c.field: (c.declared, c.actual) for c in adapter.compare(plan.one(type_), live, ctx).differences}


def test_every_change_behind_the_programs_back_is_named_and_put_back(aws: None, plan: StackPlan) -> None:
    built = cloud_side.reconcile(_twin(plan), plan)
    o = built.outputs
    ddb, cognito, sqs, ec2 = (boto3.client(s, region_name=REGION) for s in ("dynamodb", "cognito-idp", "sqs", "ec2"))
    ddb.update_continuous_backups(
        TableName=plan.one(TABLE).inputs["name"], PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    ddb.update_table(TableName=plan.one(TABLE).inputs["name"], DeletionProtectionEnabled=True)
    ddb.tag_resource(ResourceArn=o[out.TABLE_ARN], Tags=[{"Key": "owner", "Value": "someone"}])
    cognito.update_user_pool_client(
        UserPoolId=o[out.USER_POOL_ID],
        ClientId=o[out.USER_POOL_CLIENT_ID],
        ClientName="web",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"],
    )
    sqs.set_queue_attributes(QueueUrl=o[out.STREAM_DLQ_URL], Attributes={"MessageRetentionPeriod": "60"})
    rule = {
        "IpProtocol": "tcp",
        "FromPort": 5432,
        "ToPort": 5433,
        "CidrIpv4": "192.0.2.10/32",
        "Description": "opened by hand",
    }
    ec2.modify_security_group_rules(
        GroupId=o[out.RDS_SECURITY_GROUP_ID],
        SecurityGroupRules=[{"SecurityGroupRuleId": o[out.RDS_RULE_ID], "SecurityGroupRule": rule}],
    )

    assert _changes(plan, TABLE, o) == {
        "pointInTimeRecovery.enabled": (False, True),
        "deletionProtectionEnabled": (False, True),
        "tags": ({"project": "cruddur", "stack": "dev"}, {"owner": "someone", "project": "cruddur", "stack": "dev"}),
    }
    assert _changes(plan, CLIENT, o) == {
        "explicitAuthFlows": (["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH"], ["ALLOW_USER_PASSWORD_AUTH"])
    }
    assert _changes(plan, QUEUE, o) == {"messageRetentionSeconds": ("1209600", "60")}
    assert _changes(plan, RULE, o) == {
        "toPort": (5432, 5433),
        "description": ("cruddur developer access", "opened by hand"),
    }

    fixed = cloud_side.reconcile(_twin(plan), plan, o, built.ids)
    assert len(fixed.updated) == 4 and not fixed.stuck and not fixed.created
    for type_ in (TABLE, CLIENT, QUEUE, RULE):
        assert _changes(plan, type_, o) == {}, type_


def test_a_moved_address_is_movement_and_reconcile_leaves_it(aws: None, plan: StackPlan) -> None:
    built = _build(plan)
    o = built.outputs
    ec2 = boto3.client("ec2", region_name=REGION)
    moved = {
        "IpProtocol": "tcp",
        "FromPort": 5432,
        "ToPort": 5432,
        "CidrIpv4": "203.0.113.7/32",
        "Description": "cruddur developer access",
    }
    ec2.modify_security_group_rules(
        GroupId=o[out.RDS_SECURITY_GROUP_ID],
        SecurityGroupRules=[{"SecurityGroupRuleId": o[out.RDS_RULE_ID], "SecurityGroupRule": moved}],
    )
    report = check(plan, _twin(plan))
    rule = next(r for r in report.resources if r.type == RULE)
    assert rule.status == IN_LINE and [(c.field, c.declared, c.actual) for c in rule.moved] == [
        ("cidrIpv4", "192.0.2.10/32", "203.0.113.7/32")
    ]
    again = _build(plan, built)
    assert not again.updated
    assert (
        ec2.describe_security_group_rules(SecurityGroupRuleIds=[o[out.RDS_RULE_ID]])["SecurityGroupRules"][0][
            "CidrIpv4"
        ]
        == "203.0.113.7/32"
    )


def test_a_renamed_pool_is_another_pool_and_the_old_one_stays(aws: None, plan: StackPlan) -> None:
    built = cloud_side.reconcile(_twin(plan), plan)
    pool = plan.one(POOL)
    renamed = dataclasses.replace(pool, inputs={**pool.inputs, "name": "cruddur-dev-people"})
    plan2 = dataclasses.replace(plan, resources=tuple(renamed if r is pool else r for r in plan.resources))
    again = cloud_side.reconcile(_twin(plan2), plan2, built.outputs, built.ids)
    assert len(again.replaced) == 1 and "cruddur-dev-users" in again.replaced[0]
    assert again.outputs[out.USER_POOL_ID] != built.outputs[out.USER_POOL_ID]
    names = {
        p["Name"] for p in boto3.client("cognito-idp", region_name=REGION).list_user_pools(MaxResults=10)["UserPools"]
    }
    assert names == {"cruddur-dev-users", "cruddur-dev-people"}, "the recorded pool (and its users) is never deleted"
    assert any("Cognito app client" in c for c in again.created), "a client of the new pool"


def test_a_missing_resource_is_drift(aws: None, plan: StackPlan) -> None:
    built = _build(plan)
    boto3.client("sqs", region_name=REGION).delete_queue(QueueUrl=built.outputs[out.STREAM_DLQ_URL])
    report = check(plan, _twin(plan))
    queue = next(r for r in report.resources if r.type == QUEUE)
    assert queue.status == MISSING and report.drift


# ---------------------------------------------------------------- KMS (no stack declares a key yet)


def _with_key(plan: StackPlan) -> StackPlan:
    key_id, key_arn = (
        "0000aaaa-1111-2222-3333-444455556666",
        f"arn:aws:kms:{REGION}:123456789012:key/0000aaaa-1111-2222-3333-444455556666",
    )
    key = PlannedResource(
        type=KeyAdapter.type,
        name="messages-key",
        custom=True,
        id=key_id,
        taggable=True,
        tags={"stack": "dev"},
        inputs={"description": "cruddur messages", "enableKeyRotation": True, "deletionWindowInDays": 30},
        state={"keyId": key_id, "arn": key_arn},
    )
    alias = PlannedResource(
        type=AliasAdapter.type,
        name="messages-key-alias",
        custom=True,
        id="alias/cruddur-dev-messages",
        inputs={"name": "alias/cruddur-dev-messages", "targetKeyId": key_id},
    )
    table = plan.one(TABLE)
    encrypted = dataclasses.replace(
        table, inputs={**table.inputs, "serverSideEncryption": {"enabled": True, "kmsKeyArn": key_arn}}
    )
    return dataclasses.replace(plan, resources=(key, alias, *(encrypted if r is table else r for r in plan.resources)))


def test_a_declared_key_its_alias_and_the_table_it_encrypts(aws: None, plan: StackPlan) -> None:
    keyed = _with_key(plan)
    built = _build(keyed)
    kms, ddb = boto3.client("kms", region_name=REGION), boto3.client("dynamodb", region_name=REGION)
    live_key = kms.describe_key(KeyId="alias/cruddur-dev-messages")["KeyMetadata"]
    assert (
        live_key["Description"] == "cruddur messages"
        and kms.get_key_rotation_status(KeyId=live_key["KeyId"])["KeyRotationEnabled"]
    )
    assert (
        ddb.describe_table(TableName=plan.one(TABLE).inputs["name"])["Table"]["SSEDescription"]["KMSMasterKeyArn"]
        == live_key["Arn"]
    )
    assert built.ids["messages-key"]["id"] == live_key["KeyId"]
    statuses = {
        r.name: r.status for r in check(keyed, _twin(keyed)).resources if r.type != MAPPING
    }  # no stream worker in moto
    assert statuses["messages-key"] == statuses["messages-key-alias"] == statuses["messages"] == IN_LINE
    assert set(statuses.values()) == {IN_LINE}

    kms.disable_key_rotation(KeyId=live_key["KeyId"])
    report = check(keyed, _twin(keyed))
    key = next(r for r in report.resources if r.type == KeyAdapter.type)
    assert [(c.field, c.declared, c.actual) for c in key.differences] == [("enableKeyRotation", True, False)]
    assert "KMS key messages-key" in _build(keyed, built).updated[0]


# ---------------------------------------------------------- the cloud: found by physical names, the mapping from Lambda


def _cloud_plan(plan: StackPlan, group_id: str) -> StackPlan:
    rule = plan.one(RULE)
    moved_group = dataclasses.replace(rule, inputs={**rule.inputs, "securityGroupId": group_id})
    return dataclasses.replace(plan, resources=tuple(moved_group if r is rule else r for r in plan.resources))


def test_cloud_drift_finds_resources_by_name_and_reads_the_mapping_from_lambda(
    aws: None, plan: StackPlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # no Pulumi CLI: no outputs, so everything is found by its physical name
    ec2, iam, lam = (boto3.client(s, region_name=REGION) for s in ("ec2", "iam", "lambda"))
    group = ec2.create_security_group(GroupName="rds", Description="the RDS instance's")["GroupId"]
    cloud_plan = _cloud_plan(plan, group)
    cloud = InProcess(load_stack("dev"), cloud=True)
    built = cloud_side.reconcile(cloud, cloud_plan)
    assert "Lambda function stream-consumer-function" in built.not_served
    role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("h.py", "def handler(event, context):\n    return {}\n")
    function = lam.create_function(
        FunctionName="cruddur-dev-stream-consumer",
        Runtime="python3.12",
        Role=role,
        Handler="h.handler",
        Code={"ZipFile": archive.getvalue()},
    )["FunctionArn"]
    mapping = cloud_plan.one(MAPPING).inputs
    queue_arn = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=built.outputs[out.STREAM_DLQ_URL], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    uuid = lam.create_event_source_mapping(
        EventSourceArn=built.outputs[out.STREAM_ARN],
        FunctionName=function,
        StartingPosition="LATEST",
        BatchSize=mapping["batchSize"],
        BisectBatchOnFunctionError=True,
        MaximumRetryAttempts=mapping["maximumRetryAttempts"],
        MaximumRecordAgeInSeconds=mapping["maximumRecordAgeInSeconds"],
        FunctionResponseTypes=["ReportBatchItemFailures"],
        FilterCriteria={"Filters": [{"Pattern": json.dumps(stream_mapping.STREAM_FILTER)}]},
        DestinationConfig={"OnFailure": {"Destination": queue_arn}},
    )["UUID"]

    report = check(cloud_plan, cloud)
    assert report.target == "cloud" and any("no stack outputs" in n for n in report.notes)
    assert {r.name: r.status for r in report.resources} == {
        "messages": IN_LINE,
        "identity-users": IN_LINE,
        "identity-web-client": IN_LINE,
        "rds-postgres-ingress": IN_LINE,
        "stream-consumer-dlq": IN_LINE,
        "stream-consumer-mapping": IN_LINE,
    }, [(r.name, r.differences, r.note) for r in report.resources if r.status != IN_LINE]

    lam.update_event_source_mapping(UUID=uuid, BatchSize=10, MaximumRetryAttempts=-1)
    drifted = next(r for r in check(cloud_plan, cloud).resources if r.type == MAPPING)
    assert {c.field: (c.declared, c.actual) for c in drifted.differences} == {
        "batchSize": (25, 10),
        "maximumRetryAttempts": (5, -1),
    }
