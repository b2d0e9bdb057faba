"""The export path's resources, per stack, offline under mocks: bucket, Glue table, Athena workgroup, operator IAM."""

from __future__ import annotations

import json

import pytest

from ops import outputs
from ops.export_spec import EXPORT_PREFIX, RESULTS_PREFIX, athena_names, bucket_name
from ops.plan import MOCK_ACCOUNT, StackPlan
from ops.policy import RULES, Resource, check, context_for
from ops.stacks import load_stack

BUCKET = "aws:s3/bucket:Bucket"
ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PRIVATE = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
GLUE_TABLE = "aws:glue/catalogTable:CatalogTable"
GLUE_DATABASE = "aws:glue/catalogDatabase:CatalogDatabase"
WORKGROUP = "aws:athena/workgroup:Workgroup"
POLICY = "aws:iam/policy:Policy"


def test_the_bucket_is_the_stacks_encrypted_private_and_expiring(plan: StackPlan) -> None:
    table = load_stack(plan.stack).table_name
    bucket = plan.one(BUCKET)
    assert bucket.inputs["bucket"] == bucket_name(table, MOCK_ACCOUNT), f"stack {plan.stack}: the tasks look elsewhere"
    assert plan.outputs[outputs.EXPORT_BUCKET] == bucket.inputs["bucket"]
    [rule] = plan.one(ENCRYPTION).inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] in ("AES256", "aws:kms")
    private = plan.one(PRIVATE).inputs
    assert all(
        private[f] for f in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    expiring = {r["filter"]["prefix"]: r["expiration"]["days"] for r in plan.one(LIFECYCLE).inputs["rules"]}
    assert set(expiring) == {f"{EXPORT_PREFIX}/", f"{RESULTS_PREFIX}/"} and all(d > 0 for d in expiring.values())
    assert bucket.protect == load_stack(plan.stack).protected, f"stack {plan.stack}: bucket protect"


def test_glue_reads_the_exports_format_and_athena_writes_into_the_bucket(plan: StackPlan) -> None:
    names = athena_names(load_stack(plan.stack).table_name)
    bucket = plan.one(BUCKET).inputs["bucket"]
    assert plan.one(GLUE_DATABASE).inputs["name"] == names.database
    glue = plan.one(GLUE_TABLE).inputs
    assert (glue["name"], glue["databaseName"]) == (names.table, names.database)
    storage = glue["storageDescriptor"]
    assert storage["location"] == f"s3://{bucket}/{EXPORT_PREFIX}/AWSDynamoDB/"
    assert storage["serDeInfo"]["serializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"
    assert [c["name"] for c in storage["columns"]] == ["item"] and "message_group_uuid" in storage["columns"][0]["type"]
    group = plan.one(WORKGROUP).inputs
    assert group["name"] == names.workgroup == plan.outputs[outputs.DOCTOR_WORKGROUP]
    config = group["configuration"]
    assert config["enforceWorkgroupConfiguration"] and config["bytesScannedCutoffPerQuery"] > 0
    result = config["resultConfiguration"]
    assert result["outputLocation"] == f"s3://{bucket}/{RESULTS_PREFIX}/"
    assert result["encryptionConfiguration"]["encryptionOption"] == "SSE_S3"


def test_the_operator_policy_grants_what_the_export_path_calls_on_named_resources(plan: StackPlan) -> None:
    document = json.loads(plan.one(POLICY).inputs["policy"])
    actions = {a for s in document["Statement"] for a in s["Action"]}
    # what ops/export.py and ops/doctor_sql.py call in the cloud
    assert {
        "dynamodb:ExportTableToPointInTime",
        "dynamodb:UpdateContinuousBackups",
        "dynamodb:DescribeExport",
        "s3:GetObject",
        "s3:PutObject",
        "athena:StartQueryExecution",
        "athena:GetQueryResults",
        "glue:GetTable",
    } <= actions
    assert all(r != "*" for s in document["Statement"] for r in s["Resource"])


def test_the_policy_pack_refuses_a_bucket_that_could_be_made_public(plan: StackPlan) -> None:
    private = plan.one(PRIVATE)
    [rule] = [r for r in RULES if r.name == "bucket-is-private"]
    context = context_for(plan.stack)
    assert check(rule, Resource(private.type, private.name, private.inputs), context) == []
    opened = dict(private.inputs, restrictPublicBuckets=False)
    assert check(rule, Resource(private.type, private.name, opened), context) == [
        "restrictPublicBuckets is off: the exports could be made public"
    ]


@pytest.mark.parametrize("table", ["cruddur-messages", "Cruddur_Messages.v2"])
def test_bucket_names_are_valid_s3_names(table: str) -> None:
    name = bucket_name(table, "123456789012")
    assert name == name.lower() and "_" not in name and "." not in name and 3 <= len(name) <= 63
