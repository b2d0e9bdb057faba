"""``aws:dynamodb/table:Table``: keys, indexes, billing, stream, encryption, recovery, protection, tags."""

from __future__ import annotations

import time
from typing import Any

from ops.aws import call, items
from ops.errors import CloudError, NotFoundError
from ops.plan import PlannedResource
from ops.resources.base import NOT_SERVED, Adapter, Context, Field, Live, nest, tags_dict

# What DynamoDB uses when encryption is on and no key is named: the account's AWS managed key.
AWS_MANAGED_KEY = "alias/aws/dynamodb"


def _unknown_operation(err: CloudError) -> bool:
    """An engine's answer to an API it lacks (a user's own endpoint may lack tags, backups); AWS never gives it."""
    return "UnknownOperationException" in str(err)


def _attributes(value: list[dict[str, Any]]) -> dict[str, str]:
    return {a["name"]: a["type"] for a in value}


def _index_keys(index: dict[str, Any]) -> dict[str, str]:
    if index.get("keySchemas"):
        return {k["keyType"]: k["attributeName"] for k in index["keySchemas"]}
    return {
        t: index[k] for k, t in (("hashKey", "HASH"), ("rangeKey", "RANGE")) if index.get(k)
    }  # the deprecated spelling


def _indexes(value: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for index in value:
        projection: dict[str, Any] = {"ProjectionType": index.get("projectionType")}
        if index.get("nonKeyAttributes"):
            projection["NonKeyAttributes"] = sorted(index["nonKeyAttributes"])
        shape: dict[str, Any] = {"KeySchema": _index_keys(index), "Projection": projection}
        if index.get("readCapacity") is not None:
            shape["ProvisionedThroughput"] = {
                "ReadCapacityUnits": index["readCapacity"],
                "WriteCapacityUnits": index.get("writeCapacity"),
            }
        out[index["name"]] = shape
    return out


class TableAdapter(Adapter):
    type = "aws:dynamodb/table:Table"
    label = "DynamoDB table"
    service = "dynamodb"
    fields = (
        Field("name", "TableName", in_place=False),
        Field("hashKey", "KeySchema.HASH", in_place=False),
        Field("rangeKey", "KeySchema.RANGE", in_place=False),
        Field("attributes", "AttributeDefinitions", to_api=_attributes, in_place=False),
        Field("globalSecondaryIndexes", "GlobalSecondaryIndexes", to_api=_indexes),
        Field("billingMode", "BillingMode"),
        Field("readCapacity", "ProvisionedThroughput.ReadCapacityUnits"),
        Field("writeCapacity", "ProvisionedThroughput.WriteCapacityUnits"),
        Field("streamEnabled", "StreamSpecification.StreamEnabled"),
        Field("streamViewType", "StreamSpecification.StreamViewType", in_place=False),
        Field("serverSideEncryption.enabled", "SSESpecification.Enabled"),
        Field("serverSideEncryption.kmsKeyArn", "SSESpecification.KMSMasterKeyId"),
        Field("pointInTimeRecovery.enabled", "PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled"),
        Field("deletionProtectionEnabled", "DeletionProtectionEnabled"),
        Field("tableClass", "TableClass"),
        Field("tags", "Tags", to_api=tags_dict, normalize=tags_dict),
    )

    def expected(self, planned: PlannedResource, ctx: Context) -> dict[str, Any]:
        want = super().expected(planned, ctx)
        if want.get("SSESpecification.Enabled") and "SSESpecification.KMSMasterKeyId" not in want:
            want["SSESpecification.KMSMasterKeyId"] = AWS_MANAGED_KEY  # on, with no key named: the AWS managed key
        return want

    # ------------------------------------------------------------------ reading
    def locate(self, planned: PlannedResource, ctx: Context) -> Live | None:
        name = ctx.known_id(planned) or self.physical_name(planned)
        ddb = ctx.client("dynamodb")
        try:
            desc = call(ddb.describe_table, f"DescribeTable {name}", TableName=name)["Table"]
        except NotFoundError:
            return None
        return Live(name, self._identity(desc), self._view(desc, ctx))

    @staticmethod
    def _identity(desc: dict[str, Any]) -> dict[str, str]:
        return {
            "id": desc["TableName"],
            "name": desc["TableName"],
            "arn": desc["TableArn"],
            "streamArn": desc.get("LatestStreamArn", ""),
            "streamLabel": desc.get("LatestStreamLabel", ""),
        }

    def _view(self, desc: dict[str, Any], ctx: Context) -> dict[str, Any]:
        name = desc["TableName"]
        billing = (desc.get("BillingModeSummary") or {}).get("BillingMode") or "PROVISIONED"
        stream = desc.get("StreamSpecification") or {}
        sse = desc.get("SSEDescription") or {}
        indexes: dict[str, Any] = {}
        for index in desc.get("GlobalSecondaryIndexes") or []:
            projection = {"ProjectionType": index["Projection"]["ProjectionType"]}
            if index["Projection"].get("NonKeyAttributes"):
                projection["NonKeyAttributes"] = sorted(index["Projection"]["NonKeyAttributes"])
            shape: dict[str, Any] = {
                "KeySchema": {k["KeyType"]: k["AttributeName"] for k in index["KeySchema"]},
                "Projection": projection,
            }
            if billing == "PROVISIONED":
                throughput = index.get("ProvisionedThroughput") or {}
                shape["ProvisionedThroughput"] = {
                    "ReadCapacityUnits": throughput.get("ReadCapacityUnits"),
                    "WriteCapacityUnits": throughput.get("WriteCapacityUnits"),
                }
            indexes[index["IndexName"]] = shape
        throughput = desc.get("ProvisionedThroughput") or {}
        return {
            "TableName": name,
            "KeySchema": {k["KeyType"]: k["AttributeName"] for k in desc["KeySchema"]},
            "AttributeDefinitions": {
                a["AttributeName"]: a["AttributeType"] for a in desc.get("AttributeDefinitions", [])
            },
            "GlobalSecondaryIndexes": indexes,
            "BillingMode": billing,
            "ProvisionedThroughput": {
                "ReadCapacityUnits": throughput.get("ReadCapacityUnits"),
                "WriteCapacityUnits": throughput.get("WriteCapacityUnits"),
            },
            "StreamSpecification": {
                "StreamEnabled": bool(stream.get("StreamEnabled")),
                "StreamViewType": stream.get("StreamViewType") if stream.get("StreamEnabled") else None,
            },
            "SSESpecification": {
                "Enabled": sse.get("Status") in ("ENABLED", "ENABLING", "UPDATING"),
                "KMSMasterKeyId": self._key_name(sse.get("KMSMasterKeyArn"), ctx),
            }
            if not self._limited_engine(ctx)
            else {"Enabled": NOT_SERVED, "KMSMasterKeyId": NOT_SERVED},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": self._pitr(name, ctx)},
            "DeletionProtectionEnabled": bool(desc.get("DeletionProtectionEnabled")),
            "TableClass": (desc.get("TableClassSummary") or {}).get("TableClass") or "STANDARD",
            "Tags": self._tags(desc, ctx),
        }

    @staticmethod
    def _tags(desc: dict[str, Any], ctx: Context) -> Any:
        name = desc["TableName"]
        try:
            return tags_dict(
                list(
                    items(
                        ctx.client("dynamodb"),
                        "list_tags_of_resource",
                        f"ListTagsOfResource {name}",
                        "Tags",
                        ResourceArn=desc["TableArn"],
                    )
                )
            )
        except CloudError as err:
            if ctx.twin or _unknown_operation(err):
                return NOT_SERVED  # an engine without tagging (a user's own endpoint may be one); AWS always answers
            raise

    @staticmethod
    def _pitr(name: str, ctx: Context) -> Any:
        ddb = ctx.client("dynamodb")
        try:
            backups = call(ddb.describe_continuous_backups, f"DescribeContinuousBackups {name}", TableName=name)[
                "ContinuousBackupsDescription"
            ]
        except CloudError as err:
            if ctx.twin or _unknown_operation(err):
                return NOT_SERVED  # an engine without backups cannot show it; AWS always answers
            raise
        return (backups.get("PointInTimeRecoveryDescription") or {}).get("PointInTimeRecoveryStatus") == "ENABLED"

    @staticmethod
    def _key_name(arn: str | None, ctx: Context) -> str | None:
        """The table's key: ``alias/aws/dynamodb`` when it is the AWS managed one, else its ARN."""
        if not arn:
            return None
        if arn.startswith("arn:") and arn.endswith(":" + AWS_MANAGED_KEY):
            return AWS_MANAGED_KEY  # the managed key named by its alias ARN (MiniStack reports it so), not a key ARN

        def managed() -> str | None:
            kms = ctx.client("kms")
            try:
                return str(
                    call(kms.describe_key, f"DescribeKey {AWS_MANAGED_KEY}", KeyId=AWS_MANAGED_KEY)["KeyMetadata"][
                        "Arn"
                    ]
                )
            except CloudError:
                return None  # not allowed to look, or no such key yet: the ARN is shown as it is

        return AWS_MANAGED_KEY if arn == ctx.memo("kms:" + AWS_MANAGED_KEY, managed) else arn

    # ------------------------------------------------------------------ a twin's table
    @staticmethod
    def _encryption(want: dict[str, Any]) -> dict[str, Any]:
        sse = nest(want, "SSESpecification")
        if not sse.get("Enabled"):
            return {"Enabled": False}
        request = {"Enabled": True, "SSEType": "KMS"}
        if sse.get("KMSMasterKeyId") not in (None, AWS_MANAGED_KEY):
            request["KMSMasterKeyId"] = sse["KMSMasterKeyId"]
        return request

    def create(self, planned: PlannedResource, want: dict[str, Any], ctx: Context) -> Live:
        ddb = ctx.client("dynamodb")
        name = want["TableName"]
        keys = want.get("KeySchema.HASH"), want.get("KeySchema.RANGE")
        request: dict[str, Any] = {
            "TableName": name,
            "KeySchema": [
                {"AttributeName": n, "KeyType": t} for n, t in zip(keys, ("HASH", "RANGE"), strict=True) if n
            ],
            "AttributeDefinitions": [
                {"AttributeName": n, "AttributeType": t} for n, t in want.get("AttributeDefinitions", {}).items()
            ],
            "BillingMode": want.get("BillingMode", "PROVISIONED"),
            "DeletionProtectionEnabled": bool(want.get("DeletionProtectionEnabled")),
        }
        if request["BillingMode"] == "PROVISIONED":
            request["ProvisionedThroughput"] = nest(want, "ProvisionedThroughput")
        if want.get("StreamSpecification.StreamEnabled"):
            request["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": want["StreamSpecification.StreamViewType"],
            }
        if want.get("SSESpecification.Enabled") and not self._limited_engine(ctx):
            request["SSESpecification"] = self._encryption(want)
        if want.get("TableClass"):
            request["TableClass"] = want["TableClass"]
        if want.get("Tags") and not self._limited_engine(ctx):
            request["Tags"] = [{"Key": k, "Value": v} for k, v in want["Tags"].items()]
        indexes = []
        for index_name, index in (want.get("GlobalSecondaryIndexes") or {}).items():
            gsi: dict[str, Any] = {
                "IndexName": index_name,
                "KeySchema": [{"AttributeName": n, "KeyType": t} for t, n in sorted(index["KeySchema"].items())],
                "Projection": index["Projection"],
            }
            if "ProvisionedThroughput" in index:
                gsi["ProvisionedThroughput"] = index["ProvisionedThroughput"]
            indexes.append(gsi)
        if indexes:
            request["GlobalSecondaryIndexes"] = indexes
        call(ddb.create_table, f"CreateTable {name}", **request)
        self._wait_active(name, ctx)
        if want.get("PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled") and not self._limited_engine(ctx):
            self._set_pitr(name, True, ctx)
        live = self.locate(planned, ctx)
        assert live is not None, f"table {name} vanished after CreateTable"
        return live

    def update(
        self, planned: PlannedResource, want: dict[str, Any], live: Live, changed: set[str], ctx: Context
    ) -> None:
        ddb = ctx.client("dynamodb")
        name = live.physical
        table_update: dict[str, Any] = {}
        if changed & {
            "BillingMode",
            "ProvisionedThroughput.ReadCapacityUnits",
            "ProvisionedThroughput.WriteCapacityUnits",
            "GlobalSecondaryIndexes",
        }:
            billing = want.get("BillingMode", live.view["BillingMode"])
            table_update["BillingMode"] = billing
            if billing == "PROVISIONED":
                table_update["ProvisionedThroughput"] = nest(want, "ProvisionedThroughput")
                throughput_updates = [
                    {"Update": {"IndexName": n, "ProvisionedThroughput": index["ProvisionedThroughput"]}}
                    for n, index in (want.get("GlobalSecondaryIndexes") or {}).items()
                    if "ProvisionedThroughput" in index and n in live.view["GlobalSecondaryIndexes"]
                ]
                if throughput_updates:
                    table_update["GlobalSecondaryIndexUpdates"] = throughput_updates
        if "DeletionProtectionEnabled" in changed:
            table_update["DeletionProtectionEnabled"] = bool(want["DeletionProtectionEnabled"])
        if "TableClass" in changed:
            table_update["TableClass"] = want["TableClass"]
        if changed & {"SSESpecification.Enabled", "SSESpecification.KMSMasterKeyId"}:
            table_update["SSESpecification"] = self._encryption(want)
        if "StreamSpecification.StreamEnabled" in changed:
            enabled = bool(want["StreamSpecification.StreamEnabled"])
            table_update["StreamSpecification"] = (
                {"StreamEnabled": True, "StreamViewType": want.get("StreamSpecification.StreamViewType")}
                if enabled
                else {"StreamEnabled": False}
            )
        if table_update:
            call(ddb.update_table, f"UpdateTable {name}", TableName=name, **table_update)
            self._wait_active(name, ctx)
        if "PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled" in changed:
            self._set_pitr(name, bool(want["PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled"]), ctx)
        if "Tags" in changed:
            arn = live.identity["arn"]
            declared, have = want.get("Tags", {}), live.view.get("Tags", {})
            stale = [k for k in have if k not in declared]
            if stale:
                call(ddb.untag_resource, f"UntagResource {name}", ResourceArn=arn, TagKeys=stale)
            fresh = [{"Key": k, "Value": v} for k, v in declared.items() if have.get(k) != v]
            if fresh:
                call(ddb.tag_resource, f"TagResource {name}", ResourceArn=arn, Tags=fresh)

    @staticmethod
    def _limited_engine(ctx: Context) -> bool:
        """A twin whose DynamoDB is the user's own endpoint (``--engine external``), whose abilities we do not know.

        Such engines may keep nothing of SSESpecification and answer tags and
        backups with UnknownOperationException, so none of them is sent there, and the view shows them as
        not served. MiniStack (ours) serves all three, as moto does.
        """
        from ops.target import read_twin

        return ctx.twin and ((read_twin(ctx.target.stack.name) or {}).get("dynamodb") or {}).get("engine") == "external"

    @staticmethod
    def _set_pitr(name: str, enabled: bool, ctx: Context) -> None:
        ddb = ctx.client("dynamodb")
        call(
            ddb.update_continuous_backups,
            f"UpdateContinuousBackups {name}",
            TableName=name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": enabled},
        )

    @staticmethod
    def _wait_active(name: str, ctx: Context, seconds: float = 120) -> None:
        ddb = ctx.client("dynamodb")
        deadline = time.monotonic() + seconds
        while True:
            desc = call(ddb.describe_table, f"DescribeTable {name}", TableName=name)["Table"]
            busy = [i for i in desc.get("GlobalSecondaryIndexes") or [] if i.get("IndexStatus") not in (None, "ACTIVE")]
            if desc.get("TableStatus") == "ACTIVE" and not busy:
                return
            if time.monotonic() > deadline:
                raise CloudError(f"timed out after {seconds:.0f}s waiting for table {name} to become ACTIVE")
            time.sleep(0.1)
