"""The export path's resources: the bucket DynamoDB exports the table into, the Glue table over the
export's format, the Athena workgroup the doctor's SQL runs in, and the IAM policy the bulk jobs need.

Names come from ``ops.export_spec``, which the tasks read too, so they find what the program declared
without reading its outputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ops.export_spec import EXPORT_PREFIX, RESULTS_PREFIX, athena_names, bucket_name

EXPORT_DAYS = 30  # an export is a copy of every message: kept long enough to investigate, then gone
RESULT_DAYS = 7  # Athena's result files repeat what the doctor printed
SCAN_LIMIT_BYTES = 100 * 2**30  # one doctor query never scans (and bills) more than 100 GiB
# The export's DynamoDB JSON as a Glue column: only the attributes the doctor's SQL reads.
ITEM_TYPE = (
    "struct<pk:struct<s:string>,sk:struct<s:string>,message_group_uuid:struct<s:string>,"
    "message_uuid:struct<s:string>,user_uuid:struct<s:string>>"
)


def account_of(arn: str) -> str:
    return arn.split(":")[4]


@dataclass(frozen=True)
class TableExportsArgs:
    table_name: str
    table_arn: pulumi.Input[str]
    protected: bool


class TableExports(pulumi.ComponentResource):
    """Export bucket (encrypted, private, expiring), Glue database and table, Athena workgroup, operator policy."""

    bucket: aws.s3.Bucket
    workgroup: aws.athena.Workgroup
    policy: aws.iam.Policy

    def __init__(self, name: str, args: TableExportsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("cruddur:messages:TableExports", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        names = athena_names(args.table_name)
        table_arn = pulumi.Output.from_input(args.table_arn)
        bucket_id = table_arn.apply(lambda arn: bucket_name(args.table_name, account_of(arn)))

        # Where ExportTableToPointInTime writes (exports/) and Athena its results (athena-results/).
        self.bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=bucket_id,
            force_destroy=not args.protected,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protected),
        )
        # Exports hold every message: encrypted at rest with S3's key, as DynamoDB's export supports it.
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=self.bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="AES256"
                    )
                )
            ],
            opts=child,
        )
        # Never public, whatever a later object ACL or bucket policy says.
        aws.s3.BucketPublicAccessBlock(
            f"{name}-private",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        # Copies of the table do not pile up: exports and query results expire.
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=self.bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="exports-expire",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=f"{EXPORT_PREFIX}/"),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=EXPORT_DAYS),
                ),
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="results-expire",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=f"{RESULTS_PREFIX}/"),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=RESULT_DAYS),
                ),
            ],
            opts=child,
        )

        # The catalog the doctor's SQL names (ops.doctor_sql.athena_queries).
        database = aws.glue.CatalogDatabase(f"{name}-database", name=names.database, opts=child)
        # Every export's files under one location; a query picks one export by "$path". The manifests beside
        # the data are not items (ignore.malformed.json skips their .md5 lines, their JSON has no "item").
        aws.glue.CatalogTable(
            f"{name}-items",
            name=names.table,
            database_name=database.name,
            table_type="EXTERNAL_TABLE",
            parameters={"classification": "json", "compressionType": "gzip", "EXTERNAL": "TRUE"},
            storage_descriptor=aws.glue.CatalogTableStorageDescriptorArgs(
                location=self.bucket.bucket.apply(lambda b: f"s3://{b}/{EXPORT_PREFIX}/AWSDynamoDB/"),
                input_format="org.apache.hadoop.mapred.TextInputFormat",
                output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                ser_de_info=aws.glue.CatalogTableStorageDescriptorSerDeInfoArgs(
                    serialization_library="org.openx.data.jsonserde.JsonSerDe",
                    parameters={"ignore.malformed.json": "true", "case.insensitive": "true"},
                ),
                columns=[aws.glue.CatalogTableStorageDescriptorColumnArgs(name="item", type=ITEM_TYPE)],
            ),
            opts=child,
        )
        # Where the SQL runs: results in the bucket, encrypted, and a cap on what one query may scan.
        self.workgroup = aws.athena.Workgroup(
            f"{name}-workgroup",
            name=names.workgroup,
            force_destroy=True,
            configuration=aws.athena.WorkgroupConfigurationArgs(
                enforce_workgroup_configuration=True,
                bytes_scanned_cutoff_per_query=SCAN_LIMIT_BYTES,
                result_configuration=aws.athena.WorkgroupConfigurationResultConfigurationArgs(
                    output_location=self.bucket.bucket.apply(lambda b: f"s3://{b}/{RESULTS_PREFIX}/"),
                    encryption_configuration=aws.athena.WorkgroupConfigurationResultConfigurationEncryptionConfigurationArgs(
                        encryption_option="SSE_S3"
                    ),
                ),
            ),
            opts=child,
        )
        # What ddb.export, --from-export and --engine athena do, and nothing else: for whoever runs the bulk jobs.
        self.policy = aws.iam.Policy(
            f"{name}-operator",
            description=f"ddb.export / --from-export / doctor --engine athena on {args.table_name}",
            policy=pulumi.Output.all(table_arn, self.bucket.arn, self.workgroup.arn, database.name).apply(
                lambda a: operator_policy(a[0], a[1], a[2], a[3], names.table)
            ),
            opts=child,
        )
        self.register_outputs({"bucket": self.bucket.bucket, "workgroup": self.workgroup.name})


def operator_policy(table_arn: str, bucket_arn: str, workgroup_arn: str, database: str, glue_table: str) -> str:
    """The bulk jobs' grants, each on its own resource (the export ARNs live under the table's)."""
    region, account = table_arn.split(":")[3], account_of(table_arn)
    glue = f"arn:aws:glue:{region}:{account}"
    statements = [
        {
            "Sid": "ExportTheTable",
            "Effect": "Allow",
            "Action": [
                "dynamodb:ExportTableToPointInTime",
                "dynamodb:DescribeContinuousBackups",
                "dynamodb:UpdateContinuousBackups",
            ],
            "Resource": [table_arn],
        },
        {
            "Sid": "FollowItsExports",
            "Effect": "Allow",
            "Action": ["dynamodb:DescribeExport"],
            "Resource": [f"{table_arn}/export/*"],
        },
        {
            "Sid": "WriteAndReadExports",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
            "Resource": [f"{bucket_arn}/{EXPORT_PREFIX}/*", f"{bucket_arn}/{RESULTS_PREFIX}/*"],
        },
        {
            "Sid": "ListTheBucket",
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": [bucket_arn],
        },
        {
            "Sid": "RunTheDoctorsSql",
            "Effect": "Allow",
            "Action": ["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults"],
            "Resource": [workgroup_arn],
        },
        {
            "Sid": "ReadTheCatalog",
            "Effect": "Allow",
            "Action": ["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"],
            "Resource": [f"{glue}:catalog", f"{glue}:database/{database}", f"{glue}:table/{database}/{glue_table}"],
        },
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})
